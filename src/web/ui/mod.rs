//! The browser UI: one server-rendered page at `/` (navigation | Input/Output tabs |
//! notifications and workflow metadata), datastar actions under `/ui/` that answer
//! with the panes they changed, and one multiplexed stream per page that keeps the
//! page current. The JSON API stays as it is; both call the same functions.

mod actions;
mod pages;
mod stream;
mod views;

use std::sync::LazyLock;

use askama::Template;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::AppState;
use super::datastar;
use super::error::{ApiError, ApiResult};
use super::extract::{CurrentUser, RawBody, parse_json};
use super::{session, sign_in};
use crate::domain::Username;
use crate::domain::text::is_forbidden;
pub use pages::{PageId, Pages, Selection, View};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/static/{file}", get(asset))
        .route("/ui/session", post(sign_in))
        .route("/ui/sign-out", post(sign_out))
        .route("/ui/stream", get(stream::stream))
        .route("/ui/view/{view}", get(actions::show_view))
        .route("/ui/order/{id}", get(actions::show_order))
        .route("/ui/cart/add/{product}", post(actions::add_to_cart))
        .route("/ui/cart/remove/{product}", post(actions::remove_from_cart))
        .route("/ui/checkout", post(actions::checkout))
        .route("/ui/pay/{id}", post(actions::pay))
        .route("/ui/decline/{id}", post(actions::decline))
        .route("/ui/approve/{id}", post(actions::approve))
        .route("/ui/reject/{id}", post(actions::reject))
        .route("/ui/admin/crash", post(actions::crash))
}

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

async fn asset(Path(file): Path<String>) -> Response {
    for asset in [&DATASTAR_JS, &APP_CSS] {
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

/// The signals the page sends with every action (see `page.html`). Unknown ones are
/// ignored; missing ones are empty.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Signals {
    pub page: String,
    pub qty: std::collections::HashMap<String, serde_json::Value>,
    pub address: String,
    pub decline_reason: String,
    pub reject_reason: String,
    /// What the page showed when it sent this: lets a server that does not know the
    /// page (it restarted) pick up where the page was.
    pub view: String,
    pub order: String,
}

/// Datastar's signals from the query (GET) or the body (other methods).
pub struct UiSignals(pub Signals);

impl<S: Send + Sync> FromRequest<S> for UiSignals {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = if req.method() == axum::http::Method::GET {
            datastar::signals_in_query(req.uri())
        } else {
            let RawBody(body) = RawBody::from_request(req, state).await?;
            Some(String::from_utf8_lossy(&body).into_owned()).filter(|b| !b.trim().is_empty())
        };
        let signals: Signals = match json {
            Some(json) => parse_json(json.as_bytes())?,
            None => {
                return Err(ApiError::bad_request(
                    "missing_signals",
                    "this route is called by the page's datastar actions",
                ));
            }
        };
        // The page's fields cannot produce control characters (a text area's line
        // breaks arrive as plain `\n`): text that holds them is no request of the page.
        let fields = [
            (&signals.address, true),
            (&signals.decline_reason, false),
            (&signals.reject_reason, false),
        ];
        for (text, multi_line) in fields {
            if text.chars().any(|c| is_forbidden(c, multi_line)) {
                return Err(ApiError::bad_request(
                    "invalid_text",
                    "text fields must not contain control characters",
                ));
            }
        }
        Ok(UiSignals(signals))
    }
}

impl Signals {
    pub fn page(&self) -> ApiResult<PageId> {
        PageId::parse(&self.page)
    }

    /// The selection the page reports; the dashboard when it reports none.
    pub fn selection(&self) -> Selection {
        Selection {
            view: View::parse(&self.view).unwrap_or_default(),
            order: crate::domain::OrderId::parse(&self.order)
                .ok()
                .map(|id| id.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "page.html")]
struct PageTemplate {
    css_url: &'static str,
    js_url: &'static str,
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

/// `?signin=…` after a refused sign-in: what the page says about it.
#[derive(Deserialize)]
struct PageQuery {
    signin: Option<String>,
}

fn sign_in_problem(query: Result<Query<PageQuery>, QueryRejection>) -> Option<&'static str> {
    match query.ok()?.0.signin.as_deref()? {
        "failed" => Some("Wrong user name or password."),
        "throttled" => Some("Too many failed sign-ins for this user; try again in 15 minutes."),
        _ => None,
    }
}

/// The whole page, rendered on the server; the stream keeps it current from then on.
async fn page(
    State(state): State<AppState>,
    user: Result<CurrentUser, ApiError>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let user = user.ok();
    let page = PageId::random();
    let products = state.db.products().await?;
    let qty: serde_json::Map<String, serde_json::Value> =
        products.iter().map(|p| (p.sku.clone(), 1.into())).collect();
    let signals = serde_json::json!({
        "page": page.as_str(),
        "tab": "output",
        "live": false,
        "qty": qty,
        "address": "",
        "declineReason": "",
        "rejectReason": "",
        "view": View::default().as_str(),
        "order": "",
    });
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
        signals: signals.to_string(),
        signed_in: user.is_some(),
        demo: state.trust_user_header,
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

/// The sign-in form: a user name and a password; in demo mode the user picker, which
/// needs no password. Success sets the session cookie and reloads the page as that
/// user; a refusal reloads it with the reason.
#[derive(Deserialize)]
struct SignIn {
    user: String,
    #[serde(default)]
    password: String,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignIn>, FormRejection>,
) -> ApiResult<Response> {
    let Form(form) = form.map_err(|e| ApiError::bad_request("invalid_form", e.body_text()))?;
    let user = if state.trust_user_header && form.password.is_empty() {
        let name = Username::parse(form.user.trim()).ok();
        match name {
            Some(name) => state.db.user(&name).await?,
            None => None,
        }
        .ok_or_else(|| ApiError::bad_request("unknown_user", "pick one of the listed users"))
    } else {
        sign_in::check_password(&state, &form.user, &form.password).await
    };
    let user = match user {
        Ok(user) => user,
        Err(e) if e.status() == StatusCode::TOO_MANY_REQUESTS => {
            return Ok(Redirect::to("/?signin=throttled").into_response());
        }
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            return Ok(Redirect::to("/?signin=failed").into_response());
        }
        Err(e) => return Err(e),
    };
    let cookie = session::set_cookie(&state.signer, &user, &headers);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

async fn sign_out(headers: HeaderMap) -> Response {
    (
        [(header::SET_COOKIE, session::clear_cookie(&headers))],
        Redirect::to("/"),
    )
        .into_response()
}
