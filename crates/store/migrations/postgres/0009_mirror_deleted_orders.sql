-- A deleted order (Shopify's `orders/delete`, or one a reconcile's sweep
-- found Shopify no longer lists) leaves a tombstone, as deleted products
-- and customers do: a version of the order not newer than its deletion (a
-- late `orders/updated`, a reconcile that read it before) is not written
-- back. The order, its lines and its refunds are deleted.
CREATE TABLE mirror_deleted_orders (
    shop TEXT NOT NULL,
    id BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL,
    PRIMARY KEY (shop, id)
);
