//! The payment gateway's callback: settles a pending payment once and completes the
//! checkout's awakeable. Signed like Stripe's webhooks when a secret is configured.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{RawBody, parse_json};
use crate::durable::user_session::PaymentReceipt;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/payment/callback", post(callback))
}

/// How far a signature's timestamp may be from now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Callback {
    awakeable_id: String,
    #[serde(default)]
    transaction_id: String,
    amount: i64,
    status: CallbackStatus,
    reason: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum CallbackStatus {
    Success,
    Failed,
}

#[derive(Serialize)]
struct CallbackReply {
    order_id: String,
    status: &'static str,
}

/// `X-Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let hex = super::hex::encode(&mac.finalize().into_bytes());
    format!("t={timestamp},v1={hex}")
}

/// Checks a signature header in constant time; `now` is Unix seconds.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let header = header.ok_or("missing X-Payment-Signature")?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", hex)) => {
                signatures.push(super::hex::decode(hex).ok_or("malformed signature")?)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("signature without a valid timestamp")?;
    if (now - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err("signature timestamp outside the tolerance");
    }
    for signature in signatures {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err("signature does not match")
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<CallbackReply>> {
    if let Some(secret) = &state.webhook_secret {
        let header = headers
            .get("x-payment-signature")
            .and_then(|v| v.to_str().ok());
        verify(secret, header, &body, unix_now())
            .map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", why))?;
    }
    let cb: Callback = parse_json(&body)?;
    let bad = |code: &str, msg: &str| ApiError::bad_request(code, msg.to_owned());
    if cb.awakeable_id.is_empty() || cb.awakeable_id.len() > 256 {
        return Err(bad(
            "invalid_awakeable_id",
            "awakeable_id must be 1-256 characters",
        ));
    }
    if cb.transaction_id.len() > 128 {
        return Err(bad(
            "invalid_transaction_id",
            "transaction_id must be at most 128 characters",
        ));
    }
    if cb.status == CallbackStatus::Success && cb.transaction_id.trim().is_empty() {
        return Err(bad(
            "invalid_transaction_id",
            "a successful payment needs a transaction_id",
        ));
    }
    let reason = cb
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 500) {
        return Err(bad(
            "invalid_reason",
            "reason must be at most 500 characters",
        ));
    }

    let payment = state
        .db
        .payment_by_awakeable(&cb.awakeable_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_payment",
                "no payment is waiting under this awakeable_id",
            )
        })?;
    let settled = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "payment_settled",
            "this payment is already settled; a second callback changes nothing",
        )
    };
    if payment.state != "pending" {
        return Err(settled());
    }
    if cb.status == CallbackStatus::Success && cb.amount != payment.amount_cents {
        return Err(ApiError::bad_request(
            "amount_mismatch",
            format!(
                "amount {} does not match the order total {}",
                cb.amount, payment.amount_cents
            ),
        ));
    }

    // Claim the settlement first: of two racing callbacks (or a callback and the
    // timeout) exactly one wins this conditional update.
    let (new_state, reason) = match cb.status {
        CallbackStatus::Success => ("succeeded", None),
        CallbackStatus::Failed => (
            "failed",
            Some(reason.unwrap_or("payment declined").to_owned()),
        ),
    };
    let txn = Some(cb.transaction_id.as_str()).filter(|t| !t.is_empty());
    if !state
        .db
        .settle_payment(&cb.awakeable_id, new_state, txn, reason.as_deref())
        .await?
    {
        return Err(settled());
    }
    let delivered = match &reason {
        None => {
            let receipt = PaymentReceipt {
                transaction_id: cb.transaction_id.clone(),
                amount_cents: cb.amount,
            };
            state
                .restate
                .resolve_awakeable(&cb.awakeable_id, &receipt)
                .await
        }
        Some(reason) => {
            state
                .restate
                .reject_awakeable(&cb.awakeable_id, reason)
                .await
        }
    };
    if let Err(e) = delivered {
        // Put it back so the gateway's retry can deliver it.
        state.db.unsettle_payment(&cb.awakeable_id).await?;
        return Err(e.into());
    }
    Ok(Json(CallbackReply {
        order_id: payment.order_id,
        status: new_state,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_and_reject_forgeries() {
        let body = br#"{"a":1}"#;
        let header = sign("s3cret", 1_000, body);
        assert!(header.starts_with("t=1000,v1="));
        assert_eq!(verify("s3cret", Some(&header), body, 1_000), Ok(()));
        assert_eq!(verify("s3cret", Some(&header), body, 1_000 + 300), Ok(()));
        assert!(
            verify("s3cret", Some(&header), body, 1_000 + 301).is_err(),
            "too old"
        );
        assert!(
            verify("other", Some(&header), body, 1_000).is_err(),
            "wrong secret"
        );
        assert!(
            verify("s3cret", Some(&header), br#"{"a":2}"#, 1_000).is_err(),
            "changed body"
        );
        assert!(verify("s3cret", None, body, 1_000).is_err());
        assert!(verify("s3cret", Some("t=1000,v1=zz"), body, 1_000).is_err());
        assert!(verify("s3cret", Some("v1=00"), body, 1_000).is_err());
        let forged = header.replace("t=1000", "t=1001");
        assert!(
            verify("s3cret", Some(&forged), body, 1_000).is_err(),
            "timestamp is signed"
        );
    }
}
