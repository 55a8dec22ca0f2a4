//! The backend-agnostic `Store` suite: every backend must pass every case.
//!
//! Each case takes a fresh, empty store (except [`survives_reopen`], which
//! takes a way to open the same database again).

mod fixtures;
mod outbound;

use std::collections::HashSet;
use std::sync::Arc;

use kapso_core::model::{Claim, Delivery, EventFilter, Receipt, StatusRecord};
use kapso_core::status::MessageStatus;
use kapso_core::store::Store;

pub use fixtures::*;
pub use outbound::*;

pub async fn duplicate_delivery_is_stored_once(store: Arc<dyn Store>) {
    let delivery = delivery(
        Some("key-1"),
        vec![received("wamid.A", "conv-1", "hi", 100)],
    );
    let first = store.ingest(delivery.clone()).await.unwrap();
    assert!(matches!(first, Receipt::Stored(ref c) if matches!(c[..], [Claim::New { .. }])));
    assert_eq!(
        store.ingest(delivery).await.unwrap(),
        Receipt::DuplicateDelivery
    );
    assert_eq!(all_events(&store).await.len(), 1);
}

pub async fn redelivery_under_new_key_is_stored_once(store: Arc<dyn Store>) {
    let a = received("wamid.A", "conv-1", "one", 100);
    let b = received("wamid.B", "conv-1", "two", 101);
    let batch = delivery(Some("batch-key"), vec![a.clone(), b.clone()]);
    let Receipt::Stored(claims) = store.ingest(batch).await.unwrap() else {
        panic!("a new delivery is stored");
    };
    assert!(claims.iter().all(|c| matches!(c, Claim::New { .. })));
    // Kapso's retries ran out: the batch comes again item by item under new keys.
    for (key, event) in [("retry-a", a), ("retry-b", b)] {
        let receipt = store
            .ingest(delivery(Some(key), vec![event]))
            .await
            .unwrap();
        assert_eq!(receipt, Receipt::Stored(vec![Claim::Duplicate]));
    }
    // Without any delivery key the event itself still de-duplicates.
    let read = status("wamid.B", "read", 130);
    let first = store
        .ingest(delivery(None, vec![read.clone()]))
        .await
        .unwrap();
    assert!(matches!(first, Receipt::Stored(ref c) if matches!(c[..], [Claim::New { .. }])));
    let again = store.ingest(delivery(None, vec![read])).await.unwrap();
    assert_eq!(again, Receipt::Stored(vec![Claim::Duplicate]));
    assert_eq!(all_events(&store).await.len(), 3);
}

pub async fn concurrent_identical_deliveries_store_once(store: Arc<dyn Store>) {
    let same_key = delivery(
        Some("key-1"),
        vec![received("wamid.A", "conv-1", "hi", 100)],
    );
    let same_event = received("wamid.B", "conv-1", "again", 101);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (store, same_key) = (Arc::clone(&store), same_key.clone());
        let other_key = delivery(Some(&format!("other-{i}")), vec![same_event.clone()]);
        tasks.push(tokio::spawn(async move {
            let a = store.ingest(same_key).await.unwrap();
            let b = store.ingest(other_key).await.unwrap();
            (a, b)
        }));
    }
    let (mut stored, mut new_events) = (0, 0);
    for task in tasks {
        let (a, b) = task.await.unwrap();
        if a != Receipt::DuplicateDelivery {
            stored += 1;
        }
        if b != Receipt::Stored(vec![Claim::Duplicate]) {
            new_events += 1;
        }
    }
    assert_eq!((stored, new_events), (1, 1));
    assert_eq!(all_events(&store).await.len(), 2);
}

pub async fn events_get_increasing_sequences_and_replay_in_order(store: Arc<dyn Store>) {
    let mut failed = status("wamid.F", "failed", 205);
    failed.statuses[0].errors = vec![meta_error()];
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(received(
            &format!("wamid.{i}"),
            "conv-1",
            &format!("text {i}"),
            100 + i,
        ));
    }
    sent.push(failed);
    let mut sequences = Vec::new();
    for (i, event) in sent.iter().enumerate() {
        let key = format!("key-{i}");
        sequences.push(only_sequence(
            store
                .ingest(delivery(Some(&key), vec![event.clone()]))
                .await,
        ));
    }
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");

    let replay = all_events(&store).await;
    let replayed: Vec<_> = replay.iter().map(|e| e.event.clone()).collect();
    assert_eq!(replayed, sent, "events come back exactly as stored");
    assert_eq!(
        replay.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        sequences
    );
    assert!(replay.iter().all(|e| e.received_at_ms > 0));

    let page = store
        .events_after(sequences[4], &EventFilter::default(), 3)
        .await
        .unwrap();
    let got: Vec<u64> = page.iter().map(|e| e.sequence).collect();
    assert_eq!(got, sequences[5..8]);
}

pub async fn events_after_filters_by_type_conversation_and_phone(store: Arc<dyn Store>) {
    let mut other_phone = received("wamid.3", "conv-2", "x", 103);
    other_phone.phone_number_id = "109876543210987".into();
    let events = vec![
        received("wamid.1", "conv-1", "a", 101),
        received("wamid.2", "conv-2", "b", 102),
        other_phone,
        status("wamid.1", "delivered", 104),
        conversation_created("conv-3"),
    ];
    store.ingest(delivery(Some("k"), events)).await.unwrap();
    let matching = |filter: EventFilter| {
        let store = Arc::clone(&store);
        async move {
            let events = store.events_after(0, &filter, 100).await.unwrap();
            events
                .into_iter()
                .map(|e| e.event.message_id)
                .collect::<Vec<_>>()
        }
    };
    let by_type = EventFilter {
        event_types: vec![
            "whatsapp.message.delivered".into(),
            "whatsapp.conversation.created".into(),
        ],
        ..Default::default()
    };
    assert_eq!(matching(by_type).await, ["wamid.1", ""]);
    let by_conversation = EventFilter {
        conversation_id: "conv-2".into(),
        ..Default::default()
    };
    assert_eq!(matching(by_conversation).await, ["wamid.2", "wamid.3"]);
    let by_phone = EventFilter {
        phone_number_id: "109876543210987".into(),
        ..Default::default()
    };
    assert_eq!(matching(by_phone).await, ["wamid.3"]);
    let combined = EventFilter {
        event_types: vec!["whatsapp.message.received".into()],
        conversation_id: "conv-2".into(),
        phone_number_id: PHONE_NUMBER_ID.into(),
    };
    assert_eq!(matching(combined).await, ["wamid.2"]);
    assert_eq!(matching(EventFilter::default()).await.len(), 5);
}

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
    let message = store.message("wamid.S").await.unwrap().unwrap();
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
    let message = store.message("wamid.F").await.unwrap().unwrap();
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
    let message = store.message("wamid.H").await.unwrap().unwrap();
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
        let message = store.message(&wamid).await.unwrap().unwrap();
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
    let message = store.message("wamid.in3").await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Received);
    assert_eq!(message.direction, kapso_core::model::Direction::Inbound);
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

pub async fn committed_watch_advances_after_ingest(store: Arc<dyn Store>) {
    let mut watch = store.committed();
    assert_eq!(*watch.borrow_and_update(), 0);
    let waiter = {
        let mut watch = store.committed();
        tokio::spawn(async move { *watch.wait_for(|s| *s >= 1).await.unwrap() })
    };
    let sequence = only_sequence(
        store
            .ingest(delivery(
                Some("k1"),
                vec![received("wamid.1", "c", "hi", 1)],
            ))
            .await,
    );
    assert_eq!(
        *watch.borrow_and_update(),
        sequence,
        "covered once ingest returns"
    );
    assert_eq!(waiter.await.unwrap(), sequence);

    // Nothing appended, nothing published.
    store
        .ingest(delivery(
            Some("k2"),
            vec![received("wamid.1", "c", "hi", 1)],
        ))
        .await
        .unwrap();
    assert!(!watch.has_changed().unwrap());
}

pub async fn survives_reopen(reopen: &dyn Fn() -> Arc<dyn Store>) {
    let store = reopen();
    let event = received("wamid.1", "conv-1", "hi", 100);
    let first = delivery(Some("key-1"), vec![event.clone()]);
    let sequence = only_sequence(store.ingest(first.clone()).await);
    let Ok(kapso_core::model::SendClaim::Started(_)) =
        store.begin_send(intent("gw-1", "idem-1", "fp-1")).await
    else {
        panic!("new key starts a send");
    };
    store.ack("crm", sequence).await.unwrap();
    drop(store);

    let store = reopen();
    assert_eq!(*store.committed().borrow(), sequence);
    assert_eq!(
        store.ingest(first).await.unwrap(),
        Receipt::DuplicateDelivery
    );
    let again = store
        .ingest(delivery(Some("key-2"), vec![event]))
        .await
        .unwrap();
    assert_eq!(again, Receipt::Stored(vec![Claim::Duplicate]));
    let claim = store
        .begin_send(intent("gw-2", "idem-1", "fp-1"))
        .await
        .unwrap();
    assert!(
        matches!(claim, kapso_core::model::SendClaim::Existing(ref m) if m.gateway_id == "gw-1")
    );
    assert_eq!(
        store.consumer_position("crm").await.unwrap(),
        Some(sequence)
    );
    assert!(store.message("wamid.1").await.unwrap().is_some());
    let next = only_sequence(
        store
            .ingest(delivery(
                Some("key-3"),
                vec![received("wamid.2", "conv-1", "b", 101)],
            ))
            .await,
    );
    assert!(next > sequence);
}

pub async fn concurrent_ingests_are_group_committed_and_all_readable(store: Arc<dyn Store>) {
    const N: usize = 400;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let event = received(
                    &format!("wamid.g{i}"),
                    &format!("conv-{}", i % 7),
                    "hi",
                    100,
                );
                only_sequence(
                    store
                        .ingest(delivery(Some(&format!("k{i}")), vec![event]))
                        .await,
                )
            })
        })
        .collect();
    let mut sequences = HashSet::new();
    for task in tasks {
        assert!(
            sequences.insert(task.await.unwrap()),
            "sequences are unique"
        );
    }
    assert_eq!(all_events(&store).await.len(), N);
    assert_eq!(
        *store.committed().borrow(),
        *sequences.iter().max().unwrap()
    );
    for i in (0..N).step_by(37) {
        assert!(
            store
                .message(&format!("wamid.g{i}"))
                .await
                .unwrap()
                .is_some()
        );
    }
    store.check_writable().await.unwrap();
}

fn record(status: MessageStatus, timestamp: i64) -> StatusRecord {
    StatusRecord { status, timestamp }
}

async fn ingest_each<const N: usize>(
    store: &Arc<dyn Store>,
    events: [kapso_core::model::NewEvent; N],
) {
    for event in events {
        let key = uuid::Uuid::new_v4().to_string();
        store
            .ingest(Delivery {
                key: Some(key),
                events: vec![event],
            })
            .await
            .unwrap();
    }
}
