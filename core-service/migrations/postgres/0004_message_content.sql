-- What a message holds: the contract's `Content`, protobuf-encoded (see
-- convert::encode_content). NULL when unknown: rows from before this column,
-- and statuses of messages the gateway never saw sent or received.
ALTER TABLE messages ADD COLUMN content BYTEA;
