//! The HTTP client for Restate's ingress (calling durable handlers) and admin API
//! (health, registering the service endpoint). Plain reqwest over loopback.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::errors::split_code;

/// Calls Restate on behalf of the web role. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RestateClient {
    http: reqwest::Client,
    ingress_url: String,
    admin_url: String,
}

/// Why a durable call did not return a value.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The handler refused with a terminal error; `status` is its code.
    #[error("{message}")]
    Refused {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Restate could not be reached or did not answer in time.
    #[error("Restate is unavailable: {0}")]
    Unavailable(String),
}

#[derive(serde::Deserialize)]
struct IngressError {
    #[serde(default)]
    message: String,
}

impl RestateClient {
    /// How long a web request waits for a durable handler before giving up on it.
    pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

    pub fn new(ingress_url: String, admin_url: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            ingress_url: ingress_url.trim_end_matches('/').to_owned(),
            admin_url: admin_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Calls `{service}/{key}/{handler}` and waits for its JSON answer.
    pub async fn call<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        service: &str,
        key: &str,
        handler: &str,
        input: Option<&I>,
    ) -> Result<O, CallError> {
        let url = format!("{}/{service}/{key}/{handler}", self.ingress_url);
        let mut req = self.http.post(&url).timeout(Self::CALL_TIMEOUT);
        // A handler without input wants no body and no content type at all.
        if let Some(body) = input {
            req = req.json(body);
        }
        self.exchange(req, service, handler).await
    }

    /// Starts `{service}/{key}/{handler}` without waiting for it to finish. The
    /// idempotency key makes a repeated send return the same invocation. Returns the
    /// invocation id.
    pub async fn send<I: Serialize + ?Sized>(
        &self,
        service: &str,
        key: &str,
        handler: &str,
        input: &I,
        idempotency_key: &str,
    ) -> Result<String, CallError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Sent {
            invocation_id: String,
        }
        let url = format!("{}/{service}/{key}/{handler}/send", self.ingress_url);
        let req = self
            .http
            .post(&url)
            .timeout(Self::CALL_TIMEOUT)
            .header("idempotency-key", idempotency_key)
            .json(input);
        let sent: Sent = self.exchange(req, service, handler).await?;
        Ok(sent.invocation_id)
    }

    /// The result of an invocation started with an idempotency key: `None` while it runs.
    pub async fn output<O: DeserializeOwned>(
        &self,
        invocation_id: &str,
    ) -> Result<Option<O>, CallError> {
        let url = format!(
            "{}/restate/invocation/{invocation_id}/output",
            self.ingress_url
        );
        let req = self.http.get(&url).timeout(Self::CALL_TIMEOUT);
        match self.exchange(req, "invocation", "output").await {
            Ok(o) => Ok(Some(o)),
            // Restate's "exists but has not completed yet".
            Err(CallError::Refused { status: 470, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits for an invocation started with an idempotency key to finish; its result.
    pub async fn attach<O: DeserializeOwned>(&self, invocation_id: &str) -> Result<O, CallError> {
        let url = format!(
            "{}/restate/invocation/{invocation_id}/attach",
            self.ingress_url
        );
        let req = self.http.get(&url).timeout(Self::CALL_TIMEOUT);
        self.exchange(req, "invocation", "attach").await
    }

    /// Completes an awakeable with a value.
    pub async fn resolve_awakeable<T: Serialize + ?Sized>(
        &self,
        id: &str,
        value: &T,
    ) -> Result<(), CallError> {
        let url = format!("{}/restate/awakeables/{id}/resolve", self.ingress_url);
        let req = self.http.post(&url).timeout(Self::CALL_TIMEOUT).json(value);
        self.exchange_empty(req).await
    }

    /// Fails an awakeable; the waiting handler sees a terminal error with `reason`.
    pub async fn reject_awakeable(&self, id: &str, reason: &str) -> Result<(), CallError> {
        let url = format!("{}/restate/awakeables/{id}/reject", self.ingress_url);
        let req = self
            .http
            .post(&url)
            .timeout(Self::CALL_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(reason.to_owned());
        self.exchange_empty(req).await
    }

    async fn exchange<O: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        service: &str,
        handler: &str,
    ) -> Result<O, CallError> {
        let body = self.exchange_bytes(req).await?;
        // A handler returning nothing answers with an empty body.
        let body: &[u8] = if body.is_empty() { b"null" } else { &body };
        serde_json::from_slice(body).map_err(|e| {
            CallError::Unavailable(format!("unexpected answer from {service}/{handler}: {e}"))
        })
    }

    async fn exchange_empty(&self, req: reqwest::RequestBuilder) -> Result<(), CallError> {
        self.exchange_bytes(req).await.map(drop)
    }

    /// Sends a request; a non-2xx answer becomes `CallError::Refused` with the
    /// handler's code split off the message.
    async fn exchange_bytes(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<axum::body::Bytes, CallError> {
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| CallError::Unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_slice::<IngressError>(&body)
            .map(|e| e.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
        let (code, message) = split_code(&message);
        Err(CallError::Refused {
            status: status.as_u16(),
            code: code.map(str::to_owned),
            message: message.to_owned(),
        })
    }

    /// Rows from Restate's introspection tables (`sys_invocation`, `state`, ...).
    pub async fn query(&self, sql: &str) -> Result<Vec<serde_json::Value>, CallError> {
        #[derive(serde::Deserialize)]
        struct Rows {
            rows: Vec<serde_json::Value>,
        }
        let req = self
            .http
            .post(format!("{}/query", self.admin_url))
            .timeout(Duration::from_secs(5))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&serde_json::json!({ "query": sql }));
        let rows: Rows = self.exchange(req, "admin", "query").await?;
        Ok(rows.rows)
    }

    /// True when the ingress answers its health check.
    pub async fn ingress_healthy(&self) -> bool {
        self.get_ok(&format!("{}/restate/health", self.ingress_url))
            .await
    }

    /// True when the admin API answers its health check.
    pub async fn admin_healthy(&self) -> bool {
        self.get_ok(&format!("{}/health", self.admin_url)).await
    }

    async fn get_ok(&self, url: &str) -> bool {
        matches!(
            self.http.get(url).timeout(Duration::from_secs(2)).send().await,
            Ok(r) if r.status().is_success()
        )
    }

    /// Registers the service endpoint at `uri`. A changed set of handlers is refused by
    /// Restate with 409 on a plain registration; then the registration is forced.
    pub async fn register_deployment(&self, uri: &str) -> anyhow::Result<()> {
        let url = format!("{}/deployments", self.admin_url);
        for force in [false, true] {
            let resp = self
                .http
                .post(&url)
                .timeout(Duration::from_secs(30))
                .json(&serde_json::json!({ "uri": uri, "force": force }))
                .send()
                .await
                .with_context(|| {
                    format!("cannot reach Restate's admin API at {}", self.admin_url)
                })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let text = resp.text().await.unwrap_or_default();
            if status != StatusCode::CONFLICT || force {
                bail!(
                    "Restate refused to register {uri}: {status} {}",
                    text.trim()
                );
            }
        }
        unreachable!("the forced registration either succeeds or fails")
    }
}
