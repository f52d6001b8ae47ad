//! The delivery: once the timer has run, the parcels in transit arrive and their
//! reservations become a sale; an operator's cancellation that arrives while the sale
//! is being recorded is too late once it is recorded.

use restate_sdk::prelude::*;

use super::{FulfillmentStatus, OrderFulfillmentWorkflow, is_cancellation};
use crate::domain::{OrderId, OrderStatus, ParcelStatus, Saga};
use crate::durable::notify::Event;
use crate::faults;

impl OrderFulfillmentWorkflow {
    /// The parcels in transit arrived: their reservations become a sale, nothing is
    /// owed back. Some parcels failed: the order is `partially_delivered`.
    pub(super) async fn deliver(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        saga: &mut Saga,
    ) -> Result<(), TerminalError> {
        // Nothing is owed back once the sale is recorded: the saga is cleared after the
        // step, so a cancellation that stops the step still unwinds it (the status the
        // step stores shows it cleared).
        st.saga = Saga::default();
        let in_transit = st.parcels.clone();
        let failed = st
            .parcels
            .iter()
            .filter(|p| p.status == ParcelStatus::Failed)
            .count();
        for parcel in st.parcels.iter_mut() {
            if parcel.status == ParcelStatus::InTransit {
                parcel.status = ParcelStatus::Delivered;
            }
        }
        let (status, delivered) = match failed {
            0 => (
                OrderStatus::Delivered,
                format!("Order {}: delivered", st.order_id),
            ),
            n => (
                OrderStatus::PartiallyDelivered,
                format!(
                    "Order {}: delivered, except {n} parcel(s) that could not ship (never charged)",
                    st.order_id
                ),
            ),
        };
        let event = Event::new(&st.user_id, st.order_id.as_str(), "delivered", delivered);
        if let Err(e) = self.record_sale(ctx, st, status, event).await {
            // Not delivered after all: the parcels as they were (the saga goes on).
            st.parcels = in_transit;
            return Err(e);
        }
        saga.clear();
        Ok(())
    }

    /// The step that turns the reservations into a sale and the order `status`. An
    /// operator's cancellation that arrives while the sale is being recorded comes too
    /// late once it is recorded: the step is done again (each part is idempotent) and
    /// the order is delivered. Before that, the reservations are released in the check
    /// (so an attempt still under way sells nothing), the cancellation stands and the
    /// saga unwinds. Each cancellation is delivered once: a second one, surfacing at the
    /// check or at the step done again, is checked the same way.
    async fn record_sale(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        status: OrderStatus,
        event: Event,
    ) -> Result<(), TerminalError> {
        let id = st.order_id.clone();
        let sold = |id: OrderId| async move {
            self.db.sell_reservation(&id).await?;
            faults::point("complete_sale").await;
            Ok(())
        };
        let mut outcome = self
            .advance_after(ctx, st, status, vec![event.clone()], sold(id.clone()))
            .await;
        loop {
            let cancelled = match outcome {
                Err(e) if is_cancellation(&e) => e,
                done => return done,
            };
            let of = id.clone();
            let check = ctx
                .run(|| async move { Ok(self.db.sale_recorded_or_released(&of).await?) })
                .name("sale_recorded")
                .await;
            outcome = match check {
                Ok(true) => {
                    let again = sold(id.clone());
                    self.advance_after(ctx, st, status, vec![event.clone()], again)
                        .await
                }
                Ok(false) => return Err(cancelled),
                Err(e) if is_cancellation(&e) => Err(e),
                Err(e) => return Err(e),
            };
        }
    }
}
