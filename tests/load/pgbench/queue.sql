-- One queue step as pgbench measures it: lease :batch jobs (SKIP LOCKED, oldest first),
-- delete them from the queue and record each in the history, in one transaction. What a
-- job queue that keeps run history costs PostgreSQL at the least; -D batch=1 is the
-- one-job-per-transaction variant. Tables: see tests/load/pgbench_limit.py.
WITH leased AS (
    SELECT id FROM bench_queue ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
), done AS (
    DELETE FROM bench_queue q USING leased WHERE q.id = leased.id
    RETURNING q.id, q.queued_at, q.payload
)
INSERT INTO bench_history (id, queued_at, finished_at, payload)
SELECT id, queued_at, clock_timestamp(), payload FROM done;
