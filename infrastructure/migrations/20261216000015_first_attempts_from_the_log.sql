-- First attempts straight from the log (issue 16, ADR 0017).
--
-- Workers take new deliveries by reading `DeliveryEnqueued` events after a
-- shared cursor (the `first_attempts` row of `projection_checkpoints`), in
-- commit order, a span of the log at a time. The due queue keeps retries,
-- manual retries, deferred and parked deliveries, and their leases only.
--
-- A span a worker has taken and not yet finished (every delivery in it has
-- an outcome in the log or a queue row). A worker that dies leaves its span
-- to expire; another worker takes it again and attempts what in it has
-- neither. One row per span, not per delivery.
CREATE TABLE delivery_feed_spans
(
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- (after_tx, after_position] .. (until_tx, until_position], commit order.
    after_tx       xid8        NOT NULL,
    after_position bigint      NOT NULL,
    until_tx       xid8        NOT NULL,
    until_position bigint      NOT NULL,
    lease_owner text        NOT NULL,
    lease_until timestamptz NOT NULL
);

-- The cursor starts where the `deliveries` projection (which used to queue
-- every new delivery) has got to: deliveries before it are on the queue
-- already; those after it are read from the log.
INSERT INTO projection_checkpoints (name, last_tx_id, last_position, updated_at)
SELECT 'first_attempts', last_tx_id, last_position, now()
  FROM projection_checkpoints WHERE name = 'deliveries'
ON CONFLICT (name) DO NOTHING;
INSERT INTO projection_checkpoints (name) VALUES ('first_attempts') ON CONFLICT (name) DO NOTHING;

-- A span is inserted and deleted per take: vacuum the small table often.
ALTER TABLE delivery_feed_spans SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
