-- The (task, occurrence) uniqueness makes schedule expansion idempotent: it is about
-- scheduled occurrences only. A run asked for (run_now, an event, a retry) is identified by
-- its id; its scheduled_for is the clock time of the request, and two concurrent requests
-- could draw the same microsecond (a 500 on one of them), or a request could draw the very
-- instant of an occurrence still to be materialised (which the scheduler would then skip).
-- One index still serves both the uniqueness and every per-task look-up (task_id leads).
CREATE FUNCTION due_work_occurrence(trigger text, id uuid) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN trigger = 'schedule'
                      THEN '00000000-0000-0000-0000-000000000000'::uuid ELSE id END $$;

CREATE UNIQUE INDEX due_work_one_per_occurrence_v2
    ON due_work (task_id, scheduled_for, due_work_occurrence(trigger, id));
ALTER TABLE due_work DROP CONSTRAINT due_work_one_per_occurrence;
ALTER INDEX due_work_one_per_occurrence_v2 RENAME TO due_work_one_per_occurrence;
