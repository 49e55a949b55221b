-- Audit reads: a tenant's events in commit order, and the events a request
-- caused (its own, and attempts it triggered as a manual retry).
CREATE INDEX events_tenant_commit_order ON events ((metadata ->> 'tenant_id'), tx_id, global_position);
CREATE INDEX events_triggered_by ON events ((metadata ->> 'triggered_by'));
