SELECT count(*) FROM (SELECT 'Attempts', gen_random_uuid()::text, 2, 'DeliveriesAttempted', '1.0',
  ('{"outcomes":[' || x.o || ']}')::json,
  format('{"actor":"worker","chain":"%s","occurred_at":"%s","request_id":"%s","tenant_id":"01a2498b-abfc-7135-a8d3-fcaa46a135d3"}', md5(random()::text)||md5(random()::text), clock_timestamp(), gen_random_uuid())::json
FROM generate_series(1,1) g,
LATERAL (SELECT string_agg(format('{"delivery_id":"%s","sequence":2,"event_type":"DeliverySucceeded","attempt":1,"attempt_id":"%s","url":"http://127.0.0.1:41234/hook","started_at":"%s","duration_ms":1,"status_code":204}', gen_random_uuid(), gen_random_uuid(), clock_timestamp()), ',') o FROM generate_series(1,10) WHERE g > 0) x) z;
