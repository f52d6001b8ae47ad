//! `ShippingService`: books shipments with the (simulated) carrier, retrying transient
//! failures with its retry policy (3 attempts, 100 ms, ×2), and cancels them as a saga compensation.

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::notify::Event;
use crate::db::Db;
use crate::domain::ids::stable_hash;
use crate::domain::{CarrierMode, OrderId, RetryConfig};
use crate::faults;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShipmentRequest {
    pub order_id: OrderId,
    pub user_id: String,
    /// The parcel's carrier reference (the order id when absent).
    #[serde(default)]
    pub shipment_id: Option<String>,
    /// Where the parcel ships from.
    #[serde(default)]
    pub location: Option<String>,
}

impl ShipmentRequest {
    fn reference(&self) -> &str {
        self.shipment_id
            .as_deref()
            .unwrap_or(self.order_id.as_str())
    }
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
    attempt: u32,
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
    /// Books the shipment. Carrier errors are retried (3 attempts, 100 ms, doubling);
    /// when they run out the failure is terminal for the caller. Each attempt is its own
    /// journaled step and the pause between them a durable timer, so an attempt cut off
    /// by a crash is repeated under its own number, never counted twice.
    #[handler(name = "InitiateShipment")]
    async fn initiate_shipment(
        &self,
        ctx: Context<'_>,
        req: Json<ShipmentRequest>,
    ) -> Result<Json<ShipmentInfo>, HandlerError> {
        let req = req.into_inner();
        let policy = RetryConfig::SHIPPING;
        let max = policy.max_attempts;
        let mut attempt = 1;
        loop {
            let outcome = ctx
                .run(|| self.book(&req, ctx.invocation_id(), attempt))
                .name(format!("book_with_carrier #{attempt}"))
                .await?
                .into_inner();
            match outcome {
                Ok(info) => return Ok(Json(info)),
                Err(reason) if attempt >= max => {
                    return Err(TerminalError::new_with_code(
                        502,
                        format!("shipping failed after {max} attempts: {reason}"),
                    )
                    .into());
                }
                Err(_) => {
                    ctx.sleep(policy.delay_after(attempt)).await?;
                    attempt += 1;
                }
            }
        }
    }

    /// Cancels the order's shipment, if one was booked. Idempotent.
    #[handler(name = "CancelShipment")]
    async fn cancel_shipment(
        &self,
        ctx: Context<'_>,
        order_id: String,
    ) -> Result<bool, HandlerError> {
        let order_id = OrderId::parse(&order_id).map_err(TerminalError::new)?;
        Ok(ctx
            .run(|| async {
                self.db
                    .record_invocation(&order_id, ctx.invocation_id())
                    .await?;
                let cancelled = self.db.cancel_shipment(&order_id).await?;
                faults::point("cancel_with_carrier").await;
                Ok(cancelled)
            })
            .name("cancel_with_carrier")
            .await?)
    }
}

impl ShippingService {
    /// One carrier attempt. A rejection is an answer (`Ok(Err(reason))`, journaled and
    /// notified); only a failure of our own (the database) is an error, retried by Restate.
    async fn book(
        &self,
        req: &ShipmentRequest,
        invocation_id: &str,
        attempt: u32,
    ) -> Result<Json<Result<ShipmentInfo, String>>, HandlerError> {
        let (order_id, user_id, reference) = (&req.order_id, &req.user_id, req.reference());
        let location = req.location.as_deref().unwrap_or("east");
        // The durable-steps pane finds the booking (and its retries) by its id.
        self.db.record_invocation(order_id, invocation_id).await?;
        let mode = self.db.carrier_mode(reference, location).await?;
        match carrier_api(reference, attempt, mode) {
            Ok((carrier, tracking)) => {
                let s = self
                    .db
                    .book_shipment(reference, &carrier, &tracking)
                    .await?;
                faults::point("book_with_carrier").await;
                Ok(Json(Ok(ShipmentInfo {
                    carrier: s.carrier,
                    tracking_number: s.tracking_number,
                    attempts: attempt.into(),
                })))
            }
            Err(reason) => {
                let max = RetryConfig::SHIPPING.max_attempts;
                let split = reference != order_id.as_str();
                let parcel = match split {
                    true => format!(" (parcel from {location})"),
                    false => String::new(),
                };
                let message = format!(
                    "Order {order_id}{parcel}: carrier attempt {attempt} of {max} failed: {reason}"
                );
                let event = Event::new(user_id, order_id.as_str(), "shipping_retry", message);
                let event = match split {
                    true => event.keyed(location),
                    false => event,
                };
                event.nth(attempt.into()).write(&self.db).await?;
                faults::point("carrier_rejected").await;
                Ok(Json(Err(reason)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
