-- Fewer index writes per delivery (issue 16, measured in docs/performance.md).

-- A delivery's row is written when it is enqueued and updated when its
-- attempt's outcome arrives, moments later. None of the columns an outcome
-- changes is indexed, so the update can stay on its page (HOT) and skip all
-- five indexes, if the page has room: at fillfactor 80 only about a third
-- of the updates found it under load. Half-full pages leave room for every
-- row's next version.
ALTER TABLE deliveries_view SET (fillfactor = 50);

-- Only attempts after a manual retry have `triggered_by`: index those
-- alone (a plain index also stored every other attempt's NULL).
DROP INDEX delivery_attempts_triggered_by;
CREATE INDEX delivery_attempts_triggered_by ON delivery_attempts (triggered_by)
    WHERE triggered_by IS NOT NULL;
