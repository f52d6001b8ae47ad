//! Renders the page's panes for a selection: navigation, the Input pane's forms, the
//! Output pane's markdown (as HTML) and the workflow metadata of the selected order.
//! Every piece is a template with escaping on.

mod admin;
mod cart;
mod dashboard;
mod orders;
mod products;
mod returns;
mod webhooks;

use askama::Template;
use axum::response::sse::Event;

use super::pages::{Selection, View};
use crate::app;
use crate::app::cart::CartView;
use crate::app::feed::HISTORY;
use crate::app::orders::OrderView;
use crate::app::{catalog, drills, journal, payments};
use crate::clock::now_rfc3339;
use crate::db::Product;
use crate::db::orders::OrderSummary;
use crate::domain::{Cents, OrderStatus};
use crate::web::AppState;
use crate::web::datastar;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::CurrentUser;
use crate::web::fragments::{WorkflowMeta, notification_html};
use crate::web::markdown;
use admin::admin;
use cart::{CartLine, Payable, cart_view, payable};
use dashboard::dashboard;
use orders::{OrderRow, order_row, orders_view, with_order};
use products::StockRow;
use products::{ProductRow, products};
use returns::{ReturnForm, ReturnRow, return_form, returns_queue};
use webhooks::{WebhookRow, webhooks};

/// The panes that depend on the selection, each an element with a stable id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Panes {
    pub nav: String,
    pub input: String,
    pub output: String,
    pub meta: String,
}

impl Panes {
    /// The datastar events that morph every pane into place.
    pub fn events(&self) -> Vec<Event> {
        [&self.nav, &self.input, &self.output, &self.meta]
            .into_iter()
            .map(|html| datastar::morph(html))
            .collect()
    }
}

struct NavItem {
    label: &'static str,
    url: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "nav.html")]
struct Nav {
    demo: bool,
    users: Vec<crate::db::User>,
    current: Option<String>,
    items: Vec<NavItem>,
}

/// What the Input pane offers in each view.
pub enum Input {
    SignIn {
        demo: bool,
    },
    Dashboard {
        is_admin: bool,
    },
    Products {
        products: Vec<ProductRow>,
    },
    Cart {
        lines: Vec<CartLine>,
        total: Cents,
        pending: Option<Payable>,
    },
    Orders {
        orders: Vec<OrderRow>,
        pending: Option<Payable>,
        /// The form to return items of the selected order, when it can be.
        returnable: Option<ReturnForm>,
    },
    Admin {
        pending: Vec<OrderRow>,
        /// Returns waiting for a decision or their parcel.
        returns: Vec<ReturnRow>,
        /// Webhook subscriptions and their latest deliveries.
        webhooks: Vec<WebhookRow>,
        /// Every product's stock, one column per location.
        stock: Vec<StockRow>,
        locations: Vec<String>,
        /// Which children the crash drills can kill here.
        can_crash: bool,
        can_crash_restate: bool,
        /// The carrier drill under way, in words.
        carrier: Option<String>,
    },
}

#[derive(Template)]
#[template(path = "input_pane.html")]
struct InputPane {
    view: &'static str,
    input: Input,
}

#[derive(Template)]
#[template(path = "output_pane.html")]
struct OutputPane {
    view: &'static str,
    html: String,
    /// Pictures drawn by `web::charts` (trusted markup), after the text.
    figures: String,
}

#[derive(Template)]
#[template(path = "workflow_none.html")]
struct NoWorkflow;

#[derive(Template)]
#[template(path = "flash.html")]
struct Flash<'a> {
    message: &'a str,
    error: bool,
}

#[derive(Template)]
#[template(path = "notification_list.html")]
struct NotificationList {
    items: Vec<String>,
}

fn render_err(e: askama::Error) -> ApiError {
    ApiError::internal(e)
}

fn cents(c: i64) -> Cents {
    Cents::new(c).unwrap_or(Cents::ZERO)
}

/// The status line above the panes: what the last action did, or why it failed.
pub fn flash(message: &str, error: bool) -> ApiResult<String> {
    Flash { message, error }.render().map_err(render_err)
}

/// The user's latest notifications, newest first, and the newest one's id (0 for none):
/// a stream goes on live from exactly there.
pub async fn notification_list(state: &AppState, user: &CurrentUser) -> ApiResult<(String, i64)> {
    let mut recent = state
        .db
        .recent_notifications(user.username(), HISTORY)
        .await?;
    recent.reverse();
    let newest = recent.first().map_or(0, |n| n.id);
    Ok((notification_list_of(&recent)?, newest))
}

pub fn notification_list_of(newest_first: &[crate::db::orders::Notification]) -> ApiResult<String> {
    let items = newest_first
        .iter()
        .map(notification_html)
        .collect::<Result<_, _>>()
        .map_err(render_err)?;
    NotificationList { items }.render().map_err(render_err)
}

/// Every pane for `selection`, as `user` may see it (the sign-in prompt without one).
pub async fn render(
    state: &AppState,
    user: Option<&CurrentUser>,
    selection: &Selection,
) -> ApiResult<Panes> {
    let Some(user) = user else {
        return signed_out(state).await;
    };
    let view = if selection.view == View::Admin && !user.is_admin() {
        View::Dashboard
    } else {
        selection.view
    };
    // The selected order, if it is one the user may see.
    let order = match &selection.order {
        Some(id) => app::orders::order(state, user, id).await.ok(),
        None => None,
    };
    let figures = match view {
        View::Dashboard if user.is_admin() => {
            crate::web::charts::glance(&app::glance::glance(state, user).await?)
        }
        _ => String::new(),
    };
    let (input, output) = match view {
        View::Dashboard => dashboard(state, user).await?,
        View::Products => products(state).await?,
        View::Cart => cart_view(state, user).await?,
        View::Orders => orders_view(state, user, selection, order.as_ref()).await?,
        View::Admin => admin(state, user, selection, order.as_ref()).await?,
    };
    Ok(Panes {
        nav: nav(state, Some(user), view).await?,
        input: pane_input(view, input)?,
        output: pane_output(view, &output, figures)?,
        meta: meta(state, order.as_ref()).await?,
    })
}

/// The page before anyone signs in.
async fn signed_out(state: &AppState) -> ApiResult<Panes> {
    Ok(Panes {
        nav: nav(state, None, View::Dashboard).await?,
        input: pane_input(View::Dashboard, Input::SignIn { demo: state.demo })?,
        output: pane_output(
            View::Dashboard,
            "# Welcome to ShopFlow\n\nSign in in the navigation to start shopping.",
            String::new(),
        )?,
        meta: NoWorkflow.render().map_err(render_err)?,
    })
}

/// The navigation: sign-in (the picker only in demo mode) and the views the user has.
async fn nav(state: &AppState, user: Option<&CurrentUser>, view: View) -> ApiResult<String> {
    let users = if state.demo {
        catalog::users(state).await?
    } else {
        Vec::new()
    };
    let is_admin = user.is_some_and(|u| u.is_admin());
    let items = View::ALL
        .into_iter()
        .filter(|v| *v != View::Admin || is_admin)
        .map(|v| NavItem {
            label: v.label(),
            url: format!("/ui/view/{v}"),
            active: v == view,
        })
        .collect();
    Nav {
        demo: state.demo,
        users,
        current: user.map(|u| u.username().to_owned()),
        items: if user.is_some() { items } else { Vec::new() },
    }
    .render()
    .map_err(render_err)
}

type ViewPanes = (Input, String);

fn pane_input(view: View, input: Input) -> ApiResult<String> {
    InputPane {
        view: view.as_str(),
        input,
    }
    .render()
    .map_err(render_err)
}

fn pane_output(view: View, md: &str, figures: String) -> ApiResult<String> {
    OutputPane {
        view: view.as_str(),
        html: markdown::to_html(md),
        figures,
    }
    .render()
    .map_err(render_err)
}

/// The `#workflow-meta` pane: the order's live numbers, or a hint to select one.
pub async fn meta(state: &AppState, order: Option<&OrderView>) -> ApiResult<String> {
    let Some(order) = order else {
        return NoWorkflow.render().map_err(render_err);
    };
    let order_id = app::orders::parse_order_id(&order.order_id)?;
    // The per-order board has the order's numbers when someone watches it already.
    if let Some(snapshot) = state.feed.meta().latest(&order_id) {
        let journal = snapshot.journal.clone();
        let meta = WorkflowMeta::new(order, snapshot.retries.clone(), journal, &now_rfc3339());
        return meta.render().map_err(render_err);
    }
    let (journal, retries) = journal::read_with_retries(&state.db, &state.restate, &order_id)
        .await
        .unwrap_or_default();
    WorkflowMeta::new(order, retries, journal, &now_rfc3339())
        .render()
        .map_err(render_err)
}

/// The `#workflow-meta` pane for no order selected.
pub fn no_meta() -> ApiResult<String> {
    NoWorkflow.render().map_err(render_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_supplied_text_is_escaped_in_every_pane() {
        let evil = "<script>alert(1)</script>";
        let nav = Nav {
            demo: true,
            users: vec![crate::db::User {
                username: crate::domain::Username::parse("mallory").unwrap(),
                name: evil.into(),
                role: "customer".into(),
                password_hash: None,
            }],
            current: Some("mallory".into()),
            items: Vec::new(),
        }
        .render()
        .unwrap();
        assert!(!nav.contains("<script>"), "{nav}");
        assert!(nav.contains("&#60;script&#62;") || nav.contains("&lt;script&gt;"));

        let row = OrderRow {
            order_id: "o-1".into(),
            user: evil.into(),
            status: "Awaiting Approval",
            total: Cents::ZERO,
            selected: false,
            select_url: "/ui/order/o-1".into(),
            approve_url: "/ui/approve/o-1".into(),
            reject_url: "/ui/reject/o-1".into(),
            cancel_url: None,
        };
        let admin = pane_input(
            View::Admin,
            Input::Admin {
                pending: vec![row],
                returns: Vec::new(),
                webhooks: Vec::new(),
                stock: Vec::new(),
                locations: vec!["east".into()],
                can_crash: true,
                can_crash_restate: true,
                carrier: None,
            },
        )
        .unwrap();
        assert!(!admin.contains("<script>"), "{admin}");
        assert!(
            admin.contains(r#"data-on-click="@post('/ui/approve/o-1')""#),
            "{admin}"
        );
        assert!(admin.contains("id=\"crash-button\""));

        let flash = flash("declined: <img src=x onerror=alert(1)>", true).unwrap();
        assert!(!flash.contains("<img"), "{flash}");
        assert!(flash.contains("<strong>Error:</strong>"), "{flash}");

        let output = pane_output(View::Orders, &markdown::escape(evil), String::new()).unwrap();
        assert!(!output.contains("<script>"), "{output}");
    }
}
