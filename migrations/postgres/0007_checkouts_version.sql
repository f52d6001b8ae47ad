-- As migrations/sqlite/0014: every checkout claim taken or given up bumps its own
-- cache version, so the web role can keep the checkouts under way in memory.
INSERT INTO cache_versions (name, version) VALUES ('checkouts', 0);

CREATE TRIGGER checkouts_changed AFTER INSERT OR UPDATE OR DELETE ON checkout_claims
    FOR EACH ROW EXECUTE FUNCTION bump_cache_version('checkouts');
