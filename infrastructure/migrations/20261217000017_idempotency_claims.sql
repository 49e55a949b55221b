-- Which request holds an idempotency key's claim: only that request answers
-- or lets go of it, and it renews `claimed_at` while it runs, so a request
-- that runs long is not taken for a stopped one (and run a second time).
-- NULL for claims made before this column (none is still running).
ALTER TABLE idempotent_requests ADD COLUMN claimed_by uuid;
