-- The scheduler and runners (SPEC §6, §7).

-- Why an agent is paused (budget, quota, loop guard), shown next to `paused_until`.
ALTER TABLE agents ADD COLUMN pause_reason TEXT;

-- The per-agent loop guard counts an agent's runs started in the last hour.
CREATE INDEX runs_agent_started ON runs(agent_id, started_at) WHERE started_at IS NOT NULL;
