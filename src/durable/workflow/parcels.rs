//! The parcels of an order on their way: every parcel booked at once (each by its own
//! `ShippingService` call, with its own retries), then all settled in the step that
//! puts the order in transit: a parcel that shipped is captured, one that failed gives
//! its stock back and its part of the authorization is voided.

use restate_sdk::prelude::*;

use super::{FulfillmentStatus, OrderFulfillmentWorkflow, Stop, is_cancellation};
use crate::clock::format_duration;
use crate::domain::{Compensation, OrderStatus, ParcelStatus, Saga};
use crate::durable::notify::Event;
use crate::durable::shipping::{ShipmentInfo, ShipmentRequest, ShippingServiceClient};
use crate::faults;

impl OrderFulfillmentWorkflow {
    /// Books every parcel through `ShippingService` at once (each booking its own
    /// invocation with its own retries), then settles them in one step: a parcel that
    /// shipped is captured, one that failed is released and voided. The order goes on
    /// when at least one shipped.
    pub(super) async fn ship(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        saga: &mut Saga,
    ) -> Result<(), Stop> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        let approved = format!("Order {order_id}: approved, booking the shipment");
        let event = Event::new(&user_id, order_id.as_str(), "approved", approved);
        let id = order_id.clone();
        let parcels = async move {
            let parcels = self.db.start_parcels(&id).await?;
            faults::point("start_parcels").await;
            Ok(parcels)
        };
        st.parcels = self
            .advance_after(ctx, st, OrderStatus::Shipping, vec![event], parcels)
            .await?;
        let answers = self.book_parcels(ctx, st, saga).await?;
        let shipped = answers.iter().filter(|a| a.is_ok()).count();
        let Some(Ok(first)) = answers.iter().find(|a| a.is_ok()).cloned() else {
            let reason = answers.iter().find_map(|a| a.clone().err());
            self.settle_parcels(ctx, st, answers).await?;
            let reason = reason.unwrap_or_else(|| "the order has no parcels".into());
            return Err(Stop::Ends(OrderStatus::ShippingFailed, reason));
        };
        let what = match shipped {
            1 => "shipment initiated".to_owned(),
            n => format!("{n} parcels shipped, the first"),
        };
        let message = format!(
            "Order {order_id}: {what} with {}, tracking {}; delivery expected in {}",
            first.carrier,
            first.tracking_number,
            format_duration(self.delivery_delay)
        );
        let event = Event::new(&user_id, order_id.as_str(), "shipment_initiated", message)
            .with("carrier", first.carrier.clone())
            .with("tracking_number", first.tracking_number.clone());
        let settled = self.settled(st, &answers);
        self.parcels_settled(st, answers);
        st.saga = saga.clone();
        self.advance_after(ctx, st, OrderStatus::InTransit, vec![event], settled)
            .await?;
        Ok(())
    }

    /// Sends every parcel's booking at once and waits for all the answers (a refusal
    /// is the reason it gives). Once a parcel is booked the saga cancels the shipment
    /// on a later failure, also when an operator's cancellation arrives meanwhile.
    async fn book_parcels(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &FulfillmentStatus,
        saga: &mut Saga,
    ) -> Result<Vec<Result<ShipmentInfo, String>>, Stop> {
        let calls: Vec<_> = st
            .parcels
            .iter()
            .map(|p| {
                let request = ShipmentRequest {
                    order_id: st.order_id.clone(),
                    user_id: st.user_id.clone(),
                    shipment_id: Some(p.shipment_id.clone()),
                    location: Some(p.location.clone()),
                };
                ctx.service_client::<ShippingServiceClient>()
                    .initiate_shipment(Json(request))
                    .call()
            })
            .collect();
        let mut answers = Vec::with_capacity(calls.len());
        for call in calls {
            match call.await {
                Ok(Json(shipment)) => {
                    // Only a shipment that exists is cancelled on a later failure.
                    saga.push(Compensation::CancelShipment);
                    answers.push(Ok(shipment));
                }
                Err(e) if is_cancellation(&e) => return Err(Stop::Interrupted(e)),
                Err(e) => answers.push(Err(e.message().to_owned())),
            }
        }
        Ok(answers)
    }

    /// Every parcel's settlement, as one piece of work: a parcel that shipped is
    /// captured (and, in a split order, its customer told), one that failed gives its
    /// stock back and its part of the authorization is voided. Each is idempotent.
    fn settled<'a>(
        &'a self,
        st: &FulfillmentStatus,
        answers: &[Result<ShipmentInfo, String>],
    ) -> impl std::future::Future<Output = Result<(), HandlerError>> + Send + use<'a> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        let split = st.parcels.len() > 1;
        let work: Vec<_> = st.parcels.iter().cloned().zip(answers.to_vec()).collect();
        async move {
            for (parcel, answer) in work {
                let event = match &answer {
                    Ok(shipped) => {
                        self.db.parcel_shipped(&order_id, &parcel).await?;
                        faults::point("capture_parcel").await;
                        let amount =
                            crate::domain::Cents::new(parcel.amount_cents).unwrap_or_default();
                        let message = format!(
                            "Order {order_id}: the parcel from {} shipped with {}, tracking {}; {amount} charged",
                            parcel.location, shipped.carrier, shipped.tracking_number
                        );
                        split.then(|| {
                            Event::new(&user_id, order_id.as_str(), "parcel_shipped", message)
                        })
                    }
                    Err(reason) => {
                        self.db.parcel_failed(&order_id, &parcel).await?;
                        faults::point("void_parcel").await;
                        let message = format!(
                            "Order {order_id}: the parcel from {} cannot ship ({reason}); its items go back and are not charged",
                            parcel.location
                        );
                        Some(Event::new(
                            &user_id,
                            order_id.as_str(),
                            "parcel_failed",
                            message,
                        ))
                    }
                };
                if let Some(event) = event {
                    event.keyed(&parcel.location).write(&self.db).await?;
                }
            }
            Ok(())
        }
    }

    /// No parcel shipped: each is settled (released and voided) in a step of its own,
    /// before the saga unwinds.
    async fn settle_parcels(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        answers: Vec<Result<ShipmentInfo, String>>,
    ) -> Result<(), TerminalError> {
        let settled = self.settled(st, &answers);
        ctx.run(|| settled).name("void_parcels").await?;
        self.parcels_settled(st, answers);
        Ok(())
    }

    /// The workflow's own record of its parcels after their settlement.
    fn parcels_settled(
        &self,
        st: &mut FulfillmentStatus,
        answers: Vec<Result<ShipmentInfo, String>>,
    ) {
        for (parcel, answer) in st.parcels.iter_mut().zip(answers) {
            match answer {
                Ok(shipment) => {
                    parcel.status = ParcelStatus::InTransit;
                    parcel.carrier = Some(shipment.carrier.clone());
                    parcel.tracking_number = Some(shipment.tracking_number.clone());
                    st.shipment.get_or_insert(shipment);
                }
                Err(_) => parcel.status = ParcelStatus::Failed,
            }
        }
    }
}
