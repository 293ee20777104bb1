-- Relevance for the self-improvement loop (SPEC §4.3).
--
-- Reflections get a full-text index over their body, stemmed (porter), so "migrations" finds
-- "migration". The agent is indexed too, as one token (`a` + the id's hex digits), so a query
-- intersects the agent's posting list with the words' and ranks only that agent's
-- reflections. Contentless: rows are read back from `reflections` by rowid. Reflections are
-- never edited; deletes (an agent removed) take their index entries with them.
CREATE VIRTUAL TABLE reflections_fts USING fts5(
    agent, body,
    content = '', contentless_delete = 1, tokenize = 'porter unicode61 remove_diacritics 2'
);

INSERT INTO reflections_fts(rowid, agent, body)
    SELECT rowid, 'a' || replace(agent_id, '-', ''), body FROM reflections;

CREATE TRIGGER reflections_fts_insert AFTER INSERT ON reflections BEGIN
    INSERT INTO reflections_fts(rowid, agent, body)
    VALUES (new.rowid, 'a' || replace(new.agent_id, '-', ''), new.body);
END;
CREATE TRIGGER reflections_fts_delete AFTER DELETE ON reflections BEGIN
    DELETE FROM reflections_fts WHERE rowid = old.rowid;
END;
CREATE TRIGGER reflections_fts_update AFTER UPDATE OF agent_id, body ON reflections BEGIN
    DELETE FROM reflections_fts WHERE rowid = old.rowid;
    INSERT INTO reflections_fts(rowid, agent, body)
    VALUES (new.rowid, 'a' || replace(new.agent_id, '-', ''), new.body);
END;

-- "Did this run reflect?" (the `REFLECTION:` fallback) and "this agent on this issue".
CREATE INDEX reflections_run ON reflections(run_id);
CREATE INDEX reflections_agent_issue ON reflections(agent_id, issue_key, created_at);

-- Which skills a run was given (listed in its prompt, written into its worktree). A skill's
-- `uses` and `successes` are counted from here when it is read (docs/governance.md).
CREATE TABLE skill_uses (
    skill_id    TEXT NOT NULL REFERENCES skills(id) ON DELETE CASCADE,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (skill_id, run_id)
) WITHOUT ROWID;
CREATE INDEX skill_uses_run ON skill_uses(run_id);
