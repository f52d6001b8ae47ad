//! The page's return actions: the customer returns items of a delivered order; the
//! store approves, rejects, or receives the parcel (back on sale or written off).

use super::*;
use crate::app::returns;
use crate::db::orders::ReturnRecord;
use crate::domain::{ProductId, ReturnItem};

/// The lines the page's `retQty.p<product id>` signals ask back (blank or 0: none).
fn items(signals: &Signals) -> AppResult<Vec<ReturnItem>> {
    let invalid = || AppError::invalid("invalid_quantity", "return quantities must be 0-99");
    let mut items = Vec::new();
    for (key, value) in &signals.ret_qty {
        let product_id = key
            .strip_prefix('p')
            .and_then(|id| id.parse().ok())
            .and_then(ProductId::new)
            .ok_or_else(invalid)?;
        let n: i64 = match value {
            Value::Null => 0,
            Value::Number(n) => n.as_i64().ok_or_else(invalid)?,
            Value::String(s) if s.trim().is_empty() => 0,
            Value::String(s) => s.trim().parse().map_err(|_| invalid())?,
            _ => return Err(invalid()),
        };
        if n != 0 {
            let quantity = Quantity::new(n).map_err(|_| invalid())?;
            items.push(ReturnItem {
                product_id,
                quantity,
            });
        }
    }
    items.sort_by_key(|i| i.product_id);
    Ok(items)
}

/// The customer returns the chosen quantities of their delivered order.
pub async fn request(action: UiAction<String>) -> ApiResult<Response> {
    let outcome = async {
        let items = items(&action.signals)?;
        if items.is_empty() {
            let why = "choose how many of which item to return";
            return Err(AppError::invalid("invalid_items", why));
        }
        let reason = match action.signals.return_reason.trim() {
            "" => "no reason given",
            reason => reason,
        };
        let (state, user) = (&action.state, &action.user);
        let r = returns::request(state, user, &action.path, &items, reason, None).await?;
        Ok(format!(
            "Return {} requested; the store decides next.",
            r.return_id
        ))
    }
    .await;
    // The form starts empty again.
    let cleared: serde_json::Map<String, Value> = action
        .signals
        .ret_qty
        .keys()
        .map(|k| (k.clone(), json!("")))
        .collect();
    let reset = Some(json!({"retQty": cleared, "returnReason": ""}));
    let selection = action.on_order(View::Orders, &action.path);
    action.answer(selection, outcome, reset).await
}

/// The admin's answer: the outcome, with the return's order shown.
async fn decided(
    action: UiAction<String>,
    outcome: AppResult<ReturnRecord>,
    said: impl FnOnce(&ReturnRecord) -> String,
) -> ApiResult<Response> {
    let selection = match &outcome {
        Ok(r) => action.on_order(View::Admin, &r.order_id),
        Err(_) => action.in_view(View::Admin),
    };
    let outcome = outcome.map(|r| said(&r));
    let reset = Some(json!({"returnNote": ""}));
    action.answer(selection, outcome, reset).await
}

pub async fn approve(action: UiAction<String>) -> ApiResult<Response> {
    let outcome = returns::approve(&action.state, &action.user, &action.path).await;
    decided(action, outcome, |r| match &r.label {
        Some(l) => format!(
            "Approved return {}: label {} {}.",
            r.return_id, l.carrier, l.tracking_number
        ),
        None => format!("Approved return {}.", r.return_id),
    })
    .await
}

pub async fn reject(action: UiAction<String>) -> ApiResult<Response> {
    let note = action.signals.return_note.trim().to_owned();
    let outcome = match note.as_str() {
        "" => Err(AppError::invalid(
            "invalid_reason",
            "say why the return is rejected",
        )),
        why => returns::reject(&action.state, &action.user, &action.path, why).await,
    };
    decided(action, outcome, |r| {
        format!("Rejected return {}: {note}", r.return_id)
    })
    .await
}

async fn receive(action: UiAction<String>, restock: bool) -> ApiResult<Response> {
    let outcome = returns::receive(&action.state, &action.user, &action.path, restock).await;
    decided(action, outcome, |r| {
        let back = if restock {
            "back on sale"
        } else {
            "written off"
        };
        let refunded = Cents::new(r.refund_cents).unwrap_or_default();
        format!(
            "Received return {} ({back}); {refunded} refunded.",
            r.return_id
        )
    })
    .await
}

pub async fn restock(action: UiAction<String>) -> ApiResult<Response> {
    receive(action, true).await
}

pub async fn write_off(action: UiAction<String>) -> ApiResult<Response> {
    receive(action, false).await
}
