//! `WebhookQueue`: one virtual object per subscriber, so its deliveries go out one at a
//! time, oldest first. Each delivery is tried until a 2xx answer or the end of the
//! retry schedule (`SHOPFLOW_WEBHOOK_RETRY`); the waits between tries are durable
//! timers, so a subscriber that is down for hours gets every event afterwards, in order.
//! A try cut off by a crash is made again: delivery is at least once, and every try of
//! an event carries the same `webhook-id` for the subscriber to drop repeats.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clock::now_unix_ms;
use crate::db::Db;
use crate::db::webhooks::{AttemptRecord, PendingDelivery};
use crate::domain::webhooks::{check_url, is_public, literal_ip, signature};
use crate::faults;

/// How deliveries are made: the waits between tries, and whether loopback and private
/// addresses may be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub retry: Vec<Duration>,
    pub allow_private: bool,
}

pub struct WebhookQueue {
    db: Db,
    sender: Sender,
    retry: Vec<Duration>,
}

impl WebhookQueue {
    pub fn new(db: Db, settings: &WebhookSettings) -> anyhow::Result<Self> {
        Ok(Self {
            db,
            sender: Sender::new(settings.allow_private)?,
            retry: settings.retry.clone(),
        })
    }
}

/// How many tries one `Drain` makes before it hands on to a fresh invocation of itself,
/// so that no journal grows without end under a long backlog.
const TRIES_PER_DRAIN: usize = 100;

/// What one try did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Tried {
    /// Nothing is pending.
    Idle,
    /// Delivered, or failed for good (the schedule ended, the subscription is gone).
    Done,
    /// Refused or unanswered: tried `tries` times so far, to be tried again.
    Again { delivery_id: String, tries: usize },
}

#[restate_sdk::object]
impl WebhookQueue {
    /// Delivers the subscriber's pending deliveries, oldest first, each until it is
    /// delivered or its schedule ends; answers how many it finished. Calling it again
    /// (the dispatcher does for every new event) finds the rest, or nothing.
    #[handler(name = "Drain")]
    async fn drain(&self, ctx: ObjectContext<'_>) -> Result<u32, HandlerError> {
        let webhook_id = ctx.key().to_owned();
        let mut finished = 0;
        let mut retrying: Option<(String, usize)> = None;
        for _ in 0..TRIES_PER_DRAIN {
            let tried = ctx
                .run(|| self.try_next(&webhook_id, retrying.clone()))
                .name("post_webhook")
                .await?
                .into_inner();
            match tried {
                Tried::Idle => return Ok(finished),
                Tried::Done => {
                    finished += 1;
                    retrying = None;
                }
                Tried::Again { delivery_id, tries } => {
                    ctx.sleep(self.retry[tries - 1]).await?;
                    retrying = Some((delivery_id, tries));
                }
            }
        }
        ctx.object_client::<WebhookQueueClient>(&webhook_id)
            .drain()
            .send();
        Ok(finished)
    }
}

impl WebhookQueue {
    /// One try of the oldest pending delivery, recorded on it. `retrying` is the
    /// delivery the last try was for and how often it was tried, so the schedule goes on
    /// where it was (an older delivery sent again meanwhile starts its own).
    async fn try_next(
        &self,
        webhook_id: &str,
        retrying: Option<(String, usize)>,
    ) -> Result<Json<Tried>, HandlerError> {
        let Some(delivery) = self.db.next_webhook_delivery(webhook_id).await? else {
            return Ok(Json(Tried::Idle));
        };
        let tries = match retrying {
            Some((id, tries)) if id == delivery.delivery_id => tries + 1,
            _ => 1,
        };
        let last = tries > self.retry.len();
        let posted = self.sender.post(&delivery).await;
        let record = match &posted {
            Ok(code) if (200..300).contains(code) => AttemptRecord::Delivered {
                status_code: i64::from(*code),
            },
            Ok(code) => AttemptRecord::Failed {
                status_code: Some(i64::from(*code)),
                error: "the subscriber did not answer 2xx",
                last,
            },
            Err(error) => AttemptRecord::Failed {
                status_code: None,
                error,
                last,
            },
        };
        self.db
            .record_webhook_attempt(&delivery.delivery_id, &record)
            .await?;
        faults::point("post_webhook").await;
        Ok(Json(match record {
            AttemptRecord::Failed { last: false, .. } => Tried::Again {
                delivery_id: delivery.delivery_id,
                tries,
            },
            _ => Tried::Done,
        }))
    }
}

/// Posts deliveries: no redirects, no proxy, 5 s to connect and 10 s in all, the
/// answer's body never read; unless private addresses are allowed, a host is reached
/// only at its public addresses.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    pub fn new(allow_private: bool) -> anyhow::Result<Sender> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("ShopFlow-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Sender {
            client: builder.build()?,
            allow_private,
        })
    }

    /// Posts the delivery's payload, signed for this try; the answer's status code.
    pub async fn post(&self, delivery: &PendingDelivery) -> Result<u16, String> {
        let url = check_url(&delivery.url)?;
        if let Some(ip) = literal_ip(&url)
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(format!("{ip} is not a public address"));
        }
        let timestamp = now_unix_ms() / 1000;
        let body = delivery.payload.clone().into_bytes();
        let signed = signature(&delivery.secret, &delivery.message_id, timestamp, &body);
        let answer = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(answer.status().as_u16())
    }
}

/// An error and its causes in one line (reqwest's own says only "error sending request").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(300).collect()
}

/// Resolves a host to its public addresses only: a name that leads to loopback or a
/// private network (or is made to, between two tries) is not reached.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                let why = format!(
                    "{host} has no public address (SHOPFLOW_WEBHOOK_ALLOW_PRIVATE=true allows private ones)"
                );
                return Err(why.into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
