//! Hold points for fault-injection runs (`make chaos`, `tests/chaos.rs`).
//!
//! `SHOPFLOW_HOLD_AT=point[,point…]` makes the service endpoint stop the first time it
//! passes a named point: inside a durable step, after its side effect and before
//! Restate has journaled its result, which is where a crash hurts most. It writes the
//! marker `held/<point>` in the data dir and waits there for good, so that a test can
//! kill whichever process it means to (the endpoint, restate-server, the supervisor,
//! all of them) at exactly that moment. The marker also keeps the point from holding
//! again after the restart. Unset (the default), every point is a no-op.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The named points, in an order's life. Each is passed inside a durable step, after
/// the side effect it names (several inside one step that does several things: the
/// sale inside `enter_delivered`, the restock inside `refund_return`).
pub const POINTS: &[&str] = &[
    // Checkout (`UserSession`).
    "reserve_stock",
    "register_payment",
    "confirm_payment",
    "give_back",
    // The workflow: each status it enters, the decision, the sale.
    "enter_awaiting_approval",
    "claim_decision",
    "enter_in_transit",
    "enter_shipping",
    "enter_delivered",
    "enter_rejected",
    "enter_cancelled",
    "enter_shipping_failed",
    "complete_sale",
    // Parcels: started, one captured as it ships, one voided when it cannot.
    "start_parcels",
    "capture_parcel",
    "void_parcel",
    // Shipping: a booking, a rejected attempt, a cancellation.
    "book_with_carrier",
    "carrier_rejected",
    "cancel_with_carrier",
    // Compensations.
    "compensate_refund_payment",
    "compensate_release_inventory",
    "compensate_cancel_shipment",
    // A return (`ReturnWorkflow`): asked for, approved, received, refunded.
    "return_requested",
    "claim_return_decision",
    "return_label",
    "claim_receipt",
    "refund_return",
    "restock",
    "return_refunded",
    // A webhook delivery's try (`WebhookQueue`), after the POST and its record.
    "post_webhook",
];
struct Armed {
    points: Vec<String>,
    markers: PathBuf,
}

static ARMED: OnceLock<Armed> = OnceLock::new();

/// Arms the given points for this process; markers live under `data_dir`. Unknown
/// names are refused, so a typo cannot make a chaos run test nothing.
pub fn arm(data_dir: &Path, points: &[String]) -> std::io::Result<()> {
    let points: Vec<String> = points.iter().filter(|p| !p.is_empty()).cloned().collect();
    if let Some(unknown) = points.iter().find(|p| !POINTS.contains(&p.as_str())) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "unknown hold point {unknown:?} (SHOPFLOW_HOLD_AT); known: {}",
                POINTS.join(", ")
            ),
        ));
    }
    if points.is_empty() {
        return Ok(());
    }
    let markers = data_dir.join("held");
    std::fs::create_dir_all(&markers)?;
    let _ = ARMED.set(Armed { points, markers });
    Ok(())
}

/// Passes the point `name`: holds here for good if it is armed and has not held yet.
pub async fn point(name: &str) {
    let Some(armed) = ARMED.get() else { return };
    if !armed.points.iter().any(|p| p == name) {
        return;
    }
    // create_new: of concurrent passers, exactly one holds; after a restart none.
    if std::fs::File::create_new(armed.markers.join(name)).is_err() {
        return;
    }
    tracing::warn!(point = name, "fault injection: holding");
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_points_are_refused_and_none_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let err = arm(dir.path(), &["reserve_stok".into()]).unwrap_err();
        assert!(err.to_string().contains("reserve_stock"), "{err}");
        arm(dir.path(), &[]).unwrap();
        // Not armed: passes at once.
        point("reserve_stock").await;
        assert!(!dir.path().join("held").exists());
    }
}
