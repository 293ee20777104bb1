-- Mesa schema, version 1: every entity of SPEC §1.
-- Conventions: ids are UUIDv7 text; times are INTEGER milliseconds since the Unix epoch (UTC);
-- money is INTEGER micro-dollars; lists and maps are JSON text; booleans are 0/1.
-- Every row the API can update has `version` (optimistic concurrency, SPEC §9.2).

CREATE TABLE agents (
    id                  TEXT PRIMARY KEY NOT NULL,
    slug                TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    archetype           TEXT NOT NULL,
    runner              TEXT NOT NULL,
    model               TEXT NOT NULL DEFAULT '',
    working_dir         TEXT NOT NULL,
    reports_to          TEXT REFERENCES agents(id) ON DELETE SET NULL,
    reviewer_id         TEXT REFERENCES agents(id) ON DELETE SET NULL,
    active              INTEGER NOT NULL DEFAULT 1,
    config              TEXT NOT NULL,           -- the whole AgentConfig as JSON
    paused_until        INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    version             INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX agents_reports_to ON agents(reports_to);

CREATE TABLE agent_revisions (
    agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    config      TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, number)
) WITHOUT ROWID;

CREATE TABLE archetypes (
    slug        TEXT PRIMARY KEY NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE archetype_versions (
    slug        TEXT NOT NULL REFERENCES archetypes(slug) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    source      TEXT NOT NULL,                   -- builtin | board | patch:<id> | rollback:<n>
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (slug, version)
) WITHOUT ROWID;

CREATE TABLE apex_blocks (
    id          TEXT PRIMARY KEY NOT NULL,
    title       TEXT NOT NULL,
    goal        TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL CHECK (status IN ('active', 'archived')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE work_blocks (
    id                   TEXT PRIMARY KEY NOT NULL,
    title                TEXT NOT NULL,
    goal                 TEXT NOT NULL DEFAULT '',
    acceptance_criteria  TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL
                         CHECK (status IN ('proposed', 'active', 'ready', 'shipped', 'cancelled')),
    north_star_metric    TEXT,
    north_star_target    REAL,
    north_star_current   REAL,
    apex_block_id        TEXT REFERENCES apex_blocks(id) ON DELETE SET NULL,
    activated_at         INTEGER,
    ready_at             INTEGER,
    shipped_at           INTEGER,
    cancelled_at         INTEGER,
    created_by           TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    version              INTEGER NOT NULL DEFAULT 1
);
-- At most one active work block, enforced by the database (SPEC §3.1).
CREATE UNIQUE INDEX work_blocks_one_active ON work_blocks(status) WHERE status = 'active';
CREATE INDEX work_blocks_status ON work_blocks(status, created_at);
CREATE INDEX work_blocks_apex ON work_blocks(apex_block_id);

CREATE TABLE north_star_values (
    id             INTEGER PRIMARY KEY,
    work_block_id  TEXT NOT NULL REFERENCES work_blocks(id) ON DELETE CASCADE,
    value          REAL NOT NULL,
    recorded_by    TEXT NOT NULL,
    recorded_at    INTEGER NOT NULL
);
CREATE INDEX north_star_values_block ON north_star_values(work_block_id, recorded_at);

-- Issue-key counters, one row per prefix: allocation is an UPDATE ... RETURNING inside the
-- creating transaction, so keys are dense and never reused.
CREATE TABLE issue_counters (
    prefix  TEXT PRIMARY KEY NOT NULL,
    last    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE issues (
    id                   TEXT PRIMARY KEY NOT NULL,
    key                  TEXT NOT NULL UNIQUE,
    number               INTEGER NOT NULL,
    title                TEXT NOT NULL,
    title_norm           TEXT NOT NULL,          -- lowercase, whitespace collapsed (SPEC §2)
    description          TEXT NOT NULL DEFAULT '',
    type                 TEXT NOT NULL
                         CHECK (type IN ('task', 'bug', 'feature', 'api', 'backend', 'frontend',
                                         'chore', 'research')),
    status               TEXT NOT NULL
                         CHECK (status IN ('todo', 'in_progress', 'blocked', 'in_review',
                                           'board_review', 'done', 'wont_do', 'cancelled')),
    open                 INTEGER NOT NULL,       -- 1 while status is not terminal
    priority             INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 4),
    assignee_id          TEXT REFERENCES agents(id) ON DELETE SET NULL,
    parent_key           TEXT REFERENCES issues(key) ON DELETE SET NULL,
    work_block_id        TEXT REFERENCES work_blocks(id) ON DELETE SET NULL,
    stages               TEXT NOT NULL DEFAULT '[]',
    current_stage        INTEGER,
    branch               TEXT,
    run_id               TEXT,                   -- the run bound by the last checkout
    started_at           INTEGER,
    completed_at         INTEGER,
    cancellation_reason  TEXT,
    created_by           TEXT NOT NULL,
    run_count            INTEGER NOT NULL DEFAULT 0,
    status_changed_at    INTEGER NOT NULL,
    deleted              INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    version              INTEGER NOT NULL DEFAULT 1
);
-- An open issue's title is unique (case-insensitive, trimmed; SPEC §2).
CREATE UNIQUE INDEX issues_open_title ON issues(title_norm) WHERE open = 1 AND deleted = 0;
-- List filters of SPEC §9.3 and the inbox.
CREATE INDEX issues_status ON issues(status, created_at, id);
CREATE INDEX issues_assignee ON issues(assignee_id, open, priority, updated_at);
CREATE INDEX issues_parent ON issues(parent_key);
CREATE INDEX issues_work_block ON issues(work_block_id, status);
CREATE INDEX issues_created ON issues(created_at, id);

CREATE TABLE labels (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    color       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE issue_labels (
    issue_id  TEXT NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    label_id  TEXT NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    PRIMARY KEY (issue_id, label_id)
) WITHOUT ROWID;
CREATE INDEX issue_labels_label ON issue_labels(label_id, issue_id);

CREATE TABLE comments (
    id               TEXT PRIMARY KEY NOT NULL,
    issue_key        TEXT NOT NULL REFERENCES issues(key) ON DELETE CASCADE,
    author_agent_id  TEXT REFERENCES agents(id) ON DELETE SET NULL,
    author           TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('comment', 'evidence', 'system', 'review')),
    body             TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX comments_issue ON comments(issue_key, created_at, id);

CREATE TABLE runs (
    id                  TEXT PRIMARY KEY NOT NULL,
    agent_id            TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    issue_key           TEXT REFERENCES issues(key) ON DELETE SET NULL,
    mode                TEXT NOT NULL
                        CHECK (mode IN ('task', 'review', 'heartbeat', 'cron', 'audit')),
    status              TEXT NOT NULL
                        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled',
                                          'timed_out')),
    triggers            TEXT NOT NULL,           -- JSON list of trigger names, first first
    runner              TEXT NOT NULL,
    model               TEXT NOT NULL DEFAULT '',
    prompt              TEXT,
    worktree_path       TEXT,
    branch              TEXT,
    base_commit         TEXT,
    pid                 INTEGER,
    pgid                INTEGER,
    exit_code           INTEGER,
    stdout              TEXT,
    diff                TEXT,
    diff_stat           TEXT,
    input_tokens        INTEGER NOT NULL DEFAULT 0,
    output_tokens       INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens   INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd            INTEGER NOT NULL DEFAULT 0,
    cost_reserved_usd   INTEGER NOT NULL DEFAULT 0,
    tokens_reserved     INTEGER NOT NULL DEFAULT 0,
    num_turns           INTEGER,
    failure_reason      TEXT,
    node_id             TEXT,
    lease_expires_at    INTEGER,
    not_before          INTEGER,
    priority            INTEGER NOT NULL DEFAULT 0,
    trigger_rank        INTEGER NOT NULL DEFAULT 3,
    queued_at           INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER
);
-- Deduplication (SPEC §6.1): at most one queued run per (agent, issue).
CREATE UNIQUE INDEX runs_one_queued ON runs(agent_id, ifnull(issue_key, ''), mode)
    WHERE status = 'queued';
-- Queue order: priority desc, trigger rank, age.
CREATE INDEX runs_queue ON runs(priority DESC, trigger_rank, queued_at) WHERE status = 'queued';
CREATE INDEX runs_running ON runs(agent_id) WHERE status = 'running';
CREATE INDEX runs_lease ON runs(lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_agent ON runs(agent_id, queued_at);
CREATE INDEX runs_issue ON runs(issue_key, queued_at);
CREATE INDEX runs_status ON runs(status, queued_at);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('run', 'agent', 'board')),
    prefix        TEXT NOT NULL,
    hash          TEXT NOT NULL UNIQUE,          -- SHA-256 hex of the whole key
    agent_id      TEXT REFERENCES agents(id) ON DELETE CASCADE,
    run_id        TEXT REFERENCES runs(id) ON DELETE CASCADE,
    name          TEXT NOT NULL DEFAULT '',
    scopes        TEXT NOT NULL DEFAULT '[]',
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE INDEX api_keys_run ON api_keys(run_id) WHERE run_id IS NOT NULL;
CREATE INDEX api_keys_agent ON api_keys(agent_id, kind);

CREATE TABLE cost_events (
    id                  TEXT PRIMARY KEY NOT NULL,
    run_id              TEXT REFERENCES runs(id) ON DELETE SET NULL,
    agent_id            TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    input_tokens        INTEGER NOT NULL DEFAULT 0,
    output_tokens       INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens   INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd            INTEGER NOT NULL DEFAULT 0,
    source              TEXT NOT NULL CHECK (source IN ('parsed', 'reported', 'estimated')),
    created_at          INTEGER NOT NULL
);
CREATE INDEX cost_events_agent ON cost_events(agent_id, created_at);
CREATE INDEX cost_events_time ON cost_events(created_at);
CREATE INDEX cost_events_run ON cost_events(run_id);

CREATE TABLE budget_policies (
    id                    TEXT PRIMARY KEY NOT NULL,
    scope                 TEXT NOT NULL UNIQUE,  -- 'org' or the agent id
    agent_id              TEXT REFERENCES agents(id) ON DELETE CASCADE,
    daily_token_limit     INTEGER NOT NULL DEFAULT 0,
    daily_cost_limit_usd  INTEGER NOT NULL DEFAULT 0,
    per_run_reserve_usd   INTEGER,
    active                INTEGER NOT NULL DEFAULT 1,
    updated_at            INTEGER NOT NULL,
    version               INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE approvals (
    id                TEXT PRIMARY KEY NOT NULL,
    kind              TEXT NOT NULL
                      CHECK (kind IN ('work_block_activation', 'work_block_ship', 'archetype_patch',
                                      'agent_hire', 'budget_change', 'destructive_action', 'other')),
    title             TEXT NOT NULL,
    body              TEXT NOT NULL DEFAULT '',
    requested_by      TEXT NOT NULL,             -- agent id or 'board'
    approver          TEXT NOT NULL,             -- agent id or 'board'
    subject_type      TEXT,
    subject_id        TEXT,
    payload           TEXT NOT NULL DEFAULT '{}',
    status            TEXT NOT NULL
                      CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    decision_comment  TEXT,
    decided_by        TEXT,
    decided_at        INTEGER,
    expires_at        INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    version           INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX approvals_status ON approvals(status, created_at);
CREATE INDEX approvals_approver ON approvals(approver, status);
CREATE INDEX approvals_expiry ON approvals(expires_at) WHERE status = 'pending';

CREATE TABLE audits (
    id                TEXT PRIMARY KEY NOT NULL,
    run_id            TEXT REFERENCES runs(id) ON DELETE SET NULL,
    focus             TEXT,
    status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'failed')),
    findings          TEXT,
    patches_proposed  INTEGER NOT NULL DEFAULT 0,
    issues_created    INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    finished_at       INTEGER
);
CREATE INDEX audits_created ON audits(created_at);

CREATE TABLE archetype_patches (
    id              TEXT PRIMARY KEY NOT NULL,
    archetype_slug  TEXT NOT NULL REFERENCES archetypes(slug) ON DELETE CASCADE,
    base_version    INTEGER NOT NULL,
    proposed_body   TEXT NOT NULL,
    rationale       TEXT NOT NULL DEFAULT '',
    proposed_by     TEXT REFERENCES agents(id) ON DELETE SET NULL,
    audit_id        TEXT REFERENCES audits(id) ON DELETE SET NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'superseded')),
    approval_id     TEXT REFERENCES approvals(id) ON DELETE SET NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX archetype_patches_status ON archetype_patches(status, created_at);
CREATE INDEX archetype_patches_slug ON archetype_patches(archetype_slug, status);

CREATE TABLE reflections (
    id          TEXT PRIMARY KEY NOT NULL,
    agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    run_id      TEXT REFERENCES runs(id) ON DELETE SET NULL,
    issue_key   TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'changes_requested')),
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX reflections_agent ON reflections(agent_id, created_at);
CREATE INDEX reflections_issue ON reflections(issue_key);

CREATE TABLE skills (
    id           TEXT PRIMARY KEY NOT NULL,
    slug         TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    tags         TEXT NOT NULL DEFAULT '[]',
    source       TEXT NOT NULL,
    promoted_by  TEXT NOT NULL,
    uses         INTEGER NOT NULL DEFAULT 0,
    successes    INTEGER NOT NULL DEFAULT 0,
    active       INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE memory_items (
    id                TEXT PRIMARY KEY NOT NULL,
    agent_id          TEXT REFERENCES agents(id) ON DELETE CASCADE,
    content           TEXT NOT NULL,
    tags              TEXT NOT NULL DEFAULT '[]',
    created_at        INTEGER NOT NULL,
    recalled_count    INTEGER NOT NULL DEFAULT 0,
    last_recalled_at  INTEGER
);
CREATE INDEX memory_items_agent ON memory_items(agent_id, created_at);

CREATE TABLE directives (
    id          TEXT PRIMARY KEY NOT NULL,
    text        TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE crons (
    id           TEXT PRIMARY KEY NOT NULL,
    agent_id     TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    task         TEXT NOT NULL,
    schedule     TEXT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    last_run_at  INTEGER,
    next_run_at  INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX crons_due ON crons(next_run_at) WHERE active = 1;

CREATE TABLE wiki_pages (
    id                TEXT PRIMARY KEY NOT NULL,
    slug              TEXT NOT NULL UNIQUE,
    title             TEXT NOT NULL,
    content           TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    updated_by        TEXT NOT NULL,
    created_by_agent  TEXT REFERENCES agents(id) ON DELETE SET NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    version           INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX wiki_pages_title ON wiki_pages(title);

CREATE TABLE wiki_revisions (
    page_id     TEXT NOT NULL REFERENCES wiki_pages(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    title       TEXT NOT NULL,
    content     TEXT NOT NULL,
    edited_by   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (page_id, version)
) WITHOUT ROWID;

-- The audit log: append-only and hash-chained (SPEC §1 ActivityEvent).
CREATE TABLE activity (
    id           INTEGER PRIMARY KEY,            -- monotonic, never reused
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    summary      TEXT NOT NULL,
    data         TEXT NOT NULL DEFAULT '{}',
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX activity_entity ON activity(entity_type, entity_id, id);
CREATE INDEX activity_actor ON activity(actor, id);
CREATE TRIGGER activity_no_update BEFORE UPDATE ON activity
BEGIN
    SELECT RAISE(ABORT, 'the activity log is append-only');
END;
CREATE TRIGGER activity_no_delete BEFORE DELETE ON activity
BEGIN
    SELECT RAISE(ABORT, 'the activity log is append-only');
END;

CREATE TABLE settings (
    key         TEXT PRIMARY KEY NOT NULL,
    value       TEXT NOT NULL,
    secret      INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY NOT NULL,
    source       TEXT NOT NULL,
    event        TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('received', 'processed', 'duplicate', 'failed')),
    note         TEXT,
    payload      TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    UNIQUE (source, delivery_id)
);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);

-- Full-text search (SPEC §9.3 `q`, §13), kept in step by triggers.
CREATE VIRTUAL TABLE issues_fts USING fts5(
    key UNINDEXED, title, description,
    content = 'issues', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
CREATE TRIGGER issues_fts_insert AFTER INSERT ON issues BEGIN
    INSERT INTO issues_fts(rowid, key, title, description)
    VALUES (new.rowid, new.key, new.title, new.description);
END;
CREATE TRIGGER issues_fts_delete AFTER DELETE ON issues BEGIN
    INSERT INTO issues_fts(issues_fts, rowid, key, title, description)
    VALUES ('delete', old.rowid, old.key, old.title, old.description);
END;
CREATE TRIGGER issues_fts_update AFTER UPDATE OF title, description ON issues BEGIN
    INSERT INTO issues_fts(issues_fts, rowid, key, title, description)
    VALUES ('delete', old.rowid, old.key, old.title, old.description);
    INSERT INTO issues_fts(rowid, key, title, description)
    VALUES (new.rowid, new.key, new.title, new.description);
END;

CREATE VIRTUAL TABLE wiki_fts USING fts5(
    slug, title, content,
    content = 'wiki_pages', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
CREATE TRIGGER wiki_fts_insert AFTER INSERT ON wiki_pages BEGIN
    INSERT INTO wiki_fts(rowid, slug, title, content)
    VALUES (new.rowid, new.slug, new.title, new.content);
END;
CREATE TRIGGER wiki_fts_delete AFTER DELETE ON wiki_pages BEGIN
    INSERT INTO wiki_fts(wiki_fts, rowid, slug, title, content)
    VALUES ('delete', old.rowid, old.slug, old.title, old.content);
END;
CREATE TRIGGER wiki_fts_update AFTER UPDATE OF slug, title, content ON wiki_pages BEGIN
    INSERT INTO wiki_fts(wiki_fts, rowid, slug, title, content)
    VALUES ('delete', old.rowid, old.slug, old.title, old.content);
    INSERT INTO wiki_fts(rowid, slug, title, content)
    VALUES (new.rowid, new.slug, new.title, new.content);
END;

CREATE VIRTUAL TABLE skills_fts USING fts5(
    slug, title, body, tags,
    content = 'skills', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER skills_fts_insert AFTER INSERT ON skills BEGIN
    INSERT INTO skills_fts(rowid, slug, title, body, tags)
    VALUES (new.rowid, new.slug, new.title, new.body, new.tags);
END;
CREATE TRIGGER skills_fts_delete AFTER DELETE ON skills BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, slug, title, body, tags)
    VALUES ('delete', old.rowid, old.slug, old.title, old.body, old.tags);
END;
CREATE TRIGGER skills_fts_update AFTER UPDATE OF slug, title, body, tags ON skills BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, slug, title, body, tags)
    VALUES ('delete', old.rowid, old.slug, old.title, old.body, old.tags);
    INSERT INTO skills_fts(rowid, slug, title, body, tags)
    VALUES (new.rowid, new.slug, new.title, new.body, new.tags);
END;
