-- Which replica runs CJ's turn of a conversation, until when (unix
-- microseconds): one turn at a time per conversation across replicas.
ALTER TABLE conversations ADD COLUMN turn_owner TEXT;
ALTER TABLE conversations ADD COLUMN turn_lease_until BIGINT;
