-- The store mirror: each merchant's orders, line items, refunds, products
-- and customers as HireCJ keeps them (backfilled with Bulk Operations,
-- kept current by webhooks and reconciles), plus per-day rollups so that
-- CJ's store tools answer from a few hundred rows whatever the date range.
--
-- Conventions, kept by every mirror table:
-- * `shop` (the canonical `name.myshopify.com`) is on every row and leads
--   every primary key and index, so the mirror can be partitioned or
--   sharded by merchant without a rewrite.
-- * Times are integer unix microseconds (UTC) in BIGINT columns.
-- * Days (`*_day`, `day`) are the shop's own calendar days (its IANA zone, daylight
--   saving included), as days since 1970-01-01, computed when a row is
--   written; range queries and GROUP BY are plain integer operations.
--   Months (`*_month`, `month`) are the day number of their first day.
-- * Money is exact: BIGINT millionths of the currency unit.
-- * Rollup rows (`mirror_daily_*`) are recomputed from the base rows for
--   every day a write touched, in the same transaction.

-- One per shop: its zone and currency, the backfill's state and progress
-- (lease-based: one replica at a time), and the mirror's freshness.
CREATE TABLE mirror_shops (
    shop TEXT NOT NULL PRIMARY KEY,
    time_zone TEXT NOT NULL,
    currency TEXT,
    state TEXT NOT NULL,
    owner TEXT,
    lease_until BIGINT,
    bulk_operation_id TEXT,
    phase TEXT,
    orders_mirrored BIGINT NOT NULL DEFAULT 0,
    objects_mirrored BIGINT NOT NULL DEFAULT 0,
    started_at BIGINT,
    completed_at BIGINT,
    covers_since BIGINT,
    last_event_at BIGINT,
    last_reconcile_at BIGINT,
    reconcile_owner TEXT,
    reconcile_lease_until BIGINT,
    last_error TEXT,
    last_write_at BIGINT,
    updated_at BIGINT NOT NULL
);

-- `tags` is a JSON array of strings. `email_norm` is the trimmed,
-- lower-cased email, for lookups.
CREATE TABLE mirror_orders (
    shop TEXT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_day BIGINT NOT NULL,
    created_month BIGINT NOT NULL,
    processed_at BIGINT,
    updated_at BIGINT NOT NULL,
    cancelled_at BIGINT,
    financial_status TEXT,
    fulfillment_status TEXT,
    currency TEXT NOT NULL,
    subtotal BIGINT NOT NULL,
    total BIGINT NOT NULL,
    total_discounts BIGINT NOT NULL,
    total_tax BIGINT NOT NULL,
    total_refunded BIGINT NOT NULL,
    customer_id BIGINT,
    email TEXT,
    customer_name TEXT,
    tags TEXT NOT NULL,
    source_name TEXT,
    PRIMARY KEY (shop, id)
) WITHOUT ROWID;
-- Ranges of days (rollup recomputes; orders without a customer).
CREATE INDEX mirror_orders_day_idx ON mirror_orders (shop, created_day, customer_id);
-- Newest orders first.
CREATE INDEX mirror_orders_created_idx ON mirror_orders (shop, created_at, id);
-- One customer's orders; the customer reports group by customer in this
-- order without reading the table (covering: day and total).
CREATE INDEX mirror_orders_customer_idx ON mirror_orders (shop, customer_id, created_day, total);

-- An order's lines, replaced whole when the order changes. `position`
-- keeps Shopify's order of the lines.
CREATE TABLE mirror_line_items (
    shop TEXT NOT NULL,
    order_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    product_id BIGINT,
    variant_id BIGINT,
    title TEXT NOT NULL,
    variant_title TEXT,
    sku TEXT,
    quantity BIGINT NOT NULL,
    price BIGINT NOT NULL,
    discount BIGINT NOT NULL,
    PRIMARY KEY (shop, order_id, id)
) WITHOUT ROWID;

-- An order's refunds, replaced whole when the order changes.
-- `created_day` is the shop day the refund was made.
CREATE TABLE mirror_refunds (
    shop TEXT NOT NULL,
    order_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_day BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    note TEXT,
    PRIMARY KEY (shop, order_id, id)
) WITHOUT ROWID;
CREATE INDEX mirror_refunds_day_idx ON mirror_refunds (shop, created_day);

-- Products. A deleted product stays as a tombstone (`deleted_at` set,
-- `updated_at` the deletion time) so an older update cannot bring it back.
CREATE TABLE mirror_products (
    shop TEXT NOT NULL,
    id BIGINT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    vendor TEXT,
    product_type TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT,
    PRIMARY KEY (shop, id)
) WITHOUT ROWID;

-- Customers, with tombstones as for products. A redacted customer keeps
-- only its id and a tombstone that no update passes.
CREATE TABLE mirror_customers (
    shop TEXT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT,
    email TEXT,
    email_norm TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    orders_count BIGINT NOT NULL,
    amount_spent BIGINT NOT NULL,
    deleted_at BIGINT,
    PRIMARY KEY (shop, id)
) WITHOUT ROWID;
CREATE INDEX mirror_customers_email_idx ON mirror_customers (shop, email_norm);

-- Per shop day: orders placed (cancelled included), cancelled, open
-- (neither cancelled nor closed), the sum of totals and of refunded
-- amounts. Days without orders have no row.
CREATE TABLE mirror_daily_sales (
    shop TEXT NOT NULL,
    day BIGINT NOT NULL,
    orders BIGINT NOT NULL,
    cancelled_orders BIGINT NOT NULL,
    open_orders BIGINT NOT NULL,
    revenue BIGINT NOT NULL,
    refunded BIGINT NOT NULL,
    PRIMARY KEY (shop, day)
) WITHOUT ROWID;

-- Per shop day and product (`product_key`: the product id, or `title:` and
-- the title for lines without one): units, orders containing it, line
-- revenue (quantity × price − discount), and the title of the day's newest
-- order containing it (`title_at`, `title_order`: that order's creation
-- time and id, to pick the newest title over a range).
CREATE TABLE mirror_daily_products (
    shop TEXT NOT NULL,
    day BIGINT NOT NULL,
    month BIGINT NOT NULL,
    product_key TEXT NOT NULL,
    product_id BIGINT,
    title TEXT NOT NULL,
    title_at BIGINT NOT NULL,
    title_order BIGINT NOT NULL,
    units BIGINT NOT NULL,
    orders BIGINT NOT NULL,
    revenue BIGINT NOT NULL,
    PRIMARY KEY (shop, day, product_key)
) WITHOUT ROWID;
-- The same per month (`month`: the day number of its first day), so a
-- long range reads whole months here and only its ragged ends by day.
-- `last_day` is the month's last day with the product, whose daily row
-- holds the newest title.
CREATE TABLE mirror_monthly_products (
    shop TEXT NOT NULL,
    month BIGINT NOT NULL,
    product_key TEXT NOT NULL,
    product_id BIGINT,
    units BIGINT NOT NULL,
    orders BIGINT NOT NULL,
    revenue BIGINT NOT NULL,
    last_day BIGINT NOT NULL,
    PRIMARY KEY (shop, month, product_key)
) WITHOUT ROWID;

-- Per shop day: orders by financial and fulfillment status ('' for none).
CREATE TABLE mirror_daily_statuses (
    shop TEXT NOT NULL,
    day BIGINT NOT NULL,
    financial_status TEXT NOT NULL,
    fulfillment_status TEXT NOT NULL,
    orders BIGINT NOT NULL,
    PRIMARY KEY (shop, day, financial_status, fulfillment_status)
) WITHOUT ROWID;
