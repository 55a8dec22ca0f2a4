//! Two cores on one PostgreSQL database behave as one gateway: a delivery or a
//! send that reaches both at once takes effect once, statuses never move back
//! whichever core applies them, and a consumer that hops between cores while
//! both ingest sees every event exactly once, in order.
//!
//! Each test gets a fresh database on the test server (see `postgres_db`).

use crate::cluster;
use crate::postgres_db;

use std::collections::HashSet;
use std::time::Duration;

use cluster::{CONTACT, Core, FakeKapso, NUMBER, delivery, received, status};
use futures::StreamExt as _;
use kapso_core::model::EventFilter;
use kapso_core::store::Store as _;
use kapso_core::store::postgres::PostgresStore;
use kapso_gateway_proto::v1 as pb;
use postgres_db::TestDatabase;

/// A fresh database, a fake Kapso and two cores on them.
struct Pair {
    db: TestDatabase,
    kapso: FakeKapso,
    cores: [Core; 2],
}

async fn spawn_pair(kapso_delay: Duration) -> Pair {
    let db = TestDatabase::create().await;
    let kapso = FakeKapso::start(kapso_delay).await;
    let cores = [
        Core::start(&db.url, &kapso.url).await,
        Core::start(&db.url, &kapso.url).await,
    ];
    Pair { db, kapso, cores }
}

impl Pair {
    /// Every message id in the log, in sequence order, read from the database.
    async fn logged(&self) -> Vec<String> {
        let store = PostgresStore::open(&self.db.url).await.unwrap();
        let events = store
            .events_after(0, &EventFilter::default(), 100_000)
            .await
            .unwrap();
        events
            .into_iter()
            .map(|e| e.event.message_id.map(String::from).unwrap_or_default())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_delivery_at_both_cores_is_stored_once() {
    let pair = spawn_pair(Duration::ZERO).await;
    let (a, b) = (pair.cores[0].ingest().await, pair.cores[1].ingest().await);
    for i in 0..40 {
        let (mut a1, mut b1, mut a2, mut b2) = (a.clone(), b.clone(), a.clone(), b.clone());
        let same = delivery(
            &format!("key-{i}"),
            vec![received(&format!("wamid.d{i}"), "hi")],
        );
        // The same event under two delivery keys (Kapso's per-item re-send).
        let again = |key: &str| delivery(key, vec![received(&format!("wamid.r{i}"), "again")]);
        let (first, second, third, fourth) = tokio::join!(
            a1.ingest_events(same.clone()),
            b1.ingest_events(same),
            a2.ingest_events(again(&format!("ra-{i}"))),
            b2.ingest_events(again(&format!("rb-{i}"))),
        );
        let new = |r: &pb::IngestEventsResponse| {
            r.outcomes
                .iter()
                .filter(|o| o.disposition == pb::Disposition::New as i32)
                .count()
        };
        let responses = [first, second, third, fourth].map(|r| r.unwrap().into_inner());
        assert_eq!(new(&responses[0]) + new(&responses[1]), 1, "round {i}");
        assert_eq!(new(&responses[2]) + new(&responses[3]), 1, "round {i}");
    }
    let logged = pair.logged().await;
    assert_eq!(logged.len(), 80);
    assert_eq!(logged.iter().collect::<HashSet<_>>().len(), 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_send_at_both_cores_calls_kapso_once() {
    let pair = spawn_pair(Duration::from_millis(300)).await;
    // The customer wrote first, so the 24-hour window is open.
    let mut ingest = pair.cores[0].ingest().await;
    ingest
        .ingest_events(delivery("in-1", vec![received("wamid.in1", "hola")]))
        .await
        .unwrap();
    let send = pb::SendTextRequest {
        to: format!("+{CONTACT}"),
        phone_number_id: NUMBER.into(),
        text: "Your order has shipped".into(),
        idempotency_key: "order-42-shipped".into(),
        ..Default::default()
    };
    let (mut a, mut b) = (
        pair.cores[0].messaging().await,
        pair.cores[1].messaging().await,
    );
    let (first, second) = tokio::join!(a.send_text(send.clone()), b.send_text(send.clone()));
    let first = first.unwrap().into_inner().message.unwrap();
    let second = second.unwrap().into_inner().message.unwrap();
    assert_eq!(first.id, "wamid.fake-1");
    assert_eq!(first.id, second.id);
    assert_eq!(first.gateway_id, second.gateway_id);
    assert_eq!(pair.kapso.sends(), 1, "one upstream call");

    // Later retries, at either core, replay without calling Kapso again.
    let replay = b
        .send_text(send)
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(replay.gateway_id, first.gateway_id);
    assert_eq!(pair.kapso.sends(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_applied_by_either_core_never_move_backwards() {
    use pb::MessageStatus as S;
    let pair = spawn_pair(Duration::ZERO).await;
    let clients = [pair.cores[0].ingest().await, pair.cores[1].ingest().await];
    let steps = [
        ("sent", S::Sent, 200),
        ("delivered", S::Delivered, 210),
        ("read", S::Read, 220),
    ];
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let mut tasks = Vec::new();
    for n in 0..24 {
        let wamid = format!("wamid.s{n}");
        for (turn, step) in ORDERS[n % 6].iter().enumerate() {
            let (name, status_value, at) = steps[*step];
            // Alternate cores, all at once: the order each core applies them in is anyone's guess.
            let mut client = clients[(n + turn) % 2].clone();
            let event = status(&wamid, name, status_value, at);
            let key = format!("{wamid}-{name}");
            tasks.push(tokio::spawn(async move {
                client
                    .ingest_events(delivery(&key, vec![event]))
                    .await
                    .unwrap();
            }));
        }
        if n % 4 == 0 {
            let mut client = clients[n % 2].clone();
            let failed = status(&wamid, "failed", S::Failed, 215);
            tasks.push(tokio::spawn(async move {
                client
                    .ingest_events(delivery(&format!("f{n}"), vec![failed]))
                    .await
                    .unwrap();
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut messaging = pair.cores[1].messaging().await;
    for n in 0..24 {
        let message = messaging
            .get_message(pb::GetMessageRequest {
                message_id: format!("wamid.s{n}"),
            })
            .await
            .unwrap()
            .into_inner();
        let expected = if n % 4 == 0 { S::Failed } else { S::Read };
        assert_eq!(message.status, expected as i32, "wamid.s{n}");
        assert!(message.status_history.len() >= 3, "wamid.s{n}");
    }
}

/// Producers per core, and events each sends.
const PRODUCERS: usize = 3;
const PER_PRODUCER: usize = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_hopping_between_cores_sees_every_event_once_in_order() {
    let pair = spawn_pair(Duration::ZERO).await;
    let total = 2 * PRODUCERS * PER_PRODUCER;
    let mut producers = Vec::new();
    for (c, core) in pair.cores.iter().enumerate() {
        for p in 0..PRODUCERS {
            let mut client = core.ingest().await;
            producers.push(tokio::spawn(async move {
                for i in 0..PER_PRODUCER {
                    let wamid = format!("wamid.c{c}p{p}i{i}");
                    let sent = delivery(&wamid, vec![received(&wamid, "hi")]);
                    client.ingest_events(sent).await.unwrap();
                }
            }));
        }
    }

    // The consumer reads a few events from one core, disconnects, and resumes
    // after the last sequence it saw on the other core, over and over.
    let mut seen: Vec<(u64, String)> = Vec::new();
    let mut hop = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "saw {} of {total}",
            seen.len()
        );
        // Checked before reading: a read that finds nothing after this is final.
        let ingested = producers.iter().all(|p| p.is_finished());
        let after = seen.last().map_or(0, |(sequence, _)| *sequence);
        let mut client = pair.cores[hop % 2].messaging().await;
        let mut stream = client
            .watch_events(pb::WatchEventsRequest {
                after_sequence: after,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        hop += 1;
        let before = seen.len();
        for _ in 0..(1 + hop % 23) {
            match tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
                Ok(Some(event)) => {
                    let event = event.unwrap();
                    let id = event.message.map(|m| m.id).unwrap_or_default();
                    seen.push((event.sequence, id));
                }
                Ok(None) | Err(_) => break,
            }
        }
        // An event that committed behind the consumer's position would never
        // come: stop once everything is ingested and nothing more arrives.
        if ingested && seen.len() == before {
            break;
        }
    }
    for producer in producers {
        producer.await.unwrap();
    }

    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "strictly increasing sequences"
    );
    let ids: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), seen.len(), "each event once");
    let expected: HashSet<String> = (0..2)
        .flat_map(|c| {
            (0..PRODUCERS)
                .flat_map(move |p| (0..PER_PRODUCER).map(move |i| format!("wamid.c{c}p{p}i{i}")))
        })
        .collect();
    let missing = expected.iter().filter(|id| !ids.contains(id)).count();
    assert_eq!(missing, 0, "events never seen (skipped by a resume)");
    assert_eq!(ids, expected.iter().collect::<HashSet<_>>());
    assert!(hop > 20, "the consumer reconnected many times ({hop})");
    assert_eq!(pair.logged().await.len(), total);
}
