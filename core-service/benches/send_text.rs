//! `SendText` throughput and latency through gRPC against a local fake Kapso
//! that answers instantly: what the core itself costs per send (validation,
//! idempotency claim, the HTTP call, recording the outcome durably).
//!
//! `cargo bench -p kapso-core --bench send_text` (release; SQLite on a
//! temporary file). `KAPSO_BENCH_SECS` changes the 10 s, `KAPSO_BENCH_CLIENTS`
//! the 64 concurrent callers. Without `--bench` it only says so and exits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use clap::Parser as _;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use tokio::net::TcpListener;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("send_text: run with `cargo bench` to measure");
        return;
    }
    let secs = env_or("KAPSO_BENCH_SECS", 10);
    let clients = env_or("KAPSO_BENCH_CLIENTS", 64) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let kapso = fake_kapso().await;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database_url = format!("sqlite://{}", dir.path().join("send.db").display());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let config = kapso_core::Config::try_parse_from([
            "kapso-core",
            "--database-url",
            &database_url,
            "--metrics-addr",
            "off",
            "--kapso-api-base-url",
            &kapso,
            "--kapso-api-token",
            "bench-token-not-real",
            "--kapso-phone-number-id",
            "123456789012345",
        ])
        .expect("a valid config");
        tokio::spawn(kapso_core::run(config, listener, std::future::pending()));
        let client = connect(&url).await;

        let until = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = 0u64;
                    while Instant::now() < until {
                        let request = pb::SendTextRequest {
                            to: "+15551234567".into(),
                            text: format!("Su pedido {c}-{i} va en camino"),
                            idempotency_key: format!("bench-{c}-{i}"),
                            ..Default::default()
                        };
                        let sent = Instant::now();
                        let reply = client.send_text(request).await.expect("SendText");
                        assert_eq!(reply.into_inner().message.expect("a message").status, pb::MessageStatus::Sent as i32);
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
        let elapsed = started.elapsed();
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
        println!(
            "send_text, sqlite, {clients} callers: {:.0} sends/s  p50 {:.2} ms  p99 {:.2} ms  ({} sends)",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            at(0.5),
            at(0.99),
            latencies.len()
        );
    });
}

/// Kapso's send endpoint answering at once with a fresh wamid.
async fn fake_kapso() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let app = Router::new().route(
        "/meta/whatsapp/v24.0/{phone_number_id}/messages",
        post(|| async {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            axum::Json(serde_json::json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": "15551234567", "wa_id": "15551234567"}],
                "messages": [{"id": format!("wamid.bench-{n}")}],
            }))
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn connect(url: &str) -> MessagingClient<tonic::transport::Channel> {
    for _ in 0..100 {
        if let Ok(client) = MessagingClient::connect(url.to_owned()).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("core at {url} never accepted connections")
}
