//! Cases for message state: statuses, history, inbound messages, conversations.

use std::sync::Arc;

use kapso_core::model::{ConversationId, Direction, NewEvent, StatusRecord};
use kapso_core::status::MessageStatus;
use kapso_core::store::Store;

use super::fixtures::*;

pub async fn status_never_moves_backwards(store: Arc<dyn Store>) {
    ingest_each(
        &store,
        [
            status("wamid.S", "sent", 200),
            status("wamid.S", "read", 220),
        ],
    )
    .await;
    ingest_each(&store, [status("wamid.S", "delivered", 210)]).await;
    let message = store.message(&any_id("wamid.S")).await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Read);
    assert_eq!(message.id, "wamid.S");
}

pub async fn failed_is_terminal_and_keeps_meta_errors(store: Arc<dyn Store>) {
    let mut failed = status("wamid.F", "failed", 205);
    failed.statuses[0].errors = vec![meta_error()];
    ingest_each(&store, [status("wamid.F", "sent", 200), failed]).await;
    ingest_each(
        &store,
        [
            status("wamid.F", "delivered", 210),
            status("wamid.F", "read", 220),
        ],
    )
    .await;
    let message = store.message(&any_id("wamid.F")).await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Failed);
    assert_eq!(message.errors, vec![meta_error()]);
}

pub async fn status_history_keeps_every_status_once(store: Arc<dyn Store>) {
    ingest_each(
        &store,
        [
            status("wamid.H", "sent", 200),
            status("wamid.H", "delivered", 210),
        ],
    )
    .await;
    // Kapso's `statuses[]` repeats earlier statuses on later events.
    let mut read = status("wamid.H", "read", 230);
    read.statuses
        .insert(0, status_update(MessageStatus::Delivered, 211));
    read.statuses
        .insert(0, status_update(MessageStatus::Sent, 199));
    ingest_each(&store, [read]).await;
    let message = store.message(&any_id("wamid.H")).await.unwrap().unwrap();
    assert_eq!(
        message.status_history,
        [
            record(MessageStatus::Sent, 199),
            record(MessageStatus::Delivered, 210),
            record(MessageStatus::Read, 230),
        ],
        "each status once, with the earliest time reported"
    );
}

pub async fn out_of_order_statuses_converge(store: Arc<dyn Store>) {
    let orders = [
        ["sent", "delivered", "read"],
        ["sent", "read", "delivered"],
        ["delivered", "sent", "read"],
        ["delivered", "read", "sent"],
        ["read", "sent", "delivered"],
        ["read", "delivered", "sent"],
    ];
    for (n, order) in orders.iter().enumerate() {
        let wamid = format!("wamid.order{n}");
        for name in order {
            let at = match *name {
                "sent" => 200,
                "delivered" => 210,
                _ => 220,
            };
            ingest_each(&store, [status(&wamid, name, at)]).await;
        }
        let message = store.message(&any_id(&wamid)).await.unwrap().unwrap();
        assert_eq!(message.status, MessageStatus::Read, "order {order:?}");
        let history: Vec<_> = message.status_history.iter().map(|h| h.status).collect();
        assert_eq!(
            history,
            [
                MessageStatus::Sent,
                MessageStatus::Delivered,
                MessageStatus::Read
            ],
            "order {order:?}"
        );
    }
}

pub async fn inbound_message_is_received_and_listed_in_conversation(store: Arc<dyn Store>) {
    for i in 0..5 {
        let event = received(
            &format!("wamid.in{i}"),
            "conv-1",
            &format!("message {i}"),
            100 + i,
        );
        ingest_each(&store, [event]).await;
    }
    ingest_each(
        &store,
        [received("wamid.elsewhere", "conv-2", "other", 100)],
    )
    .await;

    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .conversation_messages("conv-1", 2, cursor.as_deref())
            .await
            .unwrap();
        pages.push(
            page.messages
                .iter()
                .map(|m| m.text.clone())
                .collect::<Vec<_>>(),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        pages,
        [
            vec!["message 0", "message 1"],
            vec!["message 2", "message 3"],
            vec!["message 4"],
        ]
    );
    let message = store.message(&any_id("wamid.in3")).await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Received);
    assert_eq!(message.direction, Direction::Inbound);
    assert_eq!(message.contact_phone, CONTACT);
    assert_eq!(message.timestamp, 103);
    assert_eq!(
        message.status_history,
        [record(MessageStatus::Received, 103)]
    );
}

pub async fn conversation_is_remembered_with_last_inbound(store: Arc<dyn Store>) {
    ingest_each(&store, [conversation_created("conv-1")]).await;
    let fresh = store.conversation("conv-1").await.unwrap().unwrap();
    assert_eq!(
        (fresh.phone_number_id.as_str(), fresh.last_inbound_at),
        (PHONE_NUMBER_ID, None)
    );

    ingest_each(&store, [received("wamid.1", "conv-1", "hi", 1_000)]).await;
    // A later outbound status and an older inbound message arriving late leave it alone.
    ingest_each(&store, [status("wamid.out", "delivered", 2_000)]).await;
    ingest_each(&store, [received("wamid.0", "conv-1", "earlier", 900)]).await;
    let conversation = store.conversation("conv-1").await.unwrap().unwrap();
    assert_eq!(conversation.contact_phone, CONTACT);
    assert_eq!(conversation.last_inbound_at, Some(1_000));

    ingest_each(&store, [received("wamid.2", "conv-1", "later", 1_500)]).await;
    assert_eq!(
        store
            .last_inbound_at(PHONE_NUMBER_ID, CONTACT)
            .await
            .unwrap(),
        Some(1_500)
    );
    assert_eq!(
        store
            .last_inbound_at(PHONE_NUMBER_ID, "15550000000")
            .await
            .unwrap(),
        None
    );
    assert!(store.conversation("conv-unknown").await.unwrap().is_none());
}

/// A contact's conversations are found by the contact alone, or on one
/// business number; the limit caps how many come back, in id order.
pub async fn a_contacts_conversations_are_found_on_any_number_or_one(store: Arc<dyn Store>) {
    let ids = |found: Vec<kapso_core::model::Conversation>| -> Vec<String> {
        found.into_iter().map(|c| c.id.into()).collect()
    };
    assert!(
        store
            .contact_conversations(CONTACT, None, 2)
            .await
            .unwrap()
            .is_empty()
    );
    ingest_each(&store, [received("wamid.1", "conv-b", "hola", 1_000)]).await;
    let found = store.contact_conversations(CONTACT, None, 2).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].phone_number_id, PHONE_NUMBER_ID);
    assert_eq!(found[0].contact_phone, CONTACT);
    assert_eq!(found[0].last_inbound_at, Some(1_000));

    // The same contact writes to another business number, and to the first again later.
    let mut elsewhere = received("wamid.2", "conv-a", "hola", 1_100);
    elsewhere.phone_number_id = "other-number".into();
    let again = received("wamid.3", "conv-c", "hola", 1_200);
    ingest_each(&store, [elsewhere, again]).await;
    assert_eq!(
        ids(store
            .contact_conversations(CONTACT, None, 10)
            .await
            .unwrap()),
        ["conv-a", "conv-b", "conv-c"]
    );
    assert_eq!(
        ids(store.contact_conversations(CONTACT, None, 2).await.unwrap()),
        ["conv-a", "conv-b"]
    );
    assert_eq!(
        ids(store
            .contact_conversations(CONTACT, Some("other-number"), 2)
            .await
            .unwrap()),
        ["conv-a"]
    );
    assert_eq!(
        ids(store
            .contact_conversations(CONTACT, Some(PHONE_NUMBER_ID), 2)
            .await
            .unwrap()),
        ["conv-b", "conv-c"]
    );
    assert!(
        store
            .contact_conversations("15550000000", None, 2)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A conversation first known without its contact learns it from a later
/// event, even one that leaves the last inbound time alone (a status).
pub async fn a_conversation_learns_its_contact_from_a_later_status(store: Arc<dyn Store>) {
    let mut created = conversation_created("conv-1");
    created.contact_phone.clear();
    ingest_each(&store, [created]).await;
    ingest_each(&store, [status("wamid.out", "sent", 100)]).await;
    let conversation = store.conversation("conv-1").await.unwrap().unwrap();
    assert_eq!(
        (
            conversation.contact_phone.as_str(),
            conversation.last_inbound_at
        ),
        (CONTACT, None)
    );
}

/// One delivery with several events per conversation leaves each conversation as
/// those events would one by one: identity from the first that carries it, the
/// latest inbound time whatever the order inside the batch.
pub async fn a_batch_updates_each_conversation_as_its_events_would(store: Arc<dyn Store>) {
    let mut first = received("wamid.b1", "conv-b", "first", 1_000);
    first.phone_number_id.clear();
    first.contact_phone.clear();
    let events = vec![
        first,
        received("wamid.b2", "conv-b", "latest", 1_200),
        received("wamid.c1", "conv-c", "elsewhere", 900),
        received("wamid.b3", "conv-b", "late arrival", 1_100),
    ];
    store
        .ingest(delivery(Some("batch-1"), events))
        .await
        .unwrap();
    let b = store.conversation("conv-b").await.unwrap().unwrap();
    assert_eq!(
        (b.phone_number_id.as_str(), b.contact_phone.as_str()),
        (PHONE_NUMBER_ID, CONTACT)
    );
    assert_eq!(b.last_inbound_at, Some(1_200));
    let c = store.conversation("conv-c").await.unwrap().unwrap();
    assert_eq!(c.last_inbound_at, Some(900));
}

/// A message first known from a status event and then received inbound keeps
/// its row: the inbound event fills in what the status lacked and adds `received`.
pub async fn an_inbound_message_completes_a_row_a_status_created(store: Arc<dyn Store>) {
    ingest_each(
        &store,
        [without_conversation(status("wamid.seen", "delivered", 500))],
    )
    .await;
    ingest_each(&store, [received("wamid.seen", "conv-1", "hola", 400)]).await;
    let message = store.message(&any_id("wamid.seen")).await.unwrap().unwrap();
    assert_eq!(message.text, "hola");
    assert!(
        message
            .status_history
            .contains(&record(MessageStatus::Received, 400)),
        "history {:?}",
        message.status_history
    );
    assert_listed_in_its_conversation(&store, "wamid.seen").await;
}

/// A status that names no conversation (as Meta-shaped webhooks may) creates the
/// message's row; a later status that names it fills it in, and the message is
/// then listed in its conversation.
pub async fn a_later_status_completes_a_row_a_status_created(store: Arc<dyn Store>) {
    ingest_each(
        &store,
        [without_conversation(status("wamid.bare", "sent", 500))],
    )
    .await;
    let message = store.message(&any_id("wamid.bare")).await.unwrap().unwrap();
    assert_eq!(message.conversation_id, None);

    ingest_each(&store, [status("wamid.bare", "delivered", 510)]).await;
    let message = store.message(&any_id("wamid.bare")).await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Delivered);
    assert_listed_in_its_conversation(&store, "wamid.bare").await;

    // What a row has is kept: a later status naming another conversation changes nothing.
    let mut elsewhere = status("wamid.bare", "read", 520);
    elsewhere.conversation_id = ConversationId::parse("conv-2");
    ingest_each(&store, [elsewhere]).await;
    let message = store.message(&any_id("wamid.bare")).await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Read);
    assert_eq!(message.conversation_id, ConversationId::parse("conv-1"));
}

fn without_conversation(mut event: NewEvent) -> NewEvent {
    event.conversation_id = None;
    event.phone_number_id.clear();
    event.contact_phone.clear();
    event
}

async fn assert_listed_in_its_conversation(store: &Arc<dyn Store>, wamid: &str) {
    let message = store.message(&any_id(wamid)).await.unwrap().unwrap();
    assert_eq!(
        (
            message.conversation_id.as_ref().map(ConversationId::as_str),
            message.phone_number_id.as_str()
        ),
        (Some("conv-1"), PHONE_NUMBER_ID)
    );
    assert_eq!(message.contact_phone, CONTACT);
    let page = store
        .conversation_messages("conv-1", 10, None)
        .await
        .unwrap();
    let listed: Vec<&str> = page.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(listed, [wamid]);
}

fn record(status: MessageStatus, timestamp: i64) -> StatusRecord {
    StatusRecord { status, timestamp }
}

pub async fn concurrent_statuses_of_new_messages_make_one_row_each(store: Arc<dyn Store>) {
    const MESSAGES: usize = 20;
    let names = ["sent", "delivered", "read"];
    let tasks: Vec<_> = (0..MESSAGES)
        .flat_map(|i| names.iter().enumerate().map(move |(n, name)| (i, n, *name)))
        .map(|(i, n, name)| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let event = status(&format!("wamid.c{i}"), name, 200 + n as i64);
                only_sequence(
                    store
                        .ingest(delivery(Some(&format!("c{i}-{name}")), vec![event]))
                        .await,
                )
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Whichever status of a message came first created its row; the others,
    // in the same commit or not, found it.
    for i in 0..MESSAGES {
        let message = store
            .message(&any_id(&format!("wamid.c{i}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(message.status, MessageStatus::Read, "wamid.c{i}");
        assert_eq!(
            message.status_history,
            [
                record(MessageStatus::Sent, 200),
                record(MessageStatus::Delivered, 201),
                record(MessageStatus::Read, 202),
            ]
        );
    }
    let page = store
        .conversation_messages("conv-1", 100, None)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), MESSAGES, "one row per message");
}
