//! Ingest throughput through gRPC `IngestEvents`: 64 concurrent clients each
//! sending single-event deliveries for 10 s, against one core on PostgreSQL,
//! two cores on one PostgreSQL database, and one core on SQLite.
//!
//! `cargo bench -p kapso-core --bench ingest_postgres` (release). Uses the test
//! server (`KAPSO_TEST_POSTGRES_URL`, default 127.0.0.1:5432) on a fresh
//! database. `KAPSO_BENCH_SECS` changes the duration and `KAPSO_BENCH_BATCH`
//! the events per delivery (1 by default; Kapso batches up to 100). Without
//! `--bench` (as under `cargo test --benches`) it only says so and exits.

#[path = "../tests/service/postgres_db/mod.rs"]
mod postgres_db;

use std::time::{Duration, Instant};

use clap::Parser as _;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::ingest_client::IngestClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// Deliveries in flight at once.
const CLIENTS: usize = 64;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("ingest_postgres: run with `cargo bench` to measure");
        return;
    }
    let secs = env_number("KAPSO_BENCH_SECS").unwrap_or(10) as u64;
    let batch = env_number("KAPSO_BENCH_BATCH").unwrap_or(1).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let duration = Duration::from_secs(secs);
        let db = postgres_db::TestDatabase::create().await;
        let one = start_core(&db.url).await;
        report(
            "postgres, 1 core",
            measure(std::slice::from_ref(&one.0), duration, batch).await,
        );
        let two = start_core(&db.url).await;
        report(
            "postgres, 2 cores",
            measure(&[one.0.clone(), two.0.clone()], duration, batch).await,
        );
        drop((one, two));

        let dir = tempfile::tempdir().expect("a temporary directory");
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        let core = start_core(&sqlite).await;
        report(
            "sqlite, 1 core",
            measure(std::slice::from_ref(&core.0), duration, batch).await,
        );
    });
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// A core serving until the sender is dropped.
async fn start_core(database_url: &str) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let config = kapso_core::Config::try_parse_from([
        "kapso-core",
        "--database-url",
        database_url,
        "--metrics-addr",
        "off",
    ])
    .expect("a valid config");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kapso_core::run(config, listener, async {
        let _ = stopped.await;
    }));
    (url, stop)
}

struct Run {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Runs [`CLIENTS`] senders spread over `cores` for `duration`, each sending
/// deliveries of `batch` events; latencies are per delivery.
async fn measure(cores: &[String], duration: Duration, batch: usize) -> Run {
    let mut channels: Vec<IngestClient<Channel>> = Vec::new();
    for url in cores {
        channels.push(connect(url).await);
    }
    let run = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let mut ingest = channels[client % channels.len()].clone();
            let run = run.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0usize;
                while Instant::now() < until {
                    let key = format!("{run}.{client}.{i}");
                    let request = pb::IngestEventsRequest {
                        events: (0..batch)
                            .map(|n| event(&format!("wamid.{key}.{n}"), i))
                            .collect(),
                        delivery_key: key,
                        ..Default::default()
                    };
                    let sent = Instant::now();
                    ingest.ingest_events(request).await.expect("ingest");
                    latencies.push(sent.elapsed());
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a sender"));
    }
    Run {
        events: latencies.len() * batch,
        elapsed: started.elapsed(),
        latencies,
    }
}

async fn connect(url: &str) -> IngestClient<Channel> {
    for _ in 0..100 {
        if let Ok(client) = IngestClient::connect(url.to_owned()).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("core at {url} never accepted connections")
}

/// A realistic inbound text, about 300 bytes of payload.
fn event(wamid: &str, i: usize) -> pb::InboundEvent {
    pb::InboundEvent {
        event_type: "whatsapp.message.received".into(),
        message_id: wamid.into(),
        conversation_id: format!("conv-{}", i % 97),
        phone_number_id: "647015955153740".into(),
        contact_phone: "15551234567".into(),
        direction: pb::Direction::Inbound as i32,
        message_type: "text".into(),
        text: "Hello, I would like to know where my order is".into(),
        timestamp: 1_700_000_000,
        payload_json: format!(
            r#"{{"message":{{"id":"{wamid}","timestamp":"1700000000","type":"text","from":"15551234567","text":{{"body":"Hello, I would like to know where my order is"}}}},"conversation":{{"id":"conv-{}"}},"phone_number_id":"647015955153740"}}"#,
            i % 97
        ),
        ..Default::default()
    }
}

fn report(name: &str, mut run: Run) {
    run.latencies.sort_unstable();
    let at = |q: f64| {
        let index = ((run.latencies.len() as f64 - 1.0) * q).round() as usize;
        run.latencies.get(index).copied().unwrap_or_default()
    };
    println!(
        "{name:<18} {:>7.0} events/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} events)",
        run.events as f64 / run.elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        run.events
    );
}
