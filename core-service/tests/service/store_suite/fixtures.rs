//! Realistic events, deliveries and sends for the suite, plus small helpers.

use std::sync::Arc;

use kapso_core::convert::encode_content;
use kapso_core::model::{
    Claim, ConversationId, Delivery, Direction, EncodedContent, EventFilter, EventType, GatewayId,
    IdempotencyKey, MessageLookup, MetaError, NewEvent, PhoneNumberId, Receipt, Recipient,
    SendIntent, StatusUpdate, StoredEvent, Wamid,
};
use kapso_core::status::MessageStatus;
use kapso_core::store::{Store, StoreError};
use kapso_gateway_proto::v1 as pb;

/// The business number's Meta id.
pub const PHONE_NUMBER_ID: &str = "647015955153740";
/// The customer.
pub const CONTACT: &str = "15551234567";

/// `whatsapp.message.received`: a text from the contact.
pub fn received(wamid: &str, conversation_id: &str, text: &str, timestamp: i64) -> NewEvent {
    NewEvent {
        event_type: EventType::MessageReceived,
        message_id: Wamid::parse(wamid),
        conversation_id: ConversationId::parse(conversation_id),
        phone_number_id: PHONE_NUMBER_ID.into(),
        contact_phone: CONTACT.into(),
        direction: Direction::Inbound,
        message_type: "text".into(),
        text: text.into(),
        reply_to_message_id: None,
        statuses: Vec::new(),
        timestamp,
        payload_json: format!(
            r#"{{"message":{{"id":"{wamid}","timestamp":"{timestamp}","type":"text","from":"{CONTACT}","text":{{"body":"{text}"}},"kapso":{{"direction":"inbound"}}}},"conversation":{{"id":"{conversation_id}"}},"phone_number_id":"{PHONE_NUMBER_ID}"}}"#
        ),
        // What ingest reads from the payload is left to the cases about it:
        // the log keeps the payload, not this, so events read back have none.
        content: None,
    }
}

/// A text's typed content as ingest and sends store it.
pub fn text_content(body: &str) -> EncodedContent {
    encode_content(&pb::Content {
        kind: Some(pb::content::Kind::Text(pb::TextContent {
            body: body.into(),
            preview_url: false,
        })),
    })
}

/// `whatsapp.message.<name>` for an outbound message, as Kapso reports statuses.
pub fn status(wamid: &str, name: &str, timestamp: i64) -> NewEvent {
    let parsed = MessageStatus::parse(name).expect("a Meta status name");
    NewEvent {
        event_type: EventType::parse(&format!("whatsapp.message.{name}")),
        message_id: Wamid::parse(wamid),
        conversation_id: ConversationId::parse("conv-1"),
        phone_number_id: PHONE_NUMBER_ID.into(),
        contact_phone: CONTACT.into(),
        direction: Direction::Outbound,
        message_type: "text".into(),
        text: String::new(),
        reply_to_message_id: None,
        statuses: vec![status_update(parsed, timestamp)],
        timestamp,
        payload_json: format!(
            r#"{{"message":{{"id":"{wamid}","kapso":{{"direction":"outbound","status":"{name}","statuses":[{{"id":"{wamid}","status":"{name}","timestamp":"{timestamp}","recipient_id":"{CONTACT}"}}]}}}},"phone_number_id":"{PHONE_NUMBER_ID}"}}"#
        ),
        content: None,
    }
}

/// `whatsapp.conversation.created`: no message id, de-duplicated by payload.
pub fn conversation_created(conversation_id: &str) -> NewEvent {
    NewEvent {
        event_type: EventType::ConversationCreated,
        conversation_id: ConversationId::parse(conversation_id),
        phone_number_id: PHONE_NUMBER_ID.into(),
        contact_phone: CONTACT.into(),
        payload_json: format!(
            r#"{{"conversation":{{"id":"{conversation_id}","phone_number":"+{CONTACT}","status":"active"}},"phone_number_id":"{PHONE_NUMBER_ID}"}}"#
        ),
        ..Default::default()
    }
}

pub fn status_update(status: MessageStatus, timestamp: i64) -> StatusUpdate {
    StatusUpdate {
        status,
        timestamp,
        errors: Vec::new(),
    }
}

/// Meta's error for a message that could not be delivered.
pub fn meta_error() -> MetaError {
    MetaError {
        code: 131026,
        title: "Message undeliverable".into(),
        message: "Message undeliverable".into(),
        details: "Message could not be delivered to the recipient".into(),
    }
}

pub fn delivery(key: Option<&str>, events: Vec<NewEvent>) -> Delivery {
    Delivery {
        key: key.map(Into::into),
        events,
    }
}

/// A text send to [`CONTACT`], created now.
/// A message lookup by any of its ids, as `GetMessage` takes one.
pub fn any_id(id: &str) -> MessageLookup {
    MessageLookup::any(id).unwrap()
}

/// A send's gateway id, as the store takes it.
pub fn gateway(id: &str) -> GatewayId {
    GatewayId::parse(id).unwrap()
}

pub fn intent(gateway_id: &str, key: &str, fingerprint: &str) -> SendIntent {
    SendIntent {
        gateway_id: gateway(gateway_id),
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        fingerprint: fingerprint.into(),
        phone_number_id: PhoneNumberId::parse(PHONE_NUMBER_ID).unwrap(),
        to: Recipient::parse(CONTACT).unwrap(),
        conversation_id: ConversationId::parse("conv-1"),
        message_type: "text".into(),
        text: "Your order has shipped".into(),
        reply_to_message_id: None,
        created_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .try_into()
            .unwrap(),
        content: Some(text_content("Your order has shipped")),
    }
}

/// The sequence of a delivery of one new event.
pub fn only_sequence(receipt: Result<Receipt, StoreError>) -> u64 {
    match receipt.unwrap() {
        Receipt::Stored(claims) => match claims[..] {
            [Claim::New { sequence }] => sequence,
            ref other => panic!("expected one new event, got {other:?}"),
        },
        Receipt::DuplicateDelivery => panic!("expected a new delivery"),
    }
}

pub async fn all_events(store: &Arc<dyn Store>) -> Vec<StoredEvent> {
    store
        .events_after(0, &EventFilter::default(), 10_000)
        .await
        .unwrap()
}

/// Ingests each event in a delivery of its own, under a fresh key.
pub async fn ingest_each<const N: usize>(store: &Arc<dyn Store>, events: [NewEvent; N]) {
    for event in events {
        let key = uuid::Uuid::new_v4().to_string();
        store
            .ingest(delivery(Some(&key), vec![event]))
            .await
            .unwrap();
    }
}
