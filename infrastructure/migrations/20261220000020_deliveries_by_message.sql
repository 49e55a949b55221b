-- A message's deliveries, found from the message without an index entry
-- per delivery (an index on deliveries_view (event_id) cost 5-6 % of the
-- CPU per delivery in the benchmark): those made by publishing it were
-- created when it was published (the tenant + creation-time index finds
-- them), and the few made by hand later (resends) are flagged and indexed
-- apart. Used by the Svix-compatible API's attempts of a message, one
-- attempt of a message, and the endpoints a message went to.
ALTER TABLE deliveries_view ADD COLUMN resent boolean NOT NULL DEFAULT false;

-- Resends so far: their DeliveryEnqueued names the request that asked
-- (`triggered_by`, indexed where set).
UPDATE deliveries_view d SET resent = true
  FROM events e
 WHERE e.metadata ->> 'triggered_by' IS NOT NULL
   AND e.aggregate_type = 'Delivery' AND e.event_type = 'DeliveryEnqueued'
   AND d.id = CASE WHEN e.aggregate_id ~ '^[0-9a-fA-F-]{32,36}$' THEN e.aggregate_id::uuid END;

CREATE INDEX deliveries_view_resent ON deliveries_view (event_id) WHERE resent;
