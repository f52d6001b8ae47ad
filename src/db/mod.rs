//! The database: SQLite (embedded, the default) or PostgreSQL (shared by replicas),
//! chosen by the URL. One pool, embedded migrations per engine, idempotent seeding,
//! catalog queries. The queries are written once, in the SQL both engines speak
//! (`$1` placeholders, `ON CONFLICT`, `RETURNING`); the few that differ ask
//! [`Db::backend`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use sqlx::TransactionManager;
use sqlx::any::{AnyPoolOptions, AnyTransactionManager, install_default_drivers};
use sqlx::{AnyPool, Executor};

mod locations;
pub mod orders;
mod rows;
mod sessions;
pub mod webhooks;
pub use locations::{Location, SetStock, StockByLocation};
pub use sessions::Session;
#[cfg(test)]
pub mod test_postgres;

/// A test's own new database URL: a SQLite file in `dir`, or with
/// `SHOPFLOW_TEST_DATABASE=postgres` a new database on the test binary's PostgreSQL.
#[cfg(test)]
pub fn test_url(dir: &std::path::Path) -> String {
    if test_postgres::wanted() {
        test_postgres::Postgres::shared().fresh_database()
    } else {
        format!("sqlite://{}", dir.join("t.db").display())
    }
}

/// A test's own new, migrated and seeded database (see [`test_url`]).
#[cfg(test)]
pub async fn test_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&test_url(dir.path())).await.unwrap();
    (dir, db)
}

use crate::auth::PasswordHash;
use rows::{Embedded, from_row};

/// `(file name, SQL)` of one migration of `migrations/<engine>/`.
macro_rules! migration {
    ($engine:literal, $file:literal) => {
        (
            $file,
            include_str!(concat!("../../migrations/", $engine, "/", $file)),
        )
    };
}
use crate::domain::{DisplayName, ProductRef, Username};

/// Every file of `migrations/sqlite`, in order (a test compares them with the folder).
const SQLITE_MIGRATIONS: Embedded = Embedded(&[
    migration!("sqlite", "0001_catalog.sql"),
    migration!("sqlite", "0002_orders.sql"),
    migration!("sqlite", "0003_passwords.sql"),
    migration!("sqlite", "0004_order_read_model.sql"),
    migration!("sqlite", "0005_cancel_refund_decide.sql"),
    migration!("sqlite", "0006_reliability.sql"),
    migration!("sqlite", "0007_cache_versions.sql"),
    migration!("sqlite", "0008_order_invocations.sql"),
    migration!("sqlite", "0009_sessions.sql"),
    migration!("sqlite", "0010_decision_actor.sql"),
    migration!("sqlite", "0011_returns.sql"),
    migration!("sqlite", "0012_webhooks.sql"),
    migration!("sqlite", "0013_locations.sql"),
    migration!("sqlite", "0014_checkouts_version.sql"),
]);
/// Every file of `migrations/postgres`, in order.
const POSTGRES_MIGRATIONS: Embedded = Embedded(&[
    migration!("postgres", "0001_schema.sql"),
    migration!("postgres", "0002_sessions.sql"),
    migration!("postgres", "0003_decision_actor.sql"),
    migration!("postgres", "0004_returns.sql"),
    migration!("postgres", "0005_webhooks.sql"),
    migration!("postgres", "0006_locations.sql"),
    migration!("postgres", "0007_checkouts_version.sql"),
]);

const SEED: &str = include_str!("seed.sql");
const SEED_BENCH: &str = include_str!("seed_bench.sql");

/// The PostgreSQL advisory lock held by transactions that change stock.
const STOCK_LOCK: i64 = 0x5348_4f50_5354_4f4b; // "SHOPSTOK"

/// The application's database handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// The database engine behind a [`Db`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Db {
    /// A consistent copy of the SQLite database at `path`, made while it is in use.
    pub async fn snapshot_to(&self, path: &Path) -> anyhow::Result<()> {
        if self.backend != Backend::Sqlite {
            bail!("only a SQLite database is copied; dump PostgreSQL with pg_dump");
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path.display().to_string())
            .execute(&self.pool)
            .await
            .with_context(|| format!("cannot copy the database to {}", path.display()))?;
        Ok(())
    }
}

impl Backend {
    /// The engine a database URL names: `sqlite:…` or `postgres://…`.
    pub fn of(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            bail!("unsupported database URL (sqlite://… or postgres://…)")
        }
    }
}

/// A catalog product as the API shows it; `stock_qty` is what is available now, the
/// sum of `stock_by_location`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Product {
    pub id: i64,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub stock_qty: i64,
    pub stock_by_location: StockByLocation,
}

/// A product's row, before its stock by location joins it.
struct ProductRow {
    id: i64,
    sku: String,
    name: String,
    description: String,
    price_cents: i64,
    stock_qty: i64,
}

impl ProductRow {
    fn with_stock(self, by_location: &mut BTreeMap<i64, StockByLocation>) -> Product {
        Product {
            stock_by_location: by_location.remove(&self.id).unwrap_or_default(),
            id: self.id,
            sku: self.sku,
            name: self.name,
            description: self.description,
            price_cents: self.price_cents,
            stock_qty: self.stock_qty,
        }
    }
}
from_row!(ProductRow {
    id,
    sku,
    name,
    description,
    price_cents,
    stock_qty
});

/// How often the catalog and the users have changed (see `Db::cache_versions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheVersions {
    pub catalog: i64,
    pub users: i64,
    /// Checkout claims taken and given up.
    pub checkouts: i64,
}

/// A user: what the user picker shows, and the password hash that never leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    #[schema(value_type = String)]
    pub username: Username,
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub password_hash: Option<PasswordHash>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }

    /// What credentials signed for this user carry (see `PasswordHash::stamp`).
    pub fn credential_stamp(&self) -> String {
        PasswordHash::stamp(self.password_hash.as_ref())
    }
}

struct UserRow {
    username: String,
    name: String,
    role: String,
    password_hash: Option<String>,
}
from_row!(UserRow {
    username,
    name,
    role,
    password_hash
});

impl TryFrom<UserRow> for User {
    type Error = sqlx::Error;

    fn try_from(r: UserRow) -> sqlx::Result<User> {
        Ok(User {
            username: Username::parse(&r.username).map_err(|e| sqlx::Error::Decode(e.into()))?,
            name: r.name,
            role: r.role,
            password_hash: r.password_hash.map(PasswordHash::from_stored),
        })
    }
}

/// A role a user can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }
}

impl Db {
    /// Opens (creating if needed) the database, migrates it and seeds reference data.
    pub async fn open(url: &str) -> anyhow::Result<Db> {
        install_default_drivers();
        let backend = Backend::of(url)?;
        let mut options = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10));
        let mut url = url.to_owned();
        if backend == Backend::Sqlite {
            if !url.contains('?') {
                url.push_str("?mode=rwc");
            }
            // An embedded database has no connection to lose: no ping (a round trip
            // to the connection's thread) before every query.
            options = options.test_before_acquire(false);
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                    )
                    .await
                    .map(drop)
                })
            });
            // A connection that comes back still inside a transaction would hold the
            // write lock for good (every other writer then waits and fails busy): it is
            // closed instead, which rolls the transaction back. See `begin_write`.
            options = options.before_acquire(|conn, _| {
                Box::pin(async move {
                    let depth = AnyTransactionManager::get_transaction_depth(conn);
                    if depth > 0 {
                        tracing::warn!(
                            depth,
                            "a pooled connection was still in a transaction; closing it"
                        );
                    }
                    Ok(depth == 0)
                })
            });
        }
        let pool = options
            .connect(&url)
            .await
            .with_context(|| format!("cannot open the {backend:?} database"))?;
        let db = Db { pool, backend };
        if backend == Backend::Sqlite {
            db.check_sqlite_version().await?;
        }
        db.migrate().await?;
        db.seed().await?;
        Ok(db)
    }

    /// The SQLite library (the system's) must know `RETURNING` and the JSON functions.
    async fn check_sqlite_version(&self) -> anyhow::Result<()> {
        const OLDEST: (u32, u32) = (3, 38);
        let version: String = sqlx::query_scalar("SELECT sqlite_version()")
            .fetch_one(&self.pool)
            .await?;
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if found < OLDEST {
            bail!(
                "SQLite {version} is too old: ShopFlow needs {}.{} or newer (RETURNING, JSON)",
                OLDEST.0,
                OLDEST.1
            );
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that changes stock: one at a time, as SQLite does anyway
    /// (its write lock taken at once, no upgrade from a read lock to fail later). On
    /// PostgreSQL an advisory lock does it; without it, two reservations taking the same
    /// products (and the catalog's cache version) in another order could deadlock.
    pub async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            // On a task of its own: a caller cancelled between sqlx's `BEGIN` and the
            // `Transaction` it returns (a handler whose Restate connection dropped) would
            // leave the connection in a transaction nobody ends. The task finishes the
            // begin; a transaction nobody awaits any more is dropped, so rolled back.
            Backend::Sqlite => {
                let pool = self.pool.clone();
                tokio::spawn(async move { pool.begin_with("BEGIN IMMEDIATE").await })
                    .await
                    .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
            }
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(STOCK_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let mut migrator = sqlx::migrate::Migrator::new(migrations).await?;
        // A build kept to finish what it started (docs/upgrades.md) opens the database a
        // newer build has migrated further: migrations only add, so the ones it does not
        // know must not stop it (by default sqlx refuses to start).
        migrator.set_ignore_missing(true);
        migrator
            .run(&self.pool)
            .await
            .context("database migration failed")
    }

    /// Inserts the demo reference data; rows that exist are left as they are.
    pub async fn seed(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::raw_sql(SEED)
            .execute(&mut *tx)
            .await
            .context("seeding failed")?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds the load-test data (`seed_bench.sql`): a thousand shoppers and stock no
    /// load test sells out. For benchmarks only.
    pub async fn seed_bench(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::raw_sql(SEED_BENCH)
            .execute(&mut *tx)
            .await
            .context("seeding the load-test data failed")?;
        tx.commit().await?;
        Ok(())
    }

    /// Answers whether the database responds.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn products(&self) -> sqlx::Result<Vec<Product>> {
        let rows: Vec<ProductRow> = sqlx::query_as(
            "SELECT id, sku, name, description, price_cents, stock_qty FROM products ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_location = self.stock_by_location(None).await?;
        Ok(rows
            .into_iter()
            .map(|r| r.with_stock(&mut by_location))
            .collect())
    }

    /// One product with its stock at each location, in one query (a cart change reads
    /// it).
    pub async fn product(&self, product: &ProductRef) -> sqlx::Result<Option<Product>> {
        type Row = (
            i64,
            String,
            String,
            String,
            i64,
            i64,
            Option<String>,
            Option<i64>,
        );
        const COLUMNS: &str = "SELECT p.id, p.sku, p.name, p.description, p.price_cents,
                p.stock_qty, s.location, s.stock_qty
             FROM products p LEFT JOIN product_stock s ON s.product_id = p.id";
        let rows: Vec<Row> = match product {
            ProductRef::Id(id) => {
                sqlx::query_as(&format!("{COLUMNS} WHERE p.id = $1"))
                    .bind(id.get())
                    .fetch_all(&self.pool)
                    .await?
            }
            ProductRef::Sku(sku) => {
                sqlx::query_as(&format!("{COLUMNS} WHERE p.sku = $1"))
                    .bind(sku)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let Some(first) = rows.first().cloned() else {
            return Ok(None);
        };
        let (id, sku, name, description, price_cents, stock_qty, _, _) = first;
        let stock_by_location = (rows.into_iter())
            .filter_map(|(.., location, qty)| Some((location?, qty?)))
            .collect();
        Ok(Some(Product {
            id,
            sku,
            name,
            description,
            price_cents,
            stock_qty,
            stock_by_location,
        }))
    }

    /// The versions of the catalog and of the users: every change to a product or a
    /// user, from any process, bumps its own (triggers in the schema).
    pub async fn cache_versions(&self) -> sqlx::Result<CacheVersions> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, version FROM cache_versions")
            .fetch_all(&self.pool)
            .await?;
        let of = |name: &str| rows.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
        Ok(CacheVersions {
            catalog: of("catalog"),
            users: of("users"),
            checkouts: of("checkouts"),
        })
    }

    pub async fn users(&self) -> sqlx::Result<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT username, name, role, password_hash FROM users ORDER BY role DESC, username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(User::try_from).collect()
    }

    /// The store's staff: every user with the admin role.
    pub async fn admins(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT username FROM users WHERE role = 'admin' ORDER BY username")
            .fetch_all(&self.pool)
            .await
    }

    pub async fn user(&self, username: &Username) -> sqlx::Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT username, name, role, password_hash FROM users WHERE username = $1",
        )
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(User::try_from).transpose()
    }

    /// Adds a user; `false` when the name is taken.
    pub async fn add_user(
        &self,
        username: &Username,
        name: &DisplayName,
        email: &str,
        role: Role,
        password: Option<&PasswordHash>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO users (username, name, email, role, password_hash) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(username.as_str())
        .bind(name.as_str())
        .bind(email)
        .bind(role.as_str())
        .bind(password.map(PasswordHash::as_str))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a user's password, ending every credential issued before it (tokens by
    /// their stamp, sessions by deleting them); `false` for an unknown user.
    pub async fn set_password(
        &self,
        username: &Username,
        password: &PasswordHash,
    ) -> sqlx::Result<bool> {
        let sql = "UPDATE users SET password_hash = $1 WHERE username = $2";
        self.change_user(username, sql, password.as_str()).await
    }

    /// Gives a user another role, ending their sessions; `false` for an unknown user.
    pub async fn set_role(&self, username: &Username, role: Role) -> sqlx::Result<bool> {
        let sql = "UPDATE users SET role = $1 WHERE username = $2";
        self.change_user(username, sql, role.as_str()).await
    }

    /// `sql` with `value` and the user name, and the user's sessions ended, at once.
    async fn change_user(&self, username: &Username, sql: &str, value: &str) -> sqlx::Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql)
            .bind(value)
            .bind(username.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind(username.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn embedded_migrations_are_the_folders_files() {
        use sqlx::migrate::{Migration, Migrator};
        let key = |m: &Migration| {
            let checksum = m.checksum.to_vec();
            (m.version, m.description.to_string(), checksum, m.no_tx)
        };
        for (embedded, engine) in [
            (SQLITE_MIGRATIONS, "sqlite"),
            (POSTGRES_MIGRATIONS, "postgres"),
        ] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
            let files = Migrator::new(dir.join(engine)).await.unwrap();
            let embedded = Migrator::new(embedded).await.unwrap();
            assert_eq!(
                embedded.iter().map(key).collect::<Vec<_>>(),
                files.iter().map(key).collect::<Vec<_>>(),
                "the migrations compiled in against the files of migrations/{engine}"
            );
        }
    }

    use super::*;
    use crate::domain::ProductId;

    async fn temp_db() -> (tempfile::TempDir, Db) {
        test_db().await
    }

    async fn count(db: &Db, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    /// Writers cancelled at every moment of beginning a transaction (as a handler is when
    /// Restate's connection to it drops) leave no connection inside a transaction: the
    /// writes after them go through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_writers_leave_no_transaction_open() {
        let (_dir, db) = test_db().await;
        for i in 0..400u64 {
            let begin = db.begin_write();
            if let Ok(Ok(tx)) = tokio::time::timeout(Duration::from_micros(i % 200), begin).await {
                drop(tx);
            }
        }
        for n in 0..20 {
            let tx = tokio::time::timeout(Duration::from_secs(10), db.begin_write()).await;
            let mut tx = tx
                .unwrap_or_else(|_| panic!("write {n} after the cancellations: still waiting"))
                .unwrap_or_else(|e| panic!("write {n} after the cancellations: {e}"));
            sqlx::query("UPDATE products SET stock_qty = stock_qty WHERE id = 1")
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("write {n} after the cancellations: {e}"));
            tx.commit().await.unwrap();
        }
    }

    #[tokio::test]
    async fn seeding_twice_changes_nothing_and_keeps_stock() {
        let (_dir, db) = temp_db().await;
        let before = (
            count(&db, "products").await,
            count(&db, "users").await,
            count(&db, "shipping_zones").await,
        );
        assert!(before.0 >= 8 && before.1 >= 3 && before.2 >= 1);
        sqlx::query("UPDATE products SET stock_qty = 1 WHERE sku = 'P001'")
            .execute(db.pool())
            .await
            .unwrap();
        db.seed().await.unwrap();
        let after = (
            count(&db, "products").await,
            count(&db, "users").await,
            count(&db, "shipping_zones").await,
        );
        assert_eq!(before, after);
        let p = db
            .product(&ProductRef::Sku("P001".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.stock_qty, 1, "a re-seed must not reset stock");
    }

    #[tokio::test]
    async fn reopening_a_database_migrates_and_seeds_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let url = test_url(dir.path());
        let first = Db::open(&url).await.unwrap().products().await.unwrap();
        let second = Db::open(&url).await.unwrap().products().await.unwrap();
        assert_eq!(first, second);
    }

    /// Every table's columns and every index by name, sorted.
    async fn schema(db: &Db) -> Vec<String> {
        let sql = match db.backend() {
            Backend::Sqlite => {
                "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%' AND m.name NOT LIKE '_sqlx%'
                 UNION ALL SELECT 'index ' || name FROM sqlite_master
                 WHERE type = 'index' AND sql IS NOT NULL"
            }
            Backend::Postgres => {
                "SELECT (table_name || '.' || column_name)::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'
                 UNION ALL SELECT ('index ' || indexname)::text FROM pg_indexes
                 WHERE schemaname = 'public' AND indexname NOT LIKE '%\\_pkey'
                   AND indexname NOT LIKE '%\\_key'"
            }
        };
        let mut names: Vec<String> = sqlx::query_scalar(sql).fetch_all(db.pool()).await.unwrap();
        names.sort();
        names
    }

    /// The two engines' migrations are written separately; they must end in the same
    /// tables, columns and indexes. Runs in the PostgreSQL pass.
    #[tokio::test]
    async fn postgres_schema_matches_sqlite() {
        if !test_postgres::wanted() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("s.db").display());
        let sqlite = Db::open(&sqlite).await.unwrap();
        let (_pg_dir, postgres) = test_db().await;
        assert_eq!(schema(&sqlite).await, schema(&postgres).await);
    }

    /// A database a newer build migrated further (a migration this build does not know
    /// is recorded as applied) still opens: a kept older build drains on it.
    #[tokio::test]
    async fn a_database_migrated_further_by_a_newer_build_opens() {
        let dir = tempfile::tempdir().unwrap();
        let url = test_url(dir.path());
        let db = Db::open(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99999, 'a newer build''s', TRUE, $1, 0)",
        )
        .bind(vec![0u8; 48])
        .execute(db.pool())
        .await
        .unwrap();
        db.pool().close().await;
        let reopened = Db::open(&url).await;
        assert!(reopened.is_ok(), "reopened: {:?}", reopened.err());
    }

    #[tokio::test]
    async fn seed_has_what_the_design_promises() {
        let (_dir, db) = temp_db().await;
        let products = db.products().await.unwrap();
        let by_sku = |sku: &str| products.iter().find(|p| p.sku == sku).unwrap();
        assert_eq!(
            (by_sku("P001").name.as_str(), by_sku("P001").price_cents),
            ("Widget A", 2500)
        );
        assert_eq!(
            (by_sku("P002").name.as_str(), by_sku("P002").price_cents),
            ("Widget B", 2500)
        );
        assert!(
            products.iter().any(|p| p.stock_qty <= 5),
            "one scarce product"
        );
        let users = db.users().await.unwrap();
        let role = |u: &str| {
            users
                .iter()
                .find(|x| x.username == u)
                .map(|x| x.role.clone())
        };
        assert_eq!(role("alice").as_deref(), Some("customer"));
        assert_eq!(role("bob").as_deref(), Some("customer"));
        assert_eq!(role("admin").as_deref(), Some("admin"));
        let by_id = db
            .product(&ProductRef::Id(ProductId::new(2).unwrap()))
            .await
            .unwrap();
        assert_eq!(by_id.unwrap().sku, "P002");
        assert!(
            db.product(&ProductRef::Sku("NOPE".into()))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_load_test_seed_adds_shoppers_and_stock_once() {
        let (_dir, db) = temp_db().await;
        let demo_users = db.users().await.unwrap().len();
        db.seed_bench().await.unwrap();
        db.seed_bench().await.unwrap();
        let users = db.users().await.unwrap();
        assert_eq!(users.len(), demo_users + 1000);
        for name in ["shopper-0001", "shopper-0500", "shopper-1000"] {
            let user = users.iter().find(|u| u.username == name).unwrap();
            assert_eq!(user.role, "customer");
            assert!(Username::parse(name).is_ok());
        }
        let products = db.products().await.unwrap();
        assert!(products.iter().all(|p| p.stock_qty == 1_000_000_000));
    }
}
