-- Demo reference data. Safe to run on every start: existing rows (and their
-- stock, which orders change) are left alone.

INSERT INTO products (id, sku, name, description, price_cents, stock_qty) VALUES
    (1,  'P001', 'Widget A',          'The classic widget, anodised aluminium.',          2500, 100),
    (2,  'P002', 'Widget B',          'Widget A''s sibling with a walnut finish.',         2500, 100),
    (3,  'P003', 'Gadget Pro',        'A pocket multi-tool with twelve functions.',       7999,  40),
    (4,  'P004', 'Sprocket Set',      'Six hardened steel sprockets, assorted sizes.',    1450, 250),
    (5,  'P005', 'Gizmo Mini',        'A palm-sized gizmo that fits any desk.',           1999,  60),
    (6,  'P006', 'Doohickey Deluxe',  'Hand-assembled, numbered, with a leather case.',  14900,  12),
    (7,  'P007', 'Limited Edition Thingamajig', 'Only a handful were ever made.',        49900,   3),
    (8,  'P008', 'Cable Organiser',   'Keeps the desk tidy; five colours in one pack.',    899, 500),
    (9,  'P009', 'Precision Screwdriver Kit', '24 bits, magnetic handle, hard case.',    3450,  80),
    (10, 'P010', 'Desk Lamp',         'Warm LED light with a weighted base.',            5900,  25)
ON CONFLICT DO NOTHING;

-- Each product's stock by location, for products that have none yet (new ones, and
-- those from before locations): two thirds east, a third west.
INSERT INTO product_stock (product_id, location, stock_qty)
SELECT p.id, l.id,
       CASE WHEN l.id = 'west' THEN p.stock_qty / 3 ELSE p.stock_qty - p.stock_qty / 3 END
FROM products p, locations l
WHERE l.id IN ('east', 'west')
  AND NOT EXISTS (SELECT 1 FROM product_stock s WHERE s.product_id = p.id)
ON CONFLICT DO NOTHING;

INSERT INTO users (username, name, email, address, role) VALUES
    ('alice', 'Alice Andersen', 'alice@example.com', '1 Market Street, Springfield', 'customer'),
    ('bob',   'Bob Brown',      'bob@example.com',   '22 Harbour Road, Shelbyville', 'customer'),
    ('carol', 'Carol Chen',     'carol@example.com', '3 Hill Lane, Ogdenville',      'customer'),
    ('dave',  'Dave Diaz',      'dave@example.com',  '45 River Walk, North Haverbrook', 'customer'),
    ('erin',  'Erin Evans',     'erin@example.com',  '9 Station Square, Capital City', 'customer'),
    ('frank', 'Frank Fischer',  'frank@example.com', '12 Mill Road, Springfield',     'customer'),
    ('grace', 'Grace Green',    'grace@example.com', '7 Orchard Close, Shelbyville',  'customer'),
    ('heidi', 'Heidi Hall',     'heidi@example.com', '88 Beacon Street, Ogdenville',  'customer'),
    ('ivan',  'Ivan Ivanov',    'ivan@example.com',  '5 Lake View, North Haverbrook', 'customer'),
    ('judy',  'Judy Jones',     'judy@example.com',  '31 Park Avenue, Capital City',  'customer'),
    ('kim',   'Kim Kowalski',   'kim@example.com',   '2 Quarry Lane, Springfield',    'customer'),
    ('leo',   'Leo Lopez',      'leo@example.com',   '19 Dock Street, Shelbyville',   'customer'),
    ('mia',   'Mia Meyer',      'mia@example.com',   '60 Elm Grove, Ogdenville',      'customer'),
    ('nina',  'Nina Novak',     'nina@example.com',  '4 Castle Hill, Capital City',   'customer'),
    ('oscar', 'Oscar Olsen',    'oscar@example.com', '73 Canal Walk, North Haverbrook', 'customer'),
    ('admin', 'Store Admin',    'admin@example.com', NULL,                            'admin')
ON CONFLICT DO NOTHING;

INSERT INTO shipping_zones (zone_name, base_cost_cents) VALUES
    ('domestic',      499),
    ('europe',       1499),
    ('rest-of-world', 2999)
ON CONFLICT DO NOTHING;
