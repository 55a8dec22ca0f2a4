//! What a send carries, one type per kind, already checked against Meta's
//! limits (`outbound::content` builds them), and the exact JSON object each
//! kind becomes on the wire (docs/kapso-contract.md, section 3).
//!
//! - `wire`: the JSON object of each kind

use serde::Serialize;

mod wire;

/// The content of one outbound message.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(Text),
    Template(Template),
    Media(Media),
    Interactive(Interactive),
    Reaction(Reaction),
    Location(Location),
    Contacts(Vec<ContactCard>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub body: String,
    pub preview_url: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    pub language: String,
    /// Meta's `language.policy: deterministic`: this language, never another.
    pub deterministic_language: bool,
    pub components: Vec<TemplateComponent>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateComponent {
    pub part: TemplatePart,
    pub parameters: Vec<TemplateParameter>,
}

/// Which part of the template a component fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplatePart {
    Header,
    Body,
    Button { sub_type: ButtonType, index: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonType {
    QuickReply,
    Url,
    CopyCode,
    Flow,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateParameter {
    /// For templates with named variables.
    pub name: Option<String>,
    pub value: ParameterValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParameterValue {
    Text(String),
    Currency {
        fallback_value: String,
        code: String,
        amount_1000: i64,
    },
    DateTime {
        fallback_value: String,
    },
    Media(MediaKind, MediaSource),
    Payload(String),
    /// A location header's pin.
    Location(Location),
    /// The code a copy-code button copies.
    CouponCode(String),
    /// What a flow button opens its flow with.
    FlowAction {
        token: Option<String>,
        /// The first screen's data: a JSON object.
        data: Option<serde_json::Map<String, serde_json::Value>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    /// The message `type` and the name of its object.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    /// Meta takes a caption on these kinds only.
    pub fn takes_caption(self) -> bool {
        matches!(
            self,
            MediaKind::Image | MediaKind::Video | MediaKind::Document
        )
    }
}

/// Media by public link or by uploaded id: never both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    Link(String),
    Id(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaKind,
    pub source: MediaSource,
    /// Image, video and document only.
    pub caption: Option<String>,
    /// Document only.
    pub filename: Option<String>,
    /// Audio only.
    pub voice: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interactive {
    pub header: Option<Header>,
    pub body: String,
    pub footer: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    Text(String),
    Media(MediaKind, MediaSource),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// 1 to 3 reply buttons: (id, title).
    Buttons(Vec<(String, String)>),
    List {
        button: String,
        sections: Vec<Section>,
    },
    CtaUrl {
        display_text: String,
        url: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: Option<String>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub message_id: String,
    /// Empty removes the reaction.
    pub emoji: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub name: Option<String>,
    pub address: Option<String>,
}

/// A contact card; its wire shape is its own (Meta's field names), empty fields left out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ContactCard {
    pub name: ContactName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<ContactOrg>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<ContactPhone>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Typed<Email>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<Typed<Url>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<ContactAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ContactName {
    pub formatted_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ContactOrg {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ContactPhone {
    pub phone: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

/// An email or URL with its optional type (`WORK`, `HOME`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Typed<T> {
    #[serde(flatten)]
    pub value: T,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Email {
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Url {
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ContactAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Content {
    /// The message `type` on the wire (and in the store).
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Text(_) => "text",
            Content::Template(_) => "template",
            Content::Media(m) => m.kind.as_str(),
            Content::Interactive(_) => "interactive",
            Content::Reaction(_) => "reaction",
            Content::Location(_) => "location",
            Content::Contacts(_) => "contacts",
        }
    }

    /// Templates are the one kind Meta delivers outside the 24-hour window.
    pub fn allowed_outside_window(&self) -> bool {
        matches!(self, Content::Template(_))
    }

    /// A readable rendering for the stored message's `text`.
    pub fn summary(&self) -> String {
        match self {
            Content::Text(t) => t.body.clone(),
            Content::Template(t) => format!("[template {} ({})]", t.name, t.language),
            Content::Media(m) => m.caption.clone().unwrap_or_default(),
            Content::Interactive(i) => i.body.clone(),
            Content::Reaction(r) => r.emoji.clone(),
            Content::Location(l) => l.name.clone().unwrap_or_default(),
            Content::Contacts(cards) => cards
                .iter()
                .map(|c| c.name.formatted_name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}
