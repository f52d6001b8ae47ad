-- What the order lifecycle writes. Every write comes from inside a Restate `ctx.run`
-- and is idempotent: keyed by order id (or event id), guarded by state transitions.

-- Index of orders for listings and admin queues; Restate state holds the details.
CREATE TABLE orders (
    order_id    TEXT PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (username),
    status      TEXT    NOT NULL,
    total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, created_at);
CREATE INDEX orders_by_status ON orders (status, created_at);

-- Stock held for an order: reserved at checkout (taken off products.stock_qty),
-- given back on release, kept for good when the order is delivered.
CREATE TABLE stock_reservations (
    order_id   TEXT    NOT NULL,
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    state      TEXT    NOT NULL CHECK (state IN ('reserved', 'released', 'sold')),
    PRIMARY KEY (order_id, product_id)
);

-- The simulated payment gateway: one payment request per order.
CREATE TABLE payment_requests (
    order_id       TEXT PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    amount_cents   INTEGER NOT NULL,
    awakeable_id   TEXT    NOT NULL UNIQUE,
    state          TEXT    NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'timed_out')),
    transaction_id TEXT,
    reason         TEXT,
    created_at     TEXT    NOT NULL,
    settled_at     TEXT
);

-- The simulated carrier: shipments and the attempts made to book them.
CREATE TABLE shipments (
    order_id        TEXT PRIMARY KEY,
    carrier         TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('booked', 'cancelled')),
    created_at      TEXT NOT NULL,
    cancelled_at    TEXT
);
CREATE TABLE carrier_attempts (
    order_id TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL
);

-- Every lifecycle event, once (event_id is unique), for the live UI to stream.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    order_id   TEXT,
    kind       TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, id);
