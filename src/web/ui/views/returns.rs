//! The page's returns: the customer's form on a delivered order (a quantity per line,
//! up to what is left to return), and the admin's queue of open returns.

use super::*;
use crate::db::orders::ReturnRecord;
use crate::domain::ReturnStatus;

pub struct ReturnForm {
    pub(super) order_id: String,
    pub(super) url: String,
    pub(super) lines: Vec<ReturnFormLine>,
}

pub struct ReturnFormLine {
    pub(super) sku: String,
    pub(super) name: String,
    /// Delivered and not held by another return.
    pub(super) left: u32,
    pub(super) signal: String,
}

/// The form to return items of the selected order: the owner's delivered order with
/// something left to return.
pub(super) fn return_form(order: Option<&OrderView>, user: &CurrentUser) -> Option<ReturnForm> {
    let order =
        order.filter(|o| o.status == OrderStatus::Delivered && o.user_id == user.username())?;
    let held = |product_id: i64| -> u32 {
        let open = order.returns.iter().filter(|r| r.status.holds_goods());
        open.flat_map(|r| &r.items)
            .filter(|l| l.product_id.get() == product_id)
            .map(|l| l.quantity.get())
            .sum()
    };
    let lines: Vec<_> = order
        .items
        .iter()
        .map(|i| ReturnFormLine {
            sku: i.sku.clone(),
            name: i.name.clone(),
            left: i.quantity.saturating_sub(held(i.product_id)),
            signal: format!("retQty.p{}", i.product_id),
        })
        .filter(|l| l.left > 0)
        .collect();
    (!lines.is_empty()).then(|| ReturnForm {
        url: format!("/ui/return/{}", order.order_id),
        order_id: order.order_id.clone(),
        lines,
    })
}

pub struct ReturnRow {
    pub(super) return_id: String,
    pub(super) order_id: String,
    pub(super) user: String,
    pub(super) status: &'static str,
    pub(super) worth: Cents,
    /// Waiting for the store's decision (else for its parcel).
    pub(super) requested: bool,
    pub(super) select_url: String,
    pub(super) approve_url: String,
    pub(super) reject_url: String,
    pub(super) restock_url: String,
    pub(super) write_off_url: String,
}

/// The admin's queue: returns waiting for a decision or for their parcel.
pub(super) async fn returns_queue(
    state: &AppState,
    user: &CurrentUser,
) -> ApiResult<Vec<ReturnRow>> {
    let mut open = app::returns::list(state, user, Some(ReturnStatus::Requested.as_str())).await?;
    open.extend(
        app::returns::list(state, user, Some(ReturnStatus::AwaitingParcel.as_str())).await?,
    );
    Ok(open.iter().map(return_row).collect())
}

fn return_row(r: &ReturnRecord) -> ReturnRow {
    let id = &r.return_id;
    ReturnRow {
        requested: r.status == ReturnStatus::Requested,
        status: match r.status {
            ReturnStatus::Requested => "requested",
            _ => "awaiting parcel",
        },
        worth: cents(r.worth_cents),
        select_url: format!("/ui/order/{}", r.order_id),
        approve_url: format!("/ui/return-approve/{id}"),
        reject_url: format!("/ui/return-reject/{id}"),
        restock_url: format!("/ui/return-restock/{id}"),
        write_off_url: format!("/ui/return-write-off/{id}"),
        return_id: id.clone(),
        order_id: r.order_id.clone(),
        user: r.user_id.clone(),
    }
}
