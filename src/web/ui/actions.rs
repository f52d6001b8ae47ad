//! The page's actions. Each calls the same use case as the JSON API, then answers with
//! datastar events: a status line saying what happened (or why not) and every pane
//! re-rendered for the page's new selection. A refusal the page can run into (out of
//! stock, a settled payment) is shown on the page with 200; a request the page never
//! makes (malformed, not signed in, not allowed, naming what the user may not see)
//! gets its 4xx error JSON and changes nothing.

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::pages::{PageId, Selection, View};
use super::{Signals, UiSignals, views};
use crate::app::drills::Target;
use crate::app::{AppError, AppResult, approvals, cart, checkout, drills, orders, payments};
use crate::domain::{OrderId, OrderStatus, ProductRef, Quantity, Reason, ShippingAddress};
use crate::web::AppState;
use crate::web::datastar;
use crate::web::error::ApiResult;
use crate::web::extract::CurrentUser;
use crate::web::live;

/// The answer to an action: the outcome in the status line, the panes for `selection`
/// (which the page's stream follows from now on) and signals to set, the selection
/// among them.
async fn answer(
    state: &AppState,
    user: &CurrentUser,
    page: &PageId,
    selection: Selection,
    outcome: AppResult<String>,
    signals: Option<Value>,
) -> ApiResult<Response> {
    let outcome = match outcome {
        Err(e) if matches!(e.status(), 401 | 403 | 404) => return Err(e.into()),
        other => other,
    };
    state.pages.select(page, user.username(), selection.clone());
    let panes = views::render(state, Some(user), &selection).await?;
    let flash = match &outcome {
        Ok(message) => views::flash(message, false)?,
        Err(e) => views::flash(&e.to_string(), true)?,
    };
    let mut events = vec![datastar::morph(&flash)];
    events.extend(panes.events());
    // The page remembers what it shows, for a server that restarts meanwhile.
    let mut signals = signals.unwrap_or_else(|| json!({}));
    signals["view"] = json!(selection.view.as_str());
    signals["order"] = json!(selection.order.as_deref().unwrap_or(""));
    events.push(datastar::merge_signals(&signals));
    Ok(live::respond(events))
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
    if view == View::Admin {
        crate::app::require_admin(&user)
            .map_err(|_| AppError::forbidden("forbidden", "the Admin view needs the admin role"))?;
    }
    let selection = Selection {
        view,
        ..current(&state, &user, &page)
    };
    // Open the tab where the view's work happens: forms for shopping and deciding,
    // the read-outs for the dashboard and orders.
    let tab = match view {
        View::Products | View::Cart | View::Admin => "input",
        View::Dashboard | View::Orders => "output",
    };
    let signals = Some(json!({"tab": tab}));
    answer(&state, &user, &page, selection, Ok(String::new()), signals).await
}

pub async fn show_order(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let order = orders::visible(&state, &user, &id).await?;
    let mut selection = current(&state, &user, &page);
    if selection.view != View::Admin {
        selection.view = View::Orders;
    }
    selection.order = Some(order.order_id);
    let tab = Some(json!({"tab": "output"}));
    answer(&state, &user, &page, selection, Ok(String::new()), tab).await
}

/// The quantity the page's `qty.<sku>` signal holds for a product.
fn quantity(signals: &Signals, product: &str) -> AppResult<Quantity> {
    let invalid = || AppError::invalid("invalid_quantity", "quantity must be 1-99");
    let n = match signals.qty.get(product) {
        None => 1,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(invalid)?,
        Some(Value::String(s)) => s.trim().parse().map_err(|_| invalid())?,
        Some(_) => return Err(invalid()),
    };
    Quantity::new(n).map_err(|_| invalid())
}

fn product_ref(product: &str) -> AppResult<ProductRef> {
    ProductRef::parse(product).map_err(|e| AppError::invalid("invalid_product_id", e))
}

pub async fn add_to_cart(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(product): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    // The page's buttons name real products: a malformed one is no request of the page.
    let product_ref = product_ref(&product)?;
    let outcome = async {
        let quantity = quantity(&signals, &product)?;
        let cart = cart::add_item(&state, &user, &product_ref, quantity, None).await?;
        let name = cart
            .items
            .iter()
            .find(|i| i.sku == product)
            .map_or(product.as_str(), |i| i.name.as_str());
        let n = quantity.get();
        Ok(format!(
            "Added {n} × {name}; the cart holds {}.",
            cart.total_cents
        ))
    }
    .await;
    let selection = Selection {
        view: View::Products,
        ..current(&state, &user, &page)
    };
    let reset = Some(json!({"qty": {product.clone(): 1}}));
    answer(&state, &user, &page, selection, outcome, reset).await
}

pub async fn remove_from_cart(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(product): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let product_ref = product_ref(&product)?;
    let outcome = async {
        let cart = cart::remove_item(&state, &user, &product_ref, None).await?;
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

pub async fn place_order(
    State(state): State<AppState>,
    user: CurrentUser,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let placed = async {
        let address = ShippingAddress::parse(&signals.address)
            .map_err(|e| AppError::invalid("invalid_shipping_address", e))?;
        let order_id = checkout::new_order_id(user.username(), None);
        checkout::place_order(&state, &user, order_id, address).await
    }
    .await;
    let (selection, outcome, signals) = match placed {
        Ok(reply) => {
            let message = if reply.status == OrderStatus::AwaitingPayment {
                format!(
                    "Order {} placed. Pay for it at the payment gateway below.",
                    reply.order_id
                )
            } else {
                format!("Order {} is {}.", reply.order_id, reply.status.label())
            };
            let selection = Selection {
                view: View::Orders,
                order: Some(reply.order_id),
            };
            (
                selection,
                Ok(message),
                Some(json!({"tab": "input", "address": ""})),
            )
        }
        Err(e) => {
            let selection = Selection {
                view: View::Cart,
                ..current(&state, &user, &page)
            };
            (selection, Err(e), None)
        }
    };
    answer(&state, &user, &page, selection, outcome, signals).await
}

/// Pay or decline at the simulated gateway, which posts its signed callback to us.
async fn settle(
    state: AppState,
    user: CurrentUser,
    id: String,
    signals: Signals,
    decline: bool,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let reason = match signals.decline_reason.trim() {
        "" => Reason::parse("card declined"),
        text => Reason::parse(text),
    };
    let outcome = match (decline, reason) {
        (false, _) => payments::pay_at_gateway(&state, &user, &id, None).await,
        (true, Ok(reason)) => payments::pay_at_gateway(&state, &user, &id, Some(reason)).await,
        (true, Err(e)) => Err(AppError::invalid("invalid_reason", e)),
    };
    let mut selection = current(&state, &user, &page);
    if OrderId::parse(&id).is_ok() {
        selection = Selection {
            view: View::Orders,
            order: Some(id),
        };
    }
    let signals = Some(json!({"tab": "output", "declineReason": ""}));
    answer(&state, &user, &page, selection, outcome, signals).await
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
    let outcome = approvals::approve(&state, &user, &id)
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
    let reason = signals.reject_reason.trim();
    let outcome = approvals::reject(&state, &user, &id, Some(reason))
        .await
        .map(|order_id| match reason {
            "" => format!("Rejected order {order_id}."),
            reason => format!("Rejected order {order_id}: {reason}"),
        });
    let selection = decided(&state, &user, &page, &id);
    let reset = Some(json!({"rejectReason": ""}));
    answer(&state, &user, &page, selection, outcome, reset).await
}

/// The customer cancels an order that has not shipped.
pub async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    let outcome = approvals::cancel(&state, &user, &id, None)
        .await
        .map(|order_id| format!("Cancelled order {order_id}; what was taken is given back."));
    let mut selection = current(&state, &user, &page);
    if OrderId::parse(&id).is_ok() {
        selection = Selection {
            view: View::Orders,
            order: Some(id),
        };
    }
    let tab = Some(json!({"tab": "output"}));
    answer(&state, &user, &page, selection, outcome, tab).await
}

/// A crash drill: SIGKILL to the service endpoint, or to restate-server.
async fn crash_drill(
    state: AppState,
    user: CurrentUser,
    signals: Signals,
    target: Target,
) -> ApiResult<Response> {
    let page = signals.page()?;
    crate::app::require_admin(&user)?;
    let outcome = drills::crash(&state, &user, target).await;
    let selection = Selection {
        view: View::Admin,
        ..current(&state, &user, &page)
    };
    answer(&state, &user, &page, selection, outcome, None).await
}

pub async fn crash(
    State(state): State<AppState>,
    user: CurrentUser,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    crash_drill(state, user, signals, Target::Endpoint).await
}

pub async fn crash_restate(
    State(state): State<AppState>,
    user: CurrentUser,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    crash_drill(state, user, signals, Target::Restate).await
}

/// The carrier drill: how the carrier treats the next orders.
pub async fn carrier(
    State(state): State<AppState>,
    user: CurrentUser,
    UiSignals(signals): UiSignals,
) -> ApiResult<Response> {
    let page = signals.page()?;
    crate::app::require_admin(&user)?;
    let orders = match &signals.carrier_orders {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let outcome = match orders {
        Some(orders) => drills::carrier(&state, &user, &signals.carrier_mode, orders).await,
        None => Err(AppError::invalid("invalid_orders", "orders must be 0-100")),
    };
    let selection = Selection {
        view: View::Admin,
        ..current(&state, &user, &page)
    };
    answer(&state, &user, &page, selection, outcome, None).await
}
