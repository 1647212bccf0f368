-- A concurrency key is the owner's own: two agents that both say "reports" must not wait for
-- each other (nor learn from the waiting when the other runs). Runs carry the key qualified
-- by the task's owner; the API still shows the key as the agent wrote it.
ALTER TABLE tasks
    ADD COLUMN run_lock_key text GENERATED ALWAYS AS (
        CASE WHEN concurrency_key IS NOT NULL THEN created_by::text || '/' || concurrency_key END
    ) STORED;

-- The unique index is checked row by row: a running row rewritten to "<owner>/a" could meet
-- another still holding a raw key "<owner>/a". Rebuilt after the rewrite instead (all keys
-- are then qualified, so distinct keys stay distinct).
DROP INDEX due_work_one_running_per_key;

UPDATE due_work d
   SET concurrency_key = t.run_lock_key
  FROM tasks t
 WHERE t.id = d.task_id AND d.concurrency_key IS NOT NULL;

CREATE UNIQUE INDEX due_work_one_running_per_key ON due_work (concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL;
