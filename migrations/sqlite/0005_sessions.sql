-- Dashboard sessions and one-time login links (SPEC §14). Only the SHA-256 of the cookie value
-- or link code is stored. A session belongs to the board token it was opened with and goes
-- when that token's row goes; a revoked token is refused when the session is read.
CREATE TABLE sessions (
    hash          TEXT PRIMARY KEY NOT NULL,
    one_time      INTEGER NOT NULL CHECK (one_time IN (0, 1)),
    key_id        TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    csrf          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);

-- The dashboard counts issues per status from the `issues_status` index and subtracts the few
-- soft-deleted ones, found through this partial index instead of a table scan.
CREATE INDEX issues_deleted_status ON issues(status) WHERE deleted = 1;
