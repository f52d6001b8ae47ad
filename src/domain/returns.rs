//! Returns and refunds: what a return may ask for, what it is worth, where it stands,
//! and why a refund was made. Pure rules; the database and the workflow apply them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{BasketLine, Cents, ProductId, Quantity};

/// A return id: 1-64 characters of `[A-Za-z0-9_-]`, like an order id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ReturnId(String);

impl ReturnId {
    pub fn parse(text: &str) -> Result<ReturnId, String> {
        super::OrderId::parse(text)
            .map(|id| ReturnId(id.as_str().to_owned()))
            .map_err(|_| "return_id must be 1-64 characters of letters, digits, '_' and '-'".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ReturnId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ReturnId::parse(&s)
    }
}

impl From<ReturnId> for String {
    fn from(id: ReturnId) -> String {
        id.0
    }
}

impl fmt::Display for ReturnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a return stands. The strings are what the database and the API say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    /// Asked for by the customer; the store decides.
    Requested,
    /// Approved with a return label; the parcel is awaited until its window ends.
    AwaitingParcel,
    Rejected,
    /// No parcel came within the window: nothing is refunded.
    Expired,
    /// The parcel came back and its lines were refunded.
    Refunded,
}

impl ReturnStatus {
    pub const ALL: [ReturnStatus; 5] = [
        ReturnStatus::Requested,
        ReturnStatus::AwaitingParcel,
        ReturnStatus::Rejected,
        ReturnStatus::Expired,
        ReturnStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::AwaitingParcel => "awaiting_parcel",
            ReturnStatus::Rejected => "rejected",
            ReturnStatus::Expired => "expired",
            ReturnStatus::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Result<ReturnStatus, String> {
        ReturnStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown return status `{text}`"))
    }

    /// Whether the goods it names count as on their way back (or back): a rejected or
    /// expired return frees them for another return.
    pub fn holds_goods(self) -> bool {
        matches!(
            self,
            ReturnStatus::Requested | ReturnStatus::AwaitingParcel | ReturnStatus::Refunded
        )
    }
}

impl fmt::Display for ReturnStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line a customer asks to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnItem {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

/// A line of a return as it is kept: what comes back, at the price it was paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReturnLine {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub quantity: Quantity,
    pub unit_price_cents: Cents,
}

/// Why a return cannot be opened as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnRefusal {
    /// No line, or one product named twice.
    Malformed(String),
    /// A product the order does not have.
    NotInOrder(ProductId),
    /// More than was delivered and not yet returned or in an open return.
    TooMany {
        product_id: ProductId,
        wanted: u32,
        left: u32,
    },
}

impl fmt::Display for ReturnRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReturnRefusal::Malformed(why) => f.write_str(why),
            ReturnRefusal::NotInOrder(p) => write!(f, "product {} is not in this order", p.get()),
            ReturnRefusal::TooMany {
                product_id,
                wanted,
                left,
            } => write!(
                f,
                "{wanted} of product {} asked back, {left} left to return",
                product_id.get()
            ),
        }
    }
}

/// The lines of a return at the prices the order paid, and what they are worth:
/// `delivered` are the order's lines, `held` how many of each product earlier returns
/// still hold (open or refunded).
pub fn price_return(
    delivered: &[BasketLine],
    held: &BTreeMap<ProductId, u32>,
    wanted: &[ReturnItem],
) -> Result<(Vec<ReturnLine>, Cents), ReturnRefusal> {
    if wanted.is_empty() {
        return Err(ReturnRefusal::Malformed(
            "a return names at least one item".into(),
        ));
    }
    let mut lines = Vec::with_capacity(wanted.len());
    for item in wanted {
        if lines
            .iter()
            .any(|l: &ReturnLine| l.product_id == item.product_id)
        {
            let why = format!("product {} is named twice", item.product_id.get());
            return Err(ReturnRefusal::Malformed(why));
        }
        let bought: Vec<_> = delivered
            .iter()
            .filter(|l| l.product_id == item.product_id)
            .collect();
        let Some(first) = bought.first() else {
            return Err(ReturnRefusal::NotInOrder(item.product_id));
        };
        let total: u32 = bought.iter().map(|l| l.quantity.get()).sum();
        let left = total.saturating_sub(held.get(&item.product_id).copied().unwrap_or(0));
        if item.quantity.get() > left {
            return Err(ReturnRefusal::TooMany {
                product_id: item.product_id,
                wanted: item.quantity.get(),
                left,
            });
        }
        lines.push(ReturnLine {
            product_id: item.product_id,
            sku: first.sku.clone(),
            name: first.name.clone(),
            quantity: item.quantity,
            unit_price_cents: first.unit_price_cents,
        });
    }
    let worth = lines
        .iter()
        .map(|l| l.unit_price_cents.checked_mul(l.quantity.get()))
        .collect::<Option<Vec<_>>>()
        .and_then(Cents::sum)
        .ok_or_else(|| ReturnRefusal::Malformed("the return's worth does not fit".into()))?;
    Ok((lines, worth))
}

/// Why money went back to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundKind {
    /// The order ended without delivery (rejected, cancelled, failed): what was left.
    Order,
    /// A return's lines came back.
    Return,
    /// Granted by the store.
    Goodwill,
}

impl RefundKind {
    pub const ALL: [RefundKind; 3] = [RefundKind::Order, RefundKind::Return, RefundKind::Goodwill];

    pub fn as_str(self) -> &'static str {
        match self {
            RefundKind::Order => "order",
            RefundKind::Return => "return",
            RefundKind::Goodwill => "goodwill",
        }
    }

    pub fn parse(text: &str) -> Result<RefundKind, String> {
        RefundKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| format!("unknown refund kind `{text}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: i64, q: i64, price: i64) -> BasketLine {
        BasketLine {
            product_id: ProductId::new(p).unwrap(),
            sku: format!("P{p}"),
            name: format!("Product {p}"),
            unit_price_cents: Cents::new(price).unwrap(),
            quantity: Quantity::new(q).unwrap(),
        }
    }

    fn item(p: i64, q: i64) -> ReturnItem {
        ReturnItem {
            product_id: ProductId::new(p).unwrap(),
            quantity: Quantity::new(q).unwrap(),
        }
    }

    #[test]
    fn a_return_is_priced_as_paid_and_never_exceeds_what_is_left() {
        let order = [line(1, 3, 250), line(2, 1, 999)];
        let none = BTreeMap::new();
        let (lines, worth) = price_return(&order, &none, &[item(1, 2), item(2, 1)]).unwrap();
        assert_eq!(worth.get(), 2 * 250 + 999);
        assert_eq!(lines[0].unit_price_cents.get(), 250);

        let held = BTreeMap::from([(ProductId::new(1).unwrap(), 2)]);
        assert_eq!(
            price_return(&order, &held, &[item(1, 2)]),
            Err(ReturnRefusal::TooMany {
                product_id: ProductId::new(1).unwrap(),
                wanted: 2,
                left: 1
            })
        );
        assert!(price_return(&order, &held, &[item(1, 1)]).is_ok());
        assert_eq!(
            price_return(&order, &none, &[item(3, 1)]),
            Err(ReturnRefusal::NotInOrder(ProductId::new(3).unwrap()))
        );
        assert!(matches!(
            price_return(&order, &none, &[]),
            Err(ReturnRefusal::Malformed(_))
        ));
        assert!(matches!(
            price_return(&order, &none, &[item(1, 1), item(1, 1)]),
            Err(ReturnRefusal::Malformed(_))
        ));
    }

    #[test]
    fn statuses_and_kinds_round_trip() {
        for s in ReturnStatus::ALL {
            assert_eq!(ReturnStatus::parse(s.as_str()), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        for k in RefundKind::ALL {
            assert_eq!(RefundKind::parse(k.as_str()), Ok(k));
        }
        assert!(ReturnStatus::parse("lost").is_err());
        assert!(ReturnId::parse("r-1_A").is_ok() && ReturnId::parse("r 1").is_err());
    }
}
