INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Delivery', gen_random_uuid()::text, 2, 'DeliverySucceeded', '1.0',
  format('{"attempt":1,"attempt_id":"%s","url":"http://127.0.0.1:41234/hook","started_at":"%s","duration_ms":1,"status_code":204}', gen_random_uuid(), clock_timestamp())::json,
  format('{"actor":"worker","chain":"%s","occurred_at":"%s","request_id":"%s","tenant_id":"01a2498b-abfc-7135-a8d3-fcaa46a135d3"}', md5(random()::text)||md5(random()::text), clock_timestamp(), gen_random_uuid())::json
FROM generate_series(1,10)
RETURNING tx_id::text, global_position;
