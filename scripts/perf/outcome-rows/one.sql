INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT * FROM one_outcome_rows(10) RETURNING tx_id::text, global_position;
