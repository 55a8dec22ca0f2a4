-- An event's identity (NewEvent::dedup_key) becomes a column of the log: one
-- unique index in place of a table and its age index, written with the event's
-- row and pruned with it. The migration's data step (migrate.rs) fills the
-- column in for the events already stored, then drops event_keys.
ALTER TABLE events ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX events_by_dedup_key ON events (dedup_key);
