-- The event-type catalogue's read model, kept by the `event_types`
-- projection from EventType events: one row per type a tenant defined or
-- changed (built-ins it never touched are not stored; the application adds
-- them).
CREATE TABLE event_types
(
    aggregate_id text PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    name         text        NOT NULL,
    archived     boolean     NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint      NOT NULL,
    state        jsonb       NOT NULL
);

CREATE INDEX event_types_tenant ON event_types (tenant_id, name);
