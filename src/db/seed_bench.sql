-- Load-test data (`SHOPFLOW_SEED=bench`), on top of the demo data: a thousand
-- shoppers, shopper-0001 … shopper-1000, and stock that no load test sells out, so
-- that a benchmark spreads over many carts (Restate runs one call at a time per cart)
-- and measures the shop, not its sell-outs. Safe to run on every start; SQL that
-- SQLite and PostgreSQL both run.

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO users (username, name, email, address, role)
SELECT 'shopper-' || pad || i, 'Shopper ' || i, 'shopper-' || pad || i || '@example.com',
       i || ' Bench Street, Springfield', 'customer'
FROM (SELECT i, CASE WHEN i < 10 THEN '000' WHEN i < 100 THEN '00'
                     WHEN i < 1000 THEN '0' ELSE '' END AS pad FROM n) AS padded
WHERE true
ON CONFLICT DO NOTHING;

UPDATE product_stock SET stock_qty = 500000000 WHERE stock_qty < 500000000;
UPDATE products SET stock_qty = (SELECT SUM(s.stock_qty) FROM product_stock s
                                 WHERE s.product_id = products.id)
WHERE stock_qty <> (SELECT SUM(s.stock_qty) FROM product_stock s WHERE s.product_id = products.id);
