//! The payment gateway, simulated: its callbacks are signed like Stripe's webhooks
//! (`X-Payment-Signature`), settle a pending payment exactly once and complete the
//! checkout's awakeable; and its Pay and Decline buttons, which post such callbacks to
//! our own route over HTTP exactly as a real gateway would.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use super::{App, AppError, AppResult};
use crate::auth::unix_now;
use crate::db::User;
use crate::db::orders::PaymentRequest;
use crate::domain::{Cents, PaymentState, Reason, TransactionId};
use crate::durable::ingress::CallError;
use crate::durable::user_session::PaymentReceipt;

/// How far a signature's timestamp may be from now.
pub const SIGNATURE_TOLERANCE_SECS: u64 = 300;

/// A gateway's callback, as it arrives.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Callback {
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
    fn parse(self) -> AppResult<Settlement> {
        let bad = |code: &'static str, msg: String| AppError::invalid(code, msg);
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

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    Success,
    Failed,
}

/// What the callback answers: the order and the payment's new state.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallbackReply {
    pub order_id: String,
    pub status: PaymentState,
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

/// Checks a callback's signature header against the raw body: 401 when it fails.
pub fn authenticate(app: &App, header: Option<&str>, body: &[u8]) -> AppResult<()> {
    verify(&app.gateway.secret, header, body, unix_now())
        .map_err(|why| AppError::Unauthorized("invalid_signature".into(), why.to_owned()))
}

/// Settles a pending payment from a (signed) callback and completes the awakeable.
/// Of two racing callbacks, or a callback and the timeout, exactly one wins the
/// conditional update in the gateway's record; the other gets 409.
#[tracing::instrument(skip_all)]
pub async fn settle(app: &App, callback: Callback) -> AppResult<CallbackReply> {
    let cb = callback.parse()?;
    let payment = app
        .db
        .payment_by_awakeable(&cb.awakeable_id)
        .await?
        .ok_or_else(|| {
            AppError::not_found(
                "unknown_payment",
                "no payment is waiting under this awakeable_id",
            )
        })?;
    if payment.state != PaymentState::Pending {
        // The same settlement again: the gateway retrying a callback whose answer it
        // lost. Deliver it once more, since the first answer may have been lost because
        // the web role died between recording and delivering it (Restate ignores a
        // second completion); then say it is settled.
        if cb.repeats(&payment) {
            deliver(app, &cb).await?;
        }
        return Err(already_settled());
    }
    if matches!(cb.outcome, Outcome::Paid(_)) && cb.amount != payment.amount_cents {
        let message = format!(
            "amount {} does not match the order total {}",
            cb.amount, payment.amount_cents
        );
        return Err(AppError::invalid("amount_mismatch", message));
    }
    let state = claim(app, &cb).await?;
    // The record stays settled even when Restate cannot be told now: it is what the
    // checkout reads when it wakes, and the gateway's retry delivers it again.
    deliver(app, &cb).await?;
    Ok(CallbackReply {
        order_id: payment.order_id,
        status: state,
    })
}

fn already_settled() -> AppError {
    AppError::conflict(
        "payment_settled",
        "this payment is already settled; a second callback changes nothing",
    )
}

impl Settlement {
    /// Whether the gateway's record already holds exactly this settlement.
    fn repeats(&self, payment: &PaymentRequest) -> bool {
        match &self.outcome {
            Outcome::Paid(txn) => {
                payment.state == PaymentState::Succeeded
                    && payment.transaction_id.as_deref() == Some(txn.as_str())
                    && payment.amount_cents == self.amount
            }
            Outcome::Declined(reason, _) => {
                payment.state == PaymentState::Failed
                    && payment.reason.as_deref() == Some(reason.as_str())
            }
        }
    }
}

/// Settles the payment in the gateway's record: the one conditional update that
/// decides between racing callbacks (and the checkout's timeout).
async fn claim(app: &App, cb: &Settlement) -> AppResult<PaymentState> {
    let (state, txn, reason) = match &cb.outcome {
        Outcome::Paid(txn) => (PaymentState::Succeeded, Some(txn.as_str()), None),
        Outcome::Declined(reason, txn) => (
            PaymentState::Failed,
            txn.as_ref().map(TransactionId::as_str),
            Some(reason.as_str()),
        ),
    };
    let won = app
        .db
        .settle_payment(&cb.awakeable_id, state, txn, reason)
        .await?;
    if won {
        Ok(state)
    } else {
        Err(already_settled())
    }
}

/// Completes the checkout's awakeable with the receipt, or fails it with the reason.
async fn deliver(app: &App, cb: &Settlement) -> Result<(), CallError> {
    match &cb.outcome {
        Outcome::Paid(txn) => {
            let receipt = PaymentReceipt {
                transaction_id: txn.to_string(),
                amount_cents: cb.amount,
            };
            app.restate
                .resolve_awakeable(&cb.awakeable_id, &receipt)
                .await
        }
        Outcome::Declined(reason, _) => {
            app.restate
                .reject_awakeable(&cb.awakeable_id, reason.as_str())
                .await
        }
    }
}

/// The simulated gateway: where it posts, and what it signs with.
#[derive(Clone, Debug)]
pub struct Gateway {
    pub(crate) secret: String,
    callback_url: String,
    callback_host: String,
    http: reqwest::Client,
}

impl Gateway {
    pub fn new(
        secret: String,
        callback_url: String,
        callback_host: String,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        Ok(Gateway {
            secret,
            callback_url,
            callback_host,
            http,
        })
    }
}

/// The user's payment that waits at the gateway, if any (their cart is locked).
pub async fn waiting(app: &App, user: &User) -> AppResult<Option<PaymentRequest>> {
    let Some(order_id) = app.db.pending_checkout(&user.username).await? else {
        return Ok(None);
    };
    let order_id = super::orders::parse_order_id(&order_id)?;
    let payment = app.db.payment_by_order(&order_id).await?;
    Ok(payment.filter(|p| p.state == PaymentState::Pending))
}

/// The customer pays (or, with a reason, declines) at the simulated gateway, which
/// posts its signed callback to our own route over HTTP. Only the order's owner pays.
/// Returns what happened, in words.
#[tracing::instrument(skip_all, fields(user = %user.username, order = id))]
pub async fn pay_at_gateway(
    app: &App,
    user: &User,
    id: &str,
    decline: Option<Reason>,
) -> AppResult<String> {
    let summary = super::orders::visible(app, user, id).await?;
    let order_id = super::orders::parse_order_id(&summary.order_id)?;
    if summary.user_id != user.username {
        return Err(AppError::forbidden(
            "not_your_order",
            format!("only the customer who placed order {order_id} pays for it"),
        ));
    }
    let payment = app
        .db
        .payment_by_order(&order_id)
        .await?
        .filter(|p| p.state == PaymentState::Pending)
        .ok_or_else(|| {
            AppError::conflict(
                "payment_settled",
                format!("no payment of order {order_id} is waiting"),
            )
        })?;
    let transaction_id = format!("txn-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut body = json!({
        "awakeable_id": payment.awakeable_id,
        "transaction_id": transaction_id,
        "amount": payment.amount_cents,
        "status": "success",
    });
    if let Some(reason) = &decline {
        body["status"] = "failed".into();
        body["reason"] = reason.as_str().into();
    }
    app.gateway.post(body.to_string()).await?;
    let amount = Cents::new(payment.amount_cents).unwrap_or_default();
    Ok(match decline {
        None => format!("Paid {amount} for order {order_id} (transaction {transaction_id})."),
        Some(reason) => format!("Declined the payment of order {order_id}: {reason}"),
    })
}

impl Gateway {
    /// Posts a signed callback to our own route, as a real gateway would; its error
    /// answer is passed on as the gateway saw it.
    async fn post(&self, body: String) -> AppResult<()> {
        let response = self
            .http
            .post(&self.callback_url)
            .header(reqwest::header::HOST, &self.callback_host)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                "x-payment-signature",
                sign(&self.secret, unix_now(), body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "the payment gateway cannot reach the callback");
                AppError::unavailable(
                    "gateway_unreachable",
                    "the payment gateway could not deliver its callback; try again",
                )
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let error: serde_json::Value = response.json().await.unwrap_or_default();
        let text = |key: &str| error["error"][key].as_str().map(str::to_owned);
        Err(AppError::from_status(
            status.as_u16(),
            text("code").unwrap_or_else(|| "payment_callback_failed".to_owned()),
            text("message").unwrap_or_else(|| format!("the payment callback answered {status}")),
        ))
    }
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
