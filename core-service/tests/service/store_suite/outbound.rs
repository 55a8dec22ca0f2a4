//! Cases for sends, their idempotency keys and how webhooks settle them.

use std::sync::Arc;

use kapso_core::model::{
    Claim, GatewayId, IdempotencyKey, Receipt, SendClaim, SendFailure, SendResult,
};
use kapso_core::status::MessageStatus;
use kapso_core::store::{Store, StoreError};

use super::fixtures::*;

pub async fn begin_send_claims_key_once_concurrently(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .begin_send(intent(&format!("gw-{i}"), "idem-1", "fp"))
                    .await
            })
        })
        .collect();
    let mut started = Vec::new();
    let mut existing = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            SendClaim::Started(m) => started.push(m),
            SendClaim::Existing(m) => existing.push(m),
            SendClaim::KeyReused => panic!("same request, same key"),
        }
    }
    assert_eq!(started.len(), 1);
    assert_eq!(existing.len(), 15);
    let owner = &started[0];
    assert_eq!(owner.status, MessageStatus::Accepted);
    assert_eq!(
        owner.idempotency_key,
        IdempotencyKey::parse("idem-1").unwrap()
    );
    assert_eq!(
        GatewayId::parse(&owner.id),
        owner.gateway_id,
        "no wamid yet"
    );
    assert!(existing.iter().all(|m| m.gateway_id == owner.gateway_id));
}

pub async fn same_key_different_request_is_refused(store: Arc<dyn Store>) {
    let first = store
        .begin_send(intent("gw-1", "idem-1", "fp-a"))
        .await
        .unwrap();
    assert!(matches!(first, SendClaim::Started(_)));
    let other = store
        .begin_send(intent("gw-2", "idem-1", "fp-b"))
        .await
        .unwrap();
    assert_eq!(other, SendClaim::KeyReused);
    let same = store
        .begin_send(intent("gw-3", "idem-1", "fp-a"))
        .await
        .unwrap();
    assert!(matches!(same, SendClaim::Existing(ref m) if m.gateway_id == GatewayId::parse("gw-1")));
    assert!(
        store.message(&any_id("gw-2")).await.unwrap().is_none(),
        "a refused send leaves nothing"
    );
}

pub async fn status_before_send_response_is_merged(store: Arc<dyn Store>) {
    store
        .begin_send(intent("gw-1", "idem-1", "fp"))
        .await
        .unwrap();
    // The delivered webhook outruns the send response; it says too little to
    // be matched to the send, so it lands on a row of its own first.
    let mut delivered = status("wamid.OUT", "delivered", 210);
    delivered.contact_phone.clear();
    store
        .ingest(delivery(Some("d1"), vec![delivered]))
        .await
        .unwrap();

    let sent = SendResult::Sent {
        wamid: "wamid.OUT".into(),
    };
    let message = store.finish_send(&gateway("gw-1"), sent).await.unwrap();
    assert_eq!(message.id, "wamid.OUT");
    assert_eq!(message.gateway_id, GatewayId::parse("gw-1"));
    assert_eq!(
        message.status,
        MessageStatus::Delivered,
        "the early status is kept"
    );
    let history: Vec<_> = message.status_history.iter().map(|h| h.status).collect();
    assert_eq!(
        history,
        [
            MessageStatus::Accepted,
            MessageStatus::Sent,
            MessageStatus::Delivered
        ]
    );
    assert_eq!(
        store.message(&any_id("wamid.OUT")).await.unwrap(),
        Some(message.clone())
    );
    let page = store
        .conversation_messages("conv-1", 10, None)
        .await
        .unwrap();
    assert_eq!(page.messages, [message], "one message, not two");

    // The webhook for the same status later changes nothing; a read moves it on.
    store
        .ingest(delivery(Some("r1"), vec![status("wamid.OUT", "read", 220)]))
        .await
        .unwrap();
    let read = store.message(&any_id("idem-1")).await.unwrap().unwrap();
    assert_eq!(read.status, MessageStatus::Read);

    // Kapso re-sends the early status under a new key: the merged row still knows it.
    let logged = all_events(&store).await.len();
    let mut delivered_again = status("wamid.OUT", "delivered", 210);
    delivered_again.contact_phone.clear();
    store
        .ingest(delivery(Some("d2"), vec![delivered_again]))
        .await
        .unwrap();
    assert_eq!(all_events(&store).await.len(), logged, "a duplicate");
}

pub async fn unknown_outcome_is_settled_by_status_webhook(store: Arc<dyn Store>) {
    store
        .begin_send(intent("gw-1", "idem-1", "fp"))
        .await
        .unwrap();
    let unknown = store
        .finish_send(&gateway("gw-1"), SendResult::Unknown)
        .await
        .unwrap();
    assert_eq!(unknown.status, MessageStatus::OutcomeUnknown);

    // A status for some other text to the same contact is not this send.
    let mut other = status("wamid.OTHER", "sent", 200);
    other.text = "Something else".into();
    store
        .ingest(delivery(Some("s0"), vec![other]))
        .await
        .unwrap();
    assert_eq!(
        store
            .message(&any_id("gw-1"))
            .await
            .unwrap()
            .unwrap()
            .status,
        MessageStatus::OutcomeUnknown
    );

    let mut sent = status("wamid.OUT", "sent", 200);
    sent.text = "Your order has shipped".into();
    store
        .ingest(delivery(Some("s1"), vec![sent]))
        .await
        .unwrap();
    let settled = store.message(&any_id("gw-1")).await.unwrap().unwrap();
    assert_eq!(settled.id, "wamid.OUT");
    assert_eq!(settled.status, MessageStatus::Sent);
    assert_eq!(
        store.message(&any_id("wamid.OUT")).await.unwrap(),
        Some(settled)
    );

    // A late second Unknown for the same send never moves it back.
    let again = store
        .finish_send(&gateway("gw-1"), SendResult::Unknown)
        .await
        .unwrap();
    assert_eq!(again.status, MessageStatus::Sent);
}

pub async fn a_wrongly_settled_send_is_corrected_by_the_send_responses(store: Arc<dyn Store>) {
    // Two identical texts in flight: the first webhook can only guess which it is.
    store
        .begin_send(intent("gw-a", "idem-a", "fp"))
        .await
        .unwrap();
    store
        .begin_send(intent("gw-b", "idem-b", "fp"))
        .await
        .unwrap();
    let mut sent_b = status("wamid.B", "sent", 200);
    sent_b.text = "Your order has shipped".into();
    store
        .ingest(delivery(Some("s1"), vec![sent_b]))
        .await
        .unwrap();

    let b = SendResult::Sent {
        wamid: "wamid.B".into(),
    };
    assert_eq!(
        store.finish_send(&gateway("gw-b"), b).await.unwrap().id,
        "wamid.B"
    );
    let a = SendResult::Sent {
        wamid: "wamid.A".into(),
    };
    assert_eq!(
        store.finish_send(&gateway("gw-a"), a).await.unwrap().id,
        "wamid.A"
    );
    assert_eq!(
        store
            .message(&any_id("wamid.B"))
            .await
            .unwrap()
            .unwrap()
            .gateway_id,
        GatewayId::parse("gw-b")
    );
    assert_eq!(
        store
            .message(&any_id("wamid.A"))
            .await
            .unwrap()
            .unwrap()
            .gateway_id,
        GatewayId::parse("gw-a")
    );

    // The status that was guessed wrong is still known under its wamid.
    let logged = all_events(&store).await.len();
    let mut sent_b_again = status("wamid.B", "sent", 200);
    sent_b_again.text = "Your order has shipped".into();
    store
        .ingest(delivery(Some("s2"), vec![sent_b_again]))
        .await
        .unwrap();
    assert_eq!(all_events(&store).await.len(), logged, "a duplicate");
}

/// A webhook guessed which of two identical sends it was, and the guessed
/// send's own answer names another wamid: the events about the guessed wamid
/// stay known under it (a re-delivery is a duplicate), and the send Kapso
/// answers with it later takes it.
pub async fn a_send_answered_with_another_wamid_than_guessed_leaves_the_guess_known(
    store: Arc<dyn Store>,
) {
    store
        .begin_send(intent("gw-a", "idem-a", "fp"))
        .await
        .unwrap();
    store
        .begin_send(intent("gw-b", "idem-b", "fp"))
        .await
        .unwrap();
    let sent_b = || {
        let mut sent = status("wamid.B", "sent", 200);
        sent.text = "Your order has shipped".into();
        sent
    };
    store
        .ingest(delivery(Some("s1"), vec![sent_b()]))
        .await
        .unwrap();
    let guessed = store.message(&any_id("wamid.B")).await.unwrap().unwrap();
    assert_eq!(
        guessed.gateway_id,
        GatewayId::parse("gw-a"),
        "the oldest send is the guess"
    );

    let a = SendResult::Sent {
        wamid: "wamid.A".into(),
    };
    assert_eq!(
        store.finish_send(&gateway("gw-a"), a).await.unwrap().id,
        "wamid.A"
    );
    let again = store
        .ingest(delivery(Some("s2"), vec![sent_b()]))
        .await
        .unwrap();
    assert_eq!(again, Receipt::Stored(vec![Claim::Duplicate]));

    let b = SendResult::Sent {
        wamid: "wamid.B".into(),
    };
    assert_eq!(
        store.finish_send(&gateway("gw-b"), b).await.unwrap().id,
        "wamid.B"
    );
    assert_eq!(
        store
            .message(&any_id("wamid.B"))
            .await
            .unwrap()
            .unwrap()
            .gateway_id,
        GatewayId::parse("gw-b")
    );
    let once_more = store
        .ingest(delivery(Some("s3"), vec![sent_b()]))
        .await
        .unwrap();
    assert_eq!(once_more, Receipt::Stored(vec![Claim::Duplicate]));
    assert_eq!(all_events(&store).await.len(), 1);
}

pub async fn message_lookup_by_wamid_gateway_id_and_key(store: Arc<dyn Store>) {
    store
        .begin_send(intent("gw-1", "idem-1", "fp"))
        .await
        .unwrap();
    let sent = SendResult::Sent {
        wamid: "wamid.OUT".into(),
    };
    let message = store.finish_send(&gateway("gw-1"), sent).await.unwrap();
    assert_eq!(message.status, MessageStatus::Sent);
    assert_eq!(message.text, "Your order has shipped");
    assert_eq!(message.contact_phone, CONTACT);
    for lookup in ["wamid.OUT", "gw-1", "idem-1"] {
        assert_eq!(
            store.message(&any_id(lookup)).await.unwrap().as_ref(),
            Some(&message),
            "{lookup}"
        );
    }
    assert!(
        store
            .message(&any_id("wamid.NOPE"))
            .await
            .unwrap()
            .is_none()
    );
    let unknown = store
        .finish_send(&gateway("gw-nope"), SendResult::Unknown)
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound(_))));
}

pub async fn failed_send_is_terminal_and_keeps_api_errors(store: Arc<dyn Store>) {
    store
        .begin_send(intent("gw-1", "idem-1", "fp"))
        .await
        .unwrap();
    let failed = SendResult::Failed(SendFailure::Refused(vec![meta_error()]));
    let message = store.finish_send(&gateway("gw-1"), failed).await.unwrap();
    assert_eq!(message.status, MessageStatus::Failed);
    assert_eq!(message.errors, [meta_error()]);
    assert_eq!(
        message.send_failure(),
        SendFailure::Refused(vec![meta_error()])
    );
    let retried = store
        .begin_send(intent("gw-2", "idem-1", "fp"))
        .await
        .unwrap();
    assert_eq!(retried, SendClaim::Existing(message));
}

pub async fn a_send_kapso_never_took_keeps_its_reason_and_no_meta_error(store: Arc<dyn Store>) {
    store
        .begin_send(intent("gw-1", "idem-1", "fp"))
        .await
        .unwrap();
    let not_taken = SendFailure::NotTaken {
        reason: "cannot connect to Kapso".into(),
    };
    let message = store
        .finish_send(&gateway("gw-1"), SendResult::Failed(not_taken.clone()))
        .await
        .unwrap();
    assert_eq!(message.status, MessageStatus::Failed);
    assert!(message.errors.is_empty(), "{:?}", message.errors);
    assert_eq!(message.send_failure(), not_taken);
    let retried = store
        .begin_send(intent("gw-2", "idem-1", "fp"))
        .await
        .unwrap();
    assert_eq!(retried, SendClaim::Existing(message));
}

pub async fn a_released_send_frees_its_key_and_a_settled_one_stays(store: Arc<dyn Store>) {
    store
        .begin_send(intent("gw-1", "idem-1", "fp"))
        .await
        .unwrap();
    assert!(store.release_send(&gateway("gw-1")).await.unwrap());
    assert_eq!(store.message(&any_id("gw-1")).await.unwrap(), None);
    assert_eq!(store.message(&any_id("idem-1")).await.unwrap(), None);
    // The key claims afresh, and its history starts over.
    let again = store
        .begin_send(intent("gw-2", "idem-1", "fp"))
        .await
        .unwrap();
    let SendClaim::Started(started) = again else {
        panic!("the released key was not free: {again:?}");
    };
    assert_eq!(started.status_history.len(), 1);
    // A send Kapso took, or one already settled otherwise, is never forgotten.
    store
        .finish_send(
            &gateway("gw-2"),
            SendResult::Sent {
                wamid: "wamid.X".into(),
            },
        )
        .await
        .unwrap();
    assert!(!store.release_send(&gateway("gw-2")).await.unwrap());
    assert!(!store.release_send(&gateway("gw-nope")).await.unwrap());
    assert!(store.message(&any_id("idem-1")).await.unwrap().is_some());
}

pub async fn abandoned_sends_are_settled_as_unknown_and_fresh_ones_left_alone(
    store: Arc<dyn Store>,
) {
    let claimed_at = |gateway_id: &str, key: &str, age: i64| {
        let mut intent = intent(gateway_id, key, "fp");
        intent.created_at -= age;
        intent
    };
    for (gateway_id, key, age) in [
        ("gw-old", "idem-old", 600),
        ("gw-new", "idem-new", 0),
        ("gw-sent", "idem-sent", 600),
    ] {
        store
            .begin_send(claimed_at(gateway_id, key, age))
            .await
            .unwrap();
    }
    let sent = SendResult::Sent {
        wamid: "wamid.SENT".into(),
    };
    store.finish_send(&gateway("gw-sent"), sent).await.unwrap();

    let cutoff = intent("gw-x", "idem-x", "fp").created_at - 300;
    assert_eq!(store.settle_abandoned_sends(cutoff).await.unwrap(), 1);
    let old = store.message(&any_id("idem-old")).await.unwrap().unwrap();
    assert_eq!(old.status, MessageStatus::OutcomeUnknown);
    let history: Vec<_> = old.status_history.iter().map(|h| h.status).collect();
    assert_eq!(
        history,
        [MessageStatus::Accepted, MessageStatus::OutcomeUnknown]
    );
    let fresh = store.message(&any_id("idem-new")).await.unwrap().unwrap();
    assert_eq!(fresh.status, MessageStatus::Accepted);
    let done = store.message(&any_id("idem-sent")).await.unwrap().unwrap();
    assert_eq!(done.status, MessageStatus::Sent);
    assert_eq!(store.settle_abandoned_sends(cutoff).await.unwrap(), 0);

    // A late answer from Kapso still settles it for good.
    let late = SendResult::Sent {
        wamid: "wamid.LATE".into(),
    };
    let old = store.finish_send(&gateway("gw-old"), late).await.unwrap();
    assert_eq!(old.status, MessageStatus::Sent);
}

pub async fn ack_only_moves_forward(store: Arc<dyn Store>) {
    // Acknowledgements need events to point at.
    for n in 0..9 {
        let event = received(&format!("wamid.{n}"), "conv-1", "hi", 100 + n);
        store
            .ingest(delivery(Some(&format!("k{n}")), vec![event]))
            .await
            .unwrap();
    }
    assert_eq!(store.consumer_position("crm").await.unwrap(), None);
    assert_eq!(store.ack("crm", 5).await.unwrap(), 5);
    assert_eq!(store.ack("crm", 3).await.unwrap(), 5);
    assert_eq!(store.consumer_position("crm").await.unwrap(), Some(5));
    assert_eq!(store.ack("crm", 9).await.unwrap(), 9);
    assert_eq!(store.ack("billing", 1).await.unwrap(), 1);
    assert_eq!(store.consumer_position("crm").await.unwrap(), Some(9));
}

/// A seek moves a consumer anywhere in the log, backwards included (to
/// replay), but not beyond its head; a later ack moves forward from there.
pub async fn seek_moves_a_consumer_anywhere_up_to_the_head(store: Arc<dyn Store>) {
    for n in 0..9 {
        let event = received(&format!("wamid.{n}"), "conv-1", "hi", 100 + n);
        store
            .ingest(delivery(Some(&format!("k{n}")), vec![event]))
            .await
            .unwrap();
    }
    let head = *store.committed().borrow();
    assert_eq!(store.ack("crm", 7).await.unwrap(), 7);
    assert_eq!(store.seek("crm", 2).await.unwrap(), 2);
    assert_eq!(store.consumer_position("crm").await.unwrap(), Some(2));
    assert_eq!(
        store.ack("crm", 1).await.unwrap(),
        2,
        "acks still only move forward"
    );
    assert_eq!(store.seek("crm", 0).await.unwrap(), 0);
    assert_eq!(store.seek("crm", head).await.unwrap(), head);
    let refused = store.seek("crm", head + 1).await;
    assert!(
        matches!(refused, Err(StoreError::OutOfRange(_))),
        "{refused:?}"
    );
    assert_eq!(store.consumer_position("crm").await.unwrap(), Some(head));
    // A seek may name a new consumer, placing it before its first watch.
    assert_eq!(store.seek("billing", 4).await.unwrap(), 4);
    assert_eq!(
        store.consumer_positions().await.unwrap(),
        vec![("billing".to_owned(), 4), ("crm".to_owned(), head)]
    );
}

pub async fn check_writable_succeeds_on_a_healthy_store(store: Arc<dyn Store>) {
    store.check_writable().await.unwrap();
}

pub async fn a_delivery_of_statuses_ends_as_its_events_would_one_by_one(store: Arc<dyn Store>) {
    // Two sends of the same text in flight.
    for (gateway_id, key) in [("gw-a", "idem-a"), ("gw-b", "idem-b")] {
        store
            .begin_send(intent(gateway_id, key, key))
            .await
            .unwrap();
    }
    let mut a_sent = status("wamid.a", "sent", 101);
    a_sent.text = "Your order has shipped".into();
    let events = vec![
        // Without text both sends match: no guess, a row of its own...
        status("wamid.x", "delivered", 100),
        // ...which the next status about it finds, and does not move back.
        status("wamid.x", "sent", 99),
        // With the text, the older send is the one settled...
        a_sent,
        // ...leaving the other the only candidate, safe to settle without text.
        status("wamid.b", "delivered", 102),
        status("wamid.a", "read", 103),
    ];
    let receipt = store.ingest(delivery(Some("s1"), events)).await.unwrap();
    assert!(matches!(receipt, Receipt::Stored(claims) if claims.len() == 5));

    let x = store.message(&any_id("wamid.x")).await.unwrap().unwrap();
    assert_eq!(x.gateway_id, None);
    assert_eq!(x.status, MessageStatus::Delivered);
    let history: Vec<_> = x
        .status_history
        .iter()
        .map(|h| (h.status, h.timestamp))
        .collect();
    assert_eq!(
        history,
        [(MessageStatus::Sent, 99), (MessageStatus::Delivered, 100)]
    );
    let a = store.message(&any_id("gw-a")).await.unwrap().unwrap();
    assert_eq!((a.id.as_str(), a.status), ("wamid.a", MessageStatus::Read));
    let b = store.message(&any_id("gw-b")).await.unwrap().unwrap();
    assert_eq!(
        (b.id.as_str(), b.status),
        ("wamid.b", MessageStatus::Delivered)
    );
}
