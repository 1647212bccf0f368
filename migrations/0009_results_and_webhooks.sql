-- Results for agents: every failed attempt kept on the run, completion webhooks (an outbox
-- filled in the transaction that makes a run final), agents' and tasks' webhook URLs and the
-- agents' signing secrets.

-- The attempts of a run that ended without success before its current (or last) one:
-- [{number, worker_id, started_at, finished_at, duration_ms, error}, ...]. Written only when
-- an attempt fails and the run is retried (or its lease expires); NULL until then.
ALTER TABLE due_work ADD COLUMN attempts jsonb;
ALTER TABLE runs ADD COLUMN attempts jsonb;

CREATE OR REPLACE VIEW run_view AS
    SELECT d.id, d.task_id, t.created_by AS agent_id, d.trigger,
           d.state AS status,
           d.scheduled_for, d.created_at AS queued_at, d.attempt,
           d.started_at, NULL::timestamptz AS finished_at, NULL::integer AS duration_ms,
           d.leased_by AS worker_id, COALESCE(d.steps, '[]'::jsonb) AS steps,
           d.last_error AS error, d.event, d.retry_of,
           CASE WHEN d.state = 'running' THEN NULL ELSE d.run_at END AS next_attempt_at,
           d.cancel_requested, COALESCE(d.attempts, '[]'::jsonb) AS attempts
      FROM due_work d JOIN tasks t ON t.id = d.task_id
    UNION ALL
    SELECT r.id, r.task_id, r.agent_id, r.trigger, r.status, r.scheduled_for, r.queued_at,
           r.attempt, r.started_at, r.finished_at, r.duration_ms, r.worker_id, r.steps,
           r.error, r.event, r.retry_of, NULL::timestamptz AS next_attempt_at,
           false AS cancel_requested, COALESCE(r.attempts, '[]'::jsonb) AS attempts
      FROM runs r;

-- Where completion webhooks go: the task's URL, else its owner's.
ALTER TABLE agents
    ADD COLUMN webhook_url text,
    ADD CONSTRAINT agents_webhook_url_length
        CHECK (webhook_url IS NULL OR length(webhook_url) BETWEEN 1 AND 2000);
ALTER TABLE tasks
    ADD COLUMN webhook_url text,
    ADD CONSTRAINT tasks_webhook_url_length
        CHECK (webhook_url IS NULL OR length(webhook_url) BETWEEN 1 AND 2000);
-- queue_run_webhooks asks "does anyone have a webhook at all?" before it looks at its runs'
-- tasks and agents: with nobody configured, both probes find an empty index.
CREATE INDEX agents_with_webhook ON agents (id) WHERE webhook_url IS NOT NULL;
CREATE INDEX tasks_with_webhook ON tasks (id) WHERE webhook_url IS NOT NULL;

-- An agent's signing secret (the key of ``whsec_<base64 key>``). The signature needs the key
-- itself, so it is stored as it is (unlike tokens, which are hashed); no API answer reads
-- this table: only the workers, to sign. Shown once when created.
CREATE TABLE webhook_secrets (
    agent_id    uuid        PRIMARY KEY,
    secret      bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_secrets_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id)
        ON DELETE CASCADE,
    CONSTRAINT webhook_secrets_length CHECK (octet_length(secret) BETWEEN 24 AND 64)
);

-- The outbox: one row per run.finished webhook, queued by the statement that makes the run
-- final and sent by the workers. Its id is the ``webhook-id`` of every try. ``next_attempt_at``
-- is also the lease: a worker that takes a delivery pushes it past its timeout, so a delivery
-- whose worker died is taken again. No foreign key to runs (no lock taken on completion).
CREATE TABLE webhook_deliveries (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id           uuid        NOT NULL,
    task_id          uuid        NOT NULL,
    agent_id         uuid        NOT NULL,
    url              text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending',
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_status_known
        CHECK (status IN ('pending', 'delivered', 'failed')),
    CONSTRAINT webhook_deliveries_delivered_when
        CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)),
    CONSTRAINT webhook_deliveries_attempts_non_negative CHECK (attempts >= 0)
);
-- The workers' lease: pending deliveries that are due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_run ON webhook_deliveries (run_id);
-- GET /webhook-deliveries: one agent's (or everyone's) deliveries, newest first.
CREATE INDEX webhook_deliveries_agent_recent
    ON webhook_deliveries (agent_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (created_at DESC, id DESC);

-- Run state changes for the API's waiters and streams (store/run_events.py): one token per
-- run, "<kind><run id>:<attempt>" (run_change, inlined by the planner), joined by spaces;
-- notify_run_changes sends them, once per statement, cut at token boundaries into
-- notifications under PostgreSQL's 8000-byte payload limit (150 tokens each when cut).
-- PL/pgSQL keeps its plans for the session (a SQL function would be planned at every call).
CREATE FUNCTION run_change(kind text, run_id uuid, attempt integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT kind || run_id::text || ':' || attempt::text
$$;

CREATE FUNCTION notify_run_changes(changes text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tokens text[];
    first integer := 1;
BEGIN
    IF changes IS NULL THEN
        RETURN 0;
    ELSIF octet_length(changes) < 7900 THEN
        PERFORM pg_notify('ordinaut_runs', changes);
        RETURN 1;
    END IF;
    tokens := string_to_array(changes, ' ');
    WHILE first <= cardinality(tokens) LOOP
        PERFORM pg_notify('ordinaut_runs', array_to_string(tokens[first:first + 149], ' '));
        first := first + 150;
    END LOOP;
    RETURN (cardinality(tokens) + 149) / 150;
END
$$;

-- The outbox's producer, called once by each statement that makes runs final (with those
-- runs): a run.finished delivery for each run whose task, or else whose live owner, has a
-- webhook URL. Nobody configured any: two probes of empty partial indexes, nothing joined.
CREATE FUNCTION queue_run_webhooks(run_ids uuid[], task_ids uuid[], agent_ids uuid[])
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    queued integer;
BEGIN
    IF run_ids IS NULL
       OR NOT (EXISTS (SELECT 1 FROM agents WHERE webhook_url IS NOT NULL)
               OR EXISTS (SELECT 1 FROM tasks WHERE webhook_url IS NOT NULL)) THEN
        RETURN 0;
    END IF;
    INSERT INTO webhook_deliveries (run_id, task_id, agent_id, url)
    SELECT f.run_id, f.task_id, f.agent_id, COALESCE(t.webhook_url, a.webhook_url)
      FROM unnest(run_ids, task_ids, agent_ids) AS f(run_id, task_id, agent_id)
      JOIN tasks t ON t.id = f.task_id
      JOIN agents a ON a.id = f.agent_id
     WHERE COALESCE(t.webhook_url, a.webhook_url) IS NOT NULL AND a.deleted_at IS NULL;
    GET DIAGNOSTICS queued = ROW_COUNT;
    RETURN queued;
END
$$;
