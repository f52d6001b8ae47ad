-- The page's sessions, kept on the server: the cookie holds a random id, this table its
-- SHA-256 (a copy of the table signs nobody in). Signing out deletes the row; a new
-- password or role deletes every row of the user. `demo` marks sessions made by the
-- demo mode's user picker, which are refused once demo mode is off.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    username     TEXT NOT NULL,
    demo         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (username);
