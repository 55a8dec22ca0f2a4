//! The SQLite store alone: 64 concurrent callers of `Store::ingest`, each
//! waiting for its durable commit before sending the next delivery, with no
//! HTTP or gRPC in front. Isolates the writer thread's cost per event from the
//! rest of the request path (the end-to-end figures come from kapso-loadgen).
//!
//! `cargo bench -p kapso-core --bench ingest_store` (release).
//! `KAPSO_BENCH_SECS` changes the duration of each run (default 5). Without
//! `--bench` (as under `cargo test --benches`) it only says so and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kapso_core::model::{ConversationId, Delivery, Direction, EventType, NewEvent, Wamid};
use kapso_core::store::Store;
use kapso_core::store::sqlite::SqliteStore;

/// Deliveries in flight at once, as many as kapso-loadgen's connections.
const CALLERS: usize = 64;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("ingest_store: run with `cargo bench` to measure");
        return;
    }
    let secs = std::env::var("KAPSO_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        for batch in [1, 10] {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).expect("a store"));
            let run = measure(&store, batch, Duration::from_secs(secs)).await;
            println!(
                "sqlite store, batches of {batch:>2}: {:>7.0} events/s, writer CPU {:.1} µs/event",
                run.events as f64 / run.elapsed.as_secs_f64(),
                run.writer_cpu.as_secs_f64() * 1e6 / run.events.max(1) as f64,
            );
        }
    });
}

struct Run {
    events: u64,
    elapsed: Duration,
    writer_cpu: Duration,
}

async fn measure(store: &Arc<dyn Store>, batch: usize, duration: Duration) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let (store, stop, events) = (Arc::clone(store), Arc::clone(&stop), Arc::clone(&events));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let delivery = delivery(caller, batch);
                    store.ingest(delivery).await.expect("a stored delivery");
                    events.fetch_add(batch as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // A second of warm-up: the log and its indexes past their first pages.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (events_before, cpu_before) = (events.load(Ordering::Relaxed), writer_cpu());
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    let run = Run {
        events: events.load(Ordering::Relaxed) - events_before,
        elapsed: started.elapsed(),
        writer_cpu: writer_cpu().saturating_sub(cpu_before),
    };
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.expect("a caller that finished");
    }
    run
}

/// A delivery of `batch` received messages shaped like Kapso's (about 1 KB each).
/// Message ids and the delivery key are random, as WhatsApp's and Kapso's are:
/// ids that grow in order would only ever touch the end of the unique indexes.
fn delivery(caller: usize, batch: usize) -> Delivery {
    let events = (0..batch)
        .map(|_| {
            let id = format!("wamid.HBgL{caller:011}FQIAEhgU{:016X}", rand::random::<u64>());
            let text = "Hola, necesito ayuda con mi pedido numero 12345, no ha llegado todavia";
            NewEvent {
                event_type: EventType::MessageReceived,
                message_id: Wamid::parse(&id),
                conversation_id: ConversationId::parse(&format!("conv-bench-{caller}")),
                phone_number_id: "123456789012345".into(),
                contact_phone: "16505551234".into(),
                direction: Direction::Inbound,
                message_type: "text".into(),
                text: text.into(),
                timestamp: 1_730_092_800,
                payload_json: format!(
                    r#"{{"message":{{"id":"{id}","timestamp":"1730092800","from":"16505551234","type":"text","text":{{"body":"{text}"}},"kapso":{{"direction":"inbound","status":"received","processing_status":"pending","origin":"cloud_api","has_media":false,"content":"{text}"}}}},"conversation":{{"id":"conv-bench-{caller}","phone_number":"+16505551234","status":"active","last_active_at":"2025-10-28T14:25:01Z","created_at":"2025-10-28T13:40:00Z","updated_at":"2025-10-28T14:25:01Z","metadata":{{}},"phone_number_id":"123456789012345","kapso":{{"contact_name":"John Doe","messages_count":1}}}},"is_new_conversation":false,"phone_number_id":"123456789012345"}}"#
                ),
                ..NewEvent::default()
            }
        })
        .collect();
    Delivery {
        key: Some(format!("{:032x}", rand::random::<u128>())),
        events,
    }
}

/// CPU time of this process's `sqlite-writer` thread so far (Linux; zero elsewhere).
fn writer_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim() == "sqlite-writer")
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .sum()
}
