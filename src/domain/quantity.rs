//! How many of one product a cart line or request may name.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A quantity of 1..=99, the range a single request and a single cart line allow.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u8);

impl Quantity {
    pub const MAX: u32 = 99;

    pub fn new(n: i64) -> Result<Quantity, String> {
        match u8::try_from(n) {
            Ok(q) if (1..=Self::MAX as u8).contains(&q) => Ok(Quantity(q)),
            _ => Err(format!(
                "quantity must be between 1 and {}, got {n}",
                Self::MAX
            )),
        }
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }

    /// The sum of two quantities, if it still fits one cart line.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        Quantity::new(i64::from(self.0) + i64::from(other.0)).ok()
    }
}

impl TryFrom<i64> for Quantity {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        Quantity::new(n)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.get()
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_is_one_to_ninety_nine() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(-3).is_err());
        assert!(Quantity::new(100).is_err());
        assert!(Quantity::new(i64::MAX).is_err());
        assert_eq!(Quantity::new(1).unwrap().get(), 1);
        assert_eq!(Quantity::new(99).unwrap().get(), 99);
    }

    #[test]
    fn serde_enforces_the_range() {
        assert_eq!(serde_json::from_str::<Quantity>("5").unwrap().get(), 5);
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert!(serde_json::from_str::<Quantity>("1.5").is_err());
        assert!(serde_json::from_str::<Quantity>("\"2\"").is_err());
        assert_eq!(
            serde_json::to_string(&Quantity::new(7).unwrap()).unwrap(),
            "7"
        );
    }

    #[test]
    fn adding_stays_in_range() {
        let q = |n| Quantity::new(n).unwrap();
        assert_eq!(q(40).checked_add(q(59)), Some(q(99)));
        assert_eq!(q(50).checked_add(q(50)), None);
    }
}
