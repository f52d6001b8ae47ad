//! Builds as Restate deployments. Every build registers its own deployment at
//! `{services url}/{build id}`; new invocations go to the newest, an invocation already
//! started stays pinned to the deployment it started on until it ends. A deployment
//! nothing is pinned to any more (drained) is removed. Registration never forces over
//! an existing deployment unless the operator asks for it.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::RestateClient;
use crate::build;

/// The state of one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// The newest: new invocations start here.
    Active,
    /// Older, with invocations still pinned to it.
    Draining,
    /// Older, nothing pinned any more: about to be removed.
    Drained,
}

impl DeploymentState {
    pub fn name(self) -> &'static str {
        match self {
            DeploymentState::Active => "active",
            DeploymentState::Draining => "draining",
            DeploymentState::Drained => "drained",
        }
    }
}

/// One Restate deployment of ShopFlow, as `GET /api/admin/deployments` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Deployment {
    pub deployment_id: String,
    /// The build it runs (from its URI); null for a deployment registered before
    /// builds had their own URIs.
    pub build: Option<String>,
    pub uri: String,
    /// Whether new invocations start on it.
    pub current: bool,
    /// Invocations pinned to it that have not finished.
    pub in_flight: u64,
    pub state: DeploymentState,
}

/// Why a registration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "Restate already has a deployment at this URI with other handlers (two builds with \
         one build id?); not replacing it, since the invocations pinned to it would replay on \
         this build's code. Give this build its own SHOPFLOW_BUILD_ID, or start with \
         --force-registration if losing those invocations is acceptable. Restate said: {0}"
    )]
    Conflict(String),
    #[error("Restate did not register the endpoint: {0}")]
    Failed(String),
}

/// The build a deployment URI names, if it names one.
pub fn build_of(uri: &str) -> Option<String> {
    let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let (_, path) = path.split_once('/')?;
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    build::is_id(last).then(|| last.to_owned())
}

#[derive(Deserialize)]
struct Listed {
    deployments: Vec<ListedDeployment>,
}

#[derive(Deserialize)]
struct ListedDeployment {
    id: String,
    /// HTTP deployments have one; Lambda ones do not.
    uri: Option<String>,
}

#[derive(Deserialize)]
struct Services {
    services: Vec<Service>,
}

#[derive(Deserialize)]
struct Service {
    deployment_id: String,
}

impl RestateClient {
    /// ShopFlow's deployments, the newest first, with what is pinned to each.
    pub async fn deployments(&self) -> anyhow::Result<Vec<Deployment>> {
        let listed: Listed = self.admin_get("deployments").await?;
        let services: Services = self.admin_get("services").await?;
        let pinned = self.pinned().await?;
        let mut all: Vec<Deployment> = listed
            .deployments
            .into_iter()
            .filter_map(|d| Some((d.id, d.uri?)))
            .map(|(id, uri)| {
                let current = services.services.iter().any(|s| s.deployment_id == id);
                let in_flight = pinned.get(&id).copied().unwrap_or(0);
                let state = match (current, in_flight) {
                    (true, _) => DeploymentState::Active,
                    (false, 0) => DeploymentState::Drained,
                    (false, _) => DeploymentState::Draining,
                };
                Deployment {
                    build: build_of(&uri),
                    deployment_id: id,
                    uri,
                    current,
                    in_flight,
                    state,
                }
            })
            .collect();
        all.sort_by_key(|d| (!d.current, d.state != DeploymentState::Draining));
        Ok(all)
    }

    /// Unfinished invocations per deployment they are pinned to.
    async fn pinned(&self) -> anyhow::Result<HashMap<String, u64>> {
        let rows = self
            .query(
                "SELECT pinned_deployment_id AS id, COUNT(*) AS n FROM sys_invocation \
                 WHERE status <> 'completed' AND pinned_deployment_id IS NOT NULL \
                 GROUP BY pinned_deployment_id",
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot read Restate's invocations: {e}"))?;
        Ok(rows
            .iter()
            .filter_map(|row| Some((row["id"].as_str()?.to_owned(), row["n"].as_u64()?)))
            .collect())
    }

    /// The id of the deployment Restate has at `uri`, if it has one.
    pub(super) async fn registered_at(&self, uri: &str) -> anyhow::Result<Option<String>> {
        let uri = uri.trim_end_matches('/');
        let listed: Listed = self.admin_get("deployments").await?;
        Ok(listed
            .deployments
            .into_iter()
            .find(|d| d.uri.as_deref().map(|u| u.trim_end_matches('/')) == Some(uri))
            .map(|d| d.id))
    }

    async fn admin_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let url = format!("{}/{path}", self.admin_url);
        let resp = self.http.get(&url).timeout(Duration::from_secs(2)).send();
        let resp = resp.await.with_context(|| format!("cannot reach {url}"))?;
        let resp = resp
            .error_for_status()
            .with_context(|| format!("GET {url}"))?;
        resp.json()
            .await
            .with_context(|| format!("GET {url}: unexpected answer"))
    }

    /// Registers the endpoint of one build at `uri`. Registering the same build again
    /// changes nothing. Restate refuses (409) a registration at a URI whose deployment
    /// serves other handlers; only `force` then replaces it, and every invocation pinned
    /// to it replays on the new code (a changed journal fails them): an operator's
    /// decision, never the default.
    pub async fn register_deployment(&self, uri: &str, force: bool) -> Result<(), Refused> {
        let url = format!("{}/deployments", self.admin_url);
        let resp = self
            .http
            .post(&url)
            .timeout(Duration::from_secs(30))
            .json(&serde_json::json!({ "uri": uri, "force": force }))
            .send()
            .await
            .map_err(|e| Refused::Failed(format!("cannot reach Restate's admin API: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let text = text.trim().to_owned();
        Err(if status == StatusCode::CONFLICT {
            Refused::Conflict(text)
        } else {
            Refused::Failed(format!("{status} {text}"))
        })
    }

    /// Makes the deployment at `uri` (this build's, just registered) the one new
    /// invocations go to. Registering a build Restate already has changes nothing, so a
    /// build started again after a newer one (a rollback) would stay behind it; its
    /// registration is then replaced by the same build's, which replays nothing on other
    /// code. True when it had to.
    pub async fn make_current(&self, uri: &str) -> anyhow::Result<bool> {
        let uri = uri.trim_end_matches('/');
        let Some(mine) = self.registered_at(uri).await? else {
            return Ok(false);
        };
        let services: Services = self.admin_get("services").await?;
        if services.services.iter().all(|s| s.deployment_id == mine) {
            return Ok(false);
        }
        self.register_deployment(uri, true).await?;
        Ok(true)
    }

    /// Removes a drained deployment. Restate refuses to remove one that still serves
    /// the newest revision of a service.
    pub async fn remove_deployment(&self, id: &str) -> anyhow::Result<()> {
        let url = format!("{}/deployments/{id}?force=true", self.admin_url);
        let resp = self
            .http
            .delete(&url)
            .timeout(Duration::from_secs(10))
            .send();
        let resp = resp.await.with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        bail!(
            "Restate refused to remove deployment {id}: {status} {}",
            text.trim()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_uri_names_its_build() {
        let uri = build::uri("http://127.0.0.1:9080/", "0123456789ab");
        assert_eq!(uri, "http://127.0.0.1:9080/0123456789ab");
        assert_eq!(build_of(&uri).as_deref(), Some("0123456789ab"));
        assert_eq!(build_of("http://lb:9080/shop/abc/").as_deref(), Some("abc"));
        assert_eq!(build_of("http://127.0.0.1:9080"), None);
        assert_eq!(build_of("http://127.0.0.1:9080/"), None);
    }
}
