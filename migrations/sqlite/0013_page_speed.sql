-- Indexes for the dashboard's pages at scale (issue 5: every page within 50 ms with 100,000
-- issues, 1,000 agents and 1,000,000 audit rows). `IF NOT EXISTS` so that a database where
-- they were created by hand migrates all the same.

-- Work-block progress (block list, dashboard): the live member issues by status, counted
-- from the index alone.
CREATE INDEX IF NOT EXISTS issues_block_live ON issues(work_block_id, status)
    WHERE deleted = 0 AND work_block_id IS NOT NULL;

-- Work-block spend: the member issues' keys from the index alone, to join their runs.
CREATE INDEX IF NOT EXISTS issues_block_key ON issues(work_block_id, key)
    WHERE work_block_id IS NOT NULL;

-- Work-block spend: the usage of the runs that used anything, by issue, from the index alone
-- (the queued wake-ups, which used nothing, are not in it).
CREATE INDEX IF NOT EXISTS runs_issue_usage
    ON runs(issue_key, cost_usd, input_tokens, output_tokens, cache_read_tokens,
        cache_write_tokens)
    WHERE cost_usd <> 0 OR input_tokens <> 0 OR output_tokens <> 0 OR cache_read_tokens <> 0
        OR cache_write_tokens <> 0;
