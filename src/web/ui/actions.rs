//! The page's actions. Each calls the same function as the JSON API, then answers
//! with datastar events: a status line saying what happened (or why not) and every
//! pane re-rendered for the page's new selection. A refusal the page can run into
//! (out of stock, a settled payment) is shown on the page with 200; a request the page
//! never makes (malformed, not signed in, not allowed, naming what the user may not
//! see) gets its 4xx error JSON and changes nothing.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::pages::{PageId, Selection, View};
use super::{UiSignals, views};
use crate::auth::unix_now;
use crate::domain::{OrderId, OrderStatus, ProductRef, Quantity, Reason, ShippingAddress};
use crate::durable::notify::ADMIN;
use crate::web::AppState;
use crate::web::cart;
use crate::web::datastar::{self, MergeMode};
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::CurrentUser;
use crate::web::orders;
use crate::web::payment;

/// How long the crash drill waits for the supervisor's new endpoint.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(30);

/// The answer to an action: the outcome in the status line, the panes for `selection`
/// (which the page's stream follows from now on) and signals to set, the selection
/// among them.
async fn answer(
    state: &AppState,
    user: &CurrentUser,
    page: &PageId,
    selection: Selection,
    outcome: ApiResult<String>,
    signals: Option<Value>,
) -> ApiResult<Response> {
    let outcome = match outcome {
        Err(e) if matches!(e.status().as_u16(), 401 | 403 | 404) => return Err(e),
        other => other,
    };
    state.pages.select(page, user.username(), selection.clone());
    let panes = views::render(state, Some(user), &selection).await?;
    let flash = match &outcome {
        Ok(message) => views::flash(message, false)?,
        Err(e) => views::flash(e.message(), true)?,
    };
    let mut events = datastar::merge_fragments(&flash, None, MergeMode::Morph, None);
    events.push_str(&panes.events());
    // The page remembers what it shows, for a server that restarts meanwhile.
    let mut signals = signals.unwrap_or_else(|| json!({}));
    signals["view"] = json!(selection.view.as_str());
    signals["order"] = json!(selection.order.as_deref().unwrap_or(""));
    events.push_str(&datastar::merge_signals(&signals));
    Ok(datastar::sse_response(events))
}

/// What the page shows now (the dashboard for a page this server does not know).
fn current(state: &AppState, user: &CurrentUser, page: &PageId) -> Selection {
    state
        .pages
        .selection(page, user.username())
        .unwrap_or_default()
}

pub async fn show_view(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(view): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let view = View::parse(&view)?;
    let mut selection = current(&state, &user, &page);
    if view == View::Admin && !user.0.is_admin() {
        let refused = ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the Admin view needs the admin role",
        );
        return answer(&state, &user, &page, selection, Err(refused), None).await;
    }
    selection.view = view;
    // Open the tab where the view's work happens: forms for shopping and deciding,
    // the read-outs for the dashboard and orders.
    let tab = match view {
        View::Products | View::Cart | View::Admin => "input",
        View::Dashboard | View::Orders => "output",
    };
    let signals = json!({"tab": tab});
    answer(
        &state,
        &user,
        &page,
        selection,
        Ok(String::new()),
        Some(signals),
    )
    .await
}

pub async fn show_order(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let mut selection = current(&state, &user, &page);
    // The index says whether the user may see it; the panes load the order itself.
    let outcome = match orders::visible_order(&state, &user, &id).await {
        Ok((order_id, _)) => {
            if selection.view != View::Admin {
                selection.view = View::Orders;
            }
            selection.order = Some(order_id.to_string());
            Ok(String::new())
        }
        Err(e) => Err(e),
    };
    let tab = json!({"tab": "output"});
    answer(&state, &user, &page, selection, outcome, Some(tab)).await
}

/// The quantity the page's `qty.<sku>` signal holds for a product.
fn quantity(signals: &super::Signals, product: &str) -> ApiResult<Quantity> {
    let invalid = || ApiError::bad_request("invalid_quantity", "quantity must be 1-99");
    let n = match signals.qty.get(product) {
        None => 1,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(invalid)?,
        Some(Value::String(s)) => s.trim().parse().map_err(|_| invalid())?,
        Some(_) => return Err(invalid()),
    };
    Quantity::new(n).map_err(|_| invalid())
}

fn product_ref(product: &str) -> ApiResult<ProductRef> {
    ProductRef::parse(product).map_err(|e| ApiError::bad_request("invalid_product_id", e))
}

pub async fn add_to_cart(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(product): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let outcome = async {
        let quantity = quantity(&signals, &product)?;
        let cart = cart::add_item(&state, &user, &product_ref(&product)?, quantity).await?;
        let name = cart
            .items
            .iter()
            .find(|i| i.sku == product)
            .map_or(product.as_str(), |i| i.name.as_str());
        Ok(format!(
            "Added {} × {name}; the cart holds {}.",
            quantity.get(),
            cart.total_cents
        ))
    }
    .await;
    let selection = Selection {
        view: View::Products,
        ..current(&state, &user, &page)
    };
    let reset = json!({"qty": {product.clone(): 1}});
    answer(&state, &user, &page, selection, outcome, Some(reset)).await
}

pub async fn remove_from_cart(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(product): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let outcome = async {
        let cart = cart::remove_item(&state, &user, &product_ref(&product)?).await?;
        Ok(format!(
            "Removed {product}; the cart holds {}.",
            cart.total_cents
        ))
    }
    .await;
    let selection = Selection {
        view: View::Cart,
        ..current(&state, &user, &page)
    };
    answer(&state, &user, &page, selection, outcome, None).await
}

pub async fn checkout(
    State(state): State<AppState>,
    user: CurrentUser,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let placed = async {
        let address = ShippingAddress::parse(&signals.address)
            .map_err(|e| ApiError::bad_request("invalid_shipping_address", e))?;
        let order_id = orders::new_order_id(user.username(), None);
        orders::place_order(&state, &user, order_id, None, address).await
    }
    .await;
    match placed {
        Ok(reply) => {
            let selection = Selection {
                view: View::Orders,
                order: Some(reply.order_id.clone()),
            };
            let message = if reply.status == OrderStatus::AwaitingPayment {
                format!(
                    "Order {} placed. Pay for it at the payment gateway below.",
                    reply.order_id
                )
            } else {
                format!("Order {} is {}.", reply.order_id, reply.status.label())
            };
            let signals = json!({"tab": "input", "address": ""});
            answer(&state, &user, &page, selection, Ok(message), Some(signals)).await
        }
        Err(e) => {
            let selection = Selection {
                view: View::Cart,
                ..current(&state, &user, &page)
            };
            answer(&state, &user, &page, selection, Err(e), None).await
        }
    }
}

/// The simulated payment gateway: posts to our own callback route exactly as a real
/// gateway would, signed with the webhook secret. Only the order's owner pays for it.
async fn gateway(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    decline: Option<Reason>,
) -> ApiResult<String> {
    let (order_id, summary) = orders::visible_order(state, user, id).await?;
    if summary.user_id != user.username() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_order",
            format!("only the customer who placed order {order_id} pays for it"),
        ));
    }
    let payment = state
        .db
        .payment_by_order(order_id.as_str())
        .await?
        .filter(|p| p.state == "pending")
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "payment_settled",
                format!("no payment of order {order_id} is waiting"),
            )
        })?;
    let transaction_id = format!("txn-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let body = match &decline {
        None => json!({
            "awakeable_id": payment.awakeable_id,
            "transaction_id": transaction_id,
            "amount": payment.amount_cents,
            "status": "success",
        }),
        Some(reason) => json!({
            "awakeable_id": payment.awakeable_id,
            "transaction_id": transaction_id,
            "amount": payment.amount_cents,
            "status": "failed",
            "reason": reason.as_str(),
        }),
    }
    .to_string();
    let signature = payment::sign(&state.webhook_secret, unix_now(), body.as_bytes());
    let request = state
        .http
        .post(&state.callback_url)
        .header(header::HOST, &state.callback_host)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-payment-signature", signature)
        .body(body.clone());
    let response = request.send().await.map_err(|e| {
        tracing::warn!(error = %e, "the payment gateway cannot reach the callback");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "gateway_unreachable",
            "the payment gateway could not deliver its callback; try again",
        )
    })?;
    let status = response.status();
    if status.is_success() {
        let amount = crate::domain::Cents::new(payment.amount_cents).unwrap_or_default();
        return Ok(match decline {
            None => format!("Paid {amount} for order {order_id} (transaction {transaction_id})."),
            Some(reason) => format!("Declined the payment of order {order_id}: {reason}"),
        });
    }
    // The callback's own error, passed on as the gateway saw it.
    let error: Value = response.json().await.unwrap_or_default();
    let text = |key: &str| error["error"][key].as_str().map(str::to_owned);
    Err(ApiError::new(
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        &text("code").unwrap_or_else(|| "payment_callback_failed".to_owned()),
        text("message").unwrap_or_else(|| format!("the payment callback answered {status}")),
    ))
}

async fn settle(
    state: AppState,
    user: CurrentUser,
    id: String,
    signals: super::Signals,
    decline: bool,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let reason = match signals.decline_reason.trim() {
        "" => Reason::parse("card declined"),
        text => Reason::parse(text),
    };
    let outcome = match (decline, reason) {
        (false, _) => gateway(&state, &user, &id, None).await,
        (true, Ok(reason)) => gateway(&state, &user, &id, Some(reason)).await,
        (true, Err(e)) => Err(ApiError::bad_request("invalid_reason", e)),
    };
    let mut selection = current(&state, &user, &page);
    if OrderId::parse(&id).is_ok() {
        selection = Selection {
            view: View::Orders,
            order: Some(id),
        };
    }
    let signals = json!({"tab": "output", "declineReason": ""});
    answer(&state, &user, &page, selection, outcome, Some(signals)).await
}

pub async fn pay(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    settle(state, user, id, signals, false).await
}

pub async fn decline(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    settle(state, user, id, signals, true).await
}

/// After a decision the admin's workflow pane follows the order.
fn decided(state: &AppState, user: &CurrentUser, page: &PageId, id: &str) -> Selection {
    let mut selection = Selection {
        view: View::Admin,
        ..current(state, user, page)
    };
    if OrderId::parse(id).is_ok() {
        selection.order = Some(id.to_owned());
    }
    selection
}

pub async fn approve(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let outcome = orders::approve_order(&state, &user, &id)
        .await
        .map(|order_id| format!("Approved order {order_id}; it ships now."));
    let selection = decided(&state, &user, &page, &id);
    answer(&state, &user, &page, selection, outcome, None).await
}

pub async fn reject(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let reason = Some(signals.reject_reason.clone());
    let outcome = orders::reject_order(&state, &user, &id, reason)
        .await
        .map(|order_id| match signals.reject_reason.trim() {
            "" => format!("Rejected order {order_id}."),
            reason => format!("Rejected order {order_id}: {reason}"),
        });
    let selection = decided(&state, &user, &page, &id);
    let reset = json!({"rejectReason": ""});
    answer(&state, &user, &page, selection, outcome, Some(reset)).await
}

/// The crash drill: SIGKILL to the process serving the Restate endpoint. Everyone with
/// an order in flight (and the admin) is told about the outage and the recovery.
pub async fn crash(
    State(state): State<AppState>,
    user: CurrentUser,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    orders::require_admin(&user)?;
    let outcome = crash_services(&state).await;
    let selection = Selection {
        view: View::Admin,
        ..current(&state, &user, &page)
    };
    answer(&state, &user, &page, selection, outcome, None).await
}

async fn crash_services(state: &AppState) -> ApiResult<String> {
    let control = state.services.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_supervised",
            "this process does not supervise the service endpoint (it runs `shopflow web`)",
        )
    })?;
    let final_statuses: Vec<&str> = OrderStatus::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .map(OrderStatus::as_str)
        .collect();
    let mut recipients = state.db.users_with_open_orders(&final_statuses).await?;
    if !recipients.iter().any(|u| u == ADMIN) {
        recipients.push(ADMIN.to_owned());
    }
    let pid = control.crash().map_err(ApiError::internal)?;
    tracing::warn!(pid, "crash drill: killed the service endpoint");
    let outage = format!(
        "Outage: the service endpoint (pid {pid}) was killed with SIGKILL. Orders in flight wait for it."
    );
    for user in &recipients {
        let event = format!("outage:{pid}:{user}");
        state
            .db
            .notify(&event, user, None, "outage", &outage)
            .await?;
    }
    let db = state.db.clone();
    tokio::spawn(async move {
        let message = match control.wait_restarted(pid, RECOVERY_DEADLINE).await {
            Some(next) => format!(
                "Recovered: the supervisor restarted the service endpoint (pid {next}); orders in flight resume where they stopped."
            ),
            None => format!(
                "The service endpoint is not back after {}s; see the server log.",
                RECOVERY_DEADLINE.as_secs()
            ),
        };
        for user in &recipients {
            let event = format!("recovered:{pid}:{user}");
            if let Err(e) = db.notify(&event, user, None, "recovered", &message).await {
                tracing::warn!(error = %e, "cannot record the recovery");
            }
        }
    });
    Ok(format!(
        "Killed the service endpoint (pid {pid}). The supervisor restarts it; watch the notifications."
    ))
}
