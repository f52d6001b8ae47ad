//! The page itself (`/`), rendered on the server, and the static files it loads
//! (embedded in the binary, under content-hashed names).

use std::sync::LazyLock;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::pages::{PageId, Selection, View};
use super::views;
use crate::app::catalog;
use crate::web::AppState;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::CurrentUser;

/// A static file embedded in the binary, served under a name that carries its content
/// hash, so browsers may keep it for a year.
struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
    url: LazyLock<String>,
}

fn hashed_url(name: &str, extension: &str, bytes: &[u8]) -> String {
    let hash = hex::encode(&Sha256::digest(bytes)[..6]);
    format!("/static/{name}-{hash}.{extension}")
}

static DATASTAR_JS: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    bytes: include_bytes!("../../../node_modules/@starfederation/datastar/dist/datastar.js"),
    url: LazyLock::new(|| hashed_url("datastar", "js", DATASTAR_JS.bytes)),
};

static APP_CSS: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    bytes: include_bytes!("../../../static/app.css"),
    url: LazyLock::new(|| hashed_url("app", "css", APP_CSS.bytes)),
};

/// The tab's icon (linked from the page, so browsers never ask for `/favicon.ico`).
static ICON_SVG: Asset = Asset {
    content_type: "image/svg+xml",
    bytes: include_bytes!("../../../static/favicon.svg"),
    url: LazyLock::new(|| hashed_url("favicon", "svg", ICON_SVG.bytes)),
};

pub async fn asset(Path(file): Path<String>) -> Response {
    for asset in [&DATASTAR_JS, &APP_CSS, &ICON_SVG] {
        if format!("/static/{file}") == *asset.url {
            return (
                [
                    (header::CONTENT_TYPE, asset.content_type),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                ],
                asset.bytes,
            )
                .into_response();
        }
    }
    ApiError::not_found("not_found", format!("no static file {file}")).into_response()
}

#[derive(Template)]
#[template(path = "page.html")]
struct PageTemplate {
    css_url: &'static str,
    js_url: &'static str,
    icon_url: &'static str,
    signals: String,
    signed_in: bool,
    demo: bool,
    tab: &'static str,
    nav: String,
    flash: String,
    input: String,
    output: String,
    notifications: String,
    meta: String,
}

/// The signals a new page starts with: its id, every form empty, a quantity of one
/// for each product.
async fn first_signals(state: &AppState, page: &PageId) -> ApiResult<serde_json::Value> {
    let products = catalog::products(state).await?;
    let qty: serde_json::Map<String, serde_json::Value> = products
        .products
        .iter()
        .map(|p| (p.sku.clone(), 1.into()))
        .collect();
    let signals = serde_json::json!({
        "page": page.as_str(),
        "tab": "output",
        "live": false,
        "qty": qty,
        "address": "",
        "declineReason": "",
        "rejectReason": "",
        "carrierMode": "fail",
        "carrierOrders": 1,
        "carrierLocation": "",
        "stockSku": "",
        "stockLocation": "east",
        "stockQty": 0,
        "webhookUrl": "",
        "webhookEvents": crate::domain::webhooks::WebhookEvent::ALL.map(|e| e.as_str()).join(", "),
        "view": View::default().as_str(),
        "order": "",
    });
    Ok(signals)
}

/// `?signin=…` after a refused sign-in: what the page says about it.
#[derive(Deserialize)]
pub struct PageQuery {
    signin: Option<String>,
}

fn sign_in_problem(query: Result<Query<PageQuery>, QueryRejection>) -> Option<&'static str> {
    match query.ok()?.0.signin.as_deref()? {
        "failed" => Some("Wrong user name or password."),
        "busy" => Some("Too many sign-ins for this user at once; try again in a few seconds."),
        _ => None,
    }
}

/// The whole page, rendered on the server; the stream keeps it current from then on.
pub async fn page(
    State(state): State<AppState>,
    user: Result<CurrentUser, ApiError>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let user = user.ok();
    let page = PageId::random();
    let signals = first_signals(&state, &page).await?;
    let selection = Selection::default();
    if let Some(user) = &user {
        state
            .pages
            .select(&page, user.username(), selection.clone());
    }
    let panes = views::render(&state, user.as_ref(), &selection).await?;
    let notifications = match &user {
        Some(user) => views::notification_list(&state, user).await?.0,
        None => views::notification_list_of(&[])?,
    };
    let problem = sign_in_problem(query);
    let html = PageTemplate {
        css_url: &APP_CSS.url,
        js_url: &DATASTAR_JS.url,
        icon_url: &ICON_SVG.url,
        signals: signals.to_string(),
        signed_in: user.is_some(),
        demo: state.demo,
        tab: "output",
        nav: panes.nav,
        flash: views::flash(problem.unwrap_or(""), problem.is_some())?,
        input: panes.input,
        output: panes.output,
        notifications,
        meta: panes.meta,
    }
    .render()
    .map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}
