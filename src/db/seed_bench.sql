-- Load-test data (`SHOPFLOW_SEED=bench`), on top of the demo data: a thousand
-- shoppers, shopper-0001 … shopper-1000, and stock that no load test sells out, so
-- that a benchmark spreads over many carts (Restate runs one call at a time per cart)
-- and measures the shop, not its sell-outs. Safe to run on every start.

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO users (username, name, email, address, role)
SELECT printf('shopper-%04d', i), printf('Shopper %d', i),
       printf('shopper-%04d@example.com', i), printf('%d Bench Street, Springfield', i),
       'customer'
FROM n WHERE true
ON CONFLICT DO NOTHING;

UPDATE products SET stock_qty = 1000000000 WHERE stock_qty < 1000000000;
