//! The parcels of an order on their way: every parcel booked at once (each by its own
//! `ShippingService` call, with its own retries), each settled as its answer comes: a
//! parcel that ships is captured, one that fails gives its stock back and its part of
//! the authorization is voided.

use restate_sdk::prelude::*;

use super::{FulfillmentStatus, OrderFulfillmentWorkflow, SAGA, STATUS, Stop, is_cancellation};
use crate::clock::format_duration;
use crate::domain::{Compensation, OrderStatus, ParcelStatus, Saga};
use crate::durable::notify::Event;
use crate::durable::shipping::{ShipmentInfo, ShipmentRequest, ShippingServiceClient};
use crate::faults;

impl OrderFulfillmentWorkflow {
    /// Books every parcel through `ShippingService` at once (each booking its own
    /// invocation with its own retries), then settles each as its answer comes: a
    /// parcel that ships is captured, one that fails is released and voided. The order
    /// goes on when at least one shipped.
    pub(super) async fn ship(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        saga: &mut Saga,
    ) -> Result<(), Stop> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        let approved = format!("Order {order_id}: approved, booking the shipment");
        let event = Event::new(&user_id, order_id.as_str(), "approved", approved);
        self.advance(ctx, st, OrderStatus::Shipping, vec![event])
            .await?;
        let id = order_id.clone();
        st.parcels = ctx
            .run(|| async move {
                let parcels = self.db.start_parcels(&id).await?;
                faults::point("start_parcels").await;
                Ok(Json(parcels))
            })
            .name("parcels")
            .await?
            .into_inner();
        let failure = self.book_parcels(ctx, st, saga).await?;
        let Some(shipment) = st.shipment.clone() else {
            let reason = failure.unwrap_or_else(|| "the order has no parcels".into());
            return Err(Stop::Ends(OrderStatus::ShippingFailed, reason));
        };
        let shipped = (st.parcels.iter())
            .filter(|p| p.status == ParcelStatus::InTransit)
            .count();
        let what = match shipped {
            1 => "shipment initiated".to_owned(),
            n => format!("{n} parcels shipped, the first"),
        };
        let message = format!(
            "Order {order_id}: {what} with {}, tracking {}; delivery expected in {}",
            shipment.carrier,
            shipment.tracking_number,
            format_duration(self.delivery_delay)
        );
        let event = Event::new(&user_id, order_id.as_str(), "shipment_initiated", message)
            .with("carrier", shipment.carrier)
            .with("tracking_number", shipment.tracking_number);
        self.advance(ctx, st, OrderStatus::InTransit, vec![event])
            .await?;
        Ok(())
    }

    /// Sends every parcel's booking at once, then settles each as its answer comes;
    /// answers the first failure's reason.
    async fn book_parcels(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        saga: &mut Saga,
    ) -> Result<Option<String>, Stop> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        let calls: Vec<_> = st
            .parcels
            .iter()
            .map(|p| {
                let request = ShipmentRequest {
                    order_id: order_id.clone(),
                    user_id: user_id.clone(),
                    shipment_id: Some(p.shipment_id.clone()),
                    location: Some(p.location.clone()),
                };
                ctx.service_client::<ShippingServiceClient>()
                    .initiate_shipment(Json(request))
                    .call()
            })
            .collect();
        let mut failure = None;
        for (i, call) in calls.into_iter().enumerate() {
            match call.await {
                Ok(Json(shipment)) => {
                    if st.shipment.is_none() {
                        // Only a shipment that exists is cancelled on a later failure.
                        saga.push(Compensation::CancelShipment);
                        ctx.set(SAGA, Json(saga.clone()));
                    }
                    self.parcel_shipped(ctx, st, i, shipment).await?;
                }
                Err(e) if is_cancellation(&e) => return Err(Stop::Interrupted(e)),
                Err(e) => {
                    let reason = e.message().to_owned();
                    self.parcel_failed(ctx, st, i, &reason).await?;
                    failure.get_or_insert(reason);
                }
            }
        }
        Ok(failure)
    }

    /// Parcel `i` is with the carrier: its part of the payment is captured.
    async fn parcel_shipped(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        i: usize,
        shipment: ShipmentInfo,
    ) -> Result<(), TerminalError> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        let parcel = st.parcels[i].clone();
        let split = st.parcels.len() > 1;
        let (carrier, tracking) = (shipment.carrier.clone(), shipment.tracking_number.clone());
        let location = parcel.location.clone();
        ctx.run(|| async move {
            self.db.parcel_shipped(&order_id, &parcel).await?;
            if split {
                let amount = crate::domain::Cents::new(parcel.amount_cents).unwrap_or_default();
                let message = format!(
                    "Order {order_id}: the parcel from {location} shipped with {carrier}, tracking {tracking}; {amount} charged"
                );
                Event::new(&user_id, order_id.as_str(), "parcel_shipped", message)
                    .keyed(&location)
                    .write(&self.db)
                    .await?;
            }
            faults::point("capture_parcel").await;
            Ok(())
        })
        .name(format!("capture_{}", st.parcels[i].location))
        .await?;
        let parcel = &mut st.parcels[i];
        parcel.status = ParcelStatus::InTransit;
        parcel.carrier = Some(shipment.carrier.clone());
        parcel.tracking_number = Some(shipment.tracking_number.clone());
        st.shipment.get_or_insert(shipment);
        ctx.set(STATUS, Json(st.clone()));
        Ok(())
    }

    /// Parcel `i` could not ship: its stock goes back, its part is never charged.
    async fn parcel_failed(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        i: usize,
        reason: &str,
    ) -> Result<(), TerminalError> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        let parcel = st.parcels[i].clone();
        let message = format!(
            "Order {order_id}: the parcel from {} cannot ship ({reason}); its items go back and are not charged",
            parcel.location
        );
        ctx.run(|| async move {
            self.db.parcel_failed(&order_id, &parcel).await?;
            Event::new(&user_id, order_id.as_str(), "parcel_failed", message)
                .keyed(&parcel.location)
                .write(&self.db)
                .await?;
            faults::point("void_parcel").await;
            Ok(())
        })
        .name(format!("void_{}", st.parcels[i].location))
        .await?;
        st.parcels[i].status = ParcelStatus::Failed;
        ctx.set(STATUS, Json(st.clone()));
        Ok(())
    }
}
