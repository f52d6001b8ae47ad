//! The Dashboard view: order counts by status, and the cart.

use super::*;

pub(super) async fn dashboard(state: &AppState, user: &CurrentUser) -> ApiResult<ViewPanes> {
    let counts = app::orders::counts(state, user).await?;
    // The counts still show while Restate is unreachable; the cart line waits.
    let cart = app::cart::cart(state, user).await.ok();
    let title = if user.is_admin() {
        "Dashboard: all orders"
    } else {
        "Dashboard"
    };
    let is_admin = user.is_admin();
    Ok((
        Input::Dashboard { is_admin },
        markdown::dashboard(title, &counts, cart.as_ref()),
    ))
}
