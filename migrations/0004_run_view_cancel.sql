-- run_view shows whether a cancel was requested for a running run.
CREATE OR REPLACE VIEW run_view AS
    SELECT d.id, d.task_id, t.created_by AS agent_id, d.trigger,
           d.state AS status,
           d.scheduled_for, d.created_at AS queued_at, d.attempt,
           d.started_at, NULL::timestamptz AS finished_at, NULL::integer AS duration_ms,
           d.leased_by AS worker_id, COALESCE(d.steps, '[]'::jsonb) AS steps,
           d.last_error AS error, d.event, d.retry_of,
           CASE WHEN d.state = 'running' THEN NULL ELSE d.run_at END AS next_attempt_at,
           d.cancel_requested
      FROM due_work d JOIN tasks t ON t.id = d.task_id
    UNION ALL
    SELECT r.id, r.task_id, r.agent_id, r.trigger, r.status, r.scheduled_for, r.queued_at,
           r.attempt, r.started_at, r.finished_at, r.duration_ms, r.worker_id, r.steps,
           r.error, r.event, r.retry_of, NULL::timestamptz AS next_attempt_at,
           false AS cancel_requested
      FROM runs r;
