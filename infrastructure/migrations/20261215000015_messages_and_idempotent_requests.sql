-- The messages read model, kept by the `messages` projection from
-- MessagePublished events: one row per published event, for lists by type,
-- channel and time (bodies stay in the log).
CREATE TABLE messages_view
(
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    event_type   text        NOT NULL,
    channels     text[]      NOT NULL DEFAULT '{}',
    uid          text,
    published_at timestamptz NOT NULL
);

CREATE INDEX messages_view_tenant_published ON messages_view (tenant_id, published_at DESC, id DESC);
CREATE INDEX messages_view_tenant_type ON messages_view (tenant_id, event_type, published_at DESC, id DESC);

-- Attempts listed by subscription (the Svix-compatible API's attempts by
-- endpoint).
CREATE INDEX delivery_attempts_subscription ON delivery_attempts (subscription_id, started_at DESC, id DESC);

-- Answers to requests sent with an idempotency key (every POST of the
-- Svix-compatible API): claimed before the request is answered, the answer
-- kept for a while (12 hours) and given again to repeats. `scope` is a
-- digest of the caller's credential and the request's path and query.
CREATE TABLE idempotent_requests
(
    scope       text        NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    status      integer,
    body        bytea,
    claimed_at  timestamptz NOT NULL,
    answered_at timestamptz,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotent_requests_claimed ON idempotent_requests (claimed_at);
