-- The Restate invocations that work on an order (its workflow, its shipping calls),
-- each recorded by the invocation itself. With the checkout's and the decision's
-- (columns of `orders`) they are every invocation the durable-steps pane shows, found
-- by id: Restate answers a lookup by invocation id from one partition, while a lookup
-- by key scans them all.
CREATE TABLE order_invocations (
    order_id TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    PRIMARY KEY (order_id, invocation_id)
) WITHOUT ROWID;
