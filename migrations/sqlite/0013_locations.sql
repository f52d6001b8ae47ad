-- Stock in several places, parcels per place, and payments captured per parcel.

CREATE TABLE locations (
    id       TEXT    PRIMARY KEY,
    name     TEXT    NOT NULL,
    position INTEGER NOT NULL
);
INSERT INTO locations (id, name, position) VALUES
    ('east', 'East warehouse', 1),
    ('west', 'West warehouse', 2);

-- What each location has on its shelves. `products.stock_qty` is their sum, kept in
-- the same transaction as every change here. The seed fills a product's rows from its
-- `stock_qty` when it has none (existing products: two thirds east, a third west).
CREATE TABLE product_stock (
    product_id INTEGER NOT NULL REFERENCES products (id),
    location   TEXT    NOT NULL REFERENCES locations (id),
    stock_qty  INTEGER NOT NULL CHECK (stock_qty >= 0),
    PRIMARY KEY (product_id, location)
);

-- A reservation now names the location it was taken from (one line may come from two).
CREATE TABLE stock_reservations_next (
    order_id   TEXT    NOT NULL,
    product_id INTEGER NOT NULL REFERENCES products (id),
    location   TEXT    NOT NULL DEFAULT 'east',
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    state      TEXT    NOT NULL CHECK (state IN ('reserved', 'released', 'sold')),
    PRIMARY KEY (order_id, product_id, location)
);
INSERT INTO stock_reservations_next (order_id, product_id, location, quantity, state)
SELECT order_id, product_id, 'east', quantity, state FROM stock_reservations;
DROP TABLE stock_reservations;
ALTER TABLE stock_reservations_next RENAME TO stock_reservations;

-- An order's parcels, one per location it ships from, written with its reservation.
-- `shipment_id` is the carrier's reference (`shipments.order_id`): the order id for an
-- order in one parcel, `<order id>-<location>` for each parcel of a split order.
CREATE TABLE parcels (
    shipment_id  TEXT    PRIMARY KEY,
    order_id     TEXT    NOT NULL,
    location     TEXT    NOT NULL REFERENCES locations (id),
    items        TEXT    NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    status       TEXT    NOT NULL
                 CHECK (status IN ('pending', 'shipping', 'in_transit', 'delivered', 'failed')),
    updated_at   TEXT    NOT NULL,
    UNIQUE (order_id, location)
);

-- The carrier drill may hit one location only.
ALTER TABLE carrier_drill ADD COLUMN location TEXT;

-- Authorized at checkout, captured per parcel as it ships, the rest voided.
-- `captured_cents` NULL: a payment taken before parcels, captured whole when it succeeded.
ALTER TABLE payment_requests ADD COLUMN captured_cents INTEGER;
ALTER TABLE payment_requests ADD COLUMN voided_cents INTEGER NOT NULL DEFAULT 0;
CREATE TABLE payment_captures (
    entry_id     TEXT    PRIMARY KEY,
    order_id     TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('capture', 'void')),
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    created_at   TEXT    NOT NULL
);
CREATE INDEX payment_captures_by_order ON payment_captures (order_id);

-- The dashboard reads the orders that ended in the last minutes.
CREATE INDEX orders_by_update ON orders (updated_at);
