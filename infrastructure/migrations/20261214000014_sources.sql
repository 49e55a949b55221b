-- Inbound sources (issue 14). Read models kept by projections from the
-- log, and the two tables that are not derived from it: refused inbound
-- requests (never events) and cached Siigo tokens (sealed).

-- The `sources` projection: one row per source, its folded state (secrets
-- still sealed).
CREATE TABLE sources_view
(
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    status     text        NOT NULL,
    created_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    state      jsonb       NOT NULL
);

CREATE INDEX sources_view_tenant ON sources_view (tenant_id, created_at DESC, id DESC);

-- The `upstream_subscriptions` projection: subscriptions provisioned at
-- providers (Siigo), credentials still sealed.
CREATE TABLE upstream_subscriptions_view
(
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    status     text        NOT NULL,
    created_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    state      jsonb       NOT NULL
);

CREATE INDEX upstream_subscriptions_view_tenant
    ON upstream_subscriptions_view (tenant_id, created_at DESC, id DESC);

-- Inbound requests a source refused: why, from where, the body's digest
-- and size (never the body). The newest of each source are kept.
CREATE TABLE inbound_rejections
(
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    source_id   uuid        NOT NULL,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    remote_addr text,
    request_id  text        NOT NULL,
    body_sha256 text        NOT NULL,
    body_bytes  bigint      NOT NULL,
    received_at timestamptz NOT NULL
);

CREATE INDEX inbound_rejections_source ON inbound_rejections (source_id, id DESC);

-- Access tokens of provider accounts (per credential set), sealed, so
-- every Hookline process and CLI run shares them until they expire.
CREATE TABLE upstream_tokens
(
    cache_key  text PRIMARY KEY,
    token      jsonb       NOT NULL,
    expires_at timestamptz NOT NULL
);
