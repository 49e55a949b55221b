-- Deliveries enqueued by DeliveryEnqueued 2.0 carry no body: it is stored
-- once per published event, in its MessagePublished event, and workers
-- read it from there. Queue rows of 1.0 deliveries keep theirs.
ALTER TABLE delivery_queue ALTER COLUMN body DROP NOT NULL;
