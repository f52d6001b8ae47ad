//! Builds in Restate: which deployment takes new orders, which still drain.

use super::{App, AppError, AppResult, require_admin};
use crate::db::User;
pub use crate::durable::deployments::Deployment;

/// Admins only: ShopFlow's deployments, the current one first.
pub async fn list(app: &App, user: &User) -> AppResult<Vec<Deployment>> {
    require_admin(user)?;
    app.restate.deployments().await.map_err(|e| {
        AppError::unavailable(
            "restate_unavailable",
            format!("cannot list the deployments: {e:#}"),
        )
    })
}
