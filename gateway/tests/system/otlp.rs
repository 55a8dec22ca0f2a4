//! One trace per delivery across processes, exported over OTLP to a receiver
//! the test runs, on each protocol: `kapso-adapter` in front of a core in
//! another process (`kapso-gateway`'s, reached over the network), and
//! `kapso-gateway` alone, whose adapter calls its core in the process.
//!
//! A signed webhook arrives with a known `traceparent`; the adapter's server
//! span continues it, the core's `IngestEvents` span is the adapter span's
//! child, and the store commit is the core span's child.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kapso_telemetry::collector::{Collector, ReceivedSpan};
use reqwest::StatusCode;

use crate::support::{BODY, SECRET, WEBHOOK, kapso_adapter_beside, signed};

/// Longest wait for a started binary to be ready, and for the spans to arrive.
const LIMIT: Duration = Duration::from_secs(30);
const INGEST: &str = "kapso.gateway.v1.Ingest/IngestEvents";

/// `kapso-adapter`, from the same build as this crate's `kapso-gateway`:
/// the adapter crate's binary, which Cargo does not hand to this crate's tests.
fn kapso_adapter() -> String {
    let binary = kapso_adapter_beside(env!("CARGO_BIN_EXE_kapso-gateway"));
    binary.into_os_string().into_string().unwrap()
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A child process killed when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `binary` with a clean environment exporting to `endpoint` over `protocol`.
fn exporting(binary: &str, endpoint: &str, protocol: &str) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("KAPSO_WEBHOOK_SECRET", SECRET)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        // Export at once rather than every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

async fn wait_ready(webhook: &str) {
    let ready = webhook.replace(WEBHOOK, "/readyz");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{ready} never ready"
        );
        let answer = client.get(&ready).send().await;
        if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends the signed test body under `traceparent 00-{trace}-{parent}-01`.
async fn deliver(webhook: &str, trace: &str, parent: &str) {
    let response = signed(&reqwest::Client::new(), webhook, BODY)
        .header("traceparent", format!("00-{trace}-{parent}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// The adapter's server span, the core's ingest span and its store commit of
/// `trace`, each found once and parented in that order under `parent`.
fn delivery_trace<'a>(
    spans: &'a [ReceivedSpan],
    trace: &str,
    parent: &str,
) -> Option<[&'a ReceivedSpan; 3]> {
    let of_trace = |name: &str| {
        let mut found = spans
            .iter()
            .filter(|s| s.trace_id == trace && s.name == name);
        let first = found.next()?;
        found.next().is_none().then_some(first)
    };
    let webhook = of_trace("POST /api/whatsapp/webhook")?;
    let ingest = of_trace(INGEST)?;
    let commit = of_trace("store_commit")?;
    (webhook.parent_span_id == parent).then_some([webhook, ingest, commit])
}

async fn one_trace_per_delivery(collector: Collector, endpoint: String, protocol: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (gateway_http, gateway_grpc, adapter_http) = (free_port(), free_port(), free_port());
    let gateway = exporting(env!("CARGO_BIN_EXE_kapso-gateway"), &endpoint, protocol)
        .env("ADAPTER_LISTEN_ADDR", gateway_http.to_string())
        .env("CORE_LISTEN_ADDR", gateway_grpc.to_string())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("gateway.db").display()),
        )
        .env("CORE_METRICS_ADDR", "off")
        .env("KAPSO_API_BASE_URL", "http://127.0.0.1:9/unused")
        .spawn()
        .map(Process)
        .expect("start kapso-gateway");
    let adapter = exporting(&kapso_adapter(), &endpoint, protocol)
        .env("ADAPTER_LISTEN_ADDR", adapter_http.to_string())
        .env("CORE_GRPC_URL", format!("http://{gateway_grpc}"))
        .spawn()
        .map(Process)
        .expect("start kapso-adapter");
    let through_adapter = format!("http://{adapter_http}{WEBHOOK}");
    let through_gateway = format!("http://{gateway_http}{WEBHOOK}");
    wait_ready(&through_gateway).await;
    wait_ready(&through_adapter).await;

    let apart = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let together = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    deliver(&through_adapter, apart.0, apart.1).await;
    // Another delivery key: the same body under the first key would be a duplicate.
    let response = signed(&reqwest::Client::new(), &through_gateway, BODY)
        .header("x-idempotency-key", "00000000-0000-4000-8000-000000000002")
        .header(
            "traceparent",
            format!("00-{}-{}-01", together.0, together.1),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let spans = collector
        .wait_for(LIMIT, |spans| {
            delivery_trace(spans, apart.0, apart.1).is_some()
                && delivery_trace(spans, together.0, together.1).is_some()
        })
        .await;

    let [webhook, ingest, commit] = delivery_trace(&spans, apart.0, apart.1)
        .unwrap_or_else(|| panic!("no whole trace {apart:?} in {spans:#?}"));
    assert_eq!(webhook.service, "kapso-adapter");
    assert_eq!(webhook.kind, 2, "server");
    assert_eq!(webhook.attribute("http.response.status_code"), Some("200"));
    assert_eq!(
        ingest.service, "kapso-gateway",
        "the core across the network"
    );
    assert_eq!(ingest.kind, 2, "server");
    assert_eq!(ingest.parent_span_id, webhook.span_id);
    assert_eq!(commit.parent_span_id, ingest.span_id);

    let [webhook, ingest, commit] = delivery_trace(&spans, together.0, together.1)
        .unwrap_or_else(|| panic!("no whole trace {together:?} in {spans:#?}"));
    assert_eq!(webhook.service, "kapso-gateway");
    assert_eq!(ingest.service, "kapso-gateway");
    assert_eq!(ingest.parent_span_id, webhook.span_id);
    assert_eq!(commit.parent_span_id, ingest.span_id);

    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains("hola") && !value.contains(SECRET),
                "{key}={value:?} on {}",
                span.name
            );
        }
    }
    drop((adapter, gateway));
}

#[tokio::test]
async fn a_delivery_is_one_trace_over_otlp_grpc() {
    let (collector, endpoint) = Collector::grpc().await;
    one_trace_per_delivery(collector, endpoint, "grpc").await;
}

#[tokio::test]
async fn a_delivery_is_one_trace_over_otlp_http_protobuf() {
    let (collector, endpoint) = Collector::http().await;
    one_trace_per_delivery(collector, endpoint, "http/protobuf").await;
}

#[tokio::test]
async fn probes_are_not_traced() {
    let (collector, endpoint) = Collector::http().await;
    let adapter_http = free_port();
    let adapter = exporting(&kapso_adapter(), &endpoint, "http/protobuf")
        .env("ADAPTER_LISTEN_ADDR", adapter_http.to_string())
        .env("CORE_GRPC_URL", format!("http://{}", free_port()))
        .spawn()
        .map(Process)
        .expect("start kapso-adapter");
    let base = format!("http://{adapter_http}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for probe in ["/healthz", "/readyz", "/metrics"] {
        client.get(format!("{base}{probe}")).send().await.unwrap();
    }
    // A webhook the core cannot take (none listens there): traced, and marked failed.
    let response = signed(&client, &format!("{base}{WEBHOOK}"), BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let spans = collector
        .wait_for(LIMIT, |spans| {
            spans.iter().any(|s| s.name == "POST /api/whatsapp/webhook")
        })
        .await;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names
            .iter()
            .all(|n| *n == "POST /api/whatsapp/webhook" || *n == "delivery"),
        "{names:?}"
    );
    let webhook = spans
        .iter()
        .find(|s| s.name == "POST /api/whatsapp/webhook")
        .unwrap();
    assert_eq!(webhook.attribute("http.response.status_code"), Some("503"));
    drop(adapter);
}
