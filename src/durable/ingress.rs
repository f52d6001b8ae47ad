//! How the web role reaches Restate: the SDK's generated, typed ingress clients for
//! the durable handlers (`UserSessionIngressClient`, `OrderFulfillmentWorkflowIngressClient`)
//! over the reqwest client already in use, and plain HTTP only where the SDK has no
//! client: resolving awakeables, and the admin API (health, registration, queries).

use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{Request as HttpRequest, Response as HttpResponse};
use reqwest::StatusCode;
use restate_sdk::ingress::{CallResponse, ClientError, RequestExecutor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::errors::split_code;
use super::returns::ReturnWorkflowIngressClient;
use super::user_session::UserSessionIngressClient;
use super::webhooks::WebhookQueueIngressClient;
use super::workflow::OrderFulfillmentWorkflowIngressClient;

/// Carries the typed clients' requests: reqwest over loopback, with the call timeout.
#[derive(Clone)]
pub struct Executor(reqwest::Client);

impl RequestExecutor for Executor {
    type Error = reqwest::Error;

    async fn execute(
        &self,
        request: HttpRequest<Bytes>,
    ) -> Result<HttpResponse<Bytes>, Self::Error> {
        let mut request: reqwest::Request = request.try_into()?;
        crate::telemetry::inject(request.headers_mut());
        let response = self.0.execute(request).await?;
        let (status, headers) = (response.status(), response.headers().clone());
        let mut reply = HttpResponse::new(response.bytes().await?);
        *reply.status_mut() = status;
        *reply.headers_mut() = headers;
        Ok(reply)
    }
}

/// The typed ingress client's transport.
pub type Ingress = restate_sdk::ingress::Client<Executor>;

/// Calls Restate on behalf of the web role. Cheap to clone.
#[derive(Clone)]
pub struct RestateClient {
    pub(super) http: reqwest::Client,
    /// HTTP/2 without TLS, as Restate calls the service endpoint (its health check).
    h2: reqwest::Client,
    ingress: Ingress,
    ingress_url: String,
    pub(super) admin_url: String,
}

impl std::fmt::Debug for RestateClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RestateClient({}, {})", self.ingress_url, self.admin_url)
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Executor")
    }
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

/// A refusal from its answer: the status, and the handler's code split off the message.
/// A gateway error that is not Restate's JSON (a balancer in front of the ingress whose
/// Restate node just died) is a passing unavailability, not a refusal.
fn refused(status: StatusCode, body: &[u8]) -> CallError {
    let message = match serde_json::from_slice::<IngressError>(body) {
        Ok(e) => e.message,
        Err(_) if matches!(status.as_u16(), 502..=504) => {
            return CallError::Unavailable(format!("the ingress answered {status}"));
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let (code, message) = split_code(&message);
    CallError::Refused {
        status: status.as_u16(),
        code: code.map(str::to_owned),
        message: message.to_owned(),
    }
}

impl From<ClientError> for CallError {
    fn from(err: ClientError) -> CallError {
        match err {
            ClientError::Status { status, response } => refused(status, response.body()),
            ClientError::Transport { source } => CallError::Unavailable(source.to_string()),
            other => CallError::Unavailable(other.to_string()),
        }
    }
}

/// The body of a typed call's answer, or why there is none.
pub fn body<Res: restate_sdk::serde::Deserialize>(
    answer: Result<CallResponse<Executor, Res>, ClientError>,
) -> Result<Res, CallError> {
    Ok(answer?.into_body()?)
}

/// The request, saying that `user` asks for it.
pub fn acting<Req, Res>(
    request: restate_sdk::ingress::Request<Executor, Req, Res>,
    user: &str,
) -> restate_sdk::ingress::Request<Executor, Req, Res> {
    match reqwest::header::HeaderValue::from_str(user) {
        Ok(value) => request.header(
            reqwest::header::HeaderName::from_static(super::ACTOR_HEADER),
            value,
        ),
        Err(_) => request,
    }
}

/// The request with the client's idempotency key, if it gave one: Restate then runs
/// it once, and every try with the same key gets that run's answer.
pub fn keyed<Req, Res>(
    request: restate_sdk::ingress::Request<Executor, Req, Res>,
    key: Option<String>,
) -> restate_sdk::ingress::Request<Executor, Req, Res> {
    match key {
        Some(key) => request.idempotency_key(key),
        None => request,
    }
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
        let calls = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            .timeout(Self::CALL_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        let ingress_url = ingress_url.trim_end_matches('/').to_owned();
        let ingress = Ingress::new(
            ingress_url.parse().context("bad Restate ingress URL")?,
            Executor(calls),
        )
        .context("bad Restate ingress URL")?;
        let h2 = reqwest::Client::builder()
            .http2_prior_knowledge()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            h2,
            ingress,
            ingress_url,
            admin_url: admin_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The `UserSession` of `user`: their cart and checkout.
    pub fn user_session(&self, user: &str) -> UserSessionIngressClient<Executor> {
        UserSessionIngressClient::from_client(self.ingress.clone(), user)
    }

    /// The fulfillment workflow of `order_id`.
    pub fn workflow(&self, order_id: &str) -> OrderFulfillmentWorkflowIngressClient<Executor> {
        OrderFulfillmentWorkflowIngressClient::from_client(self.ingress.clone(), order_id)
    }

    /// The workflow of return `return_id`.
    pub fn return_workflow(&self, return_id: &str) -> ReturnWorkflowIngressClient<Executor> {
        ReturnWorkflowIngressClient::from_client(self.ingress.clone(), return_id)
    }

    /// The delivery queue of webhook subscription `webhook_id`.
    pub fn webhook_queue(&self, webhook_id: &str) -> WebhookQueueIngressClient<Executor> {
        WebhookQueueIngressClient::from_client(self.ingress.clone(), webhook_id)
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
        Err(refused(status, &body))
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

    /// Whether Restate has a deployment at `uri` and the endpoint there answers its
    /// HTTP/2 health check. The endpoint checks Restate's request identity, so this
    /// unsigned probe may be refused (401): an answer all the same.
    pub async fn endpoint_ready(&self, uri: &str) -> bool {
        let uri = uri.trim_end_matches('/');
        self.registered_at(uri).await.is_ok_and(|id| id.is_some())
            && self
                .h2
                .get(format!("{uri}/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok()
    }

    async fn get_ok(&self, url: &str) -> bool {
        matches!(
            self.http.get(url).timeout(Duration::from_secs(2)).send().await,
            Ok(r) if r.status().is_success()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balancers_gateway_error_is_unavailable_a_handlers_is_refused() {
        let html = b"<html><body><h1>502 Bad Gateway</h1></body></html>";
        for status in [502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(refused(status, html), CallError::Unavailable(_)));
        }
        let terminal = br#"{"message": "shipping failed after 3 attempts: down"}"#;
        assert!(matches!(
            refused(StatusCode::BAD_GATEWAY, terminal),
            CallError::Refused { status: 502, .. }
        ));
        assert!(matches!(
            refused(StatusCode::INTERNAL_SERVER_ERROR, b"oops"),
            CallError::Refused { status: 500, .. }
        ));
    }
}
