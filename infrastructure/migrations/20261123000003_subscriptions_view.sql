-- Read model of subscriptions, maintained by the `subscriptions` projection.
-- `state` is the aggregate's state (secrets and headers sealed); the other
-- columns are copies for filtering and ordering.
CREATE TABLE subscriptions_view
(
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    status     text        NOT NULL,
    url        text        NOT NULL,
    events     text[]      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    state      jsonb       NOT NULL
);

CREATE INDEX subscriptions_view_tenant_created ON subscriptions_view (tenant_id, created_at DESC, id DESC);
CREATE INDEX subscriptions_view_events ON subscriptions_view USING gin (events);
