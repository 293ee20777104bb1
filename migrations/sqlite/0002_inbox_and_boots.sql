-- Review routing stored on the issue, so that inboxes are index lookups at any scale.
--
-- `submitted_by`: the agent that last submitted the issue for review (never its reviewer).
-- `reviewer_id`: while `in_review`, the agent that reviews it, resolved through the assignee's
-- review chain (SPEC §4.1) by mesa-core when the issue is submitted, reassigned, or the org chart
-- changes; NULL in every other status.
ALTER TABLE issues ADD COLUMN submitted_by TEXT REFERENCES agents(id) ON DELETE SET NULL;
ALTER TABLE issues ADD COLUMN reviewer_id TEXT REFERENCES agents(id) ON DELETE SET NULL;

-- Issues already under review learn their submitter from the audit log; mesa-core resolves
-- their reviewers at start-up (any `in_review` issue without one).
UPDATE issues SET submitted_by = (
    SELECT agents.id FROM activity JOIN agents ON agents.slug = activity.actor
    WHERE activity.entity_type = 'issue' AND activity.entity_id = issues.key
      AND activity.action = 'issue.submit'
    ORDER BY activity.id DESC LIMIT 1
) WHERE status IN ('in_review', 'board_review');

-- The inbox (SPEC §9.3): an agent's open issues and the reviews waiting for it, and the board's
-- `board_review` issues, each in inbox order (priority, then the most recently updated).
CREATE INDEX issues_inbox ON issues(assignee_id, priority, updated_at, key)
    WHERE open = 1 AND deleted = 0;
CREATE INDEX issues_to_review ON issues(reviewer_id, priority, updated_at, key)
    WHERE status = 'in_review' AND deleted = 0;
CREATE INDEX issues_board_review ON issues(priority, updated_at, key)
    WHERE status = 'board_review' AND deleted = 0;

-- One row per start of `mesa serve`: the boot number keeps live-event ids growing across
-- restarts (SPEC §9.4), and tells a restarted node which runs were its previous boot's.
CREATE TABLE boots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  INTEGER NOT NULL
);
