//! [`SendMessage`]: what [`Client::send_message`](crate::Client::send_message)
//! sends, with one builder per kind of content. The core checks every limit
//! (button counts, lengths, the 24-hour window); these builders only shape the request.

use kapso_gateway_proto::v1 as pb;
use pb::send_message_request::Content as PbContent;

pub use pb::MediaKind;

use super::Recipient;

/// A message of any kind to send.
///
/// # Examples
///
/// ```
/// use kapso_client::{Interactive, SendMessage, Template};
///
/// let confirm = SendMessage::to(
///     "+56912345678",
///     Interactive::buttons("¿Confirmas tu hora?", [("yes", "Sí"), ("no", "No")]).footer("Clínica Norte"),
/// )
/// .idempotency_key("confirm-1042");
/// let reminder = SendMessage::to_conversation(
///     "conv_123",
///     Template::new("appointment_reminder", "es").body_text(["Ana", "9:00"]),
/// );
/// assert_eq!(confirm.idempotency_key.as_deref(), Some("confirm-1042"));
/// # let _ = reminder;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SendMessage {
    pub recipient: Recipient,
    pub content: Content,
    /// Sending business number; the core defaults to its configured one (or the conversation's).
    pub phone_number_id: Option<String>,
    /// The wamid this message answers (shown quoted in WhatsApp).
    pub reply_to_message_id: Option<String>,
    /// A retry with the same key returns the first outcome instead of sending again.
    pub idempotency_key: Option<String>,
}

impl SendMessage {
    /// A message to a phone number.
    pub fn to(phone: impl Into<String>, content: impl Into<Content>) -> Self {
        Self::new(Recipient::Phone(phone.into()), content.into())
    }

    /// A message to the contact of a conversation.
    pub fn to_conversation(
        conversation_id: impl Into<String>,
        content: impl Into<Content>,
    ) -> Self {
        Self::new(
            Recipient::Conversation(conversation_id.into()),
            content.into(),
        )
    }

    fn new(recipient: Recipient, content: Content) -> Self {
        SendMessage {
            recipient,
            content,
            phone_number_id: None,
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

    pub(crate) fn into_proto(self) -> pb::SendMessageRequest {
        let (to, conversation_id) = match self.recipient {
            Recipient::Phone(phone) => (phone, String::new()),
            Recipient::Conversation(id) => (String::new(), id),
        };
        pb::SendMessageRequest {
            to,
            conversation_id,
            phone_number_id: self.phone_number_id.unwrap_or_default(),
            reply_to_message_id: self.reply_to_message_id.unwrap_or_default(),
            idempotency_key: self.idempotency_key.unwrap_or_default(),
            content: Some(self.content.0),
        }
    }
}

/// The content of a [`SendMessage`]; built from the per-kind builders below.
#[derive(Debug, Clone, PartialEq)]
pub struct Content(pub PbContent);

/// A text body (and whether to preview its first URL).
pub fn text(body: impl Into<String>) -> Content {
    Content(PbContent::Text(pb::TextContent {
        body: body.into(),
        preview_url: false,
    }))
}

/// A reaction to the message `message_id`; an empty `emoji` removes it.
pub fn reaction(message_id: impl Into<String>, emoji: impl Into<String>) -> Content {
    Content(PbContent::Reaction(pb::ReactionContent {
        message_id: message_id.into(),
        emoji: emoji.into(),
    }))
}

/// Contact cards (Meta's shape; `name.formatted_name` is required).
pub fn contacts(cards: impl IntoIterator<Item = pb::ContactCard>) -> Content {
    Content(PbContent::Contacts(pb::ContactsContent {
        contacts: cards.into_iter().collect(),
    }))
}

/// An image, video, audio, document or sticker, by public link or uploaded id.
#[derive(Debug, Clone, PartialEq)]
pub struct Media(pb::MediaContent);

impl Media {
    /// Media Meta fetches from a public HTTPS URL.
    pub fn link(kind: MediaKind, url: impl Into<String>) -> Self {
        Media(pb::MediaContent {
            kind: kind.into(),
            link: url.into(),
            ..Default::default()
        })
    }

    /// Media uploaded before, by its media id.
    pub fn id(kind: MediaKind, id: impl Into<String>) -> Self {
        Media(pb::MediaContent {
            kind: kind.into(),
            id: id.into(),
            ..Default::default()
        })
    }

    /// Image, video and document only.
    pub fn caption(mut self, caption: impl Into<String>) -> Self {
        self.0.caption = caption.into();
        self
    }

    /// Document only.
    pub fn filename(mut self, filename: impl Into<String>) -> Self {
        self.0.filename = filename.into();
        self
    }

    /// Audio only: send as a voice note (OGG/OPUS).
    pub fn voice(mut self) -> Self {
        self.0.voice = true;
        self
    }
}

impl From<Media> for Content {
    fn from(media: Media) -> Content {
        Content(PbContent::Media(media.0))
    }
}

/// A location pin.
#[derive(Debug, Clone, PartialEq)]
pub struct Location(pb::LocationContent);

impl Location {
    pub fn new(latitude: f64, longitude: f64) -> Self {
        Location(pb::LocationContent {
            latitude,
            longitude,
            ..Default::default()
        })
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.name = name.into();
        self
    }

    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.0.address = address.into();
        self
    }
}

impl From<Location> for Content {
    fn from(location: Location) -> Content {
        Content(PbContent::Location(location.0))
    }
}

/// An approved template and the values of its variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(pb::TemplateContent);

impl Template {
    /// The template `name`, approved in `language` (e.g. `es`, `en_US`).
    pub fn new(name: impl Into<String>, language: impl Into<String>) -> Self {
        Template(pb::TemplateContent {
            name: name.into(),
            language: language.into(),
            ..Default::default()
        })
    }

    /// Any component, as Meta defines it (currency, date_time, named parameters, ...).
    pub fn component(mut self, component: pb::TemplateComponent) -> Self {
        self.0.components.push(component);
        self
    }

    /// The body's positional text variables, in order.
    pub fn body_text<S: Into<String>>(self, values: impl IntoIterator<Item = S>) -> Self {
        let parameters = values
            .into_iter()
            .map(|v| parameter(pb::template_parameter::Value::Text(v.into())))
            .collect();
        self.component(component(pb::TemplateComponentType::Body, parameters))
    }

    /// A media header (image, video or document).
    pub fn header_media(self, media: Media) -> Self {
        let value = pb::template_parameter::Value::Media(media.0);
        self.component(component(
            pb::TemplateComponentType::Header,
            vec![parameter(value)],
        ))
    }

    /// The payload of the quick-reply button at `index`, returned when it is tapped.
    pub fn quick_reply(self, index: u32, payload: impl Into<String>) -> Self {
        self.button(
            pb::TemplateButtonType::QuickReply,
            index,
            pb::template_parameter::Value::Payload(payload.into()),
        )
    }

    /// The suffix of the URL button at `index`.
    pub fn url_suffix(self, index: u32, suffix: impl Into<String>) -> Self {
        self.button(
            pb::TemplateButtonType::Url,
            index,
            pb::template_parameter::Value::Text(suffix.into()),
        )
    }

    fn button(
        self,
        kind: pb::TemplateButtonType,
        index: u32,
        value: pb::template_parameter::Value,
    ) -> Self {
        let mut c = component(pb::TemplateComponentType::Button, vec![parameter(value)]);
        c.button_type = kind.into();
        c.index = index;
        self.component(c)
    }
}

fn parameter(value: pb::template_parameter::Value) -> pb::TemplateParameter {
    pb::TemplateParameter {
        parameter_name: String::new(),
        value: Some(value),
    }
}

fn component(
    kind: pb::TemplateComponentType,
    parameters: Vec<pb::TemplateParameter>,
) -> pb::TemplateComponent {
    pb::TemplateComponent {
        r#type: kind.into(),
        parameters,
        ..Default::default()
    }
}

impl From<Template> for Content {
    fn from(template: Template) -> Content {
        Content(PbContent::Template(template.0))
    }
}

/// Reply buttons, a list, or a call-to-action URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Interactive(pb::InteractiveContent);

impl Interactive {
    /// Up to 3 reply buttons, given as `(id, title)`.
    pub fn buttons<I: Into<String>, T: Into<String>>(
        body: impl Into<String>,
        buttons: impl IntoIterator<Item = (I, T)>,
    ) -> Self {
        let buttons = buttons
            .into_iter()
            .map(|(id, title)| pb::ReplyButton {
                id: id.into(),
                title: title.into(),
            })
            .collect();
        Self::new(
            body,
            pb::interactive_content::Action::Buttons(pb::ReplyButtons { buttons }),
        )
    }

    /// A list opened by a button labelled `button`.
    pub fn list(
        body: impl Into<String>,
        button: impl Into<String>,
        sections: impl IntoIterator<Item = pb::ListSection>,
    ) -> Self {
        Self::new(
            body,
            pb::interactive_content::Action::List(pb::ListAction {
                button: button.into(),
                sections: sections.into_iter().collect(),
            }),
        )
    }

    /// A button opening `url`.
    pub fn cta_url(
        body: impl Into<String>,
        display_text: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Self::new(
            body,
            pb::interactive_content::Action::CtaUrl(pb::CallToActionUrl {
                display_text: display_text.into(),
                url: url.into(),
            }),
        )
    }

    fn new(body: impl Into<String>, action: pb::interactive_content::Action) -> Self {
        Interactive(pb::InteractiveContent {
            body: body.into(),
            action: Some(action),
            ..Default::default()
        })
    }

    pub fn header_text(mut self, text: impl Into<String>) -> Self {
        self.0.header = Some(pb::InteractiveHeader {
            header: Some(pb::interactive_header::Header::Text(text.into())),
        });
        self
    }

    /// Not for lists.
    pub fn header_media(mut self, media: Media) -> Self {
        self.0.header = Some(pb::InteractiveHeader {
            header: Some(pb::interactive_header::Header::Media(media.0)),
        });
        self
    }

    pub fn footer(mut self, footer: impl Into<String>) -> Self {
        self.0.footer = footer.into();
        self
    }
}

impl From<Interactive> for Content {
    fn from(interactive: Interactive) -> Content {
        Content(PbContent::Interactive(interactive.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_builders_fill_meta_components() {
        let request = SendMessage::to(
            "+56912345678",
            Template::new("order_shipped", "es_MX")
                .header_media(Media::link(MediaKind::Image, "https://cdn.example/b.jpg"))
                .body_text(["Ana"])
                .url_suffix(0, "ORD-1")
                .quick_reply(1, "STOP"),
        )
        .into_proto();
        let Some(PbContent::Template(t)) = request.content else {
            panic!("not a template")
        };
        assert_eq!(t.components.len(), 4);
        assert_eq!(t.components[2].button_type(), pb::TemplateButtonType::Url);
        assert_eq!(t.components[3].index, 1);
    }
}
