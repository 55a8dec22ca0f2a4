-- The highest sequence retention has pruned. A consumer resuming at or after
-- it missed nothing; one resuming before it is told (docs/consumers.md).
-- Starts where the log starts: whatever is missing below was pruned.
CREATE TABLE log_horizon (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL
);
INSERT INTO log_horizon (id, pruned_through) VALUES (1, coalesce(
    (SELECT min(sequence) - 1 FROM events),
    (SELECT seq FROM sqlite_sequence WHERE name = 'events'),
    0
));
