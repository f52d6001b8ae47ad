-- Cancellations, refunds and one decision per order.

-- A payment request may be withdrawn (the order was cancelled before it was paid), and
-- a captured payment may be refunded (the order did not ship). SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt.
CREATE TABLE payment_requests_next (
    order_id       TEXT PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    amount_cents   INTEGER NOT NULL,
    awakeable_id   TEXT    NOT NULL UNIQUE,
    state          TEXT    NOT NULL
                   CHECK (state IN ('pending', 'succeeded', 'failed', 'timed_out', 'cancelled')),
    transaction_id TEXT,
    reason         TEXT,
    created_at     TEXT    NOT NULL,
    settled_at     TEXT,
    refunded_cents INTEGER,
    refunded_at    TEXT
);
INSERT INTO payment_requests_next
    (order_id, user_id, amount_cents, awakeable_id, state, transaction_id, reason,
     created_at, settled_at)
SELECT order_id, user_id, amount_cents, awakeable_id, state, transaction_id, reason,
       created_at, settled_at
FROM payment_requests;
DROP TABLE payment_requests;
ALTER TABLE payment_requests_next RENAME TO payment_requests;

-- The one decision an order waiting for approval gets: approved, rejected or cancelled.
-- Claimed with a conditional update, so of racing decisions exactly one wins.
ALTER TABLE orders ADD COLUMN decision TEXT;
ALTER TABLE orders ADD COLUMN decided_at TEXT;

-- Which invocation checked the order out (to read its journal in Restate).
ALTER TABLE orders ADD COLUMN checkout_invocation TEXT;

-- A user's checkout under way: claimed before checkout starts, so a second checkout
-- of the same user is refused at once instead of running once the first one is over.
CREATE TABLE checkout_claims (
    user_id    TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL,
    claimed_at TEXT NOT NULL
);

-- The admin's carrier drill: the next `remaining` orders to ship meet a carrier that
-- fails every booking (`fail`) or the first two (`flaky`).
CREATE TABLE carrier_drill (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    mode      TEXT    NOT NULL CHECK (mode IN ('fail', 'flaky')),
    remaining INTEGER NOT NULL CHECK (remaining >= 0)
);
-- The carrier each order met, fixed at its first booking attempt.
CREATE TABLE carrier_order_modes (
    order_id TEXT PRIMARY KEY,
    mode     TEXT NOT NULL CHECK (mode IN ('normal', 'fail', 'flaky'))
);
