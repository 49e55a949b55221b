-- Outcome rows as the recorder writes them (one a delivery) and as ADR 0023
-- would (`per` outcomes of a message in one row), generated in the
-- statement: the gen-* scripts measure the generation alone.
CREATE FUNCTION outcome_metadata() RETURNS json LANGUAGE sql AS $$
    SELECT format('{"actor":"worker","chain":"%s","occurred_at":"%s","request_id":"%s","tenant_id":"01a2498b-abfc-7135-a8d3-fcaa46a135d3"}',
                  md5(random()::text) || md5(random()::text), clock_timestamp(), gen_random_uuid())::json
$$;

CREATE FUNCTION one_outcome_rows(n int)
    RETURNS TABLE (t text, i text, s bigint, et text, v text, p json, m json) LANGUAGE sql AS $$
    SELECT 'Delivery', gen_random_uuid()::text, 2, 'DeliverySucceeded', '1.0',
           format('{"attempt":1,"attempt_id":"%s","url":"http://127.0.0.1:41234/hook","started_at":"%s","duration_ms":1,"status_code":204}',
                  gen_random_uuid(), clock_timestamp())::json,
           outcome_metadata()
      FROM generate_series(1, n)
$$;

CREATE FUNCTION batched_outcome_rows(per int, n int)
    RETURNS TABLE (t text, i text, s bigint, et text, v text, p json, m json) LANGUAGE sql AS $$
    SELECT 'Message', gen_random_uuid()::text, 2, 'DeliveriesAttempted', '1.0',
           ('{"outcomes":[' || x.o || ']}')::json,
           outcome_metadata()
      FROM generate_series(1, n) g,
           LATERAL (SELECT string_agg(format('{"delivery_id":"%s","sequence":2,"event_type":"DeliverySucceeded","attempt":1,"attempt_id":"%s","url":"http://127.0.0.1:41234/hook","started_at":"%s","duration_ms":1,"status_code":204}',
                                             gen_random_uuid(), gen_random_uuid(), clock_timestamp()), ',') AS o
                      FROM generate_series(1, per) WHERE g > 0) x
$$;
