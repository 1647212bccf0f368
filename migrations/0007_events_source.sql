-- events.publish inside a pipeline is at-least-once: a run retried after its publish step
-- succeeded would publish again. The step's idempotency key (<run id>:<step id>) becomes the
-- event's source, unique, and the event keeps the runs it queued so a replay answers the same.
ALTER TABLE events
    ADD COLUMN source text,
    ADD COLUMN runs jsonb NOT NULL DEFAULT '[]',
    ADD CONSTRAINT events_source_unique UNIQUE (source);
