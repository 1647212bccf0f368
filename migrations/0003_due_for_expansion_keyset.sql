-- The scheduler's tick walks the due tasks in (next_expand_at, id) order with a keyset
-- cursor: each batch starts after the last task of the previous one, so the index entries
-- that earlier batches left behind (the old versions of the rows they just moved forward)
-- are skipped by the index descent instead of being re-read by every batch of a large tick.
DROP INDEX tasks_due_for_expansion;
CREATE INDEX tasks_due_for_expansion ON tasks (next_expand_at, id)
    WHERE status = 'active' AND next_expand_at IS NOT NULL;
