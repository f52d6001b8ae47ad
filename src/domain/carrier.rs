//! How the (simulated) carrier behaves for an order: normally, failing every booking,
//! or failing the first two. The admin's carrier drill sets it for the next orders;
//! order ids containing `FAIL_SHIP` / `FLAKY_SHIP` choose it too.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarrierMode {
    Normal,
    Fail,
    Flaky,
}

impl CarrierMode {
    pub const ALL: [CarrierMode; 3] = [CarrierMode::Normal, CarrierMode::Fail, CarrierMode::Flaky];

    pub fn as_str(self) -> &'static str {
        match self {
            CarrierMode::Normal => "normal",
            CarrierMode::Fail => "fail",
            CarrierMode::Flaky => "flaky",
        }
    }

    pub fn parse(text: &str) -> Result<CarrierMode, String> {
        CarrierMode::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| format!("unknown carrier mode `{text}`; one of normal, fail, flaky"))
    }

    /// The mode an order id asks for itself (the demo's and tests' hooks).
    pub fn of_order_id(order_id: &str) -> Option<CarrierMode> {
        if order_id.contains("FAIL_SHIP") {
            Some(CarrierMode::Fail)
        } else if order_id.contains("FLAKY_SHIP") {
            Some(CarrierMode::Flaky)
        } else {
            None
        }
    }
}

impl fmt::Display for CarrierMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_order_ids_choose() {
        for m in CarrierMode::ALL {
            assert_eq!(CarrierMode::parse(m.as_str()), Ok(m));
        }
        assert!(CarrierMode::parse("lost").is_err());
        assert_eq!(
            CarrierMode::of_order_id("o-FAIL_SHIP-1"),
            Some(CarrierMode::Fail)
        );
        assert_eq!(
            CarrierMode::of_order_id("o-FLAKY_SHIP"),
            Some(CarrierMode::Flaky)
        );
        assert_eq!(CarrierMode::of_order_id("o-1"), None);
    }
}
