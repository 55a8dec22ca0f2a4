//! [`SendText`]: what [`Client::send_text`](crate::Client::send_text) sends;
//! [`message`]: [`SendMessage`](message::SendMessage), any kind of message.

use kapso_gateway_proto::v1 as pb;

pub mod message;

/// Who receives a message: a phone number, or a conversation the gateway knows
/// (the core resolves its contact and business number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Customer phone digits; a leading `+` is accepted.
    Phone(String),
    /// A Kapso conversation id.
    Conversation(String),
}

/// A free-form text message to send.
///
/// # Examples
///
/// ```
/// use kapso_client::SendText;
///
/// let reply = SendText::to_conversation("conv_123", "¿En qué puedo ayudarte?")
///     .reply_to("wamid.HBgL")
///     .idempotency_key("ayuda-bot:wamid.HBgL");
/// assert_eq!(reply.idempotency_key.as_deref(), Some("ayuda-bot:wamid.HBgL"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendText {
    pub recipient: Recipient,
    /// 1 to 4096 characters.
    pub text: String,
    /// Sending business number; the core defaults to its configured one (or the conversation's).
    pub phone_number_id: Option<String>,
    /// Let WhatsApp render a preview of the first URL in the text.
    pub preview_url: bool,
    /// The wamid this message answers (shown quoted in WhatsApp).
    pub reply_to_message_id: Option<String>,
    /// A retry with the same key returns the first outcome instead of sending again.
    pub idempotency_key: Option<String>,
}

impl SendText {
    /// A text to a phone number.
    pub fn to(phone: impl Into<String>, text: impl Into<String>) -> Self {
        Self::new(Recipient::Phone(phone.into()), text)
    }

    /// A text to the contact of a conversation.
    pub fn to_conversation(conversation_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self::new(Recipient::Conversation(conversation_id.into()), text)
    }

    fn new(recipient: Recipient, text: impl Into<String>) -> Self {
        SendText {
            recipient,
            text: text.into(),
            phone_number_id: None,
            preview_url: false,
            reply_to_message_id: None,
            idempotency_key: None,
        }
    }

    /// Reply to (quote) the message with this wamid.
    pub fn reply_to(mut self, message_id: impl Into<String>) -> Self {
        self.reply_to_message_id = Some(message_id.into());
        self
    }

    /// Make retries safe: the core sends at most once per key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Send from this business phone number id.
    pub fn phone_number_id(mut self, phone_number_id: impl Into<String>) -> Self {
        self.phone_number_id = Some(phone_number_id.into());
        self
    }

    /// Ask WhatsApp to render a link preview.
    pub fn preview_url(mut self, preview_url: bool) -> Self {
        self.preview_url = preview_url;
        self
    }

    pub(crate) fn into_proto(self) -> pb::SendTextRequest {
        let (to, conversation_id) = match self.recipient {
            Recipient::Phone(phone) => (phone, String::new()),
            Recipient::Conversation(id) => (String::new(), id),
        };
        pb::SendTextRequest {
            to,
            conversation_id,
            text: self.text,
            phone_number_id: self.phone_number_id.unwrap_or_default(),
            preview_url: self.preview_url,
            reply_to_message_id: self.reply_to_message_id.unwrap_or_default(),
            idempotency_key: self.idempotency_key.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_recipient_maps_to_to_and_unset_options_to_empty() {
        let request = SendText::to("+56912345678", "hola").into_proto();
        assert_eq!(request.to, "+56912345678");
        assert_eq!(request.conversation_id, "");
        assert_eq!(request.text, "hola");
        assert_eq!(request.idempotency_key, "");
        assert!(!request.preview_url);
    }

    #[test]
    fn conversation_recipient_and_options_map_to_their_fields() {
        let request = SendText::to_conversation("conv_1", "hi")
            .reply_to("wamid.1")
            .idempotency_key("k1")
            .phone_number_id("pn_1")
            .preview_url(true)
            .into_proto();
        assert_eq!(request.to, "");
        assert_eq!(request.conversation_id, "conv_1");
        assert_eq!(request.reply_to_message_id, "wamid.1");
        assert_eq!(request.idempotency_key, "k1");
        assert_eq!(request.phone_number_id, "pn_1");
        assert!(request.preview_url);
    }
}
