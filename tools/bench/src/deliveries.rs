//! What the load generator sends: the n-th delivery of a run, shaped as Kapso
//! sends it (CONTRACT §3), with its headers' facts and its body.
//!
//! Every delivery has a fresh key and fresh message ids, so none is a duplicate
//! and every event costs a durable write. Keys and ids are random, as Kapso's and
//! WhatsApp's are: ids that only grow would flatter the store, whose unique
//! indexes would then change at their end only.

use std::num::{NonZeroU64, NonZeroUsize};

/// Message types of received messages.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mix {
    Text,
    /// An image with a caption.
    Media,
    /// Text and media, alternating.
    Mixed,
}

/// What a run's deliveries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Traffic {
    /// Received messages only, single or in batches of `--batch`.
    Received,
    /// Conversations: every delivery of received messages is followed by the
    /// `sent`, `delivered` and `read` webhooks of a reply, one delivery each
    /// (Kapso never batches statuses).
    Conversation,
}

/// The statuses a reply goes through, in order: Meta's name and Kapso's event.
const RECEIPTS: [(&str, &str); 3] = [
    ("sent", "whatsapp.message.sent"),
    ("delivered", "whatsapp.message.delivered"),
    ("read", "whatsapp.message.read"),
];

/// Rounds between a reply's receipts (a round is one delivery of received
/// messages and three receipts). On a phone `delivered` and `read` come seconds
/// after `sent`; apart, a message's receipts also land in different commits, as
/// they would, instead of sharing the pages of one.
pub const RECEIPT_LAG_ROUNDS: u64 = 1_000;

/// The time of a run's first message, unix seconds.
const RUN_START: u64 = 1_730_092_800;

/// How a run makes its deliveries.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Events per delivery of received messages: more than 1 sends v2 batches.
    pub batch: NonZeroUsize,
    /// Customers writing in, each in a conversation of their own.
    pub contacts: NonZeroU64,
    pub mix: Mix,
    pub traffic: Traffic,
    /// Keeps the ids of two runs against one store apart.
    pub run_id: u32,
}

/// One delivery, ready to sign and send.
#[derive(Debug)]
pub struct Delivery {
    /// `X-Webhook-Event`.
    pub event_type: &'static str,
    /// `X-Idempotency-Key`.
    pub key: String,
    pub body: String,
    /// Events in `body`.
    pub events: usize,
    /// Sent as a v2 batch (`X-Webhook-Batch: true`).
    pub batch: bool,
}

impl Plan {
    /// The run's `n`-th delivery. The same `n` always gives the same delivery.
    pub fn delivery(&self, n: u64) -> Delivery {
        match self.traffic {
            Traffic::Received => self.received(n),
            Traffic::Conversation => match (n / 4, (n % 4) as usize) {
                (_, 0) => self.received(n),
                (round, slot) => self.receipt(round, slot - 1),
            },
        }
    }

    /// One contact's messages, from a contact picked at random.
    fn received(&self, n: u64) -> Delivery {
        let seed = mix64(self.run_bits() ^ n);
        let contact = Contact::new(seed % self.contacts);
        let batch = self.batch.get();
        let events: Vec<String> = (0..batch as u64)
            .map(|i| {
                let media = match self.mix {
                    Mix::Text => false,
                    Mix::Media => true,
                    Mix::Mixed => (n + i) % 2 == 1,
                };
                let wamid = contact.wamid(mix64(seed ^ i));
                // Each message a time of its own, later than the ones before,
                // as a conversation's messages have: one time for all would
                // spare the store rewriting its conversation's last inbound time.
                let sent_at = RUN_START + n * batch as u64 + i;
                received_json(&contact, &wamid, media, sent_at)
            })
            .collect();
        let body = if batch == 1 {
            events.into_iter().next().unwrap_or_default()
        } else {
            format!(
                r#"{{"type":"whatsapp.message.received","batch":true,"data":[{}],"batch_info":{{"size":{batch},"window_ms":5000,"conversation_id":"{}"}}}}"#,
                events.join(","),
                contact.conversation
            )
        };
        Delivery {
            event_type: "whatsapp.message.received",
            key: uuid_shaped(seed),
            body,
            events: batch,
            batch: batch > 1,
        }
    }

    /// Receipt `step` (an index into [`RECEIPTS`]) of the reply whose `sent`
    /// went out `step` × [`RECEIPT_LAG_ROUNDS`] rounds before `round`. The first
    /// rounds' later receipts name replies that never had the earlier ones: a
    /// status before anything else is known of its message, which Kapso also sends.
    fn receipt(&self, round: u64, step: usize) -> Delivery {
        let reply = round.wrapping_sub(step as u64 * RECEIPT_LAG_ROUNDS);
        // Received messages' seeds mix `n`; replies' mix a different pattern of
        // bits, so the two never share an id.
        let seed = mix64(self.run_bits() ^ reply ^ 0xA5A5_0000_0000_0000);
        let contact = Contact::new(seed % self.contacts);
        let wamid = contact.wamid(mix64(seed));
        Delivery {
            event_type: RECEIPTS[step].1,
            key: uuid_shaped(mix64(seed ^ (step as u64 + 1))),
            body: receipt_json(&contact, &wamid, step),
            events: 1,
            batch: false,
        }
    }

    fn run_bits(&self) -> u64 {
        u64::from(self.run_id) << 40
    }
}

/// One of the customers writing in.
struct Contact {
    phone: String,
    conversation: String,
}

impl Contact {
    fn new(index: u64) -> Self {
        Self {
            phone: format!("1650{index:07}"),
            conversation: format!("conv_lg{index:07}"),
        }
    }

    /// A message id shaped like WhatsApp's: a prefix shared by the contact's
    /// messages, then random characters.
    fn wamid(&self, random: u64) -> String {
        format!("wamid.HBgL{}FQIAEhgU{random:016X}", self.phone)
    }

    fn conversation_json(&self) -> String {
        let Self {
            phone,
            conversation,
        } = self;
        format!(
            r#"{{"id":"{conversation}","phone_number":"+{phone}","status":"active","last_active_at":"2025-10-28T14:25:01Z","created_at":"2025-10-28T13:40:00Z","updated_at":"2025-10-28T14:25:01Z","metadata":{{}},"phone_number_id":"123456789012345","kapso":{{"contact_name":"John Doe","messages_count":1}}}}"#
        )
    }
}

/// A received message shaped like Kapso's v2 events (about 1 KB, as the fixtures).
fn received_json(contact: &Contact, id: &str, media: bool, timestamp: u64) -> String {
    let content = if media {
        r#""type":"image","image":{"caption":"Foto del pedido","id":"media_lg","mime_type":"image/jpeg"},"kapso":{"direction":"inbound","status":"received","processing_status":"pending","origin":"cloud_api","has_media":true,"content":"Foto del pedido Image attached (photo.jpg) [Size: 200 KB | Type: image/jpeg]","media_url":"https://api.kapso.ai/media/lg"}"#
    } else {
        r#""type":"text","text":{"body":"Hola, necesito ayuda con mi pedido numero 12345, no ha llegado todavia"},"kapso":{"direction":"inbound","status":"received","processing_status":"pending","origin":"cloud_api","has_media":false,"content":"Hola, necesito ayuda con mi pedido numero 12345, no ha llegado todavia"}"#
    };
    format!(
        r#"{{"message":{{"id":"{id}","timestamp":"{timestamp}","from":"{}",{content}}},"conversation":{},"is_new_conversation":false,"phone_number_id":"123456789012345"}}"#,
        contact.phone,
        contact.conversation_json()
    )
}

/// A status webhook of a reply: the message with its status history up to
/// `RECEIPTS[step]`, as the `sent` and `delivered` fixtures.
fn receipt_json(contact: &Contact, id: &str, step: usize) -> String {
    let history: Vec<String> = (0..=step)
        .map(|i| {
            format!(
                r#"{{"id":"{id}","status":"{}","timestamp":"{}","recipient_id":"{}"}}"#,
                RECEIPTS[i].0,
                RUN_START + 60 + 28 * i as u64,
                contact.phone
            )
        })
        .collect();
    format!(
        r#"{{"message":{{"id":"{id}","timestamp":"1730092860","type":"text","text":{{"body":"Gracias, ya estamos revisando su pedido"}},"kapso":{{"direction":"outbound","status":"{}","processing_status":"completed","origin":"cloud_api","has_media":false,"statuses":[{}]}}}},"conversation":{},"is_new_conversation":false,"phone_number_id":"123456789012345"}}"#,
        RECEIPTS[step].0,
        history.join(","),
        contact.conversation_json()
    )
}

/// A delivery key shaped like Kapso's (a random UUID).
fn uuid_shaped(seed: u64) -> String {
    let (high, low) = (seed, mix64(!seed));
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        low >> 52,
        low & 0xffff_ffff_ffff
    )
}

/// splitmix64: spreads consecutive numbers over the whole range, repeatably.
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use kapso_adapter::webhook::{Hints, parse};
    use kapso_gateway_proto::v1::{Direction, InboundEvent, MessageStatus};

    use super::*;

    fn plan(traffic: Traffic, batch: usize) -> Plan {
        Plan {
            batch: NonZeroUsize::new(batch).expect("a batch of one or more"),
            contacts: NonZeroU64::new(50).expect("not zero"),
            mix: Mix::Mixed,
            traffic,
            run_id: 7,
        }
    }

    /// The delivery as the adapter reads it.
    fn events_of(delivery: &Delivery) -> Vec<InboundEvent> {
        let hints = Hints {
            event_type: Some(delivery.event_type),
            batch: delivery.batch,
        };
        let parsed = parse(delivery.body.as_bytes(), hints).expect("the adapter parses it");
        assert_eq!(parsed.batch, delivery.batch);
        assert_eq!(parsed.events.len(), delivery.events);
        parsed.events
    }

    #[test]
    fn received_deliveries_are_batches_of_one_contact_with_fresh_keys_and_ids() {
        let plan = plan(Traffic::Received, 10);
        let (mut keys, mut ids) = (HashSet::new(), HashSet::new());
        let mut last_time = 0;
        for n in 0..200 {
            let delivery = plan.delivery(n);
            assert!(keys.insert(delivery.key.clone()), "key of {n} repeated");
            let events = events_of(&delivery);
            assert_eq!(events.len(), 10);
            for event in &events {
                assert_eq!(event.event_type, "whatsapp.message.received");
                assert_eq!(event.direction(), Direction::Inbound);
                assert_eq!(event.conversation_id, events[0].conversation_id);
                assert!(ids.insert(event.message_id.clone()), "id repeated");
                assert!(event.timestamp > last_time, "each message later");
                last_time = event.timestamp;
            }
        }
    }

    #[test]
    fn a_conversation_round_is_one_received_delivery_and_three_receipts() {
        let plan = plan(Traffic::Conversation, 1);
        let kinds: Vec<&str> = (0..8).map(|n| plan.delivery(n).event_type).collect();
        let round = [
            "whatsapp.message.received",
            "whatsapp.message.sent",
            "whatsapp.message.delivered",
            "whatsapp.message.read",
        ];
        assert_eq!(kinds, [round, round].concat());
    }

    #[test]
    fn a_reply_gets_sent_delivered_and_read_a_lag_apart_each_with_its_history() {
        let plan = plan(Traffic::Conversation, 1);
        let round = 3;
        // The receipts of the reply sent in `round`, in the rounds they come in.
        let receipts: Vec<InboundEvent> = (0..3)
            .map(|step| {
                let n = 4 * (round + step * RECEIPT_LAG_ROUNDS) + 1 + step;
                let mut events = events_of(&plan.delivery(n));
                events.pop().expect("one event")
            })
            .collect();
        let expected = [
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
        ];
        for (step, event) in receipts.iter().enumerate() {
            assert_eq!(event.message_id, receipts[0].message_id);
            assert_eq!(event.direction(), Direction::Outbound);
            let history: Vec<MessageStatus> = event.statuses.iter().map(|s| s.status()).collect();
            assert_eq!(history, expected[..=step]);
        }
        // Every receipt is its own delivery: Kapso de-duplicates by key per delivery.
        let keys: HashSet<String> = (1..4).map(|n| plan.delivery(n).key).collect();
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn replies_and_received_messages_never_share_an_id() {
        let plan = plan(Traffic::Conversation, 1);
        let mut ids = HashSet::new();
        for n in 0..4_000 {
            let delivery = plan.delivery(n);
            if delivery.event_type == "whatsapp.message.sent"
                || delivery.event_type == "whatsapp.message.received"
            {
                let id = events_of(&delivery).remove(0).message_id;
                assert!(ids.insert(id), "delivery {n} reuses an id");
            }
        }
    }
}
