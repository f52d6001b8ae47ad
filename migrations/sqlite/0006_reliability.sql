-- Carrier attempts are counted by the shipping handler's journal (one named step per
-- attempt), which a crash cannot make count twice; the counter table goes.
DROP TABLE carrier_attempts;

-- The invocation that claimed the order's decision: when Restate runs that claim again
-- (its endpoint died before the result was journaled) it still wins, and only it.
ALTER TABLE orders ADD COLUMN decided_by TEXT;
