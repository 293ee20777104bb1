-- Run evaluation (SPEC §4.3, flag `run_evaluation`): the trajectory signature of a finished task
-- run, computed by Mesa from the run's output, and a judge's rubric when one is configured. One
-- row per evaluated run; the Observability page rolls them up per archetype over a window.
CREATE TABLE run_evaluations (
    run_id      TEXT PRIMARY KEY NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    archetype   TEXT NOT NULL,
    signature   TEXT NOT NULL CHECK (json_valid(signature)),
    rubric      TEXT CHECK (rubric IS NULL OR json_valid(rubric)),
    created_at  INTEGER NOT NULL
);
-- The roll-up reads a window of recent evaluations.
CREATE INDEX run_evaluations_recent ON run_evaluations(created_at);
