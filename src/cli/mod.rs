//! The operator's commands: users and passwords, bearer tokens, and a signed payment
//! callback (what a real gateway would send), all against the configured data dir.

mod backup;

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, anyhow, bail};

use crate::auth::{PasswordHash, Purpose, Signer, unix_now};
use crate::config::{Command, Config, RoleName, UserCommand};
use crate::db::orders::PaymentRequest;
use crate::db::{Db, Role as UserRole};
use crate::domain::{DisplayName, OrderId, PaymentState, Reason, Username};

/// Runs one operator command to its end.
pub async fn run(command: Command, config: &Config) -> anyhow::Result<()> {
    match command {
        Command::Identity => return identity(config),
        Command::Deployments => return deployments(config).await,
        Command::Backup { dir } => return backup::backup(config, &dir).await,
        Command::Restore { dir } => return backup::restore(config, &dir),
        _ => {}
    }
    let db = Db::open(&config.database_url()).await?;
    match command {
        Command::User(command) => user(command, &db).await,
        Command::Token { user, ttl } => token(&user, ttl, config, &db).await,
        Command::Pay {
            order_id,
            decline,
            curl,
        } => pay(&order_id, decline.as_deref(), curl, config, &db).await,
        Command::Services
        | Command::Web
        | Command::Identity
        | Command::Deployments
        | Command::Backup { .. }
        | Command::Restore { .. } => {
            bail!("not an operator command")
        }
    }
}

/// ShopFlow's Restate deployments, one line per build, as `GET /api/admin/deployments`.
async fn deployments(config: &Config) -> anyhow::Result<()> {
    let restate = crate::durable::RestateClient::new(config.ingress_url(), config.admin_url())?;
    let all = restate.deployments().await?;
    println!(
        "{:<34} {:<14} {:<9} {:>9}  URI",
        "DEPLOYMENT", "BUILD", "STATE", "IN FLIGHT"
    );
    for d in all {
        let build = d.build.as_deref().unwrap_or("-");
        let current = if d.current { " (current)" } else { "" };
        println!(
            "{:<34} {:<14} {:<9} {:>9}  {}{current}",
            d.deployment_id,
            build,
            d.state.name(),
            d.in_flight,
            d.uri
        );
    }
    Ok(())
}

/// The key pair Restate's calls to the endpoint are signed with, as the settings that
/// name it (one `KEY=value` per line, for an env file).
fn identity(config: &Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    let identity = crate::restate_identity::load_or_create(&config.data_dir)?;
    println!("SHOPFLOW_RESTATE_IDENTITY_KEY={}", identity.public_key);
    println!(
        "{}={}",
        crate::restate_identity::SERVER_ENV,
        identity.private_key_file.display()
    );
    Ok(())
}

fn username(text: &str) -> anyhow::Result<Username> {
    Username::parse(text).map_err(|e| anyhow!(e))
}

async fn user(command: UserCommand, db: &Db) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            user,
            name,
            email,
            admin,
            no_password,
        } => add_user(db, &user, name.as_deref(), &email, admin, no_password).await,
        UserCommand::SetPassword { user } => {
            let username = username(&user)?;
            if db.user(&username).await?.is_none() {
                bail!("no user {username}; add one with `shopflow user add {username}`");
            }
            let password = new_password()?;
            db.set_password(&username, &password).await?;
            println!("password of {username} set; earlier tokens and sessions have ended");
            Ok(())
        }
        UserCommand::SetRole { user, role } => {
            let username = username(&user)?;
            let role = match role {
                RoleName::Admin => UserRole::Admin,
                RoleName::Customer => UserRole::Customer,
            };
            if !db.set_role(&username, role).await? {
                bail!("no user {username}");
            }
            println!(
                "{username} is now {}; their sessions have ended",
                role.as_str()
            );
            Ok(())
        }
        UserCommand::Sessions { user, revoke } => sessions(db, &user, revoke).await,
        UserCommand::List => list_users(db).await,
    }
}

/// A user's open sessions, or (`revoke`) the end of all of them.
async fn sessions(db: &Db, user: &str, revoke: bool) -> anyhow::Result<()> {
    let username = username(user)?;
    if db.user(&username).await?.is_none() {
        bail!("no user {username}");
    }
    if revoke {
        let ended = db.end_sessions_of(&username).await?;
        println!("ended {ended} session(s) of {username}");
        return Ok(());
    }
    let time = |secs: i64| crate::clock::rfc3339(secs.saturating_mul(1000));
    let mut out = format!(
        "{:<24} {:<24} {:<24} {:<5} id\n",
        "started", "last used", "expires", "demo"
    );
    for s in db.sessions_of(&username, unix_now()).await? {
        let demo = if s.demo { "yes" } else { "no" };
        out += &format!(
            "{:<24} {:<24} {:<24} {:<5} {}\n",
            time(s.created_at),
            time(s.last_used_at),
            time(s.expires_at),
            demo,
            &s.id_hash[..12]
        );
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}

async fn add_user(
    db: &Db,
    user: &str,
    name: Option<&str>,
    email: &str,
    admin: bool,
    no_password: bool,
) -> anyhow::Result<()> {
    let username = username(user)?;
    let name = DisplayName::parse(name.unwrap_or(user)).map_err(|e| anyhow!(e))?;
    let email = match email.trim() {
        "" => String::new(),
        text => {
            crate::domain::text::parse_text("email", text, 254, false).map_err(|e| anyhow!(e))?
        }
    };
    if db.user(&username).await?.is_some() {
        bail!("user {username} exists; use `shopflow user set-password {username}`");
    }
    let password = if no_password {
        None
    } else {
        Some(new_password()?)
    };
    let role = if admin {
        UserRole::Admin
    } else {
        UserRole::Customer
    };
    if !db
        .add_user(&username, &name, &email, role, password.as_ref())
        .await?
    {
        bail!("user {username} exists");
    }
    println!("added {username} ({})", role.as_str());
    Ok(())
}

async fn list_users(db: &Db) -> anyhow::Result<()> {
    let mut out = format!("{:<20} {:<9} {:<9} name\n", "user", "role", "password");
    for u in db.users().await? {
        let password = if u.password_hash.is_some() {
            "yes"
        } else {
            "no"
        };
        out += &format!(
            "{:<20} {:<9} {:<9} {}\n",
            u.username, u.role, password, u.name
        );
    }
    // A reader that stops early (`| head`) is no error.
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}

/// A new password: typed twice at a terminal, or the first line of standard input.
fn new_password() -> anyhow::Result<PasswordHash> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Again: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    PasswordHash::new(&password).map_err(|e| anyhow!(e))
}

async fn token(
    user: &str,
    ttl: std::time::Duration,
    config: &Config,
    db: &Db,
) -> anyhow::Result<()> {
    let username = username(user)?;
    let user = db
        .user(&username)
        .await?
        .ok_or_else(|| anyhow!("no user {username}"))?;
    let signer = Signer::load_or_create(&config.data_dir)
        .with_context(|| format!("no signing key in {}", config.data_dir.display()))?;
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let token = signer.issue(
        Purpose::ApiToken,
        &username,
        &user.credential_stamp(),
        unix_now().saturating_add(ttl),
    );
    println!("{token}");
    Ok(())
}

async fn pay(
    order_id: &str,
    decline: Option<&str>,
    curl: bool,
    config: &Config,
    db: &Db,
) -> anyhow::Result<()> {
    let order_id = OrderId::parse(order_id).map_err(|e| anyhow!(e))?;
    let payment = db
        .payment_by_order(&order_id)
        .await?
        .ok_or_else(|| anyhow!("order {order_id} has no payment request"))?;
    if payment.state != PaymentState::Pending {
        bail!(
            "the payment of order {order_id} is already {}",
            payment.state
        );
    }
    let body = callback_body(&payment, decline)?;
    let secret = config.webhook_secret()?;
    let signature = crate::app::payments::sign(&secret, unix_now(), body.as_bytes());
    let mut addr = config.http_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}/api/payment/callback");
    if curl {
        // Single quotes in the shell: a quote inside is closed, escaped and reopened.
        let quoted = body.replace('\'', r"'\''");
        println!(
            "curl -sS -H 'content-type: application/json' -H 'x-payment-signature: {signature}' --data '{quoted}' {url}"
        );
        return Ok(());
    }
    let text = send_callback(&url, &signature, body).await?;
    println!("{text}");
    Ok(())
}

/// The gateway's callback for the payment: paid in full, or declined with a reason.
fn callback_body(payment: &PaymentRequest, decline: Option<&str>) -> anyhow::Result<String> {
    let transaction_id = format!("txn-{}", &hex::encode(crate::secrets::random_bytes(6)));
    let mut body = serde_json::json!({
        "awakeable_id": payment.awakeable_id,
        "transaction_id": transaction_id,
        "amount": payment.amount_cents,
        "status": "success",
    });
    if let Some(reason) = decline {
        let reason = Reason::parse(reason).map_err(|e| anyhow!(e))?;
        body["status"] = "failed".into();
        body["reason"] = reason.as_str().into();
    }
    Ok(body.to_string())
}

/// Posts the signed callback; the web role's answer when it took it.
async fn send_callback(url: &str, signature: &str, body: String) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-payment-signature", signature)
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach ShopFlow at {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("the callback was refused ({status}): {text}");
    }
    Ok(text)
}
