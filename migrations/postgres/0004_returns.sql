-- Returns after delivery, and every refund the gateway made, one row each.

-- A return: asked for by the customer, decided by the store, then its parcel awaited
-- until received (refunded) or its window ends (expired). One ReturnWorkflow each.
CREATE TABLE returns (
    return_id      TEXT    PRIMARY KEY,
    order_id       TEXT    NOT NULL REFERENCES orders (order_id),
    user_id        TEXT    NOT NULL,
    status         TEXT    NOT NULL
                   CHECK (status IN ('requested', 'awaiting_parcel', 'rejected', 'expired', 'refunded')),
    -- The lines coming back at the prices paid (JSON), and what they are worth.
    items          TEXT    NOT NULL,
    worth_cents    BIGINT NOT NULL CHECK (worth_cents >= 0),
    reason         TEXT    NOT NULL,
    -- The customer's Idempotency-Key, if any: the same key, the same return.
    idempotency_key TEXT,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    invocation_id  TEXT,
    -- The one decision (approved or rejected): who claimed it, and why a rejection.
    decision       TEXT,
    decided_by     TEXT,
    decided_at     TEXT,
    decision_actor TEXT,
    reject_reason  TEXT,
    -- The return label and the end of the parcel's window, once approved.
    label_carrier  TEXT,
    label_tracking TEXT,
    parcel_due     TEXT,
    -- The parcel's receipt: claimed once, against the window's end.
    received_at    TEXT,
    received_by    TEXT,
    receipt_actor  TEXT,
    restock        BIGINT, -- 1 when the goods go back on sale
    restocked_at   TEXT,
    refund_cents   BIGINT
);
CREATE INDEX returns_by_order ON returns (order_id, created_at);
CREATE UNIQUE INDEX returns_by_idempotency ON returns (order_id, idempotency_key);
CREATE INDEX returns_by_status ON returns (status, created_at);

-- Money given back, one row per refund: the order's remainder when it did not ship, a
-- return's lines, or goodwill. `payment_requests.refunded_cents` is their running sum,
-- kept in the same transaction; it never exceeds what was captured.
CREATE TABLE refunds (
    refund_id    TEXT    PRIMARY KEY,
    order_id     TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('order', 'return', 'goodwill')),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    reason       TEXT    NOT NULL,
    actor        TEXT,
    created_at   TEXT    NOT NULL
);
CREATE INDEX refunds_by_order ON refunds (order_id, created_at);

-- The whole refunds made before this table: one per order that did not ship.
INSERT INTO refunds (refund_id, order_id, kind, amount_cents, reason, created_at)
SELECT p.order_id || ':order', p.order_id, 'order', p.refunded_cents,
       COALESCE(o.failure_reason, 'the order did not ship'), COALESCE(p.refunded_at, p.created_at)
FROM payment_requests p LEFT JOIN orders o ON o.order_id = p.order_id
WHERE p.refunded_cents > 0;
