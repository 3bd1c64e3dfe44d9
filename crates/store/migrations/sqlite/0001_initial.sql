-- HireCJ's schema on SQLite. Times are RFC 3339 text written by the
-- application (always UTC, microseconds), UUIDs are 16-byte blobs, JSON is text.

CREATE TABLE users (
    id            TEXT PRIMARY KEY CHECK (length(id) = 12 AND id GLOB 'usr_[a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9]'),
    shop_domain   TEXT NOT NULL UNIQUE,
    email         TEXT,
    name          TEXT,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
);

CREATE TABLE web_sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT REFERENCES users(id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);

CREATE TABLE oauth_states (
    state_hash       TEXT PRIMARY KEY,
    shop_domain      TEXT NOT NULL,
    conversation_id  BLOB,
    session_id       TEXT,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    used_at          TEXT
);

CREATE TABLE merchant_integrations (
    provider            TEXT NOT NULL,
    shop_domain         TEXT NOT NULL,
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    access_token_enc    TEXT,
    refresh_token_enc   TEXT,
    scopes              TEXT NOT NULL,
    token_expires_at    TEXT,
    refresh_expires_at  TEXT,
    status              TEXT NOT NULL CHECK (status IN ('active', 'needs_reconnect', 'uninstalled')),
    installed_at        TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (provider, shop_domain)
);
CREATE INDEX merchant_integrations_user_idx ON merchant_integrations (user_id);

CREATE TABLE conversations (
    id          BLOB PRIMARY KEY,
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_id  TEXT,
    workflow    TEXT NOT NULL,
    title       TEXT,
    state       TEXT NOT NULL DEFAULT '{}',
    last_seq    INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX conversations_user_idx ON conversations (user_id, started_at DESC);
CREATE INDEX conversations_session_idx ON conversations (session_id);
CREATE INDEX conversations_open_idx ON conversations (updated_at) WHERE ended_at IS NULL;

CREATE TABLE messages (
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL CHECK (seq > 0),
    role             TEXT NOT NULL CHECK (role IN ('merchant', 'cj', 'system')),
    content          TEXT NOT NULL,
    ui_elements      TEXT NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL CHECK (status IN ('complete', 'stopped', 'interrupted')),
    client_id        TEXT,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, client_id)
);

CREATE TABLE events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          TEXT REFERENCES users(id) ON DELETE CASCADE,
    conversation_id  BLOB REFERENCES conversations(id) ON DELETE SET NULL,
    kind             TEXT NOT NULL,
    data             TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT NOT NULL
);
CREATE INDEX events_user_idx ON events (user_id, id);

CREATE TABLE facts (
    id                      BLOB PRIMARY KEY,
    user_id                 TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    text                    TEXT NOT NULL,
    normalized              TEXT NOT NULL,
    source_conversation_id  BLOB REFERENCES conversations(id) ON DELETE SET NULL,
    created_at              TEXT NOT NULL,
    UNIQUE (user_id, normalized)
);

CREATE TABLE turn_traces (
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    turn             INTEGER NOT NULL,
    data             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (conversation_id, turn)
);

CREATE TABLE processed_webhooks (
    webhook_id   TEXT PRIMARY KEY,
    topic        TEXT NOT NULL,
    shop_domain  TEXT NOT NULL,
    received_at  TEXT NOT NULL
);
