//! The backend-agnostic `Store` suite: every backend must pass every case.
//! Here: the event log (de-duplication, sequences, replay, durability);
//! message state and sends are in [`messages`] and [`outbound`], the content
//! a message keeps in [`content`].
//!
//! Each case takes a fresh, empty store (except [`survives_reopen`], which
//! takes a way to open the same database again).

mod content;
mod fixtures;
mod messages;
mod outbound;

use std::collections::HashSet;
use std::sync::Arc;

use kapso_core::model::{Claim, EventFilter, EventType, GatewayId, Receipt};
use kapso_core::status::MessageStatus;
use kapso_core::store::{MAX_CONSUMERS, Store, StoreError};

pub use content::*;
pub use fixtures::*;
pub use messages::*;
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

/// A delivery without events still claims its key, as any delivery does.
pub async fn a_delivery_without_events_claims_its_key(store: Arc<dyn Store>) {
    let empty = delivery(Some("k-empty"), Vec::new());
    assert_eq!(
        store.ingest(empty.clone()).await.unwrap(),
        Receipt::Stored(Vec::new())
    );
    assert_eq!(
        store.ingest(empty).await.unwrap(),
        Receipt::DuplicateDelivery
    );
}

/// The delivery key decides, whatever the delivery holds: a status delivery
/// under a key seen before changes nothing, neither the log nor the message.
pub async fn a_status_delivery_under_a_seen_key_changes_nothing(store: Arc<dyn Store>) {
    let sent = delivery(Some("k-1"), vec![status("wamid.out", "sent", 110)]);
    let first = store.ingest(sent).await.unwrap();
    assert!(matches!(first, Receipt::Stored(ref c) if matches!(c[..], [Claim::New { .. }])));
    let read_under_same_key = delivery(Some("k-1"), vec![status("wamid.out", "read", 120)]);
    assert_eq!(
        store.ingest(read_under_same_key).await.unwrap(),
        Receipt::DuplicateDelivery
    );
    assert_eq!(all_events(&store).await.len(), 1);
    let message = store.message(&any_id("wamid.out")).await.unwrap().unwrap();
    assert_eq!(message.status, MessageStatus::Sent);
    let history: Vec<_> = message.status_history.iter().map(|h| h.status).collect();
    assert!(!history.contains(&MessageStatus::Read), "{history:?}");
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

/// A duplicate takes no sequence number: the log stays gapless, so a
/// consumer's lag (last sequence minus its position) counts real events.
pub async fn a_duplicate_event_takes_no_sequence(store: Arc<dyn Store>) {
    let a = received("wamid.A", "conv-1", "one", 100);
    let first = only_sequence(store.ingest(delivery(Some("k-1"), vec![a.clone()])).await);
    for key in ["k-2", "k-3"] {
        let receipt = store.ingest(delivery(Some(key), vec![a.clone()])).await;
        assert_eq!(receipt.unwrap(), Receipt::Stored(vec![Claim::Duplicate]));
    }
    let b = received("wamid.B", "conv-1", "two", 101);
    let next = only_sequence(store.ingest(delivery(Some("k-4"), vec![b])).await);
    assert_eq!(next, first + 1);
}

/// Kapso batches up to 100 events: they are stored in the delivery's order,
/// a message repeated within the batch once, a status in the middle applied
/// in its turn; the same delivery again adds nothing.
pub async fn a_large_batch_keeps_its_order_and_stores_a_repeat_once(store: Arc<dyn Store>) {
    let mut events: Vec<_> = (0..60)
        .map(|i| {
            received(
                &format!("wamid.{i}"),
                "conv-1",
                &format!("text {i}"),
                100 + i,
            )
        })
        .collect();
    events.insert(20, events[5].clone());
    events.insert(30, status("wamid.out", "delivered", 200));
    let batch = delivery(Some("batch-1"), events.clone());
    let Receipt::Stored(claims) = store.ingest(batch.clone()).await.unwrap() else {
        panic!("a new delivery is stored");
    };
    assert_eq!(claims.len(), events.len());
    assert_eq!(claims[20], Claim::Duplicate);
    let sequences: Vec<u64> = claims
        .iter()
        .filter_map(|claim| match claim {
            Claim::New { sequence } => Some(*sequence),
            Claim::Duplicate => None,
        })
        .collect();
    assert_eq!(sequences.len(), events.len() - 1);
    assert!(
        sequences.windows(2).all(|w| w[0] + 1 == w[1]),
        "{sequences:?}"
    );

    let stored: Vec<_> = all_events(&store)
        .await
        .into_iter()
        .map(|e| e.event)
        .collect();
    let mut expected = events.clone();
    expected.remove(20);
    assert_eq!(stored, expected, "the log holds the batch in its order");
    let delivered = store.message(&any_id("wamid.out")).await.unwrap().unwrap();
    assert_eq!(delivered.status, MessageStatus::Delivered);

    assert_eq!(
        store.ingest(batch).await.unwrap(),
        Receipt::DuplicateDelivery
    );
    assert_eq!(all_events(&store).await.len(), events.len() - 1);
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
                .map(|e| e.event.message_id.map(String::from).unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    let by_type = EventFilter {
        event_types: vec![EventType::MessageDelivered, EventType::ConversationCreated],
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
        event_types: vec![EventType::MessageReceived],
        conversation_id: "conv-2".into(),
        phone_number_id: PHONE_NUMBER_ID.into(),
    };
    assert_eq!(matching(combined).await, ["wamid.2"]);
    assert_eq!(matching(EventFilter::default()).await.len(), 5);
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
        matches!(claim, kapso_core::model::SendClaim::Existing(ref m) if m.gateway_id == GatewayId::parse("gw-1"))
    );
    assert_eq!(
        store.consumer_position("crm").await.unwrap(),
        Some(sequence)
    );
    assert!(store.message(&any_id("wamid.1")).await.unwrap().is_some());
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
                .message(&any_id(&format!("wamid.g{i}")))
                .await
                .unwrap()
                .is_some()
        );
    }
    store.check_writable().await.unwrap();
}

/// Acknowledging past the log's last event would make the consumer skip
/// whatever later gets that sequence: refused, and the position stays.
pub async fn an_ack_beyond_the_log_is_out_of_range(store: Arc<dyn Store>) {
    let event = received("wamid.1", "conv-1", "hi", 100);
    let last = only_sequence(store.ingest(delivery(Some("k1"), vec![event])).await);
    for beyond in [last + 1, 1_000_000_000_000, u64::MAX] {
        let refused = store.ack("crm", beyond).await;
        assert!(
            matches!(refused, Err(StoreError::OutOfRange(_))),
            "{beyond}: {refused:?}"
        );
    }
    assert_eq!(store.consumer_position("crm").await.unwrap(), None);
    assert_eq!(store.ack("crm", last).await.unwrap(), last);
}

/// A consumer resuming from a position retention pruned past is told, with
/// the first retained sequence, instead of silently skipping what went.
pub async fn resuming_from_a_pruned_position_is_out_of_range(store: Arc<dyn Store>) {
    let mut sequences = Vec::new();
    for n in 0..3 {
        let event = received(&format!("wamid.{n}"), "conv-1", "hi", 100 + n);
        let key = format!("k{n}");
        sequences.push(only_sequence(
            store.ingest(delivery(Some(&key), vec![event])).await,
        ));
    }
    store.ack("crm", sequences[0]).await.unwrap();
    let far_future_ms = i64::MAX / 2;
    while store.prune(far_future_ms, 100).await.unwrap() > 0 {}
    let kept = received("wamid.kept", "conv-1", "hi", 200);
    let kept = only_sequence(store.ingest(delivery(Some("kept"), vec![kept])).await);

    let all = EventFilter::default();
    let from = store.consumer_position("crm").await.unwrap().unwrap();
    match store.events_after(from, &all, 10).await {
        Err(StoreError::OutOfRange(message)) => {
            assert!(
                message.contains(&format!("oldest retained is {kept}")),
                "{message}"
            );
            assert!(message.contains("pruned"), "{message}");
        }
        other => panic!("a pruned position is out of range, got {other:?}"),
    }
    // From the start, or from where the pruned part ends, nothing is missed.
    let resumed = store.events_after(sequences[2], &all, 10).await.unwrap();
    assert_eq!(
        resumed.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [kept]
    );
    assert_eq!(store.events_after(0, &all, 10).await.unwrap().len(), 1);
    // Acknowledging what went is still in range: it was in the log.
    assert_eq!(store.ack("crm", sequences[2]).await.unwrap(), sequences[2]);
}

/// Consumer names are rows and metric series: a new name beyond the bound is
/// refused, and the names already known carry on.
pub async fn new_consumers_beyond_the_bound_are_refused(store: Arc<dyn Store>) {
    let acks: Vec<_> = (0..MAX_CONSUMERS)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.ack(&format!("consumer-{n}"), 0).await })
        })
        .collect();
    for ack in acks {
        ack.await.unwrap().unwrap();
    }
    let refused = store.ack("one-too-many", 0).await;
    assert!(
        matches!(refused, Err(StoreError::LimitReached(_))),
        "{refused:?}"
    );
    assert_eq!(store.ack("consumer-7", 0).await.unwrap(), 0);
    assert_eq!(
        store.consumer_positions().await.unwrap().len(),
        MAX_CONSUMERS
    );
}
