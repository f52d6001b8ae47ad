//! Sagas as data: the compensations an order has accumulated, run last-in first-out
//! only when the workflow fails for good.

use serde::{Deserialize, Serialize};

/// Something to undo. Pushed onto the saga *after* the step it undoes has happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compensation {
    ReleaseInventory,
    RefundPayment,
    CancelShipment,
}

impl Compensation {
    pub fn name(self) -> &'static str {
        match self {
            Compensation::ReleaseInventory => "release_inventory",
            Compensation::RefundPayment => "refund_payment",
            Compensation::CancelShipment => "cancel_shipment",
        }
    }
}

/// The compensation stack kept in workflow state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saga {
    pending: Vec<Compensation>,
}

impl Saga {
    pub fn push(&mut self, c: Compensation) {
        if !self.pending.contains(&c) {
            self.pending.push(c);
        }
    }

    /// The next compensation to run on failure: the most recently pushed one.
    pub fn pop(&mut self) -> Option<Compensation> {
        self.pending.pop()
    }

    pub fn pending(&self) -> &[Compensation] {
        &self.pending
    }

    /// Called on success: nothing is left to undo.
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensations_unwind_last_in_first_out() {
        let mut saga = Saga::default();
        saga.push(Compensation::ReleaseInventory);
        saga.push(Compensation::CancelShipment);
        assert_eq!(saga.pop(), Some(Compensation::CancelShipment));
        assert_eq!(saga.pop(), Some(Compensation::ReleaseInventory));
        assert_eq!(saga.pop(), None);
    }

    #[test]
    fn pushing_twice_keeps_one_entry_and_success_clears() {
        let mut saga = Saga::default();
        saga.push(Compensation::ReleaseInventory);
        saga.push(Compensation::ReleaseInventory);
        assert_eq!(saga.pending(), [Compensation::ReleaseInventory]);
        saga.clear();
        assert_eq!(saga.pop(), None);
    }

    #[test]
    fn serialized_form_is_readable() {
        let mut saga = Saga::default();
        saga.push(Compensation::ReleaseInventory);
        saga.push(Compensation::CancelShipment);
        let json = serde_json::to_string(&saga).unwrap();
        assert_eq!(
            json,
            r#"{"pending":["release_inventory","cancel_shipment"]}"#
        );
        assert_eq!(serde_json::from_str::<Saga>(&json).unwrap(), saga);
    }
}
