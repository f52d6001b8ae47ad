//! The Cart view: the basket's lines, checkout, and the payment gateway's form for an
//! order waiting for payment.

use super::*;

pub struct CartLine {
    pub(super) sku: String,
    pub(super) name: String,
    pub(super) quantity: u32,
    pub(super) total: Cents,
    pub(super) remove_url: String,
}

/// The simulated payment gateway's form for an order waiting for payment.
pub struct Payable {
    pub(super) order_id: String,
    pub(super) amount: Cents,
    pub(super) pay_url: String,
    pub(super) decline_url: String,
}

pub(super) async fn cart_view(state: &AppState, user: &CurrentUser) -> ApiResult<ViewPanes> {
    let cart = app::cart::cart(state, user).await?;
    let pending = payable(state, user).await?;
    let md = markdown::cart(&cart, pending.as_ref().map(|p| p.order_id.as_str()));
    Ok((cart_input(cart, pending), md))
}

pub(super) fn cart_input(cart: CartView, pending: Option<Payable>) -> Input {
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

/// The user's order that waits at the payment gateway, if any.
pub(super) async fn payable(state: &AppState, user: &CurrentUser) -> ApiResult<Option<Payable>> {
    let payment = payments::waiting(state, user).await?;
    Ok(payment.map(|p| Payable {
        pay_url: format!("/ui/pay/{}", p.order_id),
        decline_url: format!("/ui/decline/{}", p.order_id),
        amount: cents(p.amount_cents),
        order_id: p.order_id,
    }))
}
