-- A queue row a worker holds back for its turn (a subscription's share of
-- the worker, a rate limit, a first attempt that must wait) is leased like
-- one in flight; `waiting` tells the two apart, so `/metrics` can show
-- deliveries that wait behind a slow or rate-limited receiver instead of
-- counting them as being sent. Set when a worker defers or hands over a
-- row, cleared when one claims it. Not indexed: only the scrape reads it.
ALTER TABLE delivery_queue ADD COLUMN waiting boolean NOT NULL DEFAULT false;
