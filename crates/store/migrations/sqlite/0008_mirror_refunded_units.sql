-- What the mirror needs for per-product refunds and exact open orders:
-- * `mirror_orders.closed_at`: when Shopify closed the order (its
--   `closedAt`); an order is open while neither cancelled nor closed.
-- * `mirror_line_items.current_quantity`: units still on the line
--   (Shopify's `currentQuantity`: ordered less refunded or removed);
--   NULL (rows written before this migration) reads as `quantity`.
-- * `refunded_units` and `refunded` on the product rollups: units refunded
--   or removed, and what they were sold for (millionths).
-- Rows mirrored before this migration carry neither, so every mirror is
-- read again: a completed backfill goes back to pending (its rows stay and
-- are overwritten in place), a running one starts over with the new query.
ALTER TABLE mirror_orders ADD COLUMN closed_at BIGINT;
ALTER TABLE mirror_line_items ADD COLUMN current_quantity BIGINT;
ALTER TABLE mirror_daily_products ADD COLUMN refunded_units BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mirror_daily_products ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mirror_monthly_products ADD COLUMN refunded_units BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mirror_monthly_products ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;
UPDATE mirror_shops SET state = 'pending', owner = NULL, lease_until = NULL,
    bulk_operation_id = NULL, phase = NULL, orders_mirrored = 0, objects_mirrored = 0,
    started_at = NULL;
