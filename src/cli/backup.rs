//! `shopflow backup DIR` and `shopflow restore DIR`.
//!
//! A backup is Restate's data first, then the database. Restate's data is copied while
//! restate-server is stopped (a running ShopFlow stops and restarts it on request, for
//! a few seconds; the web role answers 503 meanwhile); the SQLite database is copied
//! while everything runs (`VACUUM INTO`, a consistent snapshot). In that order the pair
//! is consistent: every database write belongs to a durable step, a step Restate's copy
//! has not recorded as done runs again after a restore, and every step's write is
//! idempotent, so a database a moment newer than Restate's data is caught up with,
//! never ahead of it in a way that matters. The secrets and the kept builds come along.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::control::RestatePause;
use crate::db::{Backend, Db};

/// Whether a file at the top of the data dir is one of its secrets (keys), which a
/// backup keeps: not the database, its journal files, logs or sockets.
fn is_secret(name: &str) -> bool {
    !(name.starts_with("shopflow.db") || name.ends_with(".log") || name.ends_with(".sock"))
}

pub async fn backup(config: &Config, dir: &Path) -> anyhow::Result<()> {
    apart(dir, &config.data_dir)?;
    empty_dir(dir)?;
    let outcome = backup_into(config, dir).await;
    if outcome.is_err() {
        // Nothing half-done is left to be taken for a backup.
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}

async fn backup_into(config: &Config, dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let restate_dir = config.restate_dir();
    let pause = RestatePause::begin(&config.data_dir).await?;
    let running = pause.is_some();
    let copied = copy_tree(&restate_dir, &dir.join("restate"));
    if let Some(pause) = pause {
        pause
            .resume()
            .await
            .context("restate-server did not start again")?;
    }
    // From the request to stop until restate-server answered again.
    let paused_for = started.elapsed();
    copied.with_context(|| format!("cannot copy {}", restate_dir.display()))?;
    let database = match Backend::of(&config.database_url())? {
        Backend::Sqlite => {
            let db = Db::open(&config.database_url()).await?;
            db.snapshot_to(&dir.join("shopflow.db")).await?;
            "the SQLite database (shopflow.db)".to_owned()
        }
        Backend::Postgres => "no database: dump PostgreSQL now, after Restate's copy \
             (pg_dump --format=custom --file=DIR/shopflow.pgdump DATABASE_URL)"
            .to_owned(),
    };
    for entry in std::fs::read_dir(&config.data_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if entry.file_type()?.is_file() && is_secret(&name.to_string_lossy()) {
            std::fs::copy(entry.path(), dir.join(&name))?;
        }
    }
    if config.builds_dir().is_dir() {
        copy_tree(&config.builds_dir(), &dir.join("builds"))?;
    }
    let pause = if running {
        format!(
            "Restate did not answer for {:.2} s (stopped, copied, started again)",
            paused_for.as_secs_f64()
        )
    } else {
        "ShopFlow was not running: copied as it was".to_owned()
    };
    println!(
        "backed up to {}: Restate's data, {database}, the secrets and the kept builds, \
         in {:.2} s; {pause}",
        dir.display(),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// Refuses a backup inside the data dir or a data dir inside the backup: either copy
/// would copy itself.
fn apart(backup: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let backup = std::path::absolute(backup)?;
    let data_dir = std::path::absolute(data_dir)?;
    if backup.starts_with(&data_dir) || data_dir.starts_with(&backup) {
        bail!(
            "{} and the data dir {} must not be inside one another",
            backup.display(),
            data_dir.display()
        );
    }
    Ok(())
}

/// Fills the configured data dir, which must be new or empty, from a backup.
pub fn restore(config: &Config, dir: &Path) -> anyhow::Result<()> {
    if !dir.join("restate").is_dir() {
        bail!(
            "{} is not a backup of ShopFlow (no restate/ in it)",
            dir.display()
        );
    }
    apart(dir, &config.data_dir)?;
    empty_dir(&config.data_dir)?;
    copy_tree(dir, &config.data_dir)
        .with_context(|| format!("cannot restore into {}", config.data_dir.display()))?;
    crate::secrets::keep_private(&config.data_dir)?;
    println!(
        "restored {} into {}; start ShopFlow with the same addresses as the original",
        dir.display(),
        config.data_dir.display()
    );
    Ok(())
}

/// Makes sure `dir` exists, is private to its owner and holds nothing.
fn empty_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    if std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty", dir.display());
    }
    Ok(())
}

/// Copies a directory tree (files and directories; sockets and the like are skipped).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_and_the_data_dir_stay_apart() {
        let ok = apart(Path::new("/srv/backups/b1"), Path::new("/srv/shop/data"));
        assert!(ok.is_ok(), "{ok:?}");
        for (backup, data) in [
            ("/srv/shop/data/restate/b1", "/srv/shop/data"),
            ("/srv/shop", "/srv/shop/data"),
            ("/srv/shop/data", "/srv/shop/data"),
        ] {
            let refused = apart(Path::new(backup), Path::new(data));
            assert!(refused.is_err(), "backup {backup}, data dir {data}");
        }
    }
}
