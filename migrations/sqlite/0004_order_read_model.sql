-- The order read model: everything a reader needs about an order, kept current by the
-- durable handlers inside their `ctx.run`s, so a read is one query and an order still
-- reads right after Restate has dropped its workflow's state (retention, purge).
ALTER TABLE orders ADD COLUMN shipping_address TEXT NOT NULL DEFAULT '';
-- The basket at checkout: JSON [{product_id, sku, name, unit_price_cents, quantity}].
ALTER TABLE orders ADD COLUMN items TEXT NOT NULL DEFAULT '[]';
ALTER TABLE orders ADD COLUMN transaction_id TEXT;
ALTER TABLE orders ADD COLUMN failure_reason TEXT;
-- The workflow's checklist with times: JSON [{name, state, at?}]; NULL until the
-- workflow runs (the checklist then follows from the status alone).
ALTER TABLE orders ADD COLUMN steps TEXT;

-- Compensations that ran, in the order they ran; once each.
CREATE TABLE order_compensations (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    name     TEXT NOT NULL,
    ran_at   TEXT NOT NULL,
    UNIQUE (order_id, name)
);
