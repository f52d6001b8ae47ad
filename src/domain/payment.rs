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
}
