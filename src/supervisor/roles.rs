//! The roles that run one part each: `shopflow web` (the UI and API against an external
//! Restate) and `shopflow services` (the Restate service endpoint).

use anyhow::Context;

use crate::app::App;
use crate::config::Config;
use crate::durable::RestateClient;
use crate::durable::router::Listener;
use crate::shutdown::Shutdown;
use crate::{net, web};

/// Opens the database (migrated, demo data seeded) and adds the load-test data when
/// `--seed bench` asks for it.
pub(super) async fn open_db(config: &Config) -> anyhow::Result<crate::db::Db> {
    let db = crate::db::Db::open(&config.database_url()).await?;
    if config.seed == crate::config::Seed::Bench {
        db.seed_bench().await?;
    }
    Ok(db)
}

/// Runs only the web role, against an external Restate.
pub async fn run_web(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let http = net::bind(config.http_addr, "SHOPFLOW_HTTP_ADDR")?;
    let db = open_db(&config).await?;
    let restate = RestateClient::new(config.ingress_url(), config.admin_url())?;
    let supervised = crate::app::Supervised::default();
    let app = App::new(
        web::settings(&config)?,
        db,
        restate,
        supervised,
        shutdown.clone(),
    )
    .await?;
    let state = web::AppState::new(&config, app, shutdown.clone());
    println!("ShopFlow web is running: http://{}", config.http_addr);
    web::serve(http, state, async move { shutdown.wait().await }).await?;
    Ok(())
}

/// Runs only the Restate service endpoint: on the services address, or on the socket
/// the supervisor gives an older build.
pub async fn run_services(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    crate::faults::arm(&config.data_dir, &config.hold_at)?;
    let listener = match &config.services_socket {
        Some(path) => {
            // A socket left by a killed run of this build.
            let _ = std::fs::remove_file(path);
            let listener = tokio::net::UnixListener::bind(path)
                .with_context(|| format!("cannot listen on {}", path.display()))?;
            Listener::Unix(listener)
        }
        None => Listener::Tcp(net::bind(config.services_addr, "SHOPFLOW_SERVICES_ADDR")?),
    };
    let db = crate::db::Db::open(&config.database_url()).await?;
    tracing::info!(addr = %config.services_addr, build = crate::build::id(), "service endpoint listening");
    let timings = crate::durable::Timings {
        payment_timeout: config.timings.payment_timeout,
        delivery_delay: config.timings.delivery_delay,
        return_parcel_window: config.timings.return_parcel_window,
    };
    let webhooks = crate::durable::WebhookSettings {
        retry: config.webhooks.retry.0.clone(),
        allow_private: config.webhooks.allow_private,
    };
    let identity_key = config.restate.identity_key.as_deref();
    let endpoint = crate::durable::endpoint(db, timings, &webhooks, identity_key)?;
    crate::durable::serve(endpoint, listener, config.builds_dir(), shutdown.wait()).await;
    Ok(())
}
