//! The page's actions. Each calls the same use case as the JSON API, then answers with
//! datastar events: a status line saying what happened (or why not) and every pane
//! re-rendered for the page's new selection. A refusal the page can run into (out of
//! stock, a settled payment) is shown on the page with 200; a request the page never
//! makes (malformed, not signed in, not allowed, naming what the user may not see)
//! gets its 4xx error JSON and changes nothing.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::response::Response;
use serde_json::{Value, json};

pub mod returns;
pub mod webhooks;

use super::pages::{PageId, Selection, View};
use super::{Signals, UiSignals, views};
use crate::app::drills::Target;
use crate::app::{
    AppError, AppResult, approvals, cancellation, cart, checkout, drills, orders, payments,
};
use crate::domain::{Cents, OrderId, OrderStatus, ProductRef, Quantity, Reason, ShippingAddress};
use crate::web::AppState;
use crate::web::datastar;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::CurrentUser;
use crate::web::live;

/// What every action of the page starts from, read in this order (so a request is
/// refused for its identity first, then its path, then its signals): the user, the
/// route's path parameter `P` (`()` for none), the page's signals and the page.
pub struct UiAction<P = ()> {
    state: AppState,
    user: CurrentUser,
    path: P,
    signals: Signals,
    page: PageId,
}

/// A route's path parameters, as an action reads them.
pub trait PathParams: Sized + Send {
    fn from_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send;
}

impl PathParams for () {
    async fn from_parts(_: &mut axum::http::request::Parts, _: &AppState) -> Result<(), ApiError> {
        Ok(())
    }
}

impl PathParams for String {
    async fn from_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<String, ApiError> {
        let Path(value) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
        Ok(value)
    }
}

impl PathParams for (String, String) {
    async fn from_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<(String, String), ApiError> {
        let Path(value) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
        Ok(value)
    }
}

impl<P: PathParams> FromRequest<AppState> for UiAction<P> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let user = CurrentUser::from_request_parts(&mut parts, state).await?;
        let path = P::from_parts(&mut parts, state).await?;
        let UiSignals(signals) =
            UiSignals::from_request(Request::from_parts(parts, body), state).await?;
        let page = signals.page()?;
        Ok(UiAction {
            state: state.clone(),
            user,
            path,
            signals,
            page,
        })
    }
}

impl<P> UiAction<P> {
    /// What the page shows now (the dashboard for a page this server does not know).
    fn current(&self) -> Selection {
        self.state
            .pages
            .selection(&self.page, self.user.username())
            .unwrap_or_default()
    }

    /// The page's selection, moved to `view`.
    fn in_view(&self, view: View) -> Selection {
        Selection {
            view,
            ..self.current()
        }
    }

    /// `view` showing the order `id` (the current selection when `id` is no order id).
    fn on_order(&self, view: View, id: &str) -> Selection {
        match OrderId::parse(id) {
            Ok(_) => Selection {
                view,
                order: Some(id.to_owned()),
            },
            Err(_) => self.current(),
        }
    }

    /// The answer: the outcome in the status line, the panes for `selection` (which the
    /// page's stream follows from now on) and signals to set, the selection among them.
    async fn answer(
        &self,
        selection: Selection,
        outcome: AppResult<String>,
        signals: Option<Value>,
    ) -> ApiResult<Response> {
        let outcome = match outcome {
            Err(e) if matches!(e.status(), 401 | 403 | 404) => return Err(e.into()),
            other => other,
        };
        let (state, user) = (&self.state, &self.user);
        state
            .pages
            .select(&self.page, user.username(), selection.clone());
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
}

pub async fn show_view(action: UiAction<String>) -> ApiResult<Response> {
    let view = View::parse(&action.path)?;
    if view == View::Admin {
        crate::app::require_admin(&action.user)
            .map_err(|_| AppError::forbidden("forbidden", "the Admin view needs the admin role"))?;
    }
    // Open the tab where the view's work happens: forms for shopping and deciding,
    // the read-outs for the dashboard and orders.
    let tab = match view {
        View::Products | View::Cart | View::Admin => "input",
        View::Dashboard | View::Orders => "output",
    };
    let selection = action.in_view(view);
    let signals = Some(json!({"tab": tab}));
    action.answer(selection, Ok(String::new()), signals).await
}

pub async fn show_order(action: UiAction<String>) -> ApiResult<Response> {
    let order = orders::visible(&action.state, &action.user, &action.path).await?;
    let mut selection = action.current();
    if selection.view != View::Admin {
        selection.view = View::Orders;
    }
    selection.order = Some(order.order_id);
    let tab = Some(json!({"tab": "output"}));
    action.answer(selection, Ok(String::new()), tab).await
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

pub async fn add_to_cart(action: UiAction<String>) -> ApiResult<Response> {
    let (state, user, product) = (&action.state, &action.user, &action.path);
    // The page's buttons name real products: a malformed one is no request of the page.
    let product_ref = product_ref(product)?;
    let outcome = async {
        let quantity = quantity(&action.signals, product)?;
        let cart = cart::add_item(state, user, &product_ref, quantity, None).await?;
        let name = cart
            .items
            .iter()
            .find(|i| i.sku == *product)
            .map_or(product.as_str(), |i| i.name.as_str());
        let n = quantity.get();
        Ok(format!(
            "Added {n} × {name}; the cart holds {}.",
            cart.total_cents
        ))
    }
    .await;
    let reset = Some(json!({"qty": {product.clone(): 1}}));
    action
        .answer(action.in_view(View::Products), outcome, reset)
        .await
}

pub async fn remove_from_cart(action: UiAction<String>) -> ApiResult<Response> {
    let product = &action.path;
    let product_ref = product_ref(product)?;
    let outcome = cart::remove_item(&action.state, &action.user, &product_ref, None)
        .await
        .map(|cart| format!("Removed {product}; the cart holds {}.", cart.total_cents));
    action
        .answer(action.in_view(View::Cart), outcome, None)
        .await
}

pub async fn place_order(action: UiAction) -> ApiResult<Response> {
    let (state, user) = (&action.state, &action.user);
    let placed = async {
        let address = ShippingAddress::parse(&action.signals.address)
            .map_err(|e| AppError::invalid("invalid_shipping_address", e))?;
        let order_id = checkout::new_order_id(user.username(), None);
        checkout::place_order(state, user, order_id, address).await
    }
    .await;
    let reply = match placed {
        Ok(reply) => reply,
        Err(e) => {
            return action
                .answer(action.in_view(View::Cart), Err(e), None)
                .await;
        }
    };
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
    let signals = Some(json!({"tab": "input", "address": ""}));
    action.answer(selection, Ok(message), signals).await
}

/// Pay or decline at the simulated gateway, which posts its signed callback to us.
async fn settle(action: UiAction<String>, decline: bool) -> ApiResult<Response> {
    let (state, user, id) = (&action.state, &action.user, &action.path);
    let reason = match action.signals.decline_reason.trim() {
        "" => Reason::parse("card declined"),
        text => Reason::parse(text),
    };
    let outcome = match (decline, reason) {
        (false, _) => payments::pay_at_gateway(state, user, id, None).await,
        (true, Ok(reason)) => payments::pay_at_gateway(state, user, id, Some(reason)).await,
        (true, Err(e)) => Err(AppError::invalid("invalid_reason", e)),
    };
    let signals = Some(json!({"tab": "output", "declineReason": ""}));
    action
        .answer(action.on_order(View::Orders, id), outcome, signals)
        .await
}

pub async fn pay(action: UiAction<String>) -> ApiResult<Response> {
    settle(action, false).await
}

pub async fn decline(action: UiAction<String>) -> ApiResult<Response> {
    settle(action, true).await
}

pub async fn approve(action: UiAction<String>) -> ApiResult<Response> {
    let outcome = approvals::approve(&action.state, &action.user, &action.path)
        .await
        .map(|order_id| format!("Approved order {order_id}; it ships now."));
    // After a decision the admin's workflow pane follows the order.
    let selection = action.on_order(View::Admin, &action.path);
    action.answer(selection, outcome, None).await
}

pub async fn reject(action: UiAction<String>) -> ApiResult<Response> {
    let reason = action.signals.reject_reason.trim();
    let outcome = approvals::reject(&action.state, &action.user, &action.path, Some(reason))
        .await
        .map(|order_id| match reason {
            "" => format!("Rejected order {order_id}."),
            reason => format!("Rejected order {order_id}: {reason}"),
        });
    let selection = action.on_order(View::Admin, &action.path);
    let reset = Some(json!({"rejectReason": ""}));
    action.answer(selection, outcome, reset).await
}

/// The customer (or an admin) cancels an order that has not shipped.
pub async fn cancel(action: UiAction<String>) -> ApiResult<Response> {
    let outcome = cancellation::cancel(&action.state, &action.user, &action.path, None)
        .await
        .map(|order_id| format!("Cancelled order {order_id}; what was taken is given back."));
    let tab = Some(json!({"tab": "output"}));
    let selection = action.on_order(View::Orders, &action.path);
    action.answer(selection, outcome, tab).await
}

/// A crash drill: SIGKILL to the service endpoint, or to restate-server.
async fn crash_drill(action: UiAction, target: Target) -> ApiResult<Response> {
    crate::app::require_admin(&action.user)?;
    let outcome = drills::crash(&action.state, &action.user, target).await;
    action
        .answer(action.in_view(View::Admin), outcome, None)
        .await
}

pub async fn crash(action: UiAction) -> ApiResult<Response> {
    crash_drill(action, Target::Endpoint).await
}

pub async fn crash_restate(action: UiAction) -> ApiResult<Response> {
    crash_drill(action, Target::Restate).await
}

/// A number field's value, as datastar sends it (a number, or text while typed).
fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The restock form: one location's new level of a product.
pub async fn stock(action: UiAction) -> ApiResult<Response> {
    crate::app::require_admin(&action.user)?;
    let signals = &action.signals;
    let outcome = match (
        product_ref(signals.stock_sku.trim()),
        number(&signals.stock_qty),
    ) {
        (Err(e), _) => Err(e),
        (_, None) => Err(AppError::invalid(
            "invalid_stock_qty",
            "stock_qty must be 0-1000000000",
        )),
        (Ok(product), Some(qty)) => {
            let location = signals.stock_location.trim();
            crate::app::catalog::set_stock(&action.state, &action.user, &product, location, qty)
                .await
                // A mistyped SKU is a refusal the form meets: said on the page.
                .map_err(|e| match e.status() {
                    404 => AppError::invalid("unknown_product", e.to_string()),
                    _ => e,
                })
                .map(|p| {
                    format!(
                        "{} now has {qty} at {location}; {} in all.",
                        p.sku, p.stock_qty
                    )
                })
        }
    };
    action
        .answer(action.in_view(View::Admin), outcome, None)
        .await
}

/// The carrier drill: how the carrier treats the next orders.
pub async fn carrier(action: UiAction) -> ApiResult<Response> {
    crate::app::require_admin(&action.user)?;
    let signals = &action.signals;
    let location = Some(signals.carrier_location.trim()).filter(|l| !l.is_empty());
    let outcome = match number(&signals.carrier_orders) {
        Some(orders) => {
            drills::carrier(
                &action.state,
                &action.user,
                &signals.carrier_mode,
                orders,
                location,
            )
            .await
        }
        None => Err(AppError::invalid("invalid_orders", "orders must be 0-100")),
    };
    action
        .answer(action.in_view(View::Admin), outcome, None)
        .await
}
