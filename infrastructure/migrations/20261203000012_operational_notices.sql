-- Operational webhooks: notices about Hookline itself waiting to be
-- published (written by the live subscriptions and deliveries projections in
-- the transaction of their checkpoint; removed once published). `id` is the
-- id the published event gets.
CREATE TABLE operational_notices (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    event_type text NOT NULL,
    data jsonb NOT NULL,
    about_subscription uuid,
    request_id text,
    due_at timestamptz NOT NULL,
    lease_until timestamptz
);

CREATE INDEX operational_notices_due ON operational_notices (due_at);
