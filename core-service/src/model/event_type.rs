//! What kind of event Kapso reports, parsed once where an event enters the
//! core (the adapter's protobuf, a row of the log) and written back as Kapso
//! spelled it only where it leaves (protobuf out, the log's column).

use std::fmt;

use crate::status::MessageStatus;

/// An event's type: one the gateway knows by name, or any other kept verbatim
/// (the log stores exactly what Kapso sent).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `whatsapp.message.received`: a message the contact sent.
    MessageReceived,
    /// `whatsapp.message.sent`
    MessageSent,
    /// `whatsapp.message.delivered`
    MessageDelivered,
    /// `whatsapp.message.read`
    MessageRead,
    /// `whatsapp.message.failed`
    MessageFailed,
    /// `whatsapp.conversation.created`
    ConversationCreated,
    /// `whatsapp.conversation.ended`
    ConversationEnded,
    /// `whatsapp.conversation.inactive`
    ConversationInactive,
    /// `whatsapp.contact.identity_changed`
    ContactIdentityChanged,
    /// `whatsapp.contact.marketing_preference_changed`
    ContactMarketingPreferenceChanged,
    /// `whatsapp.meta_business_agent.handover`
    MetaBusinessAgentHandover,
    /// `whatsapp.phone_number.created`
    PhoneNumberCreated,
    /// `whatsapp.config.created`: a legacy (v1) webhook's `phone_number.created`.
    ConfigCreated,
    /// Any other type, exactly as sent (empty when none was given).
    Other(String),
}

/// Every named type with its spelling, for [`EventType::parse`].
const NAMED: [(EventType, &str); 13] = [
    (EventType::MessageReceived, "whatsapp.message.received"),
    (EventType::MessageSent, "whatsapp.message.sent"),
    (EventType::MessageDelivered, "whatsapp.message.delivered"),
    (EventType::MessageRead, "whatsapp.message.read"),
    (EventType::MessageFailed, "whatsapp.message.failed"),
    (
        EventType::ConversationCreated,
        "whatsapp.conversation.created",
    ),
    (EventType::ConversationEnded, "whatsapp.conversation.ended"),
    (
        EventType::ConversationInactive,
        "whatsapp.conversation.inactive",
    ),
    (
        EventType::ContactIdentityChanged,
        "whatsapp.contact.identity_changed",
    ),
    (
        EventType::ContactMarketingPreferenceChanged,
        "whatsapp.contact.marketing_preference_changed",
    ),
    (
        EventType::MetaBusinessAgentHandover,
        "whatsapp.meta_business_agent.handover",
    ),
    (
        EventType::PhoneNumberCreated,
        "whatsapp.phone_number.created",
    ),
    (EventType::ConfigCreated, "whatsapp.config.created"),
];

const CONVERSATION_PREFIX: &str = "whatsapp.conversation.";

impl EventType {
    /// The type named `name`; never fails, an unknown name is [`Other`](Self::Other).
    pub fn parse(name: &str) -> EventType {
        NAMED
            .iter()
            .find(|(_, spelled)| *spelled == name)
            .map_or_else(|| EventType::Other(name.to_owned()), |(t, _)| t.clone())
    }

    /// The type as Kapso spells it.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::MessageReceived => "whatsapp.message.received",
            EventType::MessageSent => "whatsapp.message.sent",
            EventType::MessageDelivered => "whatsapp.message.delivered",
            EventType::MessageRead => "whatsapp.message.read",
            EventType::MessageFailed => "whatsapp.message.failed",
            EventType::ConversationCreated => "whatsapp.conversation.created",
            EventType::ConversationEnded => "whatsapp.conversation.ended",
            EventType::ConversationInactive => "whatsapp.conversation.inactive",
            EventType::ContactIdentityChanged => "whatsapp.contact.identity_changed",
            EventType::ContactMarketingPreferenceChanged => {
                "whatsapp.contact.marketing_preference_changed"
            }
            EventType::MetaBusinessAgentHandover => "whatsapp.meta_business_agent.handover",
            EventType::PhoneNumberCreated => "whatsapp.phone_number.created",
            EventType::ConfigCreated => "whatsapp.config.created",
            EventType::Other(name) => name,
        }
    }

    /// The status a status event reports (`whatsapp.message.read` is `Read`);
    /// `None` for received messages and other events.
    ///
    /// An unknown type reports the status its last dot-separated part names,
    /// as the log has always read it: the identities of events already stored
    /// were worked out by that rule, and a redelivery must find them again.
    pub fn reported_status(&self) -> Option<MessageStatus> {
        match self {
            EventType::MessageSent => Some(MessageStatus::Sent),
            EventType::MessageDelivered => Some(MessageStatus::Delivered),
            EventType::MessageRead => Some(MessageStatus::Read),
            EventType::MessageFailed => Some(MessageStatus::Failed),
            EventType::Other(name) => match MessageStatus::parse(name.rsplit('.').next()?)? {
                s @ (MessageStatus::Sent
                | MessageStatus::Delivered
                | MessageStatus::Read
                | MessageStatus::Failed) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether this is `whatsapp.message.received`.
    pub fn is_message_received(&self) -> bool {
        *self == EventType::MessageReceived
    }

    /// Whether this is a `whatsapp.conversation.*` event, including one Kapso
    /// adds later.
    pub fn is_conversation(&self) -> bool {
        match self {
            EventType::ConversationCreated
            | EventType::ConversationEnded
            | EventType::ConversationInactive => true,
            EventType::Other(name) => name.starts_with(CONVERSATION_PREFIX),
            _ => false,
        }
    }
}

/// No type given: an empty [`Other`](EventType::Other), as an event the
/// adapter found no type for is stored.
impl Default for EventType {
    fn default() -> EventType {
        EventType::Other(String::new())
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_type_round_trips() {
        for (named, spelled) in NAMED {
            assert!(!matches!(named, EventType::Other(_)), "{spelled}");
            assert_eq!(EventType::parse(spelled), named);
            assert_eq!(named.as_str(), spelled);
            assert_eq!(named.to_string(), spelled);
        }
    }

    #[test]
    fn an_unknown_type_is_kept_verbatim() {
        for name in [
            "whatsapp.message.deleted",
            "",
            "WhatsApp.Message.Received",
            " x ",
        ] {
            let parsed = EventType::parse(name);
            assert_eq!(parsed, EventType::Other(name.to_owned()));
            assert_eq!(parsed.as_str(), name);
        }
    }

    #[test]
    fn each_status_event_reports_its_status() {
        use MessageStatus::*;
        let reported = |name: &str| EventType::parse(name).reported_status();
        assert_eq!(reported("whatsapp.message.sent"), Some(Sent));
        assert_eq!(reported("whatsapp.message.delivered"), Some(Delivered));
        assert_eq!(reported("whatsapp.message.read"), Some(Read));
        assert_eq!(reported("whatsapp.message.failed"), Some(Failed));
        for (named, spelled) in NAMED {
            if !spelled.starts_with("whatsapp.message.") || named.is_message_received() {
                assert_eq!(named.reported_status(), None, "{spelled}");
            }
        }
        assert_eq!(reported("whatsapp.message.deleted"), None);
        assert_eq!(reported("whatsapp.message.accepted"), None);
        assert_eq!(reported("whatsapp.message.status"), None);
        // An unknown type still reports by its last part, as stored identities did.
        assert_eq!(reported("kapso.read"), Some(Read));
    }

    #[test]
    fn conversation_events_are_known_by_their_prefix() {
        let conversation = |name: &str| EventType::parse(name).is_conversation();
        assert!(conversation("whatsapp.conversation.created"));
        assert!(conversation("whatsapp.conversation.ended"));
        assert!(conversation("whatsapp.conversation.inactive"));
        assert!(conversation("whatsapp.conversation.reopened"));
        assert!(!conversation("whatsapp.message.received"));
        assert!(!conversation("whatsapp.contact.identity_changed"));
        assert!(EventType::MessageReceived.is_message_received());
        assert!(!EventType::parse("whatsapp.message.sent").is_message_received());
    }
}
