-- The event log: postgres-es's `events` table (its INSERT names only its own
-- seven columns) extended with the global commit order and a wake-up trigger.
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    tx_id           xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz                  NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_global_position ON events (global_position);
-- Consumers read in (tx_id, global_position) order; see ARCHITECTURE.md §3.
CREATE INDEX events_commit_order ON events (tx_id, global_position);
CREATE INDEX events_type_commit_order ON events (aggregate_type, tx_id, global_position);
CREATE INDEX events_request_id ON events ((metadata ->> 'request_id'));

-- postgres-es's snapshot table. Hookline does not use snapshots (cqrs-es
-- 0.5.0's snapshot store applies events twice); kept so the schema matches
-- what postgres-es expects.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Wake consumers in every process. Notifications are not durable, so
-- consumers poll as well.
CREATE FUNCTION hookline_events_notify() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('hookline_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT
EXECUTE FUNCTION hookline_events_notify();

-- The log is append-only. Changing or removing an event needs a superuser
-- to disable this trigger first, and the hash chain (audit) still shows it.
CREATE FUNCTION hookline_events_immutable() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP;
END
$$;

CREATE TRIGGER events_immutable
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW
EXECUTE FUNCTION hookline_events_immutable();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT
EXECUTE FUNCTION hookline_events_immutable();

-- Where each catch-up consumer has got to, in commit order.
CREATE TABLE projection_checkpoints
(
    name          text PRIMARY KEY,
    last_tx_id    xid8        NOT NULL DEFAULT '0',
    last_position bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
