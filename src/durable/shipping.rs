//! `ShippingService`: books shipments with the (simulated) carrier, retrying transient
//! failures with the proposal's policy, and cancels them as a saga compensation.

use restate_sdk::context::RunRetryPolicy;
use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::notify::Event;
use crate::db::Db;
use crate::domain::ids::stable_hash;
use crate::domain::{CarrierMode, RetryConfig};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShipmentRequest {
    pub order_id: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentInfo {
    pub carrier: String,
    pub tracking_number: String,
    /// Carrier calls it took, the successful one included.
    pub attempts: i64,
}

/// The simulated carrier API, behaving as `mode` says: `Fail` rejects every attempt,
/// `Flaky` times out the first two. Carrier and tracking number are derived from the
/// order id, so a booking repeated after a crash is the same.
pub fn carrier_api(
    order_id: &str,
    attempt: i64,
    mode: CarrierMode,
) -> Result<(String, String), String> {
    match mode {
        CarrierMode::Fail => return Err("the carrier rejected the shipment".into()),
        CarrierMode::Flaky if attempt <= 2 => return Err("the carrier API timed out".into()),
        CarrierMode::Flaky | CarrierMode::Normal => {}
    }
    let hash = stable_hash(order_id.as_bytes());
    let (carrier, prefix) = [("FedEx", "FX"), ("UPS", "1Z"), ("DHL", "JD")][(hash % 3) as usize];
    Ok((
        carrier.to_owned(),
        format!("{prefix}{:012}", hash % 1_000_000_000_000),
    ))
}

/// A retry policy in the proposal's terms as the SDK runs it for `ctx.run`.
pub fn run_policy(c: RetryConfig) -> RunRetryPolicy {
    RunRetryPolicy::new()
        .initial_delay(c.initial_delay)
        .exponentiation_factor(c.backoff_factor)
        .max_attempts(c.max_attempts)
}

pub struct ShippingService {
    db: Db,
}

impl ShippingService {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// Only the fulfillment workflow books and cancels shipments: nothing outside Restate
/// may call this service through the ingress.
#[restate_sdk::service(ingress_private)]
impl ShippingService {
    /// Books the shipment. Transient carrier errors are retried (3 attempts, 100 ms,
    /// doubling); when they run out the failure is terminal for the caller.
    #[handler(name = "InitiateShipment")]
    async fn initiate_shipment(
        &self,
        ctx: Context<'_>,
        req: Json<ShipmentRequest>,
    ) -> Result<Json<ShipmentInfo>, HandlerError> {
        let ShipmentRequest { order_id, user_id } = req.into_inner();
        let max = RetryConfig::SHIPPING.max_attempts;
        let booked = ctx
            .run(|| async {
                let attempt = self.db.carrier_attempt(&order_id).await?;
                let mode = self.db.carrier_mode(&order_id).await?;
                match carrier_api(&order_id, attempt, mode) {
                    Ok((carrier, tracking)) => {
                        let s = self
                            .db
                            .book_shipment(&order_id, &carrier, &tracking)
                            .await?;
                        Ok(Json(ShipmentInfo {
                            carrier: s.carrier,
                            tracking_number: s.tracking_number,
                            attempts: attempt,
                        }))
                    }
                    Err(reason) => {
                        let message = format!(
                            "Order {order_id}: carrier attempt {attempt} of {max} failed: {reason}"
                        );
                        Event::new(&user_id, &order_id, "shipping_retry", message)
                            .nth(attempt)
                            .write(&self.db)
                            .await?;
                        Err(HandlerError::from(reason))
                    }
                }
            })
            .name("book_with_carrier")
            .retry_policy(run_policy(RetryConfig::SHIPPING))
            .await;
        match booked {
            Ok(info) => Ok(info),
            Err(e) => Err(TerminalError::new_with_code(
                502,
                format!("shipping failed after {max} attempts: {}", e.message()),
            )
            .into()),
        }
    }

    /// Cancels the order's shipment, if one was booked. Idempotent.
    #[handler(name = "CancelShipment")]
    async fn cancel_shipment(
        &self,
        ctx: Context<'_>,
        order_id: String,
    ) -> Result<bool, HandlerError> {
        Ok(ctx
            .run(|| async { Ok(self.db.cancel_shipment(&order_id).await?) })
            .name("cancel_with_carrier")
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The carrier policy, as the SDK will run it: 3 attempts, 100 ms, doubling.
    #[test]
    fn the_carrier_policy_maps_onto_the_sdk_policy() {
        let debug = format!("{:?}", run_policy(RetryConfig::SHIPPING));
        assert!(debug.contains("max_attempts: Some(3)"), "{debug}");
        assert!(debug.contains("factor: 2.0"), "{debug}");
        assert!(debug.contains("initial_delay: 100ms"), "{debug}");
    }

    #[test]
    fn carrier_modes() {
        use CarrierMode::*;
        assert!(carrier_api("o", 1, Fail).is_err());
        assert!(carrier_api("o", 9, Fail).is_err());
        assert!(carrier_api("o", 1, Flaky).is_err());
        assert!(carrier_api("o", 2, Flaky).is_err());
        assert!(carrier_api("o", 3, Flaky).is_ok());
        assert!(carrier_api("o", 1, Normal).is_ok());
    }

    #[test]
    fn bookings_are_stable_per_order() {
        let a = carrier_api("order-1", 1, CarrierMode::Normal).unwrap();
        assert_eq!(a, carrier_api("order-1", 3, CarrierMode::Flaky).unwrap());
        assert_eq!(a.1.len(), 14);
        assert!(["FedEx", "UPS", "DHL"].contains(&a.0.as_str()));
    }
}
