-- Issues and runs counted per status, kept in step by triggers, so the counts every dashboard
-- page shows cost a few rows to read instead of a walk over every issue's and run's index
-- entry (about 20 ms at 100,000 issues each time a commit made the cached counts stale).
-- Soft-deleted issues are not counted. Foreign-key cascades fire these triggers too.

CREATE TABLE issue_status_counts (
    status  TEXT PRIMARY KEY NOT NULL,
    n       INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO issue_status_counts (status, n)
SELECT status, COUNT(*) FROM issues WHERE deleted = 0 GROUP BY status;

CREATE TRIGGER issue_status_counts_insert AFTER INSERT ON issues WHEN new.deleted = 0
BEGIN
    INSERT INTO issue_status_counts (status, n) VALUES (new.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER issue_status_counts_delete AFTER DELETE ON issues WHEN old.deleted = 0
BEGIN
    UPDATE issue_status_counts SET n = n - 1 WHERE status = old.status;
END;

CREATE TRIGGER issue_status_counts_update AFTER UPDATE OF status, deleted ON issues
WHEN old.status IS NOT new.status OR old.deleted IS NOT new.deleted
BEGIN
    UPDATE issue_status_counts SET n = n - 1 WHERE status = old.status AND old.deleted = 0;
    INSERT INTO issue_status_counts (status, n) SELECT new.status, 1 WHERE new.deleted = 0
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;

CREATE TABLE run_status_counts (
    status  TEXT PRIMARY KEY NOT NULL,
    n       INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO run_status_counts (status, n) SELECT status, COUNT(*) FROM runs GROUP BY status;

CREATE TRIGGER run_status_counts_insert AFTER INSERT ON runs
BEGIN
    INSERT INTO run_status_counts (status, n) VALUES (new.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER run_status_counts_delete AFTER DELETE ON runs
BEGIN
    UPDATE run_status_counts SET n = n - 1 WHERE status = old.status;
END;

CREATE TRIGGER run_status_counts_update AFTER UPDATE OF status ON runs
WHEN old.status IS NOT new.status
BEGIN
    UPDATE run_status_counts SET n = n - 1 WHERE status = old.status;
    INSERT INTO run_status_counts (status, n) VALUES (new.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
