-- The page's sessions, kept on the server: the cookie holds a random id, this table its
-- SHA-256 (a copy of the table signs nobody in). Signing out deletes the row; a new
-- password or role deletes every row of the user, and a session whose `stamp` (of the
-- password) or `role` is no longer the user's is refused all the same (a sign-in that
-- checked the old password just before the change). `demo` marks sessions made while
-- demo mode was on, which are refused once it is off.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    username     TEXT NOT NULL,
    stamp        TEXT NOT NULL,
    role         TEXT NOT NULL,
    demo         BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (username);
