//! Money as integer cents: no floating point anywhere near a price.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in cents. Arithmetic is checked: an overflow is an error, not a wrap.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Cents(i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// A price or total; negative amounts are not money we handle.
    pub fn new(cents: i64) -> Option<Cents> {
        (cents >= 0).then_some(Cents(cents))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    pub fn checked_mul(self, factor: u32) -> Option<Cents> {
        self.0.checked_mul(i64::from(factor)).map(Cents)
    }

    /// Sums amounts, `None` on overflow.
    pub fn sum(amounts: impl IntoIterator<Item = Cents>) -> Option<Cents> {
        amounts
            .into_iter()
            .try_fold(Cents::ZERO, |acc, c| acc.checked_add(c))
    }
}

impl fmt::Display for Cents {
    /// `$1,234.05` style, as the order views show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dollars = (self.0 / 100).to_string();
        let mut grouped = String::with_capacity(dollars.len() + dollars.len() / 3);
        for (i, ch) in dollars.chars().enumerate() {
            if i > 0 && (dollars.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        write!(f, "${grouped}.{:02}", self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_amounts_are_refused() {
        assert_eq!(Cents::new(-1), None);
        assert_eq!(Cents::new(0), Some(Cents::ZERO));
    }

    #[test]
    fn display_groups_thousands() {
        assert_eq!(Cents::new(2500).unwrap().to_string(), "$25.00");
        assert_eq!(Cents::new(5).unwrap().to_string(), "$0.05");
        assert_eq!(
            Cents::new(123_456_789).unwrap().to_string(),
            "$1,234,567.89"
        );
        assert_eq!(Cents::new(100_000).unwrap().to_string(), "$1,000.00");
    }

    #[test]
    fn arithmetic_is_checked() {
        let price = Cents::new(2500).unwrap();
        assert_eq!(price.checked_mul(3), Cents::new(7500));
        assert_eq!(Cents::sum([price, price]), Cents::new(5000));
        assert_eq!(Cents::new(i64::MAX).unwrap().checked_mul(2), None);
        assert_eq!(Cents::sum([Cents::new(i64::MAX).unwrap(), price]), None);
    }
}
