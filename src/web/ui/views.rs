//! Renders the page's panes for a selection: navigation, the Input pane's forms, the
//! Output pane's markdown (as HTML) and the workflow metadata of the selected order.
//! Every piece is a template with escaping on.

use askama::Template;

use super::pages::{Selection, View};
use crate::db::Product;
use crate::db::orders::OrderSummary;
use crate::domain::{Cents, OrderStatus};
use crate::web::AppState;
use crate::web::cart::{self, CartView};
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::CurrentUser;
use crate::web::markdown;
use crate::web::notifications::{HISTORY, notification_html};
use crate::web::orders::{OrderView, load_order};
use crate::web::workflow_stream::meta_html;

/// The panes that depend on the selection, each an element with a stable id.
pub struct Panes {
    pub nav: String,
    pub input: String,
    pub output: String,
    pub meta: String,
}

impl Panes {
    /// The datastar events that morph every pane into place.
    pub fn events(&self) -> String {
        use crate::web::datastar::{MergeMode, merge_fragments};
        [&self.nav, &self.input, &self.output, &self.meta]
            .into_iter()
            .map(|html| merge_fragments(html, None, MergeMode::Morph, None))
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

pub struct ProductRow {
    sku: String,
    name: String,
    price: Cents,
    stock: i64,
    signal: String,
    add_url: String,
}

pub struct CartLine {
    sku: String,
    name: String,
    quantity: u32,
    total: Cents,
    remove_url: String,
}

/// The simulated payment gateway's form for an order waiting for payment.
pub struct Payable {
    order_id: String,
    amount: Cents,
    pay_url: String,
    decline_url: String,
}

pub struct OrderRow {
    order_id: String,
    user: String,
    status: &'static str,
    total: Cents,
    selected: bool,
    select_url: String,
    approve_url: String,
    reject_url: String,
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
    },
    Admin {
        pending: Vec<OrderRow>,
        can_crash: bool,
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
    // The picker lists users only in demo mode; otherwise nobody browses the names.
    let users = if state.trust_user_header {
        state.db.users().await?
    } else {
        Vec::new()
    };
    let Some(user) = user else {
        return Ok(Panes {
            nav: Nav {
                demo: state.trust_user_header,
                users,
                current: None,
                items: Vec::new(),
            }
            .render()
            .map_err(render_err)?,
            input: pane_input(
                View::Dashboard,
                Input::SignIn {
                    demo: state.trust_user_header,
                },
            )?,
            output: pane_output(
                View::Dashboard,
                "# Welcome to ShopFlow\n\nSign in in the navigation to start shopping.",
            )?,
            meta: NoWorkflow.render().map_err(render_err)?,
        });
    };
    let is_admin = user.0.is_admin();
    let view = if selection.view == View::Admin && !is_admin {
        View::Dashboard
    } else {
        selection.view
    };
    let items = View::ALL
        .into_iter()
        .filter(|v| *v != View::Admin || is_admin)
        .map(|v| NavItem {
            label: v.label(),
            url: format!("/ui/view/{v}"),
            active: v == view,
        })
        .collect();
    let nav = Nav {
        demo: state.trust_user_header,
        users,
        current: Some(user.username().to_owned()),
        items,
    }
    .render()
    .map_err(render_err)?;

    // The selected order, if it is one the user may see.
    let order = match &selection.order {
        Some(id) => load_order(state, user, id).await.ok(),
        None => None,
    };
    let (input, output) = match view {
        View::Dashboard => {
            let counts = state
                .db
                .status_counts((!is_admin).then(|| user.username()))
                .await?;
            // The counts still show while Restate is unreachable; the cart line waits.
            let cart = cart::cart(state, user).await.ok();
            let title = if is_admin {
                "Dashboard: all orders"
            } else {
                "Dashboard"
            };
            (
                Input::Dashboard { is_admin },
                markdown::dashboard(title, &counts, cart.as_ref()),
            )
        }
        View::Products => {
            let products = state.db.products().await?;
            let md = markdown::products(&products);
            let rows = products.into_iter().map(product_row).collect();
            (Input::Products { products: rows }, md)
        }
        View::Cart => {
            let cart = cart::cart(state, user).await?;
            let pending = payable(state, user).await?;
            let md = markdown::cart(&cart, pending.as_ref().map(|p| p.order_id.as_str()));
            (cart_input(cart, pending), md)
        }
        View::Orders => {
            let orders = state.db.orders_of_user(user.username()).await?;
            let mut md = markdown::orders(&orders);
            if let Some(order) = &order {
                md.push_str("\n---\n\n");
                md.push_str(&markdown::order(order));
            }
            let rows = orders
                .iter()
                .map(|o| order_row(o, selection.order.as_deref()))
                .collect();
            let pending = payable(state, user).await?;
            (
                Input::Orders {
                    orders: rows,
                    pending,
                },
                md,
            )
        }
        View::Admin => {
            let waiting = state
                .db
                .orders_with_status(OrderStatus::AwaitingApproval)
                .await?;
            let counts = state.db.status_counts(None).await?;
            let mut md = markdown::approvals(&waiting);
            md.push('\n');
            md.push_str(&markdown::dashboard("All orders", &counts, None));
            if let Some(order) = &order {
                md.push_str("\n---\n\n");
                md.push_str(&markdown::order(order));
            }
            let pending = waiting
                .iter()
                .map(|o| order_row(o, selection.order.as_deref()))
                .collect();
            (
                Input::Admin {
                    pending,
                    can_crash: state.services.is_some(),
                },
                md,
            )
        }
    };
    Ok(Panes {
        nav,
        input: pane_input(view, input)?,
        output: pane_output(view, &output)?,
        meta: meta(state, order.as_ref()).await?,
    })
}

fn pane_input(view: View, input: Input) -> ApiResult<String> {
    InputPane {
        view: view.as_str(),
        input,
    }
    .render()
    .map_err(render_err)
}

fn pane_output(view: View, md: &str) -> ApiResult<String> {
    OutputPane {
        view: view.as_str(),
        html: markdown::to_html(md),
    }
    .render()
    .map_err(render_err)
}

/// The `#workflow-meta` pane: the order's live numbers, or a hint to select one.
pub async fn meta(state: &AppState, order: Option<&OrderView>) -> ApiResult<String> {
    match order {
        Some(order) => meta_html(state, order).await,
        None => NoWorkflow.render().map_err(render_err),
    }
}

fn product_row(p: Product) -> ProductRow {
    ProductRow {
        signal: format!("qty.{}", p.sku),
        add_url: format!("/ui/cart/add/{}", p.sku),
        price: cents(p.price_cents),
        stock: p.stock_qty,
        sku: p.sku,
        name: p.name,
    }
}

fn cart_input(cart: CartView, pending: Option<Payable>) -> Input {
    let lines = cart
        .items
        .into_iter()
        .map(|l| CartLine {
            remove_url: format!("/ui/cart/remove/{}", l.sku),
            quantity: l.quantity.get(),
            total: l.line_total_cents,
            sku: l.sku,
            name: l.name,
        })
        .collect();
    Input::Cart {
        lines,
        total: cart.total_cents,
        pending,
    }
}

fn order_row(o: &OrderSummary, selected: Option<&str>) -> OrderRow {
    OrderRow {
        selected: selected == Some(o.order_id.as_str()),
        select_url: format!("/ui/order/{}", o.order_id),
        approve_url: format!("/ui/approve/{}", o.order_id),
        reject_url: format!("/ui/reject/{}", o.order_id),
        status: OrderStatus::parse(&o.status).map_or("Unknown", OrderStatus::label),
        total: cents(o.total_cents),
        user: o.user_id.clone(),
        order_id: o.order_id.clone(),
    }
}

/// The user's order that waits at the payment gateway, if any.
async fn payable(state: &AppState, user: &CurrentUser) -> ApiResult<Option<Payable>> {
    let Some(order_id) = state.db.pending_checkout(user.username()).await? else {
        return Ok(None);
    };
    let payment = state.db.payment_by_order(&order_id).await?;
    Ok(payment.filter(|p| p.state == "pending").map(|p| Payable {
        pay_url: format!("/ui/pay/{order_id}"),
        decline_url: format!("/ui/decline/{order_id}"),
        amount: cents(p.amount_cents),
        order_id,
    }))
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
                username: "mallory".into(),
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
        };
        let admin = pane_input(
            View::Admin,
            Input::Admin {
                pending: vec![row],
                can_crash: true,
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

        let output = pane_output(View::Orders, &markdown::escape(evil)).unwrap();
        assert!(!output.contains("<script>"), "{output}");
    }
}
