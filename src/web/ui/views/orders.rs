//! The Orders view: the user's orders, the selected one in full.

use super::*;

pub struct OrderRow {
    pub(super) order_id: String,
    pub(super) user: String,
    pub(super) status: &'static str,
    pub(super) total: Cents,
    pub(super) selected: bool,
    pub(super) select_url: String,
    pub(super) approve_url: String,
    pub(super) reject_url: String,
    /// Where the customer cancels it, while it still can be.
    pub(super) cancel_url: Option<String>,
}

/// Markdown of the selected order, below a list.
pub(super) fn with_order(mut md: String, order: Option<&OrderView>) -> String {
    if let Some(order) = order {
        md.push_str("\n---\n\n");
        md.push_str(&markdown::order(order));
    }
    md
}

pub(super) async fn orders_view(
    state: &AppState,
    user: &CurrentUser,
    selection: &Selection,
    order: Option<&OrderView>,
) -> ApiResult<ViewPanes> {
    let list = app::orders::of_user(state, user).await?;
    let md = with_order(markdown::orders(&list), order);
    let rows = list
        .iter()
        .map(|o| order_row(o, selection.order.as_deref()))
        .collect();
    let pending = payable(state, user).await?;
    Ok((
        Input::Orders {
            orders: rows,
            pending,
            returnable: super::return_form(order, user),
        },
        md,
    ))
}

pub(super) fn order_row(o: &OrderSummary, selected: Option<&str>) -> OrderRow {
    let cancellable = matches!(
        o.status,
        OrderStatus::AwaitingPayment | OrderStatus::AwaitingApproval
    );
    OrderRow {
        cancel_url: cancellable.then(|| format!("/ui/cancel/{}", o.order_id)),
        selected: selected == Some(o.order_id.as_str()),
        select_url: format!("/ui/order/{}", o.order_id),
        approve_url: format!("/ui/approve/{}", o.order_id),
        reject_url: format!("/ui/reject/{}", o.order_id),
        status: o.status.label(),
        total: cents(o.total_cents),
        user: o.user_id.clone(),
        order_id: o.order_id.clone(),
    }
}
