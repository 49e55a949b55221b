-- What the request that first used an idempotency key asked for (a digest):
-- a key reused for a different request is refused (409) instead of being
-- answered with the first response. NULL for keys stored before.
ALTER TABLE idempotency_keys ADD COLUMN fingerprint text;
