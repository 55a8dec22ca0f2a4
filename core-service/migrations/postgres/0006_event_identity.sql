-- An event's identity becomes columns of the log, laid out as SQLite's
-- (its migrations 0003/0004): a received message or a status is known by its
-- message's row and the kind of event (message rows are numbered in arrival
-- order, so that index grows at its end), any other event by its whole
-- identity. The identities are written with the event's row and pruned with
-- it, in place of the event_keys table and its own retention.
-- The migration's data step (migrate.rs) fills the columns in for the events
-- already stored, as ingest now computes them.
ALTER TABLE events ADD COLUMN dedup_key TEXT, ADD COLUMN message_row BIGINT;
CREATE UNIQUE INDEX events_by_message_event ON events (message_row, dedup_key)
    WHERE message_row IS NOT NULL;
CREATE UNIQUE INDEX events_by_dedup_key ON events (dedup_key)
    WHERE message_row IS NULL;
DROP TABLE event_keys;
-- A status moves a message forward by the statuses the store is told it moves
-- from (store::effect): the ranking lives once, in MessageStatus::rank.
DROP FUNCTION kapso_status_rank(TEXT);
