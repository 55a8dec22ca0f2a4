-- A stream filtered by conversation reads the log in sequence order and skips
-- other conversations' events, instead of keeping a second index written on every
-- event. Listing a conversation's messages keeps its index (messages_by_conversation).
-- The cost of a filtered replay is in docs/design/write-path.md#conversation-filter.
DROP INDEX IF EXISTS events_by_conversation;
