-- HireCJ's schema on PostgreSQL: native timestamptz, jsonb and uuid.

CREATE TABLE users (
    id            TEXT PRIMARY KEY CHECK (id ~ '^usr_[a-z0-9]{8}$'),
    shop_domain   TEXT NOT NULL UNIQUE,
    email         TEXT,
    name          TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE web_sessions (
    id            TEXT PRIMARY KEY,            -- sha256 of the cookie token, hex
    user_id       TEXT REFERENCES users(id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);

CREATE TABLE oauth_states (
    state_hash       TEXT PRIMARY KEY,         -- sha256 of the state, hex
    shop_domain      TEXT NOT NULL,
    conversation_id  UUID,
    session_id       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    used_at          TIMESTAMPTZ
);

CREATE TABLE merchant_integrations (
    provider            TEXT NOT NULL,
    shop_domain         TEXT NOT NULL,
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    access_token_enc    TEXT,                  -- encrypted, never plain text
    refresh_token_enc   TEXT,                  -- encrypted, never plain text
    scopes              TEXT NOT NULL,
    token_expires_at    TIMESTAMPTZ,
    refresh_expires_at  TIMESTAMPTZ,
    status              TEXT NOT NULL CHECK (status IN ('active', 'needs_reconnect', 'uninstalled')),
    installed_at        TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, shop_domain)
);
CREATE INDEX merchant_integrations_user_idx ON merchant_integrations (user_id);

CREATE TABLE conversations (
    id          UUID PRIMARY KEY,
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_id  TEXT,
    workflow    TEXT NOT NULL,
    title       TEXT,
    state       JSONB NOT NULL DEFAULT '{}'::jsonb,
    last_seq    BIGINT NOT NULL DEFAULT 0,
    started_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ
);
CREATE INDEX conversations_user_idx ON conversations (user_id, started_at DESC);
CREATE INDEX conversations_session_idx ON conversations (session_id);
CREATE INDEX conversations_open_idx ON conversations (updated_at) WHERE ended_at IS NULL;

CREATE TABLE messages (
    conversation_id  UUID NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq              BIGINT NOT NULL CHECK (seq > 0),
    role             TEXT NOT NULL CHECK (role IN ('merchant', 'cj', 'system')),
    content          TEXT NOT NULL,
    ui_elements      JSONB NOT NULL DEFAULT '[]'::jsonb,
    status           TEXT NOT NULL CHECK (status IN ('complete', 'stopped', 'interrupted')),
    client_id        TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, client_id)
);

CREATE TABLE events (
    id               BIGSERIAL PRIMARY KEY,
    user_id          TEXT REFERENCES users(id) ON DELETE CASCADE,
    conversation_id  UUID REFERENCES conversations(id) ON DELETE SET NULL,
    kind             TEXT NOT NULL,
    data             JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_user_idx ON events (user_id, id);

CREATE TABLE facts (
    id                      UUID PRIMARY KEY,
    user_id                 TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    text                    TEXT NOT NULL,
    normalized              TEXT NOT NULL,
    source_conversation_id  UUID REFERENCES conversations(id) ON DELETE SET NULL,
    created_at              TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, normalized)
);

CREATE TABLE turn_traces (
    conversation_id  UUID NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    turn             BIGINT NOT NULL,
    data             JSONB NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (conversation_id, turn)
);

CREATE TABLE processed_webhooks (
    webhook_id   TEXT PRIMARY KEY,
    topic        TEXT NOT NULL,
    shop_domain  TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL
);
