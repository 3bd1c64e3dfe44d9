-- Each replica polls for sessions revoked on any replica (to close their
-- chat sockets): an index on the few revoked rows.
CREATE INDEX web_sessions_revoked_idx ON web_sessions (revoked_at) WHERE revoked_at IS NOT NULL;
