-- Flow control (issue 12).
--
-- Each subscription's run of failed attempts, kept by the `deliveries`
-- projection from attempt outcomes (part of that read model: rebuilt with
-- it). The flow controller opens circuits and auto-disables from it.
CREATE TABLE subscription_health
(
    subscription_id      uuid PRIMARY KEY,
    tenant_id            uuid        NOT NULL,
    -- Failed attempts since the last successful one.
    consecutive_failures integer     NOT NULL,
    -- The first failure of the current run (NULL after a success).
    failing_since        timestamptz,
    last_success_at      timestamptz,
    last_success_delivery uuid,
    -- The last failure: {delivery_id, error_kind, status_code, message, failed_at}.
    last_failure         jsonb
);

-- Rate-limit slots: the next free attempt time of each rate-limited
-- subscription, shared by every worker (operational state, not derived
-- from the log, like the queue's leases).
CREATE TABLE subscription_pacing
(
    subscription_id uuid PRIMARY KEY,
    next_at         timestamptz NOT NULL
);

-- Parking an open circuit's deliveries, releasing a probe and reporting a
-- subscription's backlog look the queue up by subscription.
CREATE INDEX delivery_queue_subscription ON delivery_queue (subscription_id);

-- The flow controller looks every second at failing subscriptions and open
-- circuits: both lookups stay on these small partial indexes.
CREATE INDEX subscription_health_failing ON subscription_health (failing_since)
    WHERE consecutive_failures > 0;
CREATE INDEX subscriptions_view_circuit_open ON subscriptions_view (id)
    WHERE state -> 'circuit' IS NOT NULL AND state -> 'circuit' <> 'null'::jsonb;
