-- Turn traces are kept for a retention window (HIRECJ_TRACE_RETENTION_DAYS):
-- housekeeping deletes the older ones, oldest first, by this index.
CREATE INDEX turn_traces_created_idx ON turn_traces (created_at);
