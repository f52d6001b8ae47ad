-- Webhooks: partners' subscriptions, and every delivery of an event to one of them.

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    -- The subscribed events, comma-separated with a comma at each end (`,order.paid,`).
    events      TEXT NOT NULL,
    -- `whsec_…`: the deliveries' signing secret.
    secret      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    deleted_at  TEXT
);

-- One row per event and subscriber, delivered in `seq` order per subscriber by its
-- WebhookQueue. `queued` is 0 until the dispatcher has told the queue about the row.
CREATE TABLE webhook_deliveries (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      TEXT    NOT NULL UNIQUE,
    webhook_id       TEXT    NOT NULL REFERENCES webhooks (id),
    event_id         TEXT    NOT NULL,
    -- The `webhook-id` header: one per event, the same on every attempt.
    message_id       TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT,
    queued           INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_next ON webhook_deliveries (webhook_id, status, seq);
CREATE INDEX webhook_deliveries_unqueued ON webhook_deliveries (queued, webhook_id);
