-- Periodic jobs (housekeeping) run on one replica at a time: who holds a
-- job, until when (unix microseconds).
CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
