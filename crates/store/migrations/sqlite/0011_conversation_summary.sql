-- A long conversation's model context is bounded: the messages up to
-- `summary_through` are folded into `summary` (written by CJ's model, or
-- by the offline brain's summariser); a turn reads only the summary and
-- the messages after it.
ALTER TABLE conversations ADD COLUMN summary TEXT;
ALTER TABLE conversations ADD COLUMN summary_through BIGINT NOT NULL DEFAULT 0;
