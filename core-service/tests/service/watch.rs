//! Following the event log while it grows: every event exactly once, in order,
//! across disconnects, with filters, for named consumers, and without the core
//! buffering a slow consumer's backlog.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use clap::Parser as _;
use futures::StreamExt as _;
use kapso_core::model::{
    Conversation, Delivery, Direction, EventFilter, EventType, GatewayId, Message, MessageLookup,
    MessagePage, NewEvent, Receipt, SendClaim, SendIntent, SendResult, StoredEvent, Wamid,
};
use kapso_core::store::{Store, StoreError};
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::ingest_client::IngestClient;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Channel;

const PHONES: [&str; 2] = ["111111111111111", "222222222222222"];

struct Core {
    url: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn spawn_core() -> Core {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("watch.db").display());
    spawn_core_on(dir, &database_url).await
}

/// A core on `database_url`; `dir` lives as long as the core.
async fn spawn_core_on(dir: tempfile::TempDir, database_url: &str) -> Core {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config =
        kapso_core::Config::try_parse_from(["kapso-core", "--database-url", database_url]).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kapso_core::run(config, listener, async {
        let _ = stopped.await;
    }));
    Core {
        url,
        _dir: dir,
        _stop: stop,
    }
}

impl Core {
    async fn ingest(&self) -> IngestClient<Channel> {
        IngestClient::connect(self.url.clone()).await.unwrap()
    }

    async fn messaging(&self) -> MessagingClient<Channel> {
        MessagingClient::connect(self.url.clone()).await.unwrap()
    }
}

fn event(n: u64) -> pb::InboundEvent {
    let id = format!("wamid.watch-{n}");
    pb::InboundEvent {
        event_type: if n.is_multiple_of(3) {
            "whatsapp.message.read"
        } else {
            "whatsapp.message.received"
        }
        .into(),
        message_id: id.clone(),
        conversation_id: format!("conv-{}", n % 4),
        phone_number_id: PHONES[(n % 2) as usize].into(),
        contact_phone: "15551234567".into(),
        direction: pb::Direction::Inbound.into(),
        message_type: "text".into(),
        text: format!("n{n}"),
        payload_json: format!(r#"{{"message":{{"id":"{id}"}}}}"#),
        ..Default::default()
    }
}

/// Ingests events `range` from `tasks` concurrent callers, one event per delivery.
async fn ingest_concurrently(core: &Core, range: std::ops::Range<u64>, tasks: u64) {
    let mut handles = Vec::new();
    for task in 0..tasks {
        let mut client = core.ingest().await;
        let range = range.clone();
        handles.push(tokio::spawn(async move {
            for n in range.filter(|n| n % tasks == task) {
                let request = pb::IngestEventsRequest {
                    delivery_key: format!("d-{n}"),
                    events: vec![event(n)],
                    ..Default::default()
                };
                client.ingest_events(request).await.unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
}

/// Reads up to `limit` events from one stream, then drops it (a disconnect).
async fn read_some(
    client: &mut MessagingClient<Channel>,
    request: pb::WatchEventsRequest,
    limit: usize,
) -> Vec<pb::Event> {
    let mut stream = client.watch_events(request).await.unwrap().into_inner();
    let mut events = Vec::new();
    while events.len() < limit {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(event)) => events.push(event.unwrap()),
            Ok(None) => break,
            Err(_) => panic!("no event within 10 s after {} events", events.len()),
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_in_order_across_disconnects_during_ingest() {
    let core = spawn_core().await;
    const TOTAL: u64 = 600;
    let ingest = async { ingest_concurrently(&core, 0..TOTAL, 8).await };
    let consume = async {
        let mut client = core.messaging().await;
        let mut seen: Vec<pb::Event> = Vec::new();
        let mut round = 0;
        while seen.len() < TOTAL as usize {
            let after = seen.last().map_or(0, |e| e.sequence);
            let request = pb::WatchEventsRequest {
                after_sequence: after,
                ..Default::default()
            };
            // Disconnect after an uneven number of events each time.
            let limit = (17 + round * 13) % 61 + 1;
            seen.extend(
                read_some(&mut client, request, limit.min(TOTAL as usize - seen.len())).await,
            );
            round += 1;
        }
        seen
    };
    let ((), seen) = tokio::join!(ingest, consume);
    assert!(
        seen.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "strictly increasing"
    );
    let mut ids: Vec<String> = seen
        .iter()
        .map(|e| e.message.as_ref().unwrap().id.clone())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..TOTAL).map(|n| format!("wamid.watch-{n}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "every event exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_by_type_conversation_and_phone_in_replay_and_live() {
    let core = spawn_core().await;
    ingest_concurrently(&core, 0..60, 2).await;
    let mut client = core.messaging().await;
    let request = pb::WatchEventsRequest {
        event_types: vec!["whatsapp.message.received".into()],
        conversation_id: "conv-1".into(),
        phone_number_id: PHONES[1].into(),
        ..Default::default()
    };
    // n % 4 == 1 implies n odd (phone 1); received excludes n % 3 == 0.
    let expected = |range: std::ops::Range<u64>| range.filter(|n| n % 4 == 1 && n % 3 != 0).count();
    let mut stream = client.watch_events(request).await.unwrap().into_inner();
    let mut got = Vec::new();
    for _ in 0..expected(0..60) {
        got.push(stream.next().await.unwrap().unwrap());
    }
    ingest_concurrently(&core, 60..120, 2).await;
    for _ in 0..expected(60..120) {
        got.push(
            tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        );
    }
    assert!(
        got.iter()
            .all(|e| e.event_type == "whatsapp.message.received"
                && e.conversation_id == "conv-1"
                && e.phone_number_id == PHONES[1])
    );
    // Nothing else matches: a new matching event is the very next one.
    let n = 121; // 121 % 4 == 1, odd, 121 % 3 != 0
    ingest_concurrently(&core, n..n + 1, 1).await;
    let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.message.unwrap().id, format!("wamid.watch-{n}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_consumer_resumes_after_its_acknowledged_position() {
    let core = spawn_core().await;
    ingest_concurrently(&core, 0..30, 3).await;
    let mut client = core.messaging().await;
    let request = || pb::WatchEventsRequest {
        consumer: "billing".into(),
        ..Default::default()
    };
    let first = read_some(&mut client, request(), 12).await;
    let acked = first[11].sequence;
    let ack = pb::AckEventsRequest {
        consumer: "billing".into(),
        sequence: acked,
    };
    assert_eq!(
        client.ack_events(ack).await.unwrap().into_inner().sequence,
        acked
    );
    // An older ack never moves it back.
    let stale = pb::AckEventsRequest {
        consumer: "billing".into(),
        sequence: 3,
    };
    assert_eq!(
        client
            .ack_events(stale)
            .await
            .unwrap()
            .into_inner()
            .sequence,
        acked
    );

    let resumed = read_some(&mut client, request(), 18).await;
    assert!(resumed.iter().all(|e| e.sequence > acked));
    let mut ids: Vec<&str> = first
        .iter()
        .chain(&resumed)
        .map(|e| e.message.as_ref().unwrap().id.as_str())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        30,
        "the resumed stream continues right after the ack, skipping nothing"
    );
}

/// Ids of the events of `range`, as [`event`] makes them.
fn ids(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|n| format!("wamid.watch-{n}")).collect()
}

fn event_ids(events: &[pb::Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.message.as_ref().unwrap().id.clone())
        .collect()
}

/// `from_end` skips the backlog for an anonymous stream and a new named
/// consumer (recorded at the head, so a restart before its first ack skips
/// nothing); a stored position and a non-zero `after_sequence` still win.
async fn from_end_starts_where_nothing_else_says_to(core: Core) {
    ingest_concurrently(&core, 0..10, 1).await;
    let mut client = core.messaging().await;
    let from_end = |consumer: &str| pb::WatchEventsRequest {
        consumer: consumer.into(),
        from_end: true,
        ..Default::default()
    };

    let mut anonymous = client
        .watch_events(from_end(""))
        .await
        .unwrap()
        .into_inner();
    let mut bot = client
        .watch_events(from_end("bot"))
        .await
        .unwrap()
        .into_inner();
    ingest_concurrently(&core, 10..12, 1).await;
    for stream in [&mut anonymous, &mut bot] {
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(stream.next().await.unwrap().unwrap());
        }
        assert_eq!(
            event_ids(&got),
            ids(10..12),
            "only what came after the call"
        );
    }
    drop((anonymous, bot));

    // Restarted before any ack: the bot resumes at the head it first saw.
    ingest_concurrently(&core, 12..13, 1).await;
    let restarted = read_some(&mut client, from_end("bot"), 3).await;
    assert_eq!(event_ids(&restarted), ids(10..13));

    // Acknowledged: from_end no longer matters.
    let ack = pb::AckEventsRequest {
        consumer: "bot".into(),
        sequence: restarted[1].sequence,
    };
    client.ack_events(ack).await.unwrap();
    let resumed = read_some(&mut client, from_end("bot"), 1).await;
    assert_eq!(event_ids(&resumed), ids(12..13));

    // An explicit position wins over both.
    let explicit = pb::WatchEventsRequest {
        after_sequence: restarted[0].sequence,
        ..from_end("bot")
    };
    let replayed = read_some(&mut client, explicit, 2).await;
    assert_eq!(event_ids(&replayed), ids(11..13));

    // Without from_end a new consumer still starts at the beginning.
    let fresh = pb::WatchEventsRequest {
        consumer: "archive".into(),
        ..Default::default()
    };
    let all = read_some(&mut client, fresh, 13).await;
    assert_eq!(event_ids(&all), ids(0..13));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_end_starts_at_the_head_on_sqlite() {
    from_end_starts_where_nothing_else_says_to(spawn_core().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_end_starts_at_the_head_on_postgres() {
    let db = crate::postgres_db::TestDatabase::create().await;
    let core = spawn_core_on(tempfile::tempdir().unwrap(), &db.url).await;
    from_end_starts_where_nothing_else_says_to(core).await;
}

/// A seek moves a consumer back to replay (or ahead to skip); the listing
/// shows each consumer's position and lag; bad seeks are refused as acks are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sought_consumer_replays_from_there_and_is_listed_with_its_lag() {
    let core = spawn_core().await;
    ingest_concurrently(&core, 0..6, 1).await;
    let mut client = core.messaging().await;
    let bot = || pb::WatchEventsRequest {
        consumer: "bot".into(),
        ..Default::default()
    };
    let all = read_some(&mut client, bot(), 6).await;
    let (head, second) = (all[5].sequence, all[1].sequence);
    let ack = pb::AckEventsRequest {
        consumer: "bot".into(),
        sequence: head,
    };
    client.ack_events(ack).await.unwrap();

    let seek = |consumer: &str, sequence| pb::SeekConsumerRequest {
        consumer: consumer.into(),
        sequence,
    };
    let moved = client.seek_consumer(seek("bot", second)).await.unwrap();
    assert_eq!(moved.into_inner().sequence, second);
    let replayed = read_some(&mut client, bot(), 4).await;
    assert_eq!(event_ids(&replayed), ids(2..6));

    let listed = client
        .list_consumers(pb::ListConsumersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.head, head);
    assert_eq!(
        listed.consumers,
        vec![pb::ConsumerPosition {
            consumer: "bot".into(),
            sequence: second,
            lag: head - second,
        }]
    );

    let beyond = client.seek_consumer(seek("bot", head + 1)).await;
    assert_eq!(beyond.unwrap_err().code(), tonic::Code::OutOfRange);
    let unnamed = client.seek_consumer(seek("a b", 0)).await;
    assert_eq!(unnamed.unwrap_err().code(), tonic::Code::InvalidArgument);
    let reset = client.seek_consumer(seek("bot", 0)).await.unwrap();
    assert_eq!(reset.into_inner().sequence, 0);
}

/// A store that counts how many log entries readers have taken from it.
#[derive(Debug)]
struct CountingStore {
    inner: Arc<dyn Store>,
    fetched: AtomicU64,
}

#[async_trait]
impl Store for CountingStore {
    async fn ingest(&self, delivery: Delivery) -> Result<Receipt, StoreError> {
        self.inner.ingest(delivery).await
    }
    async fn message(&self, lookup: &MessageLookup) -> Result<Option<Message>, StoreError> {
        self.inner.message(lookup).await
    }
    async fn conversation_messages(
        &self,
        id: &str,
        size: usize,
        cursor: Option<&str>,
    ) -> Result<MessagePage, StoreError> {
        self.inner.conversation_messages(id, size, cursor).await
    }
    async fn events_after(
        &self,
        after: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self.inner.events_after(after, filter, limit).await?;
        self.fetched
            .fetch_add(events.len() as u64, Ordering::SeqCst);
        Ok(events)
    }
    fn committed(&self) -> watch::Receiver<u64> {
        self.inner.committed()
    }
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.inner.conversation(id).await
    }
    async fn contact_conversations(
        &self,
        contact: &str,
        phone: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.inner
            .contact_conversations(contact, phone, limit)
            .await
    }
    async fn last_inbound_at(&self, phone: &str, contact: &str) -> Result<Option<i64>, StoreError> {
        self.inner.last_inbound_at(phone, contact).await
    }
    async fn begin_send(&self, intent: SendIntent) -> Result<SendClaim, StoreError> {
        self.inner.begin_send(intent).await
    }
    async fn finish_send(
        &self,
        gateway_id: &GatewayId,
        result: SendResult,
    ) -> Result<Message, StoreError> {
        self.inner.finish_send(gateway_id, result).await
    }
    async fn release_send(&self, gateway_id: &GatewayId) -> Result<bool, StoreError> {
        self.inner.release_send(gateway_id).await
    }
    async fn ack(&self, consumer: &str, sequence: u64) -> Result<u64, StoreError> {
        self.inner.ack(consumer, sequence).await
    }
    async fn seek(&self, consumer: &str, sequence: u64) -> Result<u64, StoreError> {
        self.inner.seek(consumer, sequence).await
    }
    async fn consumer_position(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        self.inner.consumer_position(consumer).await
    }
    async fn check_writable(&self) -> Result<(), StoreError> {
        self.inner.check_writable().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_fed_from_the_log_not_from_a_growing_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("slow.db").display());
    let store = Arc::new(CountingStore {
        inner: Arc::new(kapso_core::store::sqlite::SqliteStore::open(&url).unwrap()),
        fetched: AtomicU64::new(0),
    });
    const BACKLOG: u64 = 5_000;
    for chunk in 0..BACKLOG / 500 {
        let events = (chunk * 500..(chunk + 1) * 500)
            .map(|n| NewEvent {
                event_type: EventType::MessageReceived,
                message_id: Wamid::parse(&format!("wamid.slow-{n}")),
                direction: Direction::Inbound,
                payload_json: "{}".into(),
                ..Default::default()
            })
            .collect();
        store.ingest(Delivery { key: None, events }).await.unwrap();
    }
    let (_closing_tx, closing) = watch::channel(false);
    let mut stream = kapso_core::watch::follow(store.clone(), 0, EventFilter::default(), closing);
    // The consumer takes 50 events, slowly; the reader must stay within a page
    // and a channel's worth ahead of it, whatever the backlog.
    for _ in 0..50 {
        stream.next().await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ahead = store.fetched.load(Ordering::SeqCst) - 50;
    assert!(
        ahead <= 256 + 64 + 1,
        "read {ahead} events ahead of a slow consumer (backlog {BACKLOG})"
    );
    // And it still gets everything, in order, when it catches up.
    let mut last = 0;
    for _ in 50..BACKLOG {
        let event = stream.next().await.unwrap().unwrap();
        assert!(event.sequence > last);
        last = event.sequence;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_holds_a_bounded_number_of_streams() {
    let core = spawn_core().await;
    // One channel is one HTTP/2 connection: every call below shares it.
    let mut client = core.messaging().await;
    let bound = kapso_core::server::MAX_STREAMS_PER_CONNECTION as usize;
    let mut watches = Vec::with_capacity(bound);
    for _ in 0..bound {
        let watch = tokio::time::timeout(
            Duration::from_secs(30),
            client.watch_events(pb::WatchEventsRequest::default()),
        )
        .await
        .expect("a watch within the bound opens")
        .unwrap();
        watches.push(watch.into_inner());
    }
    // Past the bound a call waits for a free stream, however long it would take.
    let mut extra = client.clone();
    let get = tokio::spawn(async move {
        extra
            .get_message(pb::GetMessageRequest {
                message_id: "wamid.unknown".into(),
            })
            .await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!get.is_finished(), "a stream past the bound was served");
    // Ending one watch frees its stream for the waiting call.
    drop(watches.pop());
    let answer = tokio::time::timeout(Duration::from_secs(30), get)
        .await
        .expect("the waiting call runs once a stream is free")
        .unwrap();
    assert_eq!(answer.unwrap_err().code(), tonic::Code::NotFound);
}
