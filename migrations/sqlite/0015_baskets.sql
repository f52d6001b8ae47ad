-- Each user's basket as their `UserSession` object last stored it, written in the
-- journaled step that changes it (and emptied by the checkout that clears it), so a
-- cart is read from here rather than by a Restate invocation. A user without a row (a
-- basket an older build stored) is read from Restate.
CREATE TABLE baskets (
    user_id TEXT PRIMARY KEY,
    lines TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
