//! What the page sends with every action: datastar's signals, from the query (GET) or
//! the body, with the page's text fields checked for characters no page can type.

use axum::extract::{FromRequest, Request};
use serde::Deserialize;

use super::pages::{PageId, Selection, View};
use crate::domain::text::is_forbidden;
use crate::web::datastar;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::{RawBody, parse_json};

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
    /// The return form: how many of each product (`p<id>`), and why.
    pub ret_qty: std::collections::HashMap<String, serde_json::Value>,
    pub return_reason: String,
    /// Why the store rejects a return.
    pub return_note: String,
    /// The carrier drill's form.
    pub carrier_mode: String,
    pub carrier_orders: serde_json::Value,
    /// Only parcels from this location (every one when empty).
    pub carrier_location: String,
    /// The restock form: a product, a location and its new level.
    pub stock_sku: String,
    pub stock_location: String,
    pub stock_qty: serde_json::Value,
    /// The webhook form: a URL and its events, comma-separated.
    pub webhook_url: String,
    pub webhook_events: String,
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
            datastar::signals_in_query(req.uri()).map(String::into_bytes)
        } else {
            // Bytes as sent: JSON that is not UTF-8 is refused by the parser, not patched.
            let RawBody(body) = RawBody::from_request(req, state).await?;
            Some(body.to_vec()).filter(|b| !b.trim_ascii().is_empty())
        };
        let signals: Signals = match json {
            Some(json) => parse_json(&json)?,
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
            (&signals.return_reason, false),
            (&signals.return_note, false),
            (&signals.webhook_url, false),
            (&signals.webhook_events, false),
            (&signals.carrier_location, false),
            (&signals.stock_sku, false),
            (&signals.stock_location, false),
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
