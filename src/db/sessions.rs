//! The page's sessions, kept on the server (see the `sessions` migration): rows keyed by
//! the SHA-256 of the cookie's random id, ended by deleting them.

use serde::Serialize;

use super::Db;
use crate::domain::Username;

/// One session as the table holds it (times in Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id_hash: String,
    pub username: String,
    /// The user's credential stamp (of the password) and role when it started.
    pub stamp: String,
    pub role: String,
    /// Started while demo mode was on.
    pub demo: bool,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
}
impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for Session {
    fn from_row(row: &'r sqlx::any::AnyRow) -> sqlx::Result<Self> {
        use sqlx::Row as _;
        Ok(Session {
            id_hash: row.try_get("id_hash")?,
            username: row.try_get("username")?,
            stamp: row.try_get("stamp")?,
            role: row.try_get("role")?,
            // An integer on both engines.
            demo: row.try_get::<i64, _>("demo")? != 0,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    }
}

const COLUMNS: &str = "SELECT id_hash, username, stamp, role, demo, created_at, last_used_at, expires_at FROM sessions";

/// Open sessions a user may have; signing in once more ends the oldest.
pub const MAX_SESSIONS_PER_USER: i64 = 20;

impl Db {
    /// Stores a new session, ending the user's oldest beyond `MAX_SESSIONS_PER_USER`
    /// and every expired one, so the table stays small whoever signs in how often.
    pub async fn create_session(&self, session: &Session) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(session.created_at)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, username, stamp, role, demo, created_at, last_used_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&session.id_hash)
        .bind(&session.username)
        .bind(&session.stamp)
        .bind(&session.role)
        .bind(i64::from(session.demo))
        .bind(session.created_at)
        .bind(session.last_used_at)
        .bind(session.expires_at)
        .execute(self.pool())
        .await?;
        sqlx::query(
            "DELETE FROM sessions WHERE username = $1 AND id_hash NOT IN
               (SELECT id_hash FROM sessions WHERE username = $1
                ORDER BY created_at DESC, last_used_at DESC, id_hash LIMIT $2)",
        )
        .bind(&session.username)
        .bind(MAX_SESSIONS_PER_USER)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session stored under `id_hash`, expired or not.
    pub async fn session(&self, id_hash: &str) -> sqlx::Result<Option<Session>> {
        sqlx::query_as(&format!("{COLUMNS} WHERE id_hash = $1"))
            .bind(id_hash)
            .fetch_optional(self.pool())
            .await
    }

    /// Notes that a session was used at `now`.
    pub async fn touch_session(&self, id_hash: &str, now: i64) -> sqlx::Result<()> {
        sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends one session (signing out); `false` when there was none.
    pub async fn end_session(&self, id_hash: &str) -> sqlx::Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every session of a user; how many there were.
    pub async fn end_sessions_of(&self, username: &Username) -> sqlx::Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind(username.as_str())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// A user's sessions that have not expired at `now`, newest first.
    pub async fn sessions_of(&self, username: &Username, now: i64) -> sqlx::Result<Vec<Session>> {
        sqlx::query_as(&format!(
            "{COLUMNS} WHERE username = $1 AND expires_at > $2 ORDER BY created_at DESC, id_hash"
        ))
        .bind(username.as_str())
        .bind(now)
        .fetch_all(self.pool())
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Username;

    fn session(n: i64, user: &str) -> Session {
        Session {
            id_hash: format!("{n:064x}"),
            username: user.to_owned(),
            stamp: format!("stamp-{n}"),
            role: "customer".into(),
            demo: n % 2 == 0,
            created_at: 1_000 + n,
            last_used_at: 1_000 + n,
            expires_at: 100_000 + n,
        }
    }

    #[tokio::test]
    async fn sessions_are_stored_listed_capped_and_ended() {
        let (_dir, db) = crate::db::test_db().await;
        let (alice, bob) = (
            Username::parse("alice").unwrap(),
            Username::parse("bob").unwrap(),
        );
        db.create_session(&session(0, "bob")).await.unwrap();
        for n in 1..=MAX_SESSIONS_PER_USER + 5 {
            db.create_session(&session(n, "alice")).await.unwrap();
        }
        let open = db.sessions_of(&alice, 0).await.unwrap();
        assert_eq!(open.len() as i64, MAX_SESSIONS_PER_USER, "the oldest ended");
        assert_eq!(
            open[0],
            session(MAX_SESSIONS_PER_USER + 5, "alice"),
            "newest first"
        );
        assert_eq!(
            db.session(&session(1, "alice").id_hash).await.unwrap(),
            None
        );
        assert_eq!(
            db.sessions_of(&bob, 0).await.unwrap(),
            vec![session(0, "bob")]
        );
        assert!(
            db.sessions_of(&bob, 200_000).await.unwrap().is_empty(),
            "expired"
        );

        let last = session(MAX_SESSIONS_PER_USER + 5, "alice").id_hash;
        db.touch_session(&last, 5_000).await.unwrap();
        assert_eq!(
            db.session(&last).await.unwrap().unwrap().last_used_at,
            5_000
        );
        assert!(db.end_session(&last).await.unwrap());
        assert!(!db.end_session(&last).await.unwrap(), "once");
        assert_eq!(
            db.end_sessions_of(&alice).await.unwrap() as i64,
            MAX_SESSIONS_PER_USER - 1
        );
        assert_eq!(
            db.sessions_of(&bob, 0).await.unwrap().len(),
            1,
            "bob's stay"
        );
    }
}
