//! Where a payment request stands at the (simulated) payment gateway.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of a payment request. The strings are what the database stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    Pending,
    Succeeded,
    Failed,
    TimedOut,
    /// Withdrawn before it was settled: the order was cancelled.
    Cancelled,
}

impl PaymentState {
    pub const ALL: [PaymentState; 5] = [
        PaymentState::Pending,
        PaymentState::Succeeded,
        PaymentState::Failed,
        PaymentState::TimedOut,
        PaymentState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Succeeded => "succeeded",
            PaymentState::Failed => "failed",
            PaymentState::TimedOut => "timed_out",
            PaymentState::Cancelled => "cancelled",
        }
    }
}

/// The money of a payment the gateway accepted: authorized at checkout, captured per
/// parcel as it ships, the rest voided. `captured` is `None` for a payment taken
/// before parcels (captured whole when it succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub amount: i64,
    pub captured: Option<i64>,
    pub voided: i64,
}

impl Settlement {
    pub fn captured(self) -> i64 {
        self.captured.unwrap_or(self.amount)
    }

    /// `authorized` while some of the amount is neither captured nor voided, else
    /// `captured` (something was) or `voided` (nothing was).
    pub fn state(self) -> &'static str {
        let captured = self.captured();
        if captured + self.voided < self.amount {
            "authorized"
        } else if captured > 0 {
            "captured"
        } else {
            "voided"
        }
    }
}

impl TryFrom<String> for PaymentState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        PaymentState::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown payment state `{s}`"))
    }
}

impl fmt::Display for PaymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in PaymentState::ALL {
            assert_eq!(PaymentState::try_from(s.as_str().to_owned()), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!(PaymentState::try_from("refunded".to_owned()).is_err());
    }

    #[test]
    fn settlements() {
        let s = |captured, voided| Settlement {
            amount: 100,
            captured,
            voided,
        };
        assert_eq!(s(Some(0), 0).state(), "authorized");
        assert_eq!(s(Some(60), 0).state(), "authorized");
        assert_eq!(s(Some(60), 40).state(), "captured");
        assert_eq!(s(Some(0), 100).state(), "voided");
        assert_eq!(s(None, 0).state(), "captured", "taken before parcels");
        assert_eq!(s(None, 0).captured(), 100);
    }
}
