-- A projection may hold rows back in memory for a moment (ADR 0021: the
-- deliveries projection writes a delivery's row once, with its first
-- outcome, when that outcome follows within about a second). Its
-- checkpoint stays exact; `held_*` is the position of the oldest event
-- whose rows it still holds, so that a process taking the projection over
-- (or a rebuild) writes them.
ALTER TABLE projection_checkpoints
    ADD COLUMN held_tx_id xid8,
    ADD COLUMN held_position bigint;
