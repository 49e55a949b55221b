-- Read models of deliveries and their attempts, maintained by the
-- `deliveries` projection.
CREATE TABLE deliveries_view
(
    id               uuid PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    subscription_id  uuid        NOT NULL,
    event_id         uuid        NOT NULL,
    event_type       text        NOT NULL,
    status           text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    url              text        NOT NULL,
    request_id       text,
    last_status_code integer,
    last_error_kind  text,
    last_error       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    version          bigint      NOT NULL
);

CREATE INDEX deliveries_view_tenant_created ON deliveries_view (tenant_id, created_at DESC, id DESC);
CREATE INDEX deliveries_view_tenant_status ON deliveries_view (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX deliveries_view_subscription ON deliveries_view (subscription_id, created_at DESC, id DESC);
CREATE INDEX deliveries_view_event_type ON deliveries_view (tenant_id, event_type, created_at DESC);
CREATE INDEX deliveries_view_request ON deliveries_view (request_id);
CREATE INDEX deliveries_view_event ON deliveries_view (event_id);

CREATE TABLE delivery_attempts
(
    id                uuid PRIMARY KEY,
    delivery_id       uuid        NOT NULL,
    attempt           integer     NOT NULL,
    tenant_id         uuid        NOT NULL,
    subscription_id   uuid        NOT NULL,
    request_id        text,
    triggered_by      text,
    worker            text,
    url               text        NOT NULL,
    started_at        timestamptz NOT NULL,
    duration_ms       bigint      NOT NULL,
    status_code       integer,
    outcome           text        NOT NULL,
    error_kind        text,
    error_message     text,
    response_excerpt  text,
    next_attempt_at   timestamptz,
    position          bigint      NOT NULL,
    UNIQUE (delivery_id, attempt)
);

CREATE INDEX delivery_attempts_request ON delivery_attempts (request_id);
CREATE INDEX delivery_attempts_triggered_by ON delivery_attempts (triggered_by);
CREATE INDEX delivery_attempts_tenant_started ON delivery_attempts (tenant_id, started_at DESC);

-- The due queue: one row per delivery awaiting an attempt, maintained by the
-- `delivery_queue` projection; workers lease rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE delivery_queue
(
    delivery_id     uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    subscription_id uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    attempt         integer     NOT NULL,
    due_at          timestamptz NOT NULL,
    body            text        NOT NULL,
    request_id      text,
    triggered_by    text,
    lease_owner     text,
    lease_until     timestamptz
);

CREATE INDEX delivery_queue_due ON delivery_queue (due_at);

-- Publishing with an idempotency key: the first answer, for 24 hours.
CREATE TABLE idempotency_keys
(
    tenant_id  uuid        NOT NULL,
    key        text        NOT NULL,
    response   jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
