-- The web role keeps the users whose checkout is under way in memory (a cart change is
-- refused at once while one is, without a database read per change): every claim
-- taken or given up bumps its own cache version, as products and users do.
INSERT INTO cache_versions (name, version) VALUES ('checkouts', 0);

CREATE TRIGGER checkouts_inserted AFTER INSERT ON checkout_claims
BEGIN UPDATE cache_versions SET version = version + 1 WHERE name = 'checkouts'; END;
CREATE TRIGGER checkouts_updated AFTER UPDATE ON checkout_claims
BEGIN UPDATE cache_versions SET version = version + 1 WHERE name = 'checkouts'; END;
CREATE TRIGGER checkouts_deleted AFTER DELETE ON checkout_claims
BEGIN UPDATE cache_versions SET version = version + 1 WHERE name = 'checkouts'; END;
