-- Indexes for the dashboard with many runs (the pages benchmark: 100,000 issues, about as many
-- queued wake-ups). `IF NOT EXISTS` so that a database where they were created by hand
-- migrates all the same.

-- The runs list, newest first, without a status filter: walked in order, stopped at the page.
CREATE INDEX IF NOT EXISTS runs_recent ON runs(queued_at, id);

-- Spend alignment (Strategy page, dashboard) sums the cost of the runs of the last 30 days;
-- only runs that cost something matter, and this partial index holds just those, so the
-- queued wake-ups (cost 0) are never walked.
CREATE INDEX IF NOT EXISTS runs_costly ON runs(queued_at) WHERE cost_usd <> 0;
