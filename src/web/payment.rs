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
use crate::auth::unix_now;
use crate::domain::{Reason, TransactionId};
use crate::durable::user_session::PaymentReceipt;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/payment/callback", post(callback))
}

/// How far a signature's timestamp may be from now.
pub const SIGNATURE_TOLERANCE_SECS: u64 = 300;

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

/// A callback whose fields have been checked.
struct Settlement {
    awakeable_id: String,
    amount: i64,
    outcome: Outcome,
}

enum Outcome {
    Paid(TransactionId),
    /// A decline, with the gateway's transaction id when it sent one.
    Declined(Reason, Option<TransactionId>),
}

impl Callback {
    fn parse(self) -> ApiResult<Settlement> {
        let bad = |code: &str, msg: String| ApiError::bad_request(code, msg);
        let id_ok = (1..=256).contains(&self.awakeable_id.len())
            && self
                .awakeable_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            return Err(bad(
                "invalid_awakeable_id",
                "awakeable_id must be 1-256 characters of letters, digits, '_' and '-'".into(),
            ));
        }
        // A decline may come without a transaction id; a payment may not.
        let transaction_id = match self.transaction_id.as_str() {
            "" => None,
            text => Some(TransactionId::parse(text).map_err(|e| bad("invalid_transaction_id", e))?),
        };
        let reason = match self.reason.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(Reason::parse(text).map_err(|e| bad("invalid_reason", e))?),
        };
        let outcome = match (self.status, transaction_id) {
            (CallbackStatus::Success, Some(txn)) => Outcome::Paid(txn),
            (CallbackStatus::Success, None) => {
                return Err(bad(
                    "invalid_transaction_id",
                    "a successful payment needs a transaction_id".into(),
                ));
            }
            (CallbackStatus::Failed, txn) => Outcome::Declined(
                reason.unwrap_or_else(|| Reason::parse("payment declined").expect("valid")),
                txn,
            ),
        };
        Ok(Settlement {
            awakeable_id: self.awakeable_id,
            amount: self.amount,
            outcome,
        })
    }
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
    let hex = hex::encode(mac.finalize().into_bytes());
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
                signatures.push(hex::decode(hex).map_err(|_| "malformed signature")?)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("signature without a valid timestamp")?;
    // abs_diff: no overflow whatever the timestamp says.
    if now.abs_diff(timestamp) > SIGNATURE_TOLERANCE_SECS {
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

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<CallbackReply>> {
    let header = headers
        .get("x-payment-signature")
        .and_then(|v| v.to_str().ok());
    verify(&state.webhook_secret, header, &body, unix_now())
        .map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", why))?;
    let cb = parse_json::<Callback>(&body)?.parse()?;

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
    if matches!(cb.outcome, Outcome::Paid(_)) && cb.amount != payment.amount_cents {
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
    let (new_state, txn, reason) = match &cb.outcome {
        Outcome::Paid(txn) => ("succeeded", Some(txn.as_str()), None),
        Outcome::Declined(reason, txn) => (
            "failed",
            txn.as_ref().map(TransactionId::as_str),
            Some(reason.as_str()),
        ),
    };
    if !state
        .db
        .settle_payment(&cb.awakeable_id, new_state, txn, reason)
        .await?
    {
        return Err(settled());
    }
    let delivered = match &cb.outcome {
        Outcome::Paid(txn) => {
            let receipt = PaymentReceipt {
                transaction_id: txn.to_string(),
                amount_cents: cb.amount,
            };
            state
                .restate
                .resolve_awakeable(&cb.awakeable_id, &receipt)
                .await
        }
        Outcome::Declined(reason, _) => {
            state
                .restate
                .reject_awakeable(&cb.awakeable_id, reason.as_str())
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
        // Extreme timestamps are refused, never an overflow.
        for t in [i64::MIN, i64::MAX, -1] {
            let header = sign("s3cret", t, body);
            assert!(verify("s3cret", Some(&header), body, 1_000).is_err(), "{t}");
            assert!(verify("s3cret", Some(&header), body, i64::MIN).is_err() || t == i64::MIN);
        }
    }
}
