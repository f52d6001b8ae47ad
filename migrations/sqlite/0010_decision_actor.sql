-- Who asked for the order's decision (approve, reject, cancel), for its timeline. NULL
-- for decisions taken before this was kept, and for those no user asked for.
ALTER TABLE orders ADD COLUMN decision_actor TEXT;
