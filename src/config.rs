//! Command line and environment configuration: every flag is also an env var.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clock::{format_duration, parse_duration};

/// ShopFlow: durable e-commerce order fulfillment on Restate.
///
/// The server's settings are flags of `shopflow` itself (before any subcommand) or
/// `SHOPFLOW_*` environment variables; every subcommand reads them too.
#[derive(Debug, Clone, Parser)]
#[command(name = "shopflow", about, disable_version_flag = true)]
pub struct Cli {
    /// Print the version and the build id (of the executable), then exit.
    #[arg(short = 'V', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

/// A subcommand: which part of ShopFlow this process runs, or an operator's command.
/// Without one, `shopflow` runs everything.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Only the Restate service endpoint (HTTP/2, called by restate-server).
    Services,
    /// Only the web role (UI + JSON API) against an already running Restate.
    Web,
    /// Manage users and their passwords (in the database of --data-dir).
    #[command(subcommand)]
    User(UserCommand),
    /// Print a bearer token for USER (`Authorization: Bearer <token>`).
    Token {
        user: String,
        /// How long the token lasts.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: Duration,
    },
    /// Print the request-identity key pair of --data-dir (made on first use) as
    /// environment settings: the public key for `shopflow services`, the private key
    /// file for every restate-server node.
    Identity,
    /// Back up Restate's data, the SQLite database, the secrets and the kept builds
    /// into DIR (new or empty). restate-server stops for the moment its data is copied.
    Backup { dir: PathBuf },
    /// Fill the (new or empty) data dir from a backup in DIR; then start ShopFlow with
    /// the same addresses as the original.
    Restore { dir: PathBuf },
    /// List ShopFlow's Restate deployments (one per build), what is still pinned to
    /// each, and which are active, draining or drained.
    Deployments,
    /// Settle ORDER_ID's pending payment as the payment gateway would: a signed
    /// callback to the running web role.
    Pay {
        order_id: String,
        /// Decline the payment with this reason instead of paying.
        #[arg(long)]
        decline: Option<String>,
        /// Print the signed curl command instead of sending it.
        #[arg(long)]
        curl: bool,
    },
}

/// `shopflow user …`. Passwords are read from the terminal without echo, or as the
/// first line of standard input when it is not a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Add a user, with a password unless --no-password.
    Add {
        user: String,
        /// Display name (defaults to the user name).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        email: String,
        /// Give the user the admin role.
        #[arg(long)]
        admin: bool,
        /// No password: the user can sign in only in demo mode or with `shopflow token`.
        #[arg(long)]
        no_password: bool,
    },
    /// Set a user's password; every token and session issued before ends.
    SetPassword { user: String },
    /// Give a user another role; their sessions end.
    SetRole { user: String, role: RoleName },
    /// List a user's open sessions of the page; --revoke ends them all.
    Sessions {
        user: String,
        #[arg(long)]
        revoke: bool,
    },
    /// List users, their roles and whether they have a password.
    List,
}

/// A role, as `shopflow user set-role` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleName {
    Customer,
    Admin,
}

/// The reference data a start puts into the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Seed {
    /// The catalog and the demo users.
    Demo,
    /// The demo data, a thousand shoppers (`shopper-0001` … `shopper-1000`) and stock
    /// no load test sells out: for benchmarks only.
    Bench,
}

/// How log lines are written (to stderr); `RUST_LOG` chooses which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Whether ShopFlow starts restate-server itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestateMode {
    /// Start restate-server as a child process.
    Spawn,
    /// Use a Restate server that is already running at the given addresses.
    External,
}

#[derive(Debug, Clone, PartialEq, Args)]
pub struct Config {
    /// Address of the web UI, JSON API and SSE streams.
    #[arg(long, env = "SHOPFLOW_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// Address of the Restate service endpoint.
    #[arg(long, env = "SHOPFLOW_SERVICES_ADDR", default_value = "127.0.0.1:9080")]
    pub services_addr: SocketAddr,

    /// Directory for the SQLite file (unless `--database-url` names another database),
    /// secrets, and Restate's data.
    #[arg(long, env = "SHOPFLOW_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://…` (default: sqlite://{data dir}/shopflow.db) or
    /// `postgres://…` (shared by replicas).
    #[arg(long, env = "SHOPFLOW_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub restate: RestateSettings,

    /// URL Restate is told to call for the service endpoint; defaults to http://{services addr}.
    /// Each build registers its own deployment at `{this URL}/{build id}`.
    #[arg(long, env = "SHOPFLOW_SERVICES_URL")]
    pub services_url: Option<String>,

    /// Listen on this Unix socket instead of the services address: how the supervisor
    /// runs an older build's endpoint (`<data dir>/builds/<id>/endpoint.sock`).
    #[arg(long, env = "SHOPFLOW_SERVICES_SOCKET", hide = true)]
    pub services_socket: Option<PathBuf>,

    /// DANGEROUS: when Restate already has a deployment at this build's URI with other
    /// handlers (two builds given one SHOPFLOW_BUILD_ID), replace it. Every invocation
    /// pinned to it then replays on this build's code, and a changed journal fails it.
    #[arg(long, env = "SHOPFLOW_FORCE_REGISTRATION", default_value = "false", value_parser = parse_bool,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub force_registration: bool,

    #[command(flatten)]
    pub timings: Timings,

    /// Shared secret that signs payment callbacks; generated into the data dir
    /// (`webhook.secret`, mode 0600) when unset. Callbacks are always signed.
    #[arg(long, env = "SHOPFLOW_PAYMENT_WEBHOOK_SECRET", hide_env_values = true)]
    pub payment_webhook_secret: Option<String>,

    /// Demo mode: accept the bare `X-User-ID` header as the caller's identity and let
    /// the page's user picker sign in without a password. Off: only tokens and session
    /// cookies identify a user.
    #[arg(long, env = "SHOPFLOW_TRUST_USER_HEADER", default_value = "false", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub trust_user_header: bool,

    /// `Host` values the web role answers (comma-separated `host[:port]`); others are
    /// refused, so a foreign name resolving to this machine (DNS rebinding) gets
    /// nothing. Defaults to the HTTP address, `localhost:{port}` and `127.0.0.1:{port}`.
    #[arg(long, env = "SHOPFLOW_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,

    #[command(flatten)]
    pub limits: Limits,

    #[command(flatten)]
    pub webhooks: Webhooks,

    /// Fault injection (comma-separated hold points, see `faults::POINTS`): the service
    /// endpoint stops for good the first time it passes each, for a chaos run to kill
    /// a process at that moment.
    #[arg(long, env = "SHOPFLOW_HOLD_AT", value_delimiter = ',', hide = true)]
    pub hold_at: Vec<String>,

    /// Reference data: `demo`, or `bench` for load tests (see `Seed`).
    #[arg(long, env = "SHOPFLOW_SEED", value_enum, default_value = "demo")]
    pub seed: Seed,

    /// Log lines as `pretty` text or `json` objects; `RUST_LOG` filters them
    /// (default `info,sqlx=warn`).
    #[arg(
        long,
        env = "SHOPFLOW_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
}

/// Restate: whether ShopFlow starts it, where it listens, how its calls are signed.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct RestateSettings {
    /// `spawn` starts restate-server as a child; `external` uses a running one.
    #[arg(
        long = "restate",
        env = "SHOPFLOW_RESTATE",
        value_enum,
        default_value = "spawn"
    )]
    pub mode: RestateMode,

    /// Restate ingress address (where ShopFlow calls its durable services).
    #[arg(
        long = "restate-ingress-addr",
        env = "SHOPFLOW_RESTATE_INGRESS_ADDR",
        default_value = "127.0.0.1:18080"
    )]
    pub ingress_addr: SocketAddr,

    /// Restate admin API address (registration, introspection, Restate UI).
    #[arg(
        long = "restate-admin-addr",
        env = "SHOPFLOW_RESTATE_ADMIN_ADDR",
        default_value = "127.0.0.1:9070"
    )]
    pub admin_addr: SocketAddr,

    /// Restate node-to-node address.
    #[arg(
        long = "restate-node-addr",
        env = "SHOPFLOW_RESTATE_NODE_ADDR",
        default_value = "127.0.0.1:5122"
    )]
    pub node_addr: SocketAddr,

    /// The public key (`publickeyv1_…`) Restate signs its requests to the service
    /// endpoint with; requests without a valid signature are refused. With a spawned
    /// restate-server a key pair is generated into the data dir and this is set.
    #[arg(long = "restate-identity-key", env = "SHOPFLOW_RESTATE_IDENTITY_KEY")]
    pub identity_key: Option<String>,

    /// Path of the restate-server binary; defaults to the npm-installed one.
    #[arg(long = "restate-server-bin", env = "RESTATE_SERVER_BIN")]
    pub server_bin: Option<PathBuf>,
}

/// How long the durable timers wait, and the windows of returns.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct Timings {
    /// How long the delivery timer of an order waits.
    #[arg(long, env = "SHOPFLOW_DELIVERY_DELAY", default_value = "5s", value_parser = parse_duration)]
    pub delivery_delay: Duration,

    /// How long a checkout waits for the payment gateway.
    #[arg(long, env = "SHOPFLOW_PAYMENT_TIMEOUT", default_value = "15m", value_parser = parse_duration)]
    pub payment_timeout: Duration,

    /// How long after its delivery an order may be returned.
    #[arg(long, env = "SHOPFLOW_RETURN_WINDOW", default_value = "30d", value_parser = parse_duration)]
    pub return_window: Duration,

    /// How long an approved return waits for its parcel before it expires.
    #[arg(long, env = "SHOPFLOW_RETURN_PARCEL_WINDOW", default_value = "14d", value_parser = parse_duration)]
    pub return_parcel_window: Duration,
}

/// Outbound webhooks: how deliveries are retried and where they may go.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct Webhooks {
    /// The waits between a delivery's tries (comma-separated durations); after the
    /// last one a delivery is `failed`.
    #[arg(long = "webhook-retry", env = "SHOPFLOW_WEBHOOK_RETRY", default_value = "5s,30s,2m,10m,1h,6h,24h", value_parser = parse_schedule)]
    pub retry: RetrySchedule,

    /// Let subscriptions reach loopback and private addresses (a receiver on this
    /// machine or the local network); refused otherwise.
    #[arg(long = "webhook-allow-private", env = "SHOPFLOW_WEBHOOK_ALLOW_PRIVATE", default_value = "false", value_parser = parse_bool,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub allow_private: bool,
}

impl Timings {
    fn to_env(&self) -> [(&'static str, String); 4] {
        [
            ("SHOPFLOW_DELIVERY_DELAY", self.delivery_delay),
            ("SHOPFLOW_PAYMENT_TIMEOUT", self.payment_timeout),
            ("SHOPFLOW_RETURN_WINDOW", self.return_window),
            ("SHOPFLOW_RETURN_PARCEL_WINDOW", self.return_parcel_window),
        ]
        .map(|(key, d)| (key, format_duration(d)))
    }
}

impl Limits {
    fn to_env(&self) -> [(&'static str, String); 3] {
        [
            ("SHOPFLOW_MAX_IN_FLIGHT", self.max_in_flight),
            ("SHOPFLOW_MAX_STREAMS", self.max_streams),
            ("SHOPFLOW_MAX_STREAMS_PER_USER", self.max_streams_per_user),
        ]
        .map(|(key, n)| (key, n.to_string()))
    }
}

impl Webhooks {
    fn to_env(&self) -> [(&'static str, String); 2] {
        [
            ("SHOPFLOW_WEBHOOK_RETRY", self.retry.to_string()),
            (
                "SHOPFLOW_WEBHOOK_ALLOW_PRIVATE",
                self.allow_private.to_string(),
            ),
        ]
    }
}

/// The waits between a webhook delivery's tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl std::fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waits: Vec<String> = self.0.iter().map(|d| format_duration(*d)).collect();
        f.write_str(&waits.join(","))
    }
}

/// `5s,30s,2m`: each wait a duration; at most 20, none over 7 days.
fn parse_schedule(text: &str) -> Result<RetrySchedule, String> {
    let waits = text
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if waits.len() > 20 {
        return Err("at most 20 retries".into());
    }
    if waits
        .iter()
        .any(|w| *w > Duration::from_secs(7 * 24 * 3600))
    {
        return Err("no wait may be longer than 7 days".into());
    }
    Ok(RetrySchedule(waits))
}

/// What the web role serves at once.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct Limits {
    /// Requests doing work (any method but GET/HEAD) served at once; more get 503
    /// `overloaded` with Retry-After instead of waiting in a queue.
    #[arg(long, env = "SHOPFLOW_MAX_IN_FLIGHT", default_value = "256", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Live streams open at once, in all (more get 503).
    #[arg(long, env = "SHOPFLOW_MAX_STREAMS", default_value = "1024", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,

    /// Live streams one user may have open at once (more get 429): a page holds one or
    /// two, so this allows several tabs.
    #[arg(long, env = "SHOPFLOW_MAX_STREAMS_PER_USER", default_value = "16", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_user: u32,
}

/// The command-line name of a value of a `ValueEnum`.
trait ValueEnumName {
    fn name(&self) -> String;
}

impl<T: ValueEnum> ValueEnumName for T {
    fn name(&self) -> String {
        self.to_possible_value()
            .expect("no variant is skipped")
            .get_name()
            .to_owned()
    }
}

/// Where `npm ci` puts the restate-server binary on this OS and architecture: npm
/// installs only the matching one of `@restatedev/restate-server`'s optional packages
/// (`linux-x64`, `linux-arm64`, `darwin-x64`, `darwin-arm64`).
pub fn npm_restate_server_bin() -> PathBuf {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        arch => arch,
    };
    PathBuf::from(format!(
        "node_modules/@restatedev/restate-server-{os}-{arch}/bin/restate-server"
    ))
}

impl Config {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("shopflow.db").display()))
    }

    pub fn services_url(&self) -> String {
        self.services_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.services_addr))
    }

    pub fn ingress_url(&self) -> String {
        format!("http://{}", self.restate.ingress_addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.restate.admin_addr)
    }

    /// The `Host` values the web role answers, lowercase.
    pub fn allowed_hosts(&self) -> Vec<String> {
        if let Some(hosts) = &self.allowed_hosts {
            return hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect();
        }
        let port = self.http_addr.port();
        let mut hosts = vec![
            self.http_addr.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        if port == 80 {
            hosts.extend([
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "[::1]".to_owned(),
            ]);
        }
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// The payment callbacks' shared secret: the configured one, else the one kept in
    /// the data dir (created on first use).
    pub fn webhook_secret(&self) -> std::io::Result<String> {
        if let Some(secret) = self
            .payment_webhook_secret
            .as_ref()
            .filter(|s| !s.is_empty())
        {
            return Ok(secret.clone());
        }
        let bytes = crate::secrets::load_or_create(&self.data_dir.join("webhook.secret"), || {
            format!("whsec_{}", hex::encode(crate::secrets::random_bytes(32))).into_bytes()
        })?;
        String::from_utf8(bytes)
            .map(|s| s.trim().to_owned())
            .map_err(|_| std::io::Error::other("webhook.secret is not text"))
    }

    /// Where the supervisor keeps a copy of each build it registered.
    pub fn builds_dir(&self) -> PathBuf {
        self.data_dir.join("builds")
    }

    /// The URI of this build's deployment.
    pub fn build_uri(&self) -> String {
        crate::build::uri(&self.services_url(), crate::build::id())
    }

    pub fn restate_dir(&self) -> PathBuf {
        self.data_dir.join("restate")
    }

    /// The settings as environment variables, for a child `shopflow services` or `web`
    /// process, so it sees exactly this configuration whatever the flags were.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("SHOPFLOW_HTTP_ADDR", self.http_addr.to_string()),
            ("SHOPFLOW_SERVICES_ADDR", self.services_addr.to_string()),
            ("SHOPFLOW_DATA_DIR", self.data_dir.display().to_string()),
            ("SHOPFLOW_DATABASE_URL", self.database_url()),
            ("SHOPFLOW_RESTATE", "external".to_owned()),
            (
                "SHOPFLOW_RESTATE_INGRESS_ADDR",
                self.restate.ingress_addr.to_string(),
            ),
            (
                "SHOPFLOW_RESTATE_ADMIN_ADDR",
                self.restate.admin_addr.to_string(),
            ),
            (
                "SHOPFLOW_RESTATE_NODE_ADDR",
                self.restate.node_addr.to_string(),
            ),
            ("SHOPFLOW_SERVICES_URL", self.services_url()),
            (
                "SHOPFLOW_TRUST_USER_HEADER",
                self.trust_user_header.to_string(),
            ),
            ("SHOPFLOW_SEED", self.seed.name()),
            ("SHOPFLOW_LOG_FORMAT", self.log_format.name()),
        ];
        env.extend(self.timings.to_env());
        env.extend(self.limits.to_env());
        env.extend(self.webhooks.to_env());
        env.extend(
            self.optional_env()
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?))),
        );
        env
    }

    /// The settings that have no default, when set.
    fn optional_env(&self) -> [(&'static str, Option<String>); 5] {
        [
            (
                "SHOPFLOW_PAYMENT_WEBHOOK_SECRET",
                self.payment_webhook_secret.clone(),
            ),
            (
                "SHOPFLOW_ALLOWED_HOSTS",
                self.allowed_hosts.as_ref().map(|h| h.join(",")),
            ),
            (
                "SHOPFLOW_RESTATE_IDENTITY_KEY",
                self.restate.identity_key.clone(),
            ),
            (
                "SHOPFLOW_HOLD_AT",
                (!self.hold_at.is_empty()).then(|| self.hold_at.join(",")),
            ),
            (
                "RESTATE_SERVER_BIN",
                self.restate
                    .server_bin
                    .as_ref()
                    .map(|p| p.display().to_string()),
            ),
        ]
    }

    pub fn restate_server_bin(&self) -> PathBuf {
        self.restate
            .server_bin
            .clone()
            .unwrap_or_else(npm_restate_server_bin)
    }
}

/// Parses the usual spellings of a boolean switch.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("`{text}` is not a boolean; use true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forcing_a_registration_is_a_plain_flag() {
        let cli = Cli::try_parse_from(["shopflow", "--force-registration", "deployments"]).unwrap();
        assert!(cli.config.force_registration);
        assert_eq!(cli.command, Some(Command::Deployments));
        let cli = Cli::try_parse_from(["shopflow", "--force-registration=false"]).unwrap();
        assert!(!cli.config.force_registration);
        let cli = Cli::try_parse_from(["shopflow"]).unwrap();
        assert!(!cli.config.force_registration);
    }

    #[test]
    fn the_npm_restate_server_is_the_one_for_this_machine() {
        let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(npm_restate_server_bin());
        assert!(bin.is_file(), "{} (run `npm ci`)", bin.display());
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("shopflow").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("1"), Ok(true));
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool("off"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn flags_and_derived_addresses() {
        let cli = parse(&[
            "--http-addr",
            "127.0.0.1:1234",
            "--data-dir",
            "/tmp/sf",
            "--restate",
            "external",
            "--delivery-delay",
            "1s",
            "services",
        ]);
        assert_eq!(cli.command, Some(Command::Services));
        let c = cli.config;
        assert_eq!(c.http_addr.port(), 1234);
        assert_eq!(c.restate.mode, RestateMode::External);
        assert_eq!(c.timings.delivery_delay, Duration::from_secs(1));
        assert_eq!(c.database_url(), "sqlite:///tmp/sf/shopflow.db");
        assert_eq!(c.services_url(), "http://127.0.0.1:9080");
        assert_eq!(c.restate_dir(), PathBuf::from("/tmp/sf/restate"));
        assert_eq!(c.ingress_url(), "http://127.0.0.1:18080");
        assert!(!c.trust_user_header, "demo mode is off unless asked for");
        assert_eq!(
            c.allowed_hosts(),
            ["127.0.0.1:1234", "[::1]:1234", "localhost:1234"]
        );
        let c = parse(&["--allowed-hosts", "Shop.Example.com, shop.example.com:8443"]).config;
        assert_eq!(
            c.allowed_hosts(),
            ["shop.example.com", "shop.example.com:8443"]
        );
    }

    #[test]
    fn the_webhook_secret_is_configured_or_kept_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let c = parse(&["--data-dir", data]).config;
        let first = c.webhook_secret().unwrap();
        assert!(first.starts_with("whsec_") && first.len() == 70, "{first}");
        assert_eq!(c.webhook_secret().unwrap(), first);
        let c = parse(&["--data-dir", data, "--payment-webhook-secret", "s3"]).config;
        assert_eq!(c.webhook_secret().unwrap(), "s3");
    }

    #[test]
    fn environment_for_children_round_trips() {
        // Every setting away from its default, so each must travel.
        let original = parse(&[
            "--http-addr=127.0.0.1:1001",
            "--services-addr=127.0.0.1:1002",
            "--data-dir=/tmp/sf-round-trip",
            "--database-url=postgres://db.example/shop",
            "--restate-ingress-addr=127.0.0.1:1003",
            "--restate-admin-addr=127.0.0.1:1004",
            "--restate-node-addr=127.0.0.1:1005",
            "--services-url=http://lb.example:9080",
            "--delivery-delay=1500ms",
            "--payment-timeout=2m",
            "--payment-webhook-secret=s3",
            "--trust-user-header=true",
            "--allowed-hosts=shop.example,localhost:1001",
            "--restate-identity-key=publickeyv1_x",
            "--max-in-flight=7",
            "--max-streams=8",
            "--max-streams-per-user=9",
            "--webhook-retry=1s,1m 30s,2h",
            "--webhook-allow-private=true",
            "--hold-at=confirm_payment,complete_sale",
            "--seed=bench",
            "--log-format=json",
            "--restate-server-bin=/opt/restate-server",
        ])
        .config;
        let mut args = vec!["shopflow".to_owned()];
        for (key, value) in original.to_env() {
            let flag = key
                .trim_start_matches("SHOPFLOW_")
                .to_ascii_lowercase()
                .replace('_', "-");
            args.push(format!("--{flag}={value}"));
        }
        args.push("services".to_owned());
        let child = Cli::try_parse_from(&args).unwrap().config;
        // The child never starts a restate-server of its own.
        let mut expected = original;
        expected.restate.mode = RestateMode::External;
        assert_eq!(child, expected, "the child's settings from {args:?}");
    }

    #[test]
    fn webhook_retry_schedules_parse() {
        let waits = parse_schedule("5s, 30s,2m").unwrap().0;
        assert_eq!(waits, [5, 30, 120].map(Duration::from_secs));
        assert_eq!(parse_schedule("").unwrap().0, []);
        assert!(parse_schedule("5s,soon").is_err());
        assert!(parse_schedule("8d").is_err());
        let c = parse(&[]).config;
        assert_eq!(c.webhooks.retry.to_string(), "5s,30s,2m,10m,1h,6h,1day");
    }

    #[test]
    fn derived_settings_are_passed_on_as_values() {
        let original = parse(&["--data-dir=/tmp/sf-derived"]).config;
        let env = original.to_env();
        let get = |key| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        assert_eq!(
            get("SHOPFLOW_DATABASE_URL"),
            Some("sqlite:///tmp/sf-derived/shopflow.db")
        );
        assert_eq!(get("SHOPFLOW_SERVICES_URL"), Some("http://127.0.0.1:9080"));
    }

    #[test]
    fn server_flags_come_before_the_subcommand() {
        let cli = parse(&["--http-addr", "127.0.0.1:9999", "web"]);
        assert_eq!(cli.command, Some(Command::Web));
        assert_eq!(cli.config.http_addr.port(), 9999);
        let after = Cli::try_parse_from(["shopflow", "web", "--http-addr", "127.0.0.1:9999"]);
        assert!(after.is_err(), "a server flag after `web`: {after:?}");
    }

    #[test]
    fn a_subcommands_help_lists_only_its_own_flags() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let user = cli.find_subcommand_mut("user").unwrap();
        let add = user
            .find_subcommand_mut("add")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            add.contains("--admin") && !add.contains("--http-addr"),
            "{add}"
        );
        let top = Cli::command().render_long_help().to_string();
        assert!(top.contains("--http-addr"), "{top}");
        assert!(
            !top.contains("--hold-at"),
            "a test-only flag in the help: {top}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("shopflow").chain(args.iter().copied())).is_err()
        };
        assert!(bad(&["--http-addr", "nonsense"]));
        assert!(bad(&["--restate", "sometimes"]));
        assert!(bad(&["--payment-timeout", "soon"]));
        assert!(bad(&["--trust-user-header", "perhaps"]));
    }
}
