//! The JSON shapes Kapso sends, reduced to the fields the gateway reads.
//!
//! One struct, [`Body`], covers every top-level object: a v2 single event, the
//! envelope of a v2 batch, a v1 event, and the original service's legacy event. Reading it in
//! one pass keeps a single event to one parse. Unknown fields are skipped without
//! being materialised; see `lenient` for why no field can fail the parse.

use serde::Deserialize;

use super::lenient::{Flag, List, Obj, RawList, Text};

/// A top-level JSON object, or one item of a batch.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Body<'a> {
    /// Legacy shape's event type.
    #[serde(borrow)]
    pub event_type: Text<'a>,
    #[serde(borrow)]
    pub event: Text<'a>,
    /// Event type of a batch envelope.
    #[serde(borrow, rename = "type")]
    pub kind: Text<'a>,
    pub batch: Flag,
    /// Batch items as their exact text; only read as events if this body is a batch.
    #[serde(borrow)]
    pub data: RawList<'a>,
    #[serde(borrow)]
    pub batch_info: Obj<BatchInfo<'a>>,
    #[serde(borrow)]
    pub message: Obj<Message<'a>>,
    #[serde(borrow)]
    pub conversation: Obj<Conversation<'a>>,
    #[serde(borrow)]
    pub phone_number_id: Text<'a>,
    /// Kapso v1: the number the event is about, in every payload.
    #[serde(borrow)]
    pub whatsapp_config: Obj<WhatsappConfig<'a>>,
    /// Legacy shape.
    #[serde(borrow)]
    pub conversation_id: Text<'a>,
    /// Legacy shape.
    #[serde(borrow)]
    pub message_id: Text<'a>,
    /// Legacy shape.
    #[serde(borrow)]
    pub payload: Obj<LegacyPayload<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BatchInfo<'a> {
    #[serde(borrow)]
    pub conversation_id: Text<'a>,
}

/// Kapso v1's `whatsapp_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WhatsappConfig<'a> {
    #[serde(borrow)]
    pub phone_number_id: Text<'a>,
}

/// Meta's message object plus Kapso's `kapso` block (v2), or Kapso v1's
/// message record, whose fields v2 moved into `kapso` or renamed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Message<'a> {
    /// The wamid in v2; a Kapso id in v1, which has the wamid in `whatsapp_message_id`.
    #[serde(borrow)]
    pub id: Text<'a>,
    /// v1.
    #[serde(borrow)]
    pub whatsapp_message_id: Text<'a>,
    /// v1's `type`.
    #[serde(borrow)]
    pub message_type: Text<'a>,
    /// v1's text (v2: `text.body`, captions, `kapso.content`).
    #[serde(borrow)]
    pub content: Text<'a>,
    /// v1's `kapso.direction`.
    #[serde(borrow)]
    pub direction: Text<'a>,
    /// v1: the customer's number.
    #[serde(borrow)]
    pub phone_number: Text<'a>,
    /// Unix seconds, as a string.
    #[serde(borrow)]
    pub timestamp: Text<'a>,
    #[serde(borrow, rename = "type")]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub from: Text<'a>,
    #[serde(borrow)]
    pub to: Text<'a>,
    #[serde(borrow)]
    pub business_scoped_user_id: Text<'a>,
    #[serde(borrow)]
    pub from_user_id: Text<'a>,
    #[serde(borrow)]
    pub username: Text<'a>,
    #[serde(borrow)]
    pub text: Obj<TextBody<'a>>,
    #[serde(borrow)]
    pub image: Obj<Media<'a>>,
    #[serde(borrow)]
    pub video: Obj<Media<'a>>,
    #[serde(borrow)]
    pub document: Obj<Media<'a>>,
    #[serde(borrow)]
    pub interactive: Obj<Interactive<'a>>,
    #[serde(borrow)]
    pub button: Obj<Button<'a>>,
    #[serde(borrow)]
    pub reaction: Obj<Reaction<'a>>,
    #[serde(borrow)]
    pub context: Obj<Context<'a>>,
    #[serde(borrow)]
    pub kapso: Obj<Kapso<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TextBody<'a> {
    #[serde(borrow)]
    pub body: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Media<'a> {
    #[serde(borrow)]
    pub caption: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Interactive<'a> {
    #[serde(borrow)]
    pub button_reply: Obj<Reply<'a>>,
    #[serde(borrow)]
    pub list_reply: Obj<Reply<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Reply<'a> {
    #[serde(borrow)]
    pub title: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Button<'a> {
    #[serde(borrow)]
    pub text: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Reaction<'a> {
    #[serde(borrow)]
    pub message_id: Text<'a>,
    #[serde(borrow)]
    pub emoji: Text<'a>,
}

/// What a reply refers to: Meta sends `id`, the send API spells it `message_id`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Context<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub message_id: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Kapso<'a> {
    #[serde(borrow)]
    pub direction: Text<'a>,
    /// The message's status when Kapso wrote the body.
    #[serde(borrow)]
    pub status: Text<'a>,
    #[serde(borrow)]
    pub content: Text<'a>,
    #[serde(borrow)]
    pub phone_number_id: Text<'a>,
    #[serde(borrow)]
    pub statuses: List<Status<'a>>,
}

/// One of Meta's status objects.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Status<'a> {
    #[serde(borrow)]
    pub status: Text<'a>,
    #[serde(borrow)]
    pub timestamp: Text<'a>,
    #[serde(borrow)]
    pub recipient_id: Text<'a>,
    #[serde(borrow)]
    pub errors: List<MetaError<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MetaError<'a> {
    #[serde(borrow)]
    pub code: Text<'a>,
    #[serde(borrow)]
    pub title: Text<'a>,
    #[serde(borrow)]
    pub message: Text<'a>,
    #[serde(borrow)]
    pub error_data: Obj<ErrorData<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorData<'a> {
    #[serde(borrow)]
    pub details: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Conversation<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub phone_number: Text<'a>,
    #[serde(borrow)]
    pub phone_number_id: Text<'a>,
    #[serde(borrow)]
    pub business_scoped_user_id: Text<'a>,
    #[serde(borrow)]
    pub username: Text<'a>,
}

/// `payload` of the original service's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LegacyPayload<'a> {
    #[serde(borrow)]
    pub from: Text<'a>,
    #[serde(borrow)]
    pub content: Text<'a>,
    #[serde(borrow)]
    pub message_type: Text<'a>,
}
