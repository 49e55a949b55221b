INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT * FROM batched_outcome_rows(:per, 10 / :per) RETURNING tx_id::text, global_position;
