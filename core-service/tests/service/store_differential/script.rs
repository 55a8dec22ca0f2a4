//! Random scripts of what a store is asked to do: deliveries of received
//! messages, statuses in any order, conversation events and kinds nothing acts
//! on; the same delivery again, its events again under new keys; sends begun,
//! finished, released and abandoned; retention. Drawn from a small universe of
//! wamids, conversations, contacts and texts, so that events collide.

use kapso_core::model::{
    ConversationId, Direction, EventType, MetaError, NewEvent, StatusUpdate, Wamid,
};
use kapso_core::status::MessageStatus;
use proptest::prelude::*;
use proptest::sample::select;

use crate::store_suite::{CONTACT, PHONE_NUMBER_ID};

/// Message ids events and send responses draw from.
const WAMIDS: [&str; 5] = ["wamid.D0", "wamid.D1", "wamid.D2", "wamid.D3", "wamid.D4"];
/// The last one is an event that names no conversation.
const CONVERSATIONS: [&str; 3] = ["conv-a", "conv-b", ""];
/// The last one is a status that names no recipient.
const CONTACTS: [&str; 3] = [CONTACT, "15550000002", ""];
/// Sends use the first two; a status may carry any.
const TEXTS: [&str; 3] = ["Your order has shipped", "hola", ""];

/// Lookups a dump makes beyond the wamids and gateway ids: every idempotency key.
pub const IDEMPOTENCY_KEYS: [&str; 3] = ["idem-0", "idem-1", "idem-2"];

pub fn wamids() -> impl Iterator<Item = &'static str> {
    WAMIDS.into_iter()
}

pub fn conversations() -> impl Iterator<Item = &'static str> {
    CONVERSATIONS.into_iter().filter(|c| !c.is_empty())
}

pub fn contacts() -> impl Iterator<Item = &'static str> {
    CONTACTS.into_iter().filter(|c| !c.is_empty())
}

/// One step of a script. Indexes into earlier steps are taken modulo what
/// exists when the step runs; a step with nothing to refer to is skipped.
#[derive(Debug, Clone)]
pub enum Step {
    /// A new delivery of these events.
    Deliver {
        key: Key,
        events: Vec<EventSpec>,
    },
    /// The `nth` earlier delivery again, key and all (Kapso's retry).
    Retry {
        nth: usize,
    },
    /// The `nth` event delivered so far, alone under a fresh key or none
    /// (Kapso re-sending a batch item by item once its retries ran out).
    Redeliver {
        nth: usize,
        keyed: bool,
    },
    BeginSend(SendSpec),
    /// How the upstream call of the `nth` send begun ended.
    FinishSend {
        nth: usize,
        result: ResultSpec,
    },
    ReleaseSend {
        nth: usize,
    },
    /// Every send still waiting is abandoned.
    SettleAbandoned,
    /// Retention removes every event and key.
    PruneAll,
}

#[derive(Debug, Clone)]
pub enum Key {
    Fresh,
    None,
    /// The key of the `nth` earlier delivery that had one.
    Reused(usize),
}

#[derive(Debug, Clone)]
pub enum EventSpec {
    Received {
        wamid: usize,
        conversation: usize,
        contact: usize,
        text: usize,
        /// An unknown direction: the event type alone says it is inbound.
        direction_unknown: bool,
        reply_to: Option<usize>,
        timestamp: i64,
    },
    Status(StatusSpec),
    /// A message event of a kind no rule acts on; an outbound one still
    /// names its message, which it may create or settle. Whether it is
    /// outbound follows from its wamid: the same kind for the same message is
    /// the same event (its identity), and Kapso sends it again byte for byte.
    OtherKind {
        wamid: usize,
        conversation: usize,
    },
    /// `whatsapp.conversation.created` or `.ended`: no message id.
    Conversation {
        ended: bool,
        conversation: usize,
    },
}

#[derive(Debug, Clone)]
pub struct StatusSpec {
    wamid: usize,
    status: MessageStatus,
    /// 0: the event gives no time.
    timestamp: i64,
    /// Kapso's `statuses[]`: status, time (0 for none), whether it carries errors.
    reported: Vec<(MessageStatus, i64, bool)>,
    direction: Direction,
    conversation: usize,
    /// Whether the business number is given.
    phone: bool,
    contact: usize,
    text: usize,
}

#[derive(Debug, Clone)]
pub struct SendSpec {
    key: Option<usize>,
    fingerprint: usize,
    contact: usize,
    conversation: usize,
    text: usize,
}

#[derive(Debug, Clone)]
pub enum ResultSpec {
    Sent {
        wamid: usize,
    },
    /// Refused, with Meta's error.
    Failed,
    /// Kapso never took it.
    NotTaken,
    Unknown,
}

pub fn script() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..40)
}

fn step() -> impl Strategy<Value = Step> {
    let key = prop_oneof![
        4 => Just(Key::Fresh),
        1 => Just(Key::None),
        1 => any::<usize>().prop_map(Key::Reused),
    ];
    prop_oneof![
        8 => (key, prop::collection::vec(event(), 0..=3))
            .prop_map(|(key, events)| Step::Deliver { key, events }),
        1 => any::<usize>().prop_map(|nth| Step::Retry { nth }),
        2 => (any::<usize>(), any::<bool>())
            .prop_map(|(nth, keyed)| Step::Redeliver { nth, keyed }),
        2 => send().prop_map(Step::BeginSend),
        2 => (any::<usize>(), result()).prop_map(|(nth, result)| Step::FinishSend { nth, result }),
        1 => any::<usize>().prop_map(|nth| Step::ReleaseSend { nth }),
        1 => Just(Step::SettleAbandoned),
        1 => Just(Step::PruneAll),
    ]
}

fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![1 => Just(0), 4 => 100..110i64]
}

fn event() -> impl Strategy<Value = EventSpec> {
    let received = (
        0..WAMIDS.len(),
        0..CONVERSATIONS.len(),
        0..2usize,
        0..2usize,
        any::<bool>(),
        prop::option::weighted(0.2, 0..WAMIDS.len()),
        100..110i64,
    )
        .prop_map(
            |(wamid, conversation, contact, text, direction_unknown, reply_to, timestamp)| {
                EventSpec::Received {
                    wamid,
                    conversation,
                    contact,
                    text,
                    direction_unknown,
                    reply_to,
                    timestamp,
                }
            },
        );
    let other = (0..WAMIDS.len(), 0..CONVERSATIONS.len()).prop_map(|(wamid, conversation)| {
        EventSpec::OtherKind {
            wamid,
            conversation,
        }
    });
    let conversation =
        (any::<bool>(), 0..CONVERSATIONS.len() - 1).prop_map(|(ended, conversation)| {
            EventSpec::Conversation {
                ended,
                conversation,
            }
        });
    prop_oneof![
        3 => received,
        5 => status().prop_map(EventSpec::Status),
        1 => other,
        1 => conversation,
    ]
}

fn reported_status() -> impl Strategy<Value = MessageStatus> {
    select(vec![
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Failed,
    ])
}

fn status() -> impl Strategy<Value = StatusSpec> {
    (
        (0..WAMIDS.len(), reported_status(), timestamp()),
        prop::collection::vec((reported_status(), timestamp(), any::<bool>()), 0..=2),
        select(vec![
            Direction::Outbound,
            Direction::Outbound,
            Direction::Unknown,
            Direction::Inbound,
        ]),
        (
            0..CONVERSATIONS.len(),
            prop::bool::weighted(0.8),
            0..CONTACTS.len(),
            0..TEXTS.len(),
        ),
    )
        .prop_map(
            |(
                (wamid, status, timestamp),
                reported,
                direction,
                (conversation, phone, contact, text),
            )| {
                StatusSpec {
                    wamid,
                    status,
                    timestamp,
                    reported,
                    direction,
                    conversation,
                    phone,
                    contact,
                    text,
                }
            },
        )
}

fn send() -> impl Strategy<Value = SendSpec> {
    (
        prop::option::weighted(0.8, 0..IDEMPOTENCY_KEYS.len()),
        0..2usize,
        0..2usize,
        0..CONVERSATIONS.len(),
        0..2usize,
    )
        .prop_map(|(key, fingerprint, contact, conversation, text)| SendSpec {
            key,
            fingerprint,
            contact,
            conversation,
            text,
        })
}

fn result() -> impl Strategy<Value = ResultSpec> {
    prop_oneof![
        3 => (0..WAMIDS.len()).prop_map(|wamid| ResultSpec::Sent { wamid }),
        1 => Just(ResultSpec::Failed),
        1 => Just(ResultSpec::NotTaken),
        1 => Just(ResultSpec::Unknown),
    ]
}

/// Meta's error for a failure.
pub fn meta_error() -> MetaError {
    MetaError {
        code: 131047,
        title: "Re-engagement message".into(),
        message: "More than 24 hours have passed since the recipient last replied".into(),
        details: String::new(),
    }
}

impl EventSpec {
    /// The event as the adapter would have parsed it.
    pub fn event(&self) -> NewEvent {
        match self {
            EventSpec::Received {
                wamid,
                conversation,
                contact,
                text,
                direction_unknown,
                reply_to,
                timestamp,
            } => {
                let (wamid, text) = (WAMIDS[*wamid], TEXTS[*text]);
                NewEvent {
                    content: None,
                    event_type: EventType::MessageReceived,
                    message_id: Wamid::parse(wamid),
                    conversation_id: ConversationId::parse(CONVERSATIONS[*conversation]),
                    phone_number_id: PHONE_NUMBER_ID.into(),
                    contact_phone: CONTACTS[*contact].into(),
                    direction: if *direction_unknown {
                        Direction::Unknown
                    } else {
                        Direction::Inbound
                    },
                    message_type: "text".into(),
                    text: text.into(),
                    reply_to_message_id: reply_to.and_then(|r| Wamid::parse(WAMIDS[r])),
                    statuses: Vec::new(),
                    timestamp: *timestamp,
                    payload_json: format!(
                        r#"{{"message":{{"id":"{wamid}","timestamp":"{timestamp}","text":{{"body":"{text}"}}}}}}"#
                    ),
                }
            }
            EventSpec::Status(spec) => spec.event(),
            EventSpec::OtherKind {
                wamid,
                conversation,
            } => {
                let outbound = wamid % 2 == 1;
                let wamid = WAMIDS[*wamid];
                NewEvent {
                    event_type: EventType::parse("whatsapp.message.edited"),
                    message_id: Wamid::parse(wamid),
                    conversation_id: ConversationId::parse(CONVERSATIONS[*conversation]),
                    phone_number_id: PHONE_NUMBER_ID.into(),
                    contact_phone: CONTACT.into(),
                    direction: if outbound {
                        Direction::Outbound
                    } else {
                        Direction::Unknown
                    },
                    payload_json: format!(r#"{{"message":{{"id":"{wamid}"}}}}"#),
                    ..NewEvent::default()
                }
            }
            EventSpec::Conversation {
                ended,
                conversation,
            } => {
                let kind = if *ended { "ended" } else { "created" };
                let conversation = CONVERSATIONS[*conversation];
                NewEvent {
                    event_type: EventType::parse(&format!("whatsapp.conversation.{kind}")),
                    conversation_id: ConversationId::parse(conversation),
                    phone_number_id: PHONE_NUMBER_ID.into(),
                    contact_phone: CONTACT.into(),
                    payload_json: format!(r#"{{"conversation":{{"id":"{conversation}"}}}}"#),
                    ..NewEvent::default()
                }
            }
        }
    }
}

impl StatusSpec {
    fn event(&self) -> NewEvent {
        let wamid = WAMIDS[self.wamid];
        let name = self.status.as_str();
        let statuses = self
            .reported
            .iter()
            .map(|&(status, timestamp, errors)| StatusUpdate {
                status,
                timestamp,
                errors: if errors && status == MessageStatus::Failed {
                    vec![meta_error()]
                } else {
                    Vec::new()
                },
            })
            .collect();
        NewEvent {
            content: None,
            event_type: EventType::parse(&format!("whatsapp.message.{name}")),
            message_id: Wamid::parse(wamid),
            conversation_id: ConversationId::parse(CONVERSATIONS[self.conversation]),
            phone_number_id: if self.phone { PHONE_NUMBER_ID } else { "" }.into(),
            contact_phone: CONTACTS[self.contact].into(),
            direction: self.direction,
            message_type: "text".into(),
            text: TEXTS[self.text].into(),
            reply_to_message_id: None,
            statuses,
            timestamp: self.timestamp,
            payload_json: format!(
                r#"{{"message":{{"id":"{wamid}","kapso":{{"status":"{name}"}}}},"t":{}}}"#,
                self.timestamp
            ),
        }
    }
}

impl SendSpec {
    pub fn key(&self) -> Option<&'static str> {
        self.key.map(|k| IDEMPOTENCY_KEYS[k])
    }

    pub fn fingerprint(&self) -> String {
        format!("fp-{}", self.fingerprint)
    }

    pub fn to(&self) -> &'static str {
        CONTACTS[self.contact]
    }

    pub fn conversation(&self) -> &'static str {
        CONVERSATIONS[self.conversation]
    }

    pub fn text(&self) -> &'static str {
        TEXTS[self.text]
    }
}

impl ResultSpec {
    pub fn wamid(&self) -> Option<&'static str> {
        match self {
            ResultSpec::Sent { wamid } => Some(WAMIDS[*wamid]),
            ResultSpec::Failed | ResultSpec::NotTaken | ResultSpec::Unknown => None,
        }
    }
}
