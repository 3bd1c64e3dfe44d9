-- Webhook replay protection: a delivery is also remembered by the SHA-256
-- of its raw (signed) body per shop and topic, because the delivery id
-- header is not signed and a replay can carry a new one. Rows are purged
-- once the replay window has passed (see `Store::purge_expired`).
CREATE TABLE webhook_bodies (
    shop_domain  TEXT NOT NULL,
    topic        TEXT NOT NULL,
    body_sha256  TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (shop_domain, topic, body_sha256)
);

CREATE INDEX webhook_bodies_received_at ON webhook_bodies (received_at);
CREATE INDEX processed_webhooks_received_at ON processed_webhooks (received_at);
