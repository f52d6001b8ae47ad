//! Orders: ids, addresses, the status and step vocabulary, and the order record that
//! checkout snapshots from the basket.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{BasketLine, Cents};

/// An order id: 1-64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct OrderId(String);

impl OrderId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Result<OrderId, String> {
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(OrderId(text.to_owned()))
        } else {
            Err(format!(
                "order_id must be 1-{} characters of letters, digits, '_' and '-'",
                Self::MAX_LEN
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrderId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        OrderId::parse(&s)
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> String {
        id.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A shipping address: 1-500 characters after trimming, lines broken by `\n` only, no
/// other control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShippingAddress(String);

impl ShippingAddress {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(text: &str) -> Result<ShippingAddress, String> {
        super::text::parse_text("shipping_address", text, Self::MAX_CHARS, true)
            .map(ShippingAddress)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ShippingAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ShippingAddress::parse(&s)
    }
}

impl From<ShippingAddress> for String {
    fn from(a: ShippingAddress) -> String {
        a.0
    }
}

/// Where an order is in its life. The strings are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    AwaitingPayment,
    PaymentFailed,
    PaymentTimedOut,
    AwaitingApproval,
    Rejected,
    Cancelled,
    Shipping,
    ShippingFailed,
    InTransit,
    Delivered,
    /// Some parcels arrived, the others failed (their part never captured).
    PartiallyDelivered,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 11] = [
        OrderStatus::AwaitingPayment,
        OrderStatus::PaymentFailed,
        OrderStatus::PaymentTimedOut,
        OrderStatus::AwaitingApproval,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
        OrderStatus::Shipping,
        OrderStatus::ShippingFailed,
        OrderStatus::InTransit,
        OrderStatus::Delivered,
        OrderStatus::PartiallyDelivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::PaymentFailed => "payment_failed",
            OrderStatus::PaymentTimedOut => "payment_timed_out",
            OrderStatus::AwaitingApproval => "awaiting_approval",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Shipping => "shipping",
            OrderStatus::ShippingFailed => "shipping_failed",
            OrderStatus::InTransit => "in_transit",
            OrderStatus::Delivered => "delivered",
            OrderStatus::PartiallyDelivered => "partially_delivered",
        }
    }

    pub fn parse(text: &str) -> Result<OrderStatus, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown status `{text}`; one of {}", names.join(", "))
            })
    }

    /// A human label for views and notifications.
    pub fn label(self) -> &'static str {
        match self {
            OrderStatus::AwaitingPayment => "Awaiting Payment",
            OrderStatus::PaymentFailed => "Payment Failed",
            OrderStatus::PaymentTimedOut => "Payment Timed Out",
            OrderStatus::AwaitingApproval => "Awaiting Approval",
            OrderStatus::Rejected => "Rejected",
            OrderStatus::Cancelled => "Cancelled",
            OrderStatus::Shipping => "Shipping",
            OrderStatus::ShippingFailed => "Shipping Failed",
            OrderStatus::InTransit => "In Transit",
            OrderStatus::Delivered => "Delivered",
            OrderStatus::PartiallyDelivered => "Partially Delivered",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::PaymentFailed
                | OrderStatus::PaymentTimedOut
                | OrderStatus::Rejected
                | OrderStatus::Cancelled
                | OrderStatus::ShippingFailed
                | OrderStatus::Delivered
                | OrderStatus::PartiallyDelivered
        )
    }
}

impl TryFrom<String> for OrderStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        OrderStatus::parse(&s)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one step of an order's progress checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Active,
    Done,
    Failed,
    Compensated,
}

/// One line of the order's checklist, with when it last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub name: String,
    pub state: StepState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A compensation that ran, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompensationRun {
    pub name: String,
    pub ran_at: String,
}

/// The checklist every order goes through, in order.
pub const STEPS: [&str; 5] = ["payment", "approval", "shipping", "delivery", "delivered"];

/// The checklist as it stands at `status`; `failure` marks the step that failed.
pub fn steps_for(status: OrderStatus) -> Vec<Step> {
    use OrderStatus::*;
    use StepState::*;
    // (index of the active-or-failed step, its state); earlier steps are done.
    let (at, state) = match status {
        AwaitingPayment => (0, Active),
        // A cancelled order's own checklist (the workflow's) says where it stopped;
        // one cancelled before it was paid stopped at the payment.
        PaymentFailed | PaymentTimedOut | Cancelled => (0, Failed),
        AwaitingApproval => (1, Active),
        Rejected => (1, Failed),
        Shipping => (2, Active),
        ShippingFailed => (2, Failed),
        InTransit => (3, Active),
        Delivered | PartiallyDelivered => (STEPS.len(), Done),
    };
    STEPS
        .iter()
        .enumerate()
        .map(|(i, name)| Step {
            name: (*name).to_owned(),
            state: if i < at {
                Done
            } else if i == at {
                state
            } else {
                Pending
            },
            at: None,
        })
        .collect()
}

/// An order as checkout records it: the basket and prices at that moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order_id: OrderId,
    pub user_id: String,
    pub items: Vec<BasketLine>,
    pub total_cents: Cents,
    pub shipping_address: ShippingAddress,
    pub created_at: String,
    pub status: OrderStatus,
    pub awakeable_id: Option<String>,
    pub transaction_id: Option<String>,
    pub failure_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids() {
        assert!(OrderId::parse("order-123_ABC").is_ok());
        assert!(OrderId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a/b", "ü", "<x>", &"a".repeat(65)] {
            assert!(OrderId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<OrderId>("\"x y\"").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            ShippingAddress::parse("  1 Main St\n").unwrap().as_str(),
            "1 Main St"
        );
        assert!(ShippingAddress::parse("Line 1\nLine 2").is_ok());
        assert!(ShippingAddress::parse("   ").is_err());
        assert!(ShippingAddress::parse("a\u{0}b").is_err());
        assert!(ShippingAddress::parse("a\rb").is_err());
        assert!(ShippingAddress::parse("a\u{2028}b").is_err());
        assert!(ShippingAddress::parse(&"ä".repeat(500)).is_ok());
        assert!(ShippingAddress::parse(&"a".repeat(501)).is_err());
    }

    #[test]
    fn status_strings_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!(OrderStatus::parse("lost").is_err());
    }

    #[test]
    fn checklists() {
        let states = |s| {
            steps_for(s)
                .into_iter()
                .map(|x| x.state)
                .collect::<Vec<_>>()
        };
        use StepState::*;
        assert_eq!(
            states(OrderStatus::AwaitingPayment),
            [Active, Pending, Pending, Pending, Pending]
        );
        assert_eq!(
            states(OrderStatus::Rejected),
            [Done, Failed, Pending, Pending, Pending]
        );
        assert_eq!(
            states(OrderStatus::InTransit),
            [Done, Done, Done, Active, Pending]
        );
        assert_eq!(
            states(OrderStatus::Delivered),
            [Done, Done, Done, Done, Done]
        );
    }
}
