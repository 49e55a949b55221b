-- Tenants and API keys become events of the Tenant aggregate. These tables
-- are the read model the `tenants` projection maintains from them; the old
-- `tenants` and `api_keys` rows are turned into events once at start (see
-- `postgres::tenants::adopt_legacy_rows`) and those tables then dropped.
CREATE TABLE tenants_view
(
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    status     text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    state      jsonb       NOT NULL
);

CREATE INDEX tenants_view_created ON tenants_view (created_at DESC, id DESC);

-- One row per key: its SHA-256 digest (never the key) and from when it is
-- refused (revoked, or its tenant deleted).
CREATE TABLE tenant_keys
(
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    key_hash     text        NOT NULL UNIQUE,
    hint         text        NOT NULL,
    issued_at    timestamptz NOT NULL,
    refused_from timestamptz
);

CREATE INDEX tenant_keys_tenant ON tenant_keys (tenant_id);
