-- The web console (api/console): sign-in sessions, the scheduler registry its overview
-- reads, and the indexes its lists need.

-- A session is opened by signing in with an agent token. Only the SHA-256 of the random
-- session id (the cookie's value) is stored. A session belongs to that token: every
-- request joins the token and its agent, so a revoked token or a deleted agent ends the
-- session at once; a token deleted for good takes its sessions along.
CREATE TABLE console_sessions (
    id_hash     bytea       PRIMARY KEY,
    token_id    uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT console_sessions_token_fk FOREIGN KEY (token_id)
        REFERENCES agent_tokens (id) ON DELETE CASCADE,
    CONSTRAINT console_sessions_hash_is_sha256 CHECK (octet_length(id_hash) = 32),
    CONSTRAINT console_sessions_expire_after_creation CHECK (expires_at > created_at)
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- One row per scheduler process with the time of its last successful tick, written every
-- few seconds (not per tick): the console shows the age of the freshest tick.
CREATE TABLE schedulers (
    id            text        PRIMARY KEY,
    host          text        NOT NULL,
    pid           integer     NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_tick_at  timestamptz
);

-- Tasks filtered by status, newest first (and the status counts, capped, of the task list),
-- of everyone (admins) or of one agent.
CREATE INDEX tasks_status_recent ON tasks (status, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner_status_recent ON tasks (created_by, status, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;

-- Runs that did not succeed (dead, canceled), newest first: the run list filtered by those
-- statuses and the overview's dead runs. Partial, so the common succeeded run costs no
-- index entry on the workers' hot path.
CREATE INDEX runs_unsucceeded_recent ON runs (status, queued_at DESC, id DESC)
    WHERE status <> 'succeeded';
CREATE INDEX runs_agent_unsucceeded_recent ON runs (agent_id, status, queued_at DESC, id DESC)
    WHERE status <> 'succeeded';
CREATE INDEX runs_unsucceeded_finished ON runs (finished_at)
    WHERE status <> 'succeeded';
-- Runs not started by their schedule (manual, event, retry), newest first: the run list
-- filtered by trigger. Scheduled runs, the bulk, get no entry.
CREATE INDEX runs_unscheduled_recent ON runs (trigger, queued_at DESC, id DESC)
    WHERE trigger <> 'schedule';
