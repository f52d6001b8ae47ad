//! `OrderFulfillmentWorkflow`: one run per paid order. Waits for a decision (a durable
//! promise: the admin approves or rejects, or the customer cancels), books the shipment
//! (a durable call with retries), waits out the delivery (a durable timer) and, when the
//! order ends without delivery, undoes what was done (a saga kept in workflow state,
//! unwound last-in first-out: cancel the shipment, refund the payment, release the
//! stock). An operator's cancellation in Restate ends it the same way.

use std::time::Duration;

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

mod delivery;
mod parcels;

use super::errors::refusal;
use super::notify::Event;
use super::shipping::{ShipmentInfo, ShippingServiceClient};
use crate::clock::now_rfc3339;
use crate::db::Db;
use crate::db::orders::{DecisionClaim, Parcel};
use crate::domain::order::steps_for;
use crate::domain::{
    Compensation, CompensationRun, OrderId, OrderRecord, OrderStatus, ParcelStatus, Reason, Saga,
    Step, StepState,
};
use crate::faults;

/// State keys.
pub const STATUS: &str = "status";
/// The durable promise a decision resolves.
pub const ADMIN_APPROVAL: &str = "admin_approval";

/// Everything the workflow knows about its order, as `GetStatus` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentStatus {
    pub order_id: OrderId,
    pub user_id: String,
    pub status: OrderStatus,
    pub steps: Vec<Step>,
    pub shipment: Option<ShipmentInfo>,
    /// The order's parcels, one per location it ships from.
    #[serde(default)]
    pub parcels: Vec<Parcel>,
    pub compensations: Vec<CompensationRun>,
    /// What is owed back if the order ends without delivery, last in first out.
    #[serde(default)]
    pub saga: Saga,
    pub failure_reason: Option<String>,
    pub started_at: String,
    pub updated_at: String,
}

impl FulfillmentStatus {
    /// The state of an order that was just paid for.
    fn new(order: &OrderRecord) -> Self {
        FulfillmentStatus {
            order_id: order.order_id.clone(),
            user_id: order.user_id.clone(),
            status: OrderStatus::AwaitingPayment,
            steps: steps_for(OrderStatus::AwaitingPayment),
            shipment: None,
            parcels: Vec::new(),
            compensations: Vec::new(),
            saga: Saga::default(),
            failure_reason: None,
            started_at: order.created_at.clone(),
            updated_at: order.created_at.clone(),
        }
    }
}

/// The one decision an order waiting for approval gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject { reason: Option<String> },
    Cancel { reason: String },
}

impl Decision {
    /// How the read model records it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Reject { .. } => "rejected",
            Decision::Cancel { .. } => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RejectRequest {
    pub reason: Option<Reason>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelRequest {
    pub reason: Reason,
}

/// Why the way to delivery stopped.
enum Stop {
    /// The order ends in this status, for this reason: the saga unwinds.
    Ends(OrderStatus, String),
    /// A durable operation failed; an operator's cancellation also arrives this way.
    Interrupted(TerminalError),
}

impl From<TerminalError> for Stop {
    fn from(e: TerminalError) -> Stop {
        Stop::Interrupted(e)
    }
}

/// How the SDK reports an operator's cancellation of the invocation.
pub fn is_cancellation(e: &TerminalError) -> bool {
    e.code() == 409 && e.message() == "cancelled"
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
    /// writes the notifications, then stores the new state (with the saga).
    async fn advance(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        status: OrderStatus,
        events: Vec<Event>,
    ) -> Result<(), TerminalError> {
        self.advance_after(ctx, st, status, events, async { Ok(()) })
            .await
    }

    /// As [`Self::advance`], with `work` (the step's own database work, idempotent)
    /// done first in the same journaled step: one entry in the journal for what the
    /// step did and the status it reached. Answers what `work` answered.
    async fn advance_after<T, W>(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        status: OrderStatus,
        events: Vec<Event>,
        work: W,
    ) -> Result<T, TerminalError>
    where
        T: Serialize + serde::de::DeserializeOwned + Send + 'static,
        W: std::future::Future<Output = Result<T, HandlerError>> + Send,
    {
        let before = st.clone();
        let (at, done) = ctx
            .run(|| async move {
                let done = work.await?;
                let at = now_rfc3339();
                let mut next = before;
                set_status(&mut next, status, &at);
                let reason = next.failure_reason.as_deref();
                self.db
                    .record_progress(&next.order_id, status, &next.steps, reason)
                    .await?;
                for e in &events {
                    e.write(&self.db).await?;
                }
                faults::point(&format!("enter_{status}")).await;
                Ok(Json((at, done)))
            })
            .name(format!("enter_{status}"))
            .await?
            .into_inner();
        set_status(st, status, &at);
        ctx.set(STATUS, Json(st.clone()));
        Ok(done)
    }

    /// The workflow's first steps: its start time, the saga (the stock reserved and
    /// the payment captured at checkout are owed back from the start), and the order
    /// waiting for a decision.
    async fn begin(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        saga: &Saga,
        total: crate::domain::Cents,
    ) -> Result<(), TerminalError> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        if super::extra_step() {
            let build = crate::build::id();
            ctx.run(|| async { Ok(build.to_owned()) })
                .name("next_release_step")
                .await?;
        }
        st.saga = saga.clone();
        let waiting = format!("Order {order_id}: waiting for the store's approval");
        let for_admin = format!("Order {order_id} from {user_id} ({total}) needs approval");
        let events = vec![
            Event::new(&user_id, order_id.as_str(), "approval_needed", waiting),
            Event::for_staff(order_id.as_str(), "approval_needed", for_admin),
        ];
        // The durable-steps pane finds the workflow by its id, recorded with the status.
        let run = ctx.invocation_id().to_owned();
        let recorded = async {
            self.db.record_invocation(&order_id, &run).await?;
            Ok(())
        };
        self.advance_after(ctx, st, OrderStatus::AwaitingApproval, events, recorded)
            .await
    }

    /// From the decision to the delivery; `Err` when the order ends otherwise.
    async fn fulfil(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        saga: &mut Saga,
    ) -> Result<(), Stop> {
        let decision = ctx
            .promise::<Json<Decision>>(ADMIN_APPROVAL)
            .await?
            .into_inner();
        match decision {
            Decision::Approve => {}
            Decision::Reject { reason } => {
                let reason = reason.unwrap_or_else(|| "no reason given".into());
                return Err(Stop::Ends(OrderStatus::Rejected, reason));
            }
            Decision::Cancel { reason } => return Err(Stop::Ends(OrderStatus::Cancelled, reason)),
        }
        self.ship(ctx, st, saga).await?;
        ctx.sleep(self.delivery_delay).await?;
        // Simulation hook: the parcel is lost after it shipped, so the saga has to
        // cancel the shipment before it refunds and releases the stock.
        if st.order_id.as_str().contains("FAIL_DELIVERY") {
            let reason = "the carrier lost the parcel in transit".to_owned();
            return Err(Stop::Ends(OrderStatus::ShippingFailed, reason));
        }
        self.deliver(ctx, st, saga).await?;
        Ok(())
    }

    /// Runs one compensation in its own named `ctx.run` (the shipment's cancellation
    /// through a durable call first) and records it; returns when it ran.
    async fn compensate(
        &self,
        ctx: &WorkflowContext<'_>,
        st: &mut FulfillmentStatus,
        compensation: Compensation,
    ) -> Result<String, TerminalError> {
        let (order_id, user_id) = (st.order_id.clone(), st.user_id.clone());
        let why = st.failure_reason.clone().unwrap_or_default();
        if compensation == Compensation::CancelShipment {
            ctx.service_client::<ShippingServiceClient>()
                .cancel_shipment(order_id.to_string())
                .call()
                .await?;
            if let Some(shipping) = st.steps.iter_mut().find(|s| s.name == "shipping") {
                shipping.state = StepState::Compensated;
            }
        }
        // The parcels as the compensation leaves them (as the read model records).
        let undone: &[ParcelStatus] = match compensation {
            Compensation::CancelShipment => &[ParcelStatus::Shipping, ParcelStatus::InTransit],
            Compensation::ReleaseInventory => &[ParcelStatus::Pending, ParcelStatus::Shipping],
            Compensation::RefundPayment => &[],
        };
        for parcel in st.parcels.iter_mut().filter(|p| undone.contains(&p.status)) {
            parcel.status = ParcelStatus::Failed;
        }
        let name = compensation.name();
        ctx.run(|| async move {
            let mut refunded = None;
            let message = match compensation {
                Compensation::ReleaseInventory => {
                    self.db.release_reservation(&order_id, None).await?;
                    format!("Order {order_id}: reserved stock released")
                }
                Compensation::RefundPayment => {
                    let (cents, voided) = self.db.give_back_payment(&order_id, &why).await?;
                    refunded = Some(cents);
                    payment_given_back(&order_id, cents, voided)
                }
                Compensation::CancelShipment => format!("Order {order_id}: shipment cancelled"),
            };
            let mut event = Event::new(&user_id, order_id.as_str(), name, message);
            if let Some(cents) = refunded {
                event = event.with("amount_cents", cents);
            }
            event.write(&self.db).await?;
            let ran_at = now_rfc3339();
            self.db
                .record_compensation(&order_id, name, &ran_at)
                .await?;
            faults::point(&format!("compensate_{name}")).await;
            Ok(ran_at)
        })
        .name(format!("compensate_{name}"))
        .await
    }

    /// Unwinds the saga (last in, first out), recording each compensation as it runs,
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
            let ran_at = self.compensate(ctx, st, compensation).await?;
            st.compensations.push(CompensationRun {
                name: compensation.name().to_owned(),
                ran_at,
            });
            st.saga = saga.clone();
            ctx.set(STATUS, Json(st.clone()));
        }
        let id = &st.order_id;
        let (kind, message) = match status {
            OrderStatus::Rejected => (
                "rejected",
                format!("Order {id}: rejected by the store: {reason}"),
            ),
            OrderStatus::Cancelled => ("cancelled", format!("Order {id}: cancelled: {reason}")),
            _ => ("order_failed", format!("Order {id}: failed: {reason}")),
        };
        let event = Event::new(&st.user_id, st.order_id.as_str(), kind, message)
            .with("reason", reason.clone());
        self.advance(ctx, st, status, vec![event]).await?;
        Err(TerminalError::new_with_code(409, reason).into())
    }

    /// Resolves the decision promise once. Reachable through the ingress (the web role
    /// calls it there), so it trusts nothing: the read model must know the order, and
    /// of racing decisions exactly one wins the read model's conditional update; the
    /// others are refused. The workflow may not have started yet (checkout records the
    /// payment, then starts it): the promise then waits for it.
    async fn decide(
        &self,
        ctx: &SharedWorkflowContext<'_>,
        decision: Decision,
    ) -> Result<(), HandlerError> {
        let what = decision.as_str();
        let Ok(order_id) = OrderId::parse(ctx.key()) else {
            let unknown = refusal(404, "unknown_order", "no order is known under this id");
            return Err(unknown.into());
        };
        let by = ctx.invocation_id().to_owned();
        // Who asked, as the web role says (part of the invocation, so the same on replay).
        let actor = ctx
            .headers()
            .get(super::ACTOR_HEADER)
            .and_then(|v| crate::domain::Username::parse(v).ok());
        let claim = ctx
            .run(|| async move {
                let actor = actor.as_ref().map(|u| u.as_str());
                let claim = self.db.claim_decision(&order_id, what, &by, actor).await?;
                faults::point("claim_decision").await;
                Ok(Json(claim))
            })
            .name(format!("claim_{what}"))
            .await?
            .into_inner();
        let refused = match claim {
            DecisionClaim::Won => {
                ctx.resolve_promise(ADMIN_APPROVAL, Json(decision));
                return Ok(());
            }
            DecisionClaim::Unknown => {
                refusal(404, "unknown_order", "no order is known under this id")
            }
            DecisionClaim::Taken { status, decision } => {
                let code = match what {
                    "cancelled" => "too_late",
                    _ => "not_awaiting_approval",
                };
                let why = match decision {
                    Some(taken) => format!("the order is {status}: already {taken}"),
                    None => format!("the order is {status}"),
                };
                refusal(409, code, why)
            }
        };
        Err(refused.into())
    }
}

/// What a customer is told when the order's money goes back: a refund of what was
/// captured, and the authorization's rest voided (never charged).
pub fn payment_given_back(order_id: &OrderId, refunded: i64, voided: i64) -> String {
    let money = |c: i64| crate::domain::Cents::new(c).unwrap_or_default();
    match (refunded, voided) {
        (0, 0) => format!("Order {order_id}: no payment to give back"),
        (0, v) => format!(
            "Order {order_id}: nothing was charged; {} released",
            money(v)
        ),
        (r, 0) => format!("Order {order_id}: payment of {} refunded", money(r)),
        (r, v) => format!(
            "Order {order_id}: {} refunded, {} never charged",
            money(r),
            money(v)
        ),
    }
}

/// Sets the status and updates the checklist, stamping the steps that changed. A
/// cancellation marks the step the order stood at as failed and leaves the rest.
fn set_status(st: &mut FulfillmentStatus, status: OrderStatus, at: &str) {
    st.status = status;
    st.updated_at = at.to_owned();
    if status == OrderStatus::AwaitingApproval {
        // The workflow's first step.
        st.started_at = at.to_owned();
    }
    if status == OrderStatus::Cancelled {
        for step in st.steps.iter_mut().filter(|s| s.state == StepState::Active) {
            step.state = StepState::Failed;
            step.at = Some(at.to_owned());
        }
        return;
    }
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
    /// Runs the order from its decision to delivery. Only checkout starts it (after the
    /// payment), never a call through Restate's ingress.
    #[handler(name = "Run", ingress_private)]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        order: Json<OrderRecord>,
    ) -> Result<Json<FulfillmentStatus>, HandlerError> {
        let order = order.into_inner();
        let mut st = FulfillmentStatus::new(&order);
        // The stock was reserved and the payment captured at checkout: both are owed
        // back from the start (refunded first, then released).
        let mut saga = Saga::default();
        saga.push(Compensation::ReleaseInventory);
        saga.push(Compensation::RefundPayment);
        let outcome = match self.begin(&ctx, &mut st, &saga, order.total_cents).await {
            Ok(()) => self.fulfil(&ctx, &mut st, &mut saga).await,
            Err(e) => Err(Stop::Interrupted(e)),
        };
        match outcome {
            Ok(()) => Ok(Json(st)),
            Err(Stop::Ends(status, reason)) => self.fail(&ctx, &mut st, saga, status, reason).await,
            Err(Stop::Interrupted(e)) if is_cancellation(&e) => {
                let reason = "cancelled by an operator in Restate".to_owned();
                self.fail(&ctx, &mut st, saga, OrderStatus::Cancelled, reason)
                    .await
            }
            Err(Stop::Interrupted(e)) => Err(e.into()),
        }
    }

    /// An admin approves the order.
    #[handler(name = "Approve")]
    async fn approve(&self, ctx: SharedWorkflowContext<'_>) -> Result<(), HandlerError> {
        self.decide(&ctx, Decision::Approve).await
    }

    /// An admin rejects the order, optionally saying why.
    #[handler(name = "Reject")]
    async fn reject(
        &self,
        ctx: SharedWorkflowContext<'_>,
        req: Json<RejectRequest>,
    ) -> Result<(), HandlerError> {
        let reason = req.into_inner().reason.map(String::from);
        self.decide(&ctx, Decision::Reject { reason }).await
    }

    /// The customer (or an admin) cancels the order before it ships.
    #[handler(name = "Cancel")]
    async fn cancel(
        &self,
        ctx: SharedWorkflowContext<'_>,
        req: Json<CancelRequest>,
    ) -> Result<(), HandlerError> {
        let reason = req.into_inner().reason.into();
        self.decide(&ctx, Decision::Cancel { reason }).await
    }

    /// Where the order is; `null` when no workflow ran for this id.
    #[handler(
        name = "GetStatus",
        journal_retention = "0s",
        idempotency_retention = "0s"
    )]
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
