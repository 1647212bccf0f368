-- Ordinaut schema v1: agents and tokens, tasks, the due_work queue, run history,
-- runtime tools, idempotency keys, the audit log and the worker registry.
-- Forward-only: later changes are new numbered files.

CREATE TABLE agents (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text        NOT NULL,
    scopes      text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    CONSTRAINT agents_name_not_blank CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT agents_scopes_known CHECK (scopes <@ ARRAY[
        'tasks:read', 'tasks:write', 'runs:read', 'runs:write',
        'events:publish', 'tools:read', 'admin']::text[])
);
-- Names are unique among live agents; a deleted agent's name may be reused.
CREATE UNIQUE INDEX agents_live_name_unique ON agents (name) WHERE deleted_at IS NULL;

-- Tokens are random; only their SHA-256 is stored. ``prefix`` lets an operator tell
-- tokens apart without being able to use them.
CREATE TABLE agent_tokens (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id      uuid        NOT NULL,
    token_hash    bytea       NOT NULL,
    prefix        text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    CONSTRAINT agent_tokens_agent_fk FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT agent_tokens_hash_unique UNIQUE (token_hash),
    CONSTRAINT agent_tokens_hash_is_sha256 CHECK (octet_length(token_hash) = 32)
);
CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id);

CREATE TABLE tasks (
    id                     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    created_by             uuid        NOT NULL,
    title                  text        NOT NULL,
    description            text,
    schedule_kind          text        NOT NULL,
    schedule_expr          text        NOT NULL,
    timezone               text        NOT NULL,
    payload                jsonb       NOT NULL,
    priority               smallint    NOT NULL DEFAULT 5,
    max_retries            integer     NOT NULL DEFAULT 3,
    backoff_strategy       text        NOT NULL DEFAULT 'exponential_jitter',
    timeout_seconds        integer     NOT NULL DEFAULT 300,
    concurrency_key        text,
    dedupe_key             text,
    dedupe_window_seconds  integer     NOT NULL DEFAULT 0,
    catch_up               text        NOT NULL DEFAULT 'latest',
    status                 text        NOT NULL DEFAULT 'active',
    -- Expansion state, owned by the scheduler. ``expanded_until`` is the forward-only
    -- high-water mark: every occurrence at or before it has been materialised (or skipped by
    -- the catch-up policy). ``next_expand_at`` is the first occurrence after it (NULL: none).
    anchor_at              timestamptz NOT NULL DEFAULT date_trunc('minute', now()),
    expanded_until         timestamptz,
    next_expand_at         timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at             timestamptz,
    CONSTRAINT tasks_created_by_fk FOREIGN KEY (created_by) REFERENCES agents (id),
    CONSTRAINT tasks_title_length CHECK (length(title) BETWEEN 1 AND 200),
    CONSTRAINT tasks_schedule_kind_known CHECK (schedule_kind IN ('once', 'cron', 'rrule', 'event')),
    CONSTRAINT tasks_priority_range CHECK (priority BETWEEN 1 AND 9),
    CONSTRAINT tasks_max_retries_range CHECK (max_retries BETWEEN 0 AND 100),
    CONSTRAINT tasks_backoff_known CHECK (backoff_strategy IN ('exponential_jitter', 'exponential', 'linear', 'fixed')),
    CONSTRAINT tasks_timeout_positive CHECK (timeout_seconds > 0),
    CONSTRAINT tasks_dedupe_window_non_negative CHECK (dedupe_window_seconds >= 0),
    CONSTRAINT tasks_catch_up_known CHECK (catch_up IN ('latest', 'all', 'none')),
    CONSTRAINT tasks_status_known CHECK (status IN ('active', 'paused', 'canceled', 'completed')),
    CONSTRAINT tasks_pipeline_is_array CHECK (jsonb_typeof(payload -> 'pipeline') = 'array'),
    CONSTRAINT tasks_deleted_means_canceled CHECK (deleted_at IS NULL OR status = 'canceled'),
    CONSTRAINT tasks_event_never_expands CHECK (schedule_kind <> 'event' OR next_expand_at IS NULL)
);
-- The scheduler's tick: active tasks whose next occurrence falls within the horizon.
CREATE INDEX tasks_due_for_expansion ON tasks (next_expand_at)
    WHERE status = 'active' AND next_expand_at IS NOT NULL;
-- Listing an agent's tasks, newest first (cursor pagination on created_at, id).
CREATE INDEX tasks_owner_recent ON tasks (created_by, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_recent ON tasks (created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- Event fan-out: the active event tasks.
CREATE INDEX tasks_active_events ON tasks (schedule_expr)
    WHERE schedule_kind = 'event' AND status = 'active';
CREATE INDEX tasks_dedupe ON tasks (created_by, dedupe_key, created_at DESC)
    WHERE dedupe_key IS NOT NULL;

-- The hot queue: one row per run that has not finished (queued, running, or failed and
-- waiting for its retry). Its ``id`` is the run's id. A finished run leaves this table in
-- the transaction that writes its ``runs`` row, so the table stays small.
CREATE TABLE due_work (
    id                uuid        PRIMARY KEY,
    task_id           uuid        NOT NULL,
    scheduled_for     timestamptz NOT NULL,
    run_at            timestamptz NOT NULL,
    priority          smallint    NOT NULL,
    concurrency_key   text,
    trigger           text        NOT NULL,
    state             text        NOT NULL DEFAULT 'queued',
    attempt           integer     NOT NULL DEFAULT 0,
    leased_by         text,
    lease_expires_at  timestamptz,
    started_at        timestamptz,
    first_started_at  timestamptz,
    cancel_requested  boolean     NOT NULL DEFAULT false,
    event             jsonb,
    steps             jsonb,
    last_error        jsonb,
    retry_of          uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT due_work_task_fk FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE,
    -- Expansion is idempotent: one row per (task, occurrence), however many schedulers run.
    CONSTRAINT due_work_one_per_occurrence UNIQUE (task_id, scheduled_for),
    CONSTRAINT due_work_trigger_known CHECK (trigger IN ('schedule', 'manual', 'event', 'retry')),
    CONSTRAINT due_work_state_known CHECK (state IN ('queued', 'running', 'failed')),
    CONSTRAINT due_work_priority_range CHECK (priority BETWEEN 1 AND 9),
    CONSTRAINT due_work_attempt_non_negative CHECK (attempt >= 0),
    -- A row is leased exactly when it is running.
    CONSTRAINT due_work_lease_matches_state CHECK (
        (state = 'running') = (leased_by IS NOT NULL AND lease_expires_at IS NOT NULL AND started_at IS NOT NULL)
    )
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- The lease query's index: exactly its predicate, in its ORDER BY (priority, then due time).
CREATE INDEX due_work_lease ON due_work (priority, run_at) WHERE state IN ('queued', 'failed');
-- When is the next row due? (workers sleep until then)
CREATE INDEX due_work_next_due ON due_work (run_at) WHERE state IN ('queued', 'failed');
-- The reaper: running rows whose lease has expired.
CREATE INDEX due_work_leases ON due_work (lease_expires_at) WHERE state = 'running';
-- At most one running run per concurrency key, fleet-wide.
CREATE UNIQUE INDEX due_work_one_running_per_key ON due_work (concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL;

-- Run history: one row per finished run (succeeded, dead or canceled). No foreign key to
-- tasks: every completion would take a KEY SHARE lock on the task row, and tasks are never
-- hard-deleted (DELETE /tasks hides them), so the reference cannot dangle.
CREATE TABLE runs (
    id             uuid        PRIMARY KEY,
    task_id        uuid        NOT NULL,
    agent_id       uuid        NOT NULL,
    trigger        text        NOT NULL,
    status         text        NOT NULL,
    scheduled_for  timestamptz NOT NULL,
    queued_at      timestamptz NOT NULL,
    attempt        integer     NOT NULL,
    started_at     timestamptz,
    finished_at    timestamptz NOT NULL,
    duration_ms    integer,
    worker_id      text,
    steps          jsonb       NOT NULL DEFAULT '[]',
    error          jsonb,
    event          jsonb,
    retry_of       uuid,
    CONSTRAINT runs_trigger_known CHECK (trigger IN ('schedule', 'manual', 'event', 'retry')),
    CONSTRAINT runs_status_final CHECK (status IN ('succeeded', 'dead', 'canceled')),
    CONSTRAINT runs_error_unless_succeeded CHECK ((status = 'succeeded') = (error IS NULL)),
    CONSTRAINT runs_finished_after_start CHECK (started_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX runs_task_recent ON runs (task_id, queued_at DESC, id DESC);
CREATE INDEX runs_agent_recent ON runs (agent_id, queued_at DESC, id DESC);
CREATE INDEX runs_recent ON runs (queued_at DESC, id DESC);
CREATE INDEX runs_finished ON runs (finished_at);

-- Every run, finished or not, in one shape (what GET /runs reads).
CREATE VIEW run_view AS
    SELECT d.id, d.task_id, t.created_by AS agent_id, d.trigger,
           d.state AS status,
           d.scheduled_for, d.created_at AS queued_at, d.attempt,
           d.started_at, NULL::timestamptz AS finished_at, NULL::integer AS duration_ms,
           d.leased_by AS worker_id, COALESCE(d.steps, '[]'::jsonb) AS steps,
           d.last_error AS error, d.event, d.retry_of,
           CASE WHEN d.state = 'running' THEN NULL ELSE d.run_at END AS next_attempt_at
      FROM due_work d JOIN tasks t ON t.id = d.task_id
    UNION ALL
    SELECT r.id, r.task_id, r.agent_id, r.trigger, r.status, r.scheduled_for, r.queued_at,
           r.attempt, r.started_at, r.finished_at, r.duration_ms, r.worker_id, r.steps,
           r.error, r.event, r.retry_of, NULL::timestamptz AS next_attempt_at
      FROM runs r;

-- Tools registered at runtime (POST /tools); the files in catalogs/ are not stored here.
CREATE TABLE tools (
    address     text        PRIMARY KEY,
    transport   text        NOT NULL,
    definition  jsonb       NOT NULL,
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tools_transport_known CHECK (transport IN ('http', 'mcp')),
    CONSTRAINT tools_definition_matches CHECK (definition ->> 'address' = address)
);

-- Events published (POST /events, events.publish), kept for the audit trail.
CREATE TABLE events (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    topic         text        NOT NULL,
    payload       jsonb       NOT NULL DEFAULT '{}',
    published_by  uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_topic_length CHECK (length(topic) BETWEEN 1 AND 200)
);
CREATE INDEX events_recent ON events (created_at);

-- Idempotency-Key on POST /tasks and POST /events: the same key and body get the same answer.
CREATE TABLE idempotency_keys (
    agent_id        uuid        NOT NULL,
    route           text        NOT NULL,
    key             text        NOT NULL,
    request_hash    bytea       NOT NULL,
    response_status integer     NOT NULL,
    response_body   jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pk PRIMARY KEY (agent_id, route, key),
    CONSTRAINT idempotency_keys_key_length CHECK (length(key) BETWEEN 1 AND 200)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE audit_log (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_id      uuid,
    actor_name    text,
    action        text        NOT NULL,
    subject_type  text,
    subject_id    text,
    details       jsonb       NOT NULL DEFAULT '{}',
    request_id    text
);
CREATE INDEX audit_log_recent ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at DESC);

-- The worker registry: one row per worker process, refreshed by its heartbeat.
CREATE TABLE workers (
    id            text        PRIMARY KEY,
    host          text        NOT NULL,
    pid           integer     NOT NULL,
    concurrency   integer     NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    inflight      integer     NOT NULL DEFAULT 0,
    processed     bigint      NOT NULL DEFAULT 0,
    CONSTRAINT workers_concurrency_positive CHECK (concurrency > 0),
    CONSTRAINT workers_counts_non_negative CHECK (inflight >= 0 AND processed >= 0)
);
