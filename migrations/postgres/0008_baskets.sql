-- As migrations/sqlite/0015: each user's basket as their `UserSession` last stored it.
CREATE TABLE baskets (
    user_id TEXT PRIMARY KEY,
    lines TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
