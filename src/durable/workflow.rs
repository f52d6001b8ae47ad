//! `OrderFulfillmentWorkflow`: one run per paid order. Waits for an admin's decision
//! (a durable promise), books the shipment (a durable call with retries), waits out the
//! delivery (a durable timer) and, when a step fails for good, undoes what was done
//! (a saga kept in workflow state, unwound last-in first-out).

use std::time::Duration;

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use super::errors::refusal;
use super::notify::{ADMIN, Event};
use super::shipping::{ShipmentInfo, ShipmentRequest, ShippingServiceClient};
use crate::clock::format_duration;
use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::domain::order::steps_for;
use crate::domain::{
    Compensation, CompensationRun, OrderRecord, OrderStatus, Reason, Saga, Step, StepState,
};

/// State keys.
pub const STATUS: &str = "status";
pub const SAGA: &str = "saga";
/// The durable promise an admin resolves.
pub const ADMIN_APPROVAL: &str = "admin_approval";

/// Everything the workflow knows about its order, as `GetStatus` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentStatus {
    pub order_id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub steps: Vec<Step>,
    pub shipment: Option<ShipmentInfo>,
    pub compensations: Vec<CompensationRun>,
    pub failure_reason: Option<String>,
    pub started_at: String,
    pub updated_at: String,
}

/// An admin's decision on the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approved: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RejectRequest {
    pub reason: Option<Reason>,
}

pub struct OrderFulfillmentWorkflow {
    db: Db,
    delivery_delay: Duration,
}

impl OrderFulfillmentWorkflow {
    pub fn new(db: Db, delivery_delay: Duration) -> Self {
        Self { db, delivery_delay }
    }

    /// Moves the order to `status`: journals the time, updates the read model and
    /// writes the notifications, then stores the new state.
    async fn advance(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        status: OrderStatus,
        events: Vec<Event>,
    ) -> Result<(), HandlerError> {
        let before = st.clone();
        let at = ctx
            .run(|| async move {
                let at = now_rfc3339();
                let mut next = before;
                set_status(&mut next, status, &at);
                self.db
                    .record_progress(
                        &next.order_id,
                        status,
                        &next.steps,
                        next.failure_reason.as_deref(),
                    )
                    .await?;
                for e in &events {
                    e.write(&self.db).await?;
                }
                Ok(at)
            })
            .name(format!("enter_{status}"))
            .await?;
        set_status(st, status, &at);
        ctx.set(STATUS, Json(st.clone()));
        Ok(())
    }

    /// The workflow's first steps: its state, the saga (releasing the stock reserved at
    /// checkout is owed from the start), and the order waiting for approval.
    async fn begin(
        &self,
        ctx: &WorkflowContext<'_>,
        order: &OrderRecord,
    ) -> Result<(FulfillmentStatus, Saga), HandlerError> {
        let (order_id, user_id) = (order.order_id.to_string(), order.user_id.clone());
        let started_at = ctx
            .run(|| async { Ok(now_rfc3339()) })
            .name("started_at")
            .await?;
        let mut st = FulfillmentStatus {
            order_id: order_id.clone(),
            user_id: user_id.clone(),
            status: OrderStatus::AwaitingPayment,
            steps: steps_for(OrderStatus::AwaitingPayment),
            shipment: None,
            compensations: Vec::new(),
            failure_reason: None,
            started_at: started_at.clone(),
            updated_at: started_at,
        };
        let mut saga = Saga::default();
        saga.push(Compensation::ReleaseInventory);
        ctx.set(SAGA, Json(saga.clone()));
        let waiting = format!("Order {order_id}: waiting for the store's approval");
        let for_admin = format!(
            "Order {order_id} from {user_id} ({}) needs approval",
            order.total_cents
        );
        let events = vec![
            Event::new(&user_id, &order_id, "approval_needed", waiting),
            Event::new(ADMIN, &order_id, "approval_needed", for_admin),
        ];
        self.advance(ctx, &mut st, OrderStatus::AwaitingApproval, events)
            .await?;
        Ok((st, saga))
    }

    /// Books the shipment through `ShippingService` (which retries the carrier);
    /// `Err(reason)` inside when the booking failed for good.
    async fn ship(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        saga: &mut Saga,
    ) -> Result<Result<(), String>, HandlerError> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        let approved = format!("Order {order_id}: approved, booking the shipment");
        let event = Event::new(&user_id, &order_id, "approved", approved);
        self.advance(ctx, st, OrderStatus::Shipping, vec![event])
            .await?;
        let request = ShipmentRequest {
            order_id: order_id.clone(),
            user_id: user_id.clone(),
        };
        let booked = ctx
            .service_client::<ShippingServiceClient>()
            .initiate_shipment(Json(request))
            .call()
            .await;
        let shipment = match booked {
            Ok(Json(shipment)) => shipment,
            Err(e) => return Ok(Err(e.message().to_owned())),
        };
        // Only a shipment that exists is cancelled on a later failure.
        saga.push(Compensation::CancelShipment);
        ctx.set(SAGA, Json(saga.clone()));
        let message = format!(
            "Order {order_id}: shipment initiated with {}, tracking {}; delivery expected in {}",
            shipment.carrier,
            shipment.tracking_number,
            format_duration(self.delivery_delay)
        );
        st.shipment = Some(shipment);
        let event = Event::new(&user_id, &order_id, "shipment_initiated", message);
        self.advance(ctx, st, OrderStatus::InTransit, vec![event])
            .await?;
        Ok(Ok(()))
    }

    /// The parcel arrived: the stock reservation becomes a sale, nothing is owed back.
    async fn deliver(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        mut saga: Saga,
    ) -> Result<(), HandlerError> {
        let id = st.order_id.clone();
        ctx.run(|| async move { Ok(self.db.sell_reservation(&id).await.map(|_| ())?) })
            .name("complete_sale")
            .await?;
        saga.clear();
        ctx.set(SAGA, Json(saga));
        let delivered = format!("Order {}: delivered", st.order_id);
        let event = Event::new(&st.user_id, &st.order_id, "delivered", delivered);
        self.advance(ctx, st, OrderStatus::Delivered, vec![event])
            .await
    }

    /// Unwinds the saga (last in, first out), records each compensation as it runs,
    /// then ends the order in `status` and the workflow with a terminal error.
    async fn fail(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        mut saga: Saga,
        status: OrderStatus,
        reason: String,
    ) -> Result<Json<FulfillmentStatus>, HandlerError> {
        st.failure_reason = Some(reason.clone());
        while let Some(compensation) = saga.pop() {
            let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
            if compensation == Compensation::CancelShipment {
                ctx.service_client::<ShippingServiceClient>()
                    .cancel_shipment(order_id.clone())
                    .call()
                    .await?;
                if let Some(shipping) = st.steps.iter_mut().find(|s| s.name == "shipping") {
                    shipping.state = StepState::Compensated;
                }
            }
            let name = compensation.name();
            let ran_at = ctx
                .run(|| async move {
                    if compensation == Compensation::ReleaseInventory {
                        self.db.release_reservation(&order_id).await?;
                    }
                    let message = match compensation {
                        Compensation::ReleaseInventory => {
                            format!("Order {order_id}: reserved stock released")
                        }
                        Compensation::CancelShipment => {
                            format!("Order {order_id}: shipment cancelled")
                        }
                    };
                    Event::new(&user_id, &order_id, name, message)
                        .write(&self.db)
                        .await?;
                    let ran_at = now_rfc3339();
                    self.db
                        .record_compensation(&order_id, name, &ran_at)
                        .await?;
                    Ok(ran_at)
                })
                .name(format!("compensate_{name}"))
                .await?;
            st.compensations.push(CompensationRun {
                name: name.to_owned(),
                ran_at,
            });
            ctx.set(SAGA, Json(saga.clone()));
            ctx.set(STATUS, Json(st.clone()));
        }
        let (kind, message) = match status {
            OrderStatus::Rejected => (
                "rejected",
                format!("Order {}: rejected by the store: {reason}", st.order_id),
            ),
            _ => (
                "order_failed",
                format!("Order {}: failed: {reason}", st.order_id),
            ),
        };
        let event = Event::new(&st.user_id, &st.order_id, kind, message);
        self.advance(ctx, st, status, vec![event]).await?;
        Err(TerminalError::new_with_code(409, reason).into())
    }
}

/// Sets the status and updates the checklist, stamping the steps that changed.
fn set_status(st: &mut FulfillmentStatus, status: OrderStatus, at: &str) {
    st.status = status;
    st.updated_at = at.to_owned();
    for (step, next) in st.steps.iter_mut().zip(steps_for(status)) {
        if step.state == StepState::Compensated {
            continue;
        }
        if step.state != next.state {
            step.state = next.state;
            step.at = Some(at.to_owned());
        }
    }
}

#[restate_sdk::workflow]
impl OrderFulfillmentWorkflow {
    /// Runs the order from approval to delivery. Only checkout starts it (after the
    /// payment), never a call through Restate's ingress.
    #[handler(name = "Run", ingress_private)]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        order: Json<OrderRecord>,
    ) -> Result<Json<FulfillmentStatus>, HandlerError> {
        let (mut st, mut saga) = self.begin(&ctx, &order.into_inner()).await?;
        let decision = ctx
            .promise::<Json<Decision>>(ADMIN_APPROVAL)
            .await?
            .into_inner();
        if !decision.approved {
            let reason = decision.reason.unwrap_or_else(|| "no reason given".into());
            return self
                .fail(&ctx, &mut st, saga, OrderStatus::Rejected, reason)
                .await;
        }
        if let Err(reason) = self.ship(&ctx, &mut st, &mut saga).await? {
            return self
                .fail(&ctx, &mut st, saga, OrderStatus::ShippingFailed, reason)
                .await;
        }
        ctx.sleep(self.delivery_delay).await?;
        // Simulation hook: the parcel is lost after it shipped, so the saga has to
        // cancel the shipment before it releases the stock.
        if st.order_id.contains("FAIL_DELIVERY") {
            let reason = "the carrier lost the parcel in transit".to_owned();
            return self
                .fail(&ctx, &mut st, saga, OrderStatus::ShippingFailed, reason)
                .await;
        }
        self.deliver(&ctx, &mut st, saga).await?;
        Ok(Json(st))
    }

    /// An admin approves the order.
    #[handler(name = "Approve")]
    async fn approve(&self, ctx: SharedWorkflowContext<'_>) -> Result<(), HandlerError> {
        self.decide(
            &ctx,
            Decision {
                approved: true,
                reason: None,
            },
        )
        .await
    }

    /// An admin rejects the order, optionally saying why.
    #[handler(name = "Reject")]
    async fn reject(
        &self,
        ctx: SharedWorkflowContext<'_>,
        req: Json<RejectRequest>,
    ) -> Result<(), HandlerError> {
        let reason = req.into_inner().reason.map(String::from);
        self.decide(
            &ctx,
            Decision {
                approved: false,
                reason,
            },
        )
        .await
    }

    /// Where the order is; `null` when no workflow ran for this id.
    #[handler(name = "GetStatus")]
    async fn get_status(
        &self,
        ctx: SharedWorkflowContext<'_>,
    ) -> Result<Json<Option<FulfillmentStatus>>, HandlerError> {
        Ok(Json(
            ctx.get::<Json<FulfillmentStatus>>(STATUS)
                .await?
                .map(Json::into_inner),
        ))
    }
}

impl OrderFulfillmentWorkflow {
    /// Resolves the approval promise once. Reachable through the ingress (the web role
    /// calls it there), so it trusts nothing: the order must be in the read model under
    /// this key and waiting for approval, and undecided. The workflow may not have
    /// started yet (checkout records the payment, then starts it): the promise then
    /// waits for it.
    async fn decide(
        &self,
        ctx: &SharedWorkflowContext<'_>,
        decision: Decision,
    ) -> Result<(), HandlerError> {
        let order_id = ctx.key().to_owned();
        let indexed = ctx
            .run(|| async move { Ok(Json(self.db.order_summary(&order_id).await?)) })
            .name("check_order_index")
            .await?
            .into_inner();
        let Some(indexed) = indexed else {
            return Err(refusal(404, "unknown_order", "no order is known under this id").into());
        };
        let status = match ctx.get::<Json<FulfillmentStatus>>(STATUS).await? {
            Some(Json(st)) if st.user_id != indexed.user_id => {
                return Err(
                    refusal(404, "unknown_order", "no order is known under this id").into(),
                );
            }
            Some(Json(st)) => st.status,
            None => indexed.status,
        };
        if status != OrderStatus::AwaitingApproval {
            return Err(refusal(
                409,
                "not_awaiting_approval",
                format!("the order is {status}"),
            )
            .into());
        }
        if ctx
            .peek_promise::<Json<Decision>>(ADMIN_APPROVAL)
            .await?
            .is_some()
        {
            return Err(refusal(
                409,
                "not_awaiting_approval",
                "the order has already been decided",
            )
            .into());
        }
        ctx.resolve_promise(ADMIN_APPROVAL, Json(decision));
        Ok(())
    }
}
