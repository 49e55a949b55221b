-- Appends are announced to other processes after they commit, by one task
-- per process that sends a NOTIFY naming the aggregate types (ADR 0020),
-- no longer by a trigger inside the appending transaction. Postgres takes a
-- cluster-wide lock at a notifying transaction's pre-commit and holds it
-- until its commit record is on disk: every append that notified committed
-- after the previous one's flush, one at a time, with no group commit.
-- Measured (docs/performance.md): 32 clients of single-row appends, 2,800
-- commits/s with the trigger, 7,000-7,600 without; steady CPU per delivery
-- -10 % in the benchmark, -16 to -30 % with two API and two worker processes.
DROP TRIGGER IF EXISTS events_notify ON events;
DROP FUNCTION IF EXISTS hookline_events_notify();
