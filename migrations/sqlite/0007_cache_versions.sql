-- The web role keeps the catalog and the users in memory. Every change to either
-- (from any process: the service endpoint reserving stock, the CLI setting a password)
-- bumps its version here in the same transaction, and the web role's tail of the
-- notification log reads these versions with every look, so a cached copy is dropped
-- at most one look (0.1 s) after the change.
CREATE TABLE cache_versions (
    name TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL
);
INSERT INTO cache_versions (name, version) VALUES ('catalog', 0), ('users', 0);

CREATE TRIGGER catalog_inserted AFTER INSERT ON products
BEGIN UPDATE cache_versions SET version = version + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER catalog_updated AFTER UPDATE ON products
BEGIN UPDATE cache_versions SET version = version + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER catalog_deleted AFTER DELETE ON products
BEGIN UPDATE cache_versions SET version = version + 1 WHERE name = 'catalog'; END;

CREATE TRIGGER users_inserted AFTER INSERT ON users
BEGIN UPDATE cache_versions SET version = version + 1 WHERE name = 'users'; END;
CREATE TRIGGER users_updated AFTER UPDATE ON users
BEGIN UPDATE cache_versions SET version = version + 1 WHERE name = 'users'; END;
CREATE TRIGGER users_deleted AFTER DELETE ON users
BEGIN UPDATE cache_versions SET version = version + 1 WHERE name = 'users'; END;
