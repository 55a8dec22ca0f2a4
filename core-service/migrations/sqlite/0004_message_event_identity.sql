-- Received messages and statuses are recognised by their message's row and the
-- kind of event (the status, else the event type) instead of an identity that
-- starts with the random wamid: message rows are numbered in arrival order, so
-- this index grows at its end, where the old one took a page of its own for
-- almost every event. Other events keep their whole identity in dedup_key.
-- The migration's data step (migrate.rs) rewrites the stored message events.
ALTER TABLE events ADD COLUMN message_row INTEGER;
DROP INDEX events_by_dedup_key;
CREATE UNIQUE INDEX events_by_message_event ON events (message_row, dedup_key)
    WHERE message_row IS NOT NULL;
CREATE UNIQUE INDEX events_by_dedup_key ON events (dedup_key)
    WHERE message_row IS NULL;
