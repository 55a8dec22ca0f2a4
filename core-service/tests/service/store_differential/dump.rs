//! What a store holds, read through the `Store` trait alone and normalised so
//! that two backends given the same script compare equal: times taken from
//! the wall clock (a time the event did not give, a send's request time, when
//! the store received a delivery) differ between two runs and are masked.
//! Nothing else is.

use std::sync::Arc;

use kapso_core::model::{Conversation, EventFilter, Message, SendClaim, StoredEvent};
use kapso_core::store::{Store, StoreError};

use super::script::{IDEMPOTENCY_KEYS, contacts, conversations, wamids};
use crate::store_suite::{PHONE_NUMBER_ID, any_id};

/// Any time from this on (Unix seconds) came from the clock: scripts give
/// events times around 100.
const CLOCK_TIMES_FROM: i64 = 1_000_000_000;
/// What a clock time reads as once masked.
const CLOCK: i64 = -1;

/// Small, so that listing a conversation crosses pages.
const PAGE: usize = 3;

/// A store's state, normalised.
#[derive(Debug, PartialEq)]
pub struct Dump {
    /// Every message by each name it may be looked up by.
    pub lookups: Vec<(String, Option<Message>)>,
    /// Each conversation and its messages, oldest first.
    pub conversations: Vec<(Option<Conversation>, Vec<Message>)>,
    /// The last inbound time of each contact of the business number.
    pub last_inbound: Vec<(String, Option<i64>)>,
    pub log: Vec<StoredEvent>,
    pub committed: u64,
}

/// Reads everything the script's universe can have written; `gateway_ids`
/// are the sends begun.
pub async fn dump(store: &Arc<dyn Store>, gateway_ids: &[String]) -> Result<Dump, StoreError> {
    let names = wamids()
        .chain(IDEMPOTENCY_KEYS)
        .map(str::to_owned)
        .chain(gateway_ids.iter().cloned());
    let mut lookups = Vec::new();
    for name in names {
        let message = store.message(&any_id(&name)).await?.map(message);
        lookups.push((name, message));
    }
    let mut listed = Vec::new();
    for id in conversations() {
        let conversation = store.conversation(id).await?.map(|mut c| {
            c.last_inbound_at = c.last_inbound_at.map(time);
            c
        });
        listed.push((conversation, conversation_messages(store, id).await?));
    }
    let mut last_inbound = Vec::new();
    for contact in contacts() {
        let at = store.last_inbound_at(PHONE_NUMBER_ID, contact).await?;
        last_inbound.push((contact.to_owned(), at.map(time)));
    }
    let log = store
        .events_after(0, &EventFilter::default(), 100_000)
        .await?
        .into_iter()
        .map(|mut stored| {
            stored.received_at_ms = 0;
            stored
        })
        .collect();
    Ok(Dump {
        lookups,
        conversations: listed,
        last_inbound,
        log,
        committed: *store.committed().borrow(),
    })
}

async fn conversation_messages(
    store: &Arc<dyn Store>,
    id: &str,
) -> Result<Vec<Message>, StoreError> {
    let mut messages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .conversation_messages(id, PAGE, cursor.as_deref())
            .await?;
        messages.extend(page.messages.into_iter().map(message));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(messages),
        }
    }
}

/// `message` with its clock times masked, its history in the order the
/// stores give (rank, then time) once they are.
pub fn message(mut message: Message) -> Message {
    message.timestamp = time(message.timestamp);
    for record in &mut message.status_history {
        record.timestamp = time(record.timestamp);
    }
    message
        .status_history
        .sort_by_key(|h| (h.status.rank(), h.timestamp, h.status.as_str()));
    message
}

pub fn claim(claim: SendClaim) -> SendClaim {
    match claim {
        SendClaim::Started(m) => SendClaim::Started(message(m)),
        SendClaim::Existing(m) => SendClaim::Existing(message(m)),
        SendClaim::KeyReused => SendClaim::KeyReused,
    }
}

fn time(at: i64) -> i64 {
    if at >= CLOCK_TIMES_FROM { CLOCK } else { at }
}
