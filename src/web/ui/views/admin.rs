//! The Admin view: the approval queue, all orders' counts, the builds, the returns,
//! the webhooks and the drills.

use super::*;

pub(super) async fn admin(
    state: &AppState,
    user: &CurrentUser,
    selection: &Selection,
    order: Option<&OrderView>,
) -> ApiResult<ViewPanes> {
    let waiting = app::orders::approval_queue(state, user).await?;
    let counts = app::orders::counts(state, user).await?;
    let mut md = markdown::approvals(&waiting);
    md.push('\n');
    md.push_str(&markdown::dashboard("All orders", &counts, None));
    md.push('\n');
    let deployments = app::deployments::list(state, user).await;
    let deployments = deployments.as_deref().map_err(|e| e.to_string());
    md.push_str(&markdown::deployments(
        deployments.as_deref().map_err(|e| &e[..]),
    ));
    let md = with_order(md, order);
    let pending = waiting
        .iter()
        .map(|o| order_row(o, selection.order.as_deref()))
        .collect();
    let (stock, locations) = super::products::stock_rows(state).await?;
    let input = Input::Admin {
        pending,
        stock,
        locations,
        returns: returns_queue(state, user).await?,
        webhooks: webhooks(state, user).await?,
        can_crash: state.supervised.endpoint.is_some(),
        can_crash_restate: state.supervised.restate.is_some(),
        carrier: drills::carrier_state(state).await?,
    };
    Ok((input, md))
}
