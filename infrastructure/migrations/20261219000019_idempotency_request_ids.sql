-- The request id of the request holding an idempotency key's claim. A claim
-- left unanswered by a process that stopped is taken over by a repeat only
-- when nothing in the log carries that request id: a request whose changes
-- were stored before its answer could be saved is not run again.
-- NULL for claims made before this column.
ALTER TABLE idempotent_requests ADD COLUMN request_id text;
