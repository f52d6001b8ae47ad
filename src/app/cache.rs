//! The web role's in-memory copies of the catalog and of the users, so that a catalog
//! page, a cart change or an authenticated request needs no database round trip for
//! them.
//!
//! Both change in other processes too (the service endpoint reserves and releases
//! stock, the CLI adds users and sets passwords), so the copies cannot be updated in
//! place. Instead every change bumps a version in the database (triggers, see the
//! `cache_versions` migration), the live feed's tail reads the versions with every
//! look at the notification log, and a copy is used only while the version it was
//! loaded under is still the newest the tail has seen. A change is thus seen at most
//! one look (0.1 s) later; before the tail delivers a notification it has read the
//! versions, so whoever hears of a change also sees it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::db::{Backend, CacheVersions, Db, Product, User};
use crate::domain::{ProductRef, Username};

/// The version when the tail could not read it: no copy is trusted meanwhile.
const UNKNOWN: i64 = i64::MIN;

/// The copies and the newest versions seen.
#[derive(Debug)]
pub struct Caches {
    catalog_version: AtomicI64,
    users_version: AtomicI64,
    checkouts_version: AtomicI64,
    /// Checkout claims this process has taken: a copy loaded before the last one is
    /// not trusted.
    claimed_here: AtomicU64,
    catalog: RwLock<Option<Arc<Catalog>>>,
    users: RwLock<Users>,
    checkouts: RwLock<Checkouts>,
}

/// The users who hold a checkout claim, under one version, loaded after this process
/// had taken `claimed_here` claims.
#[derive(Debug, Default)]
struct Checkouts {
    version: i64,
    claimed_here: u64,
    users: HashSet<String>,
}

/// The whole catalog, in id order, as one version of it, with its JSON (the list and
/// each product as the API shows them) encoded once per version rather than per request.
#[derive(Debug)]
pub struct Catalog {
    version: i64,
    pub products: Vec<Product>,
    pub json: Arc<[u8]>,
    product_json: Vec<Arc<[u8]>>,
    by_id: HashMap<i64, usize>,
    by_sku: HashMap<String, usize>,
}

impl Catalog {
    fn new(version: i64, products: Vec<Product>) -> Catalog {
        let by_id = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        let by_sku = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.sku.clone(), i))
            .collect();
        Catalog {
            version,
            json: encode(&products),
            product_json: products.iter().map(encode).collect(),
            products,
            by_id,
            by_sku,
        }
    }

    fn index(&self, product: &ProductRef) -> Option<usize> {
        match product {
            ProductRef::Id(id) => self.by_id.get(&id.get()).copied(),
            ProductRef::Sku(sku) => self.by_sku.get(sku.as_str()).copied(),
        }
    }

    /// One product, by id or SKU.
    pub fn get(&self, product: &ProductRef) -> Option<&Product> {
        self.index(product).map(|i| &self.products[i])
    }

    /// One product's JSON, by id or SKU.
    pub fn json_of(&self, product: &ProductRef) -> Option<Arc<[u8]>> {
        self.index(product).map(|i| self.product_json[i].clone())
    }
}

/// Plain structs of strings and numbers: encoding them cannot fail.
fn encode(value: &impl serde::Serialize) -> Arc<[u8]> {
    Arc::from(serde_json::to_vec(value).expect("products encode as JSON"))
}

/// Users looked up so far, all under one version.
#[derive(Debug, Default)]
struct Users {
    version: i64,
    by_name: HashMap<String, User>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            catalog_version: AtomicI64::new(UNKNOWN),
            users_version: AtomicI64::new(UNKNOWN),
            checkouts_version: AtomicI64::new(UNKNOWN),
            claimed_here: AtomicU64::new(0),
            catalog: RwLock::new(None),
            users: RwLock::new(Users::default()),
            checkouts: RwLock::new(Checkouts::default()),
        }
    }
}

impl Caches {
    /// Records the versions the tail has just read, or `None` when it could not.
    pub fn observe(&self, versions: Option<CacheVersions>) {
        let (catalog, users, checkouts) = versions.map_or((UNKNOWN, UNKNOWN, UNKNOWN), |v| {
            (v.catalog, v.users, v.checkouts)
        });
        self.catalog_version.store(catalog, Ordering::Release);
        self.users_version.store(users, Ordering::Release);
        self.checkouts_version.store(checkouts, Ordering::Release);
    }

    /// This process has just taken a checkout claim: a copy of who holds one loaded
    /// before is not trusted (the tail may not have seen the claim yet).
    pub fn checkout_claimed(&self) {
        self.claimed_here.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether `user` may have a checkout under way: `false` only when they hold no
    /// checkout claim (a checkout waiting for payment always holds one), so only a
    /// `true` needs the database's word. On PostgreSQL, where several web roles share
    /// the database and one sees another's claim only when its tail looks, always
    /// `true`.
    pub async fn may_have_checkout(&self, db: &Db, user: &Username) -> sqlx::Result<bool> {
        if db.backend() != Backend::Sqlite {
            return Ok(true);
        }
        let version = self.checkouts_version.load(Ordering::Acquire);
        // Read before the database: a claim taken here meanwhile makes this copy old.
        let claimed_here = self.claimed_here.load(Ordering::Acquire);
        if version != UNKNOWN {
            let copy = self
                .checkouts
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if copy.version == version && copy.claimed_here == claimed_here {
                return Ok(copy.users.contains(user.as_str()));
            }
        }
        let users: HashSet<String> = db.checkout_claimants().await?.into_iter().collect();
        let found = users.contains(user.as_str());
        if version != UNKNOWN {
            let mut copy = self
                .checkouts
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // Of two loads at once, the one that began after more claims here wins.
            if claimed_here >= copy.claimed_here {
                *copy = Checkouts {
                    version,
                    claimed_here,
                    users,
                };
            }
        }
        Ok(found)
    }

    /// The catalog: the copy if it is current, else a fresh read.
    pub async fn catalog(&self, db: &Db) -> sqlx::Result<Arc<Catalog>> {
        let version = self.catalog_version.load(Ordering::Acquire);
        if version != UNKNOWN {
            let copy = self.catalog.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(catalog) = copy.as_ref().filter(|c| c.version == version) {
                return Ok(catalog.clone());
            }
        }
        // Loaded after `version` was seen: at least that new, so safe to tag with it.
        let catalog = Arc::new(Catalog::new(version, db.products().await?));
        if version != UNKNOWN {
            *self.catalog.write().unwrap_or_else(PoisonError::into_inner) = Some(catalog.clone());
        }
        Ok(catalog)
    }

    /// A user by name: the copy if it is current, else a fresh read.
    pub async fn user(&self, db: &Db, name: &Username) -> sqlx::Result<Option<User>> {
        let version = self.users_version.load(Ordering::Acquire);
        if version != UNKNOWN {
            let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
            if users.version == version
                && let Some(user) = users.by_name.get(name.as_str())
            {
                return Ok(Some(user.clone()));
            }
        }
        let user = db.user(name).await?;
        if let Some(user) = user.as_ref().filter(|_| version != UNKNOWN) {
            let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
            if users.version < version {
                *users = Users {
                    version,
                    by_name: HashMap::new(),
                };
            }
            if users.version == version {
                users
                    .by_name
                    .insert(user.username.to_string(), user.clone());
            }
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn seeded() -> (tempfile::TempDir, Db) {
        let (dir, db) = crate::db::test_db().await;
        db.seed().await.unwrap();
        (dir, db)
    }

    async fn stock_of_p001(caches: &Caches, db: &Db) -> i64 {
        let catalog = caches.catalog(db).await.unwrap();
        let p001 = ProductRef::Sku("P001".into());
        let stock = catalog.get(&p001).unwrap().stock_qty;
        // The JSON encoded with the copy says the same, in the list and on its own.
        let one: serde_json::Value =
            serde_json::from_slice(&catalog.json_of(&p001).unwrap()).unwrap();
        let all: serde_json::Value = serde_json::from_slice(&catalog.json).unwrap();
        assert_eq!(one["stock_qty"], stock);
        assert_eq!(all[0], one);
        assert_eq!(all.as_array().unwrap().len(), catalog.products.len());
        stock
    }

    #[tokio::test]
    async fn a_copy_serves_until_the_tail_sees_a_change_from_another_connection() {
        let (_dir, db) = seeded().await;
        let caches = Caches::default();
        caches.observe(Some(db.cache_versions().await.unwrap()));
        let before = stock_of_p001(&caches, &db).await;

        // Another process sells one: the copy serves on until the tail looks again.
        sqlx::query("UPDATE products SET stock_qty = stock_qty - 1 WHERE sku = 'P001'")
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(stock_of_p001(&caches, &db).await, before);
        caches.observe(Some(db.cache_versions().await.unwrap()));
        assert_eq!(stock_of_p001(&caches, &db).await, before - 1);

        // While the versions cannot be read, nothing cached is trusted.
        caches.observe(None);
        sqlx::query("UPDATE products SET stock_qty = 0 WHERE sku = 'P001'")
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(stock_of_p001(&caches, &db).await, 0);
    }

    #[tokio::test]
    async fn only_a_claimant_may_have_a_checkout_and_a_claim_here_is_seen_at_once() {
        let (_dir, db) = seeded().await;
        let caches = Caches::default();
        caches.observe(Some(db.cache_versions().await.unwrap()));
        let (alice, bob) = (
            Username::parse("alice").unwrap(),
            Username::parse("bob").unwrap(),
        );
        if db.backend() != Backend::Sqlite {
            // Several web roles share PostgreSQL: every change asks the database.
            assert!(
                caches.may_have_checkout(&db, &alice).await.unwrap(),
                "on PostgreSQL"
            );
            return;
        }
        assert!(!caches.may_have_checkout(&db, &alice).await.unwrap());
        let order = crate::domain::OrderId::parse("o-1").unwrap();
        db.claim_checkout(&alice, &order, "2000-01-01T00:00:00.000Z")
            .await
            .unwrap();
        // Taken here: seen before the tail looks again.
        caches.checkout_claimed();
        assert!(caches.may_have_checkout(&db, &alice).await.unwrap());
        assert!(!caches.may_have_checkout(&db, &bob).await.unwrap());
        // Given up elsewhere: the copy serves until the tail sees the new version.
        db.release_checkout(&alice, &order).await.unwrap();
        assert!(caches.may_have_checkout(&db, &alice).await.unwrap());
        let versions = db.cache_versions().await.unwrap();
        caches.observe(Some(versions));
        assert!(!caches.may_have_checkout(&db, &alice).await.unwrap());
    }

    #[tokio::test]
    async fn a_new_password_drops_the_users_copy() {
        let (_dir, db) = seeded().await;
        let caches = Caches::default();
        let first = db.cache_versions().await.unwrap();
        caches.observe(Some(first));
        let alice = Username::parse("alice").unwrap();
        let before = caches.user(&db, &alice).await.unwrap().unwrap();
        assert_eq!(
            caches.user(&db, &alice).await.unwrap().as_ref(),
            Some(&before)
        );

        let hash = crate::auth::password::PasswordHash::new("a new good password").unwrap();
        assert!(db.set_password(&alice, &hash).await.unwrap());
        let versions = db.cache_versions().await.unwrap();
        caches.observe(Some(versions));
        let after = caches.user(&db, &alice).await.unwrap().unwrap();
        assert_ne!(after.credential_stamp(), before.credential_stamp());
        // The catalog did not change, so its version did not either.
        assert_eq!(versions.catalog, first.catalog);
        assert!(versions.users > first.users);
    }
}
