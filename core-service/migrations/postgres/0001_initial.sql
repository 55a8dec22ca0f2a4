-- The durable log, its de-duplication keys, message state and consumer positions:
-- the same concepts as the SQLite schema, shared by every core replica.

-- Delivery keys (X-Idempotency-Key) already stored: a retried delivery writes nothing.
CREATE TABLE deliveries (
    key            TEXT PRIMARY KEY,
    received_at_ms BIGINT NOT NULL
);

-- Identities of events already stored (NewEvent::dedup_key), whichever delivery
-- or replica carried them. The primary key is what de-duplicates across replicas.
CREATE TABLE event_keys (
    key            TEXT PRIMARY KEY,
    received_at_ms BIGINT NOT NULL
);

-- The event log consumers stream from. An identity column never reuses a value,
-- so consumer positions stay meaningful after pruning. Appends are serialized
-- by an advisory lock (see store/postgres/writer.rs), which makes sequence
-- order equal commit order.
CREATE TABLE events (
    sequence        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at_ms  BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    contact_phone   TEXT NOT NULL,
    direction       TEXT NOT NULL,
    message_type    TEXT NOT NULL,
    text            TEXT NOT NULL,
    reply_to        TEXT NOT NULL,
    timestamp       BIGINT NOT NULL,
    -- NULL when the event carries no statuses (most events).
    statuses_json   TEXT,
    -- TEXT, not JSONB: the payload is returned byte for byte as Kapso sent it.
    payload_json    TEXT NOT NULL
);
CREATE INDEX events_by_conversation ON events (conversation_id, sequence);
CREATE INDEX events_by_phone_number ON events (phone_number_id, sequence);

-- Messages as known now; the integer key is stable for the row's life (a send
-- learns its wamid only after the upstream call).
CREATE TABLE messages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    errors_json     TEXT,
    timestamp       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX messages_by_gateway_id ON messages (gateway_id)
    WHERE gateway_id IS NOT NULL;
-- The idempotency claim of a send, across every replica.
CREATE UNIQUE INDEX messages_by_idempotency_key ON messages (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_by_conversation ON messages (conversation_id, timestamp, id);
CREATE INDEX messages_awaiting_wamid ON messages (phone_number_id, contact_phone)
    WHERE wamid IS NULL;

-- Every status a message reached, once, with the earliest time reported for it.
CREATE TABLE status_history (
    message_id BIGINT NOT NULL,
    status     TEXT NOT NULL,
    timestamp  BIGINT NOT NULL,
    PRIMARY KEY (message_id, status)
);

CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    phone_number_id TEXT NOT NULL,
    contact_phone   TEXT NOT NULL,
    last_inbound_at BIGINT
);
CREATE INDEX conversations_by_contact ON conversations (phone_number_id, contact_phone);

CREATE TABLE consumers (
    name     TEXT PRIMARY KEY,
    sequence BIGINT NOT NULL
);

-- MessageStatus::rank, so forward-only updates can be written in SQL and hold
-- whichever replica applies them.
CREATE FUNCTION kapso_status_rank(status TEXT) RETURNS INTEGER
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE status
            WHEN 'sent' THEN 1
            WHEN 'delivered' THEN 2
            WHEN 'read' THEN 3
            WHEN 'failed' THEN 4
            ELSE 0
        END
    $$;
