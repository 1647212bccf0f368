-- An event's payload is stored once, in ``events`` (issue 17, defect 4): a queued run and a
-- finished run reference it by ``event_id`` instead of carrying a copy of the document in
-- ``event`` (one 0.93 MB event matching 300 tasks used to write 600 copies, 292 MB).
--
-- No foreign key: completion moves a run from due_work to runs in one statement and must
-- take no lock on the event (hundreds of runs of one event finish at once), and an event
-- pruned by mistake must not make recording a run fail. Retention keeps every event a run
-- still references instead (store/retention.py), helped by the two partial indexes below.
--
-- Rows written before this migration keep their ``event`` copy and get no ``event_id``
-- (no backfill: rewriting every historical run is not worth it); the view shows either.
ALTER TABLE due_work ADD COLUMN event_id uuid;
ALTER TABLE runs ADD COLUMN event_id uuid;

-- Partial: most runs have no event, and those add nothing to these indexes.
CREATE INDEX due_work_event ON due_work (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX runs_event ON runs (event_id) WHERE event_id IS NOT NULL;

-- What pipelines read as ``${event...}`` and the API shows as a run's ``event``: the same
-- document the runs used to carry. STRICT: a run without an event costs no lookup.
CREATE FUNCTION event_document(event_id uuid) RETURNS jsonb
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT jsonb_build_object('id', e.id, 'topic', e.topic, 'payload', e.payload,
                              'published_at', e.created_at)
      FROM events e
     WHERE e.id = event_id
$$;

CREATE OR REPLACE VIEW run_view AS
    SELECT d.id, d.task_id, t.created_by AS agent_id, d.trigger,
           d.state AS status,
           d.scheduled_for, d.created_at AS queued_at, d.attempt,
           d.started_at, NULL::timestamptz AS finished_at, NULL::integer AS duration_ms,
           d.leased_by AS worker_id, COALESCE(d.steps, '[]'::jsonb) AS steps,
           d.last_error AS error, COALESCE(event_document(d.event_id), d.event) AS event,
           d.retry_of,
           CASE WHEN d.state = 'running' THEN NULL ELSE d.run_at END AS next_attempt_at,
           d.cancel_requested, COALESCE(d.attempts, '[]'::jsonb) AS attempts
      FROM due_work d JOIN tasks t ON t.id = d.task_id
    UNION ALL
    SELECT r.id, r.task_id, r.agent_id, r.trigger, r.status, r.scheduled_for, r.queued_at,
           r.attempt, r.started_at, r.finished_at, r.duration_ms, r.worker_id, r.steps,
           r.error, COALESCE(event_document(r.event_id), r.event) AS event, r.retry_of,
           NULL::timestamptz AS next_attempt_at,
           false AS cancel_requested, COALESCE(r.attempts, '[]'::jsonb) AS attempts
      FROM runs r;
