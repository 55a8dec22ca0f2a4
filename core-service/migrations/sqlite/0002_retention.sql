-- Retention (EVENT_RETENTION_DAYS) finds old de-duplication keys by age. Keys
-- are written in time order, so these indexes only ever grow at their end.
CREATE INDEX deliveries_by_age ON deliveries (received_at_ms);
CREATE INDEX event_keys_by_age ON event_keys (received_at_ms);
