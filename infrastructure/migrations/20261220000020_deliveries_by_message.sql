-- A message's deliveries, looked up by the message: the Svix-compatible
-- API's attempts of a message, one attempt of a message, and the endpoints
-- a message went to. Without it each of those read every delivery of every
-- tenant. One index entry per delivery, written when the delivery is
-- first projected (the column never changes, so the view's updates stay
-- heap-only).
CREATE INDEX deliveries_view_message ON deliveries_view (event_id);
