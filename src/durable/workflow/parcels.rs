//! The parcels of an order on their way: every parcel booked at once (each by its own
//! `ShippingService` call, with its own retries), then each settled: a parcel that
//! shipped is captured, one that failed gives its stock back and its part of the
//! authorization is voided. A one-parcel order settles in the step that puts it in
//! transit; a split order's parcels each in their own step, as their answers come.

use restate_sdk::prelude::*;

use super::{FulfillmentStatus, OrderFulfillmentWorkflow, Stop, is_cancellation};
use crate::clock::format_duration;
use crate::db::orders::Parcel;
use crate::domain::{Compensation, OrderStatus, ParcelStatus, Saga};
use crate::durable::notify::Event;
use crate::durable::shipping::{ShipmentInfo, ShipmentRequest, ShippingServiceClient};
use crate::faults;

/// A parcel and how its booking was answered: the shipment, or why it was refused.
type Answer = (Parcel, Result<ShipmentInfo, String>);

impl OrderFulfillmentWorkflow {
    /// Books every parcel through `ShippingService` at once (each booking its own
    /// invocation with its own retries) and settles each: a parcel that shipped is
    /// captured, one that failed is released and voided. A one-parcel order settles its
    /// parcel in the step that puts it in transit; a split order settles each parcel in
    /// a step of its own as its answer comes (captured as it ships). The order goes on
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
        let split = st.parcels.len() > 1;
        let answers = self.book_parcels(ctx, st, saga, split).await?;
        self.parcels_settled(st, &answers);
        st.saga = saga.clone();
        let shipped = answers.iter().filter(|(_, a)| a.is_ok()).count();
        let Some(first) = answers.iter().find_map(|(_, a)| a.clone().ok()) else {
            if !split {
                let settled = self.settled(st, answers.clone());
                ctx.run(|| settled).name("void_parcels").await?;
            }
            let reason = answers.into_iter().find_map(|(_, a)| a.err());
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
        // A split order's parcels are settled already, each in its own step.
        let settled = self.settled(st, if split { Vec::new() } else { answers });
        self.advance_after(ctx, st, OrderStatus::InTransit, vec![event], settled)
            .await?;
        Ok(())
    }

    /// Sends every parcel's booking at once and takes the answers in turn (a refusal
    /// is the reason it gives); `settle_each` settles each parcel in a step of its own
    /// as its answer comes. Once a parcel is booked the saga cancels the shipment on a
    /// later failure; so it does when an operator's cancellation arrives while bookings
    /// are out (the cancellation is idempotent and cancels nothing never booked).
    async fn book_parcels(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &FulfillmentStatus,
        saga: &mut Saga,
        settle_each: bool,
    ) -> Result<Vec<Answer>, Stop> {
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
        for (call, parcel) in calls.into_iter().zip(&st.parcels) {
            let answer = match call.await {
                Ok(Json(shipment)) => {
                    saga.push(Compensation::CancelShipment);
                    Ok(shipment)
                }
                Err(e) if is_cancellation(&e) => {
                    saga.push(Compensation::CancelShipment);
                    return Err(Stop::Interrupted(e));
                }
                Err(e) => Err(e.message().to_owned()),
            };
            let answer = (parcel.clone(), answer);
            if settle_each {
                let name = match &answer.1 {
                    Ok(_) => format!("capture_{}", parcel.location),
                    Err(_) => format!("void_{}", parcel.location),
                };
                let settled = self.settled(st, vec![answer.clone()]);
                ctx.run(|| settled).name(name).await?;
            }
            answers.push(answer);
        }
        Ok(answers)
    }

    /// The settlement of `answers`, as one piece of work: a parcel that shipped is
    /// captured (and, in a split order, its customer told), one that failed gives its
    /// stock back and its part of the authorization is voided. Each is idempotent.
    fn settled<'a>(
        &'a self,
        st: &FulfillmentStatus,
        answers: Vec<Answer>,
    ) -> impl std::future::Future<Output = Result<(), HandlerError>> + Send + use<'a> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        let split = st.parcels.len() > 1;
        async move {
            for (parcel, answer) in answers {
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

    /// The workflow's own record of its parcels once their answers are in.
    fn parcels_settled(&self, st: &mut FulfillmentStatus, answers: &[Answer]) {
        for (parcel, (_, answer)) in st.parcels.iter_mut().zip(answers) {
            match answer {
                Ok(shipment) => {
                    parcel.status = ParcelStatus::InTransit;
                    parcel.carrier = Some(shipment.carrier.clone());
                    parcel.tracking_number = Some(shipment.tracking_number.clone());
                    st.shipment.get_or_insert(shipment.clone());
                }
                Err(_) => parcel.status = ParcelStatus::Failed,
            }
        }
    }
}
