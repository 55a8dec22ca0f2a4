-- The durable log, its de-duplication keys, message state and consumer positions.
--
-- Key tables are WITHOUT ROWID: a TEXT primary key on a rowid table costs a
-- second B-tree per insert, and these are written once per delivery/event.

-- Delivery keys (X-Idempotency-Key) already stored: a retried delivery writes nothing.
CREATE TABLE deliveries (
    key            TEXT PRIMARY KEY,
    received_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Identities of events already stored (NewEvent::dedup_key), whichever delivery
-- carried them: Kapso re-sends batches item by item under new delivery keys.
-- received_at_ms allows pruning very old keys later.
CREATE TABLE event_keys (
    key            TEXT PRIMARY KEY,
    received_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- The event log consumers stream from. AUTOINCREMENT so a sequence is never
-- reused, even after old entries are pruned: consumer positions stay meaningful.
CREATE TABLE events (
    sequence        INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at_ms  INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    contact_phone   TEXT NOT NULL,
    direction       TEXT NOT NULL,
    message_type    TEXT NOT NULL,
    text            TEXT NOT NULL,
    reply_to        TEXT NOT NULL,
    timestamp       INTEGER NOT NULL,
    -- NULL when the event carries no statuses (most events): nothing to encode.
    statuses_json   TEXT,
    payload_json    TEXT NOT NULL
);
CREATE INDEX events_by_conversation ON events (conversation_id, sequence);
CREATE INDEX events_by_phone_number ON events (phone_number_id, sequence);

-- Messages as known now. The integer key stays stable for the row's life: a send
-- learns its wamid only after the upstream call, and a status webhook may have
-- created a row for that wamid first (merged in finish_send).
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    wamid           TEXT UNIQUE,
    gateway_id      TEXT,
    idempotency_key TEXT,
    fingerprint     TEXT,
    direction       TEXT NOT NULL,
    conversation_id TEXT NOT NULL DEFAULT '',
    phone_number_id TEXT NOT NULL DEFAULT '',
    contact_phone   TEXT NOT NULL DEFAULT '',
    type            TEXT NOT NULL DEFAULT '',
    text            TEXT NOT NULL DEFAULT '',
    reply_to        TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    -- Meta's error objects of a failure; NULL when none.
    errors_json     TEXT,
    -- Unix seconds: WhatsApp's time for inbound, the request time for sends.
    timestamp       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- Partial: inbound messages (the bulk) have neither, and carry no index entry.
CREATE UNIQUE INDEX messages_by_gateway_id ON messages (gateway_id)
    WHERE gateway_id IS NOT NULL;
CREATE UNIQUE INDEX messages_by_idempotency_key ON messages (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Keyset paging of a conversation, oldest first.
CREATE INDEX messages_by_conversation ON messages (conversation_id, timestamp, id);
-- Sends still waiting for their wamid, matched by a later status webhook.
CREATE INDEX messages_awaiting_wamid ON messages (phone_number_id, contact_phone)
    WHERE wamid IS NULL;

-- Every status a message reached, once, with the earliest time reported for it.
CREATE TABLE status_history (
    message_id INTEGER NOT NULL,
    status     TEXT NOT NULL,
    timestamp  INTEGER NOT NULL,
    PRIMARY KEY (message_id, status)
) WITHOUT ROWID;

-- Conversations seen, remembered to address replies and to know the 24 h window.
CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    phone_number_id TEXT NOT NULL,
    contact_phone   TEXT NOT NULL,
    last_inbound_at INTEGER
) WITHOUT ROWID;
CREATE INDEX conversations_by_contact ON conversations (phone_number_id, contact_phone);

-- Acknowledged positions of named consumers.
CREATE TABLE consumers (
    name     TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL
) WITHOUT ROWID;
