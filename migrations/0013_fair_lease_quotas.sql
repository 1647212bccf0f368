-- Fair leasing between agents, and per-agent quotas (issue 17, defect 3).
--
-- Agents choose their own priority, so comparing priorities across agents let one agent
-- starve all others. The lease now serves agents with ready work round-robin (fewest
-- running runs first) and orders by priority only within an agent; for that the queue needs
-- each run's agent. It is the task's owner, copied in by a trigger so that no insert path
-- changes (a task never changes owner).
ALTER TABLE due_work ADD COLUMN agent_id uuid;

CREATE FUNCTION due_work_set_agent() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.agent_id IS NULL THEN
        SELECT t.created_by INTO NEW.agent_id FROM tasks t WHERE t.id = NEW.task_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER due_work_agent BEFORE INSERT ON due_work
    FOR EACH ROW EXECUTE FUNCTION due_work_set_agent();

UPDATE due_work d SET agent_id = t.created_by FROM tasks t WHERE t.id = d.task_id;
ALTER TABLE due_work ALTER COLUMN agent_id SET NOT NULL;

-- The fair lease (store/due_work.py _LEASE): a loose index scan over agents with waiting
-- work reads each agent's earliest run_at in one probe (ready or not); then each ready
-- agent's first rows by (priority, run_at). Both replace the global (priority, run_at)
-- index, which no statement orders by any more.
CREATE INDEX due_work_agent_ready ON due_work (agent_id, run_at)
    WHERE state IN ('queued', 'failed');
CREATE INDEX due_work_agent_lease ON due_work (agent_id, priority, run_at)
    WHERE state IN ('queued', 'failed');
DROP INDEX due_work_lease;
-- No (agent_id) index on running rows: the lease reads them all (they are bounded by the
-- workers' slots) rather than have every lease write into one hot key range.

-- Quotas an admin sets per agent; NULL means the default from settings.
ALTER TABLE agents
    ADD COLUMN quota_active_tasks integer,
    ADD COLUMN quota_queued_runs integer,
    ADD COLUMN quota_concurrent_runs integer,
    ADD COLUMN quota_event_fanout integer,
    ADD CONSTRAINT agents_quota_active_tasks_positive CHECK (quota_active_tasks > 0),
    ADD CONSTRAINT agents_quota_queued_runs_positive CHECK (quota_queued_runs > 0),
    ADD CONSTRAINT agents_quota_concurrent_runs_positive CHECK (quota_concurrent_runs > 0),
    ADD CONSTRAINT agents_quota_event_fanout_positive CHECK (quota_event_fanout > 0);
