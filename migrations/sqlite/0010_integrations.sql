-- Integrations (SPEC §11.2): the durable outbox of outgoing deliveries, the log of their
-- attempts, and the outgoing-webhook subscriptions.

-- One queued delivery. `channel` is `telegram`, `discord` or `webhook:<uuid>`; ids are UUIDv7,
-- so ordering by id is ordering by creation.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    channel          TEXT NOT NULL,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);
-- "What is due on this channel": only pending items, in due order.
CREATE INDEX outbox_due ON outbox(channel, next_attempt_at) WHERE status = 'pending';
-- The delivery log of one channel, newest first.
CREATE INDEX outbox_channel ON outbox(channel, id);

-- Every attempt at a delivery (the delivery log's detail rows).
CREATE TABLE outbox_attempts (
    outbox_id    TEXT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
) WITHOUT ROWID;

-- Outgoing-webhook subscriptions. `events` is a JSON array of event names; empty means all.
CREATE TABLE webhooks (
    id           TEXT PRIMARY KEY NOT NULL,
    url          TEXT NOT NULL,
    secret       TEXT NOT NULL,
    events       TEXT NOT NULL DEFAULT '[]',
    active       INTEGER NOT NULL DEFAULT 1,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
