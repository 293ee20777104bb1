-- The auditor loop (SPEC §4.3): what an audit looked at, and the lookups its end needs.

-- The figures Mesa computed for the audit's prompt (Markdown), and the window they cover.
ALTER TABLE audits ADD COLUMN figures TEXT;
ALTER TABLE audits ADD COLUMN window_days INTEGER NOT NULL DEFAULT 14;

-- An audit is found by its run when the run starts and ends.
CREATE INDEX audits_run ON audits(run_id);

-- Review rejections of a window: a range walk over the few `issue.request_changes` rows
-- instead of a scan of the whole (append-only) activity log.
CREATE INDEX activity_request_changes ON activity(at) WHERE action = 'issue.request_changes';
