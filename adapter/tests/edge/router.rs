//! The adapter's router driven in-process (`oneshot`), against a fake core
//! served over real gRPC on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use clap::Parser as _;
use http_body_util::BodyExt as _;
use kapso_adapter::{AppState, Config, router};
use kapso_gateway_proto::v1::ingest_server::{Ingest, IngestServer};
use kapso_gateway_proto::v1::{
    Disposition, EventOutcome, IngestEventsRequest, IngestEventsResponse,
};
use kapso_signature::sign;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tower::ServiceExt as _;

const SECRET: &str = "test-secret-not-real";
const OLD_SECRET: &str = "old-test-secret-not-real";
const WEBHOOK: &str = "/api/whatsapp/webhook";
const BODY_LIMIT: usize = 4096;

/// How the fake core answers `IngestEvents`.
#[derive(Debug, Clone, Copy)]
enum Core {
    /// Stores every event as new.
    Stores,
    /// Every event but the first was seen before.
    StoresWithDuplicates,
    /// The delivery key was stored before.
    DuplicateDelivery,
    /// Fails with this gRPC code.
    Fails(tonic::Code),
    /// Never answers within the adapter's deadline.
    Hangs,
}

#[derive(Debug)]
struct FakeCore {
    behaviour: Core,
    calls: Arc<Mutex<Vec<IngestEventsRequest>>>,
}

#[tonic::async_trait]
impl Ingest for FakeCore {
    async fn ingest_events(
        &self,
        request: tonic::Request<IngestEventsRequest>,
    ) -> Result<tonic::Response<IngestEventsResponse>, tonic::Status> {
        let request = request.into_inner();
        let count = request.events.len();
        self.calls.lock().unwrap().push(request);
        let outcome = |i: usize, duplicate: bool| EventOutcome {
            disposition: if duplicate {
                Disposition::Duplicate
            } else {
                Disposition::New
            }
            .into(),
            sequence: if duplicate { 0 } else { i as u64 + 1 },
        };
        let response = match self.behaviour {
            Core::Stores => IngestEventsResponse {
                outcomes: (0..count).map(|i| outcome(i, false)).collect(),
                duplicate_delivery: false,
            },
            Core::StoresWithDuplicates => IngestEventsResponse {
                outcomes: (0..count).map(|i| outcome(i, i > 0)).collect(),
                duplicate_delivery: false,
            },
            Core::DuplicateDelivery => IngestEventsResponse {
                outcomes: (0..count).map(|i| outcome(i, true)).collect(),
                duplicate_delivery: true,
            },
            Core::Fails(code) => return Err(tonic::Status::new(code, "fake core failure")),
            Core::Hangs => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                unreachable!("the adapter gives up first")
            }
        };
        Ok(tonic::Response::new(response))
    }
}

struct TestApp {
    router: Router,
    calls: Arc<Mutex<Vec<IngestEventsRequest>>>,
}

impl TestApp {
    fn calls(&self) -> Vec<IngestEventsRequest> {
        self.calls.lock().unwrap().clone()
    }

    async fn send(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, headers, json)
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }
}

fn config(core_url: &str) -> Config {
    Config::try_parse_from([
        "kapso-adapter",
        "--webhook-secret",
        &format!("{SECRET},{OLD_SECRET}"),
        "--core-grpc-url",
        core_url,
        "--core-timeout-ms",
        "300",
        "--body-limit-bytes",
        &BODY_LIMIT.to_string(),
        "--retry-after-secs",
        "7",
    ])
    .unwrap()
}

fn app_for(core_url: &str, calls: Arc<Mutex<Vec<IngestEventsRequest>>>) -> TestApp {
    let state = AppState::new(&config(core_url)).unwrap();
    let peer = SocketAddr::from(([203, 0, 113, 9], 45_000));
    TestApp {
        router: router(state).layer(MockConnectInfo(peer)),
        calls,
    }
}

/// The adapter in front of a fake core answering as `behaviour`, with gRPC health SERVING.
async fn spawn_app(behaviour: Core) -> TestApp {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<IngestServer<FakeCore>>()
        .await;
    let core = FakeCore {
        behaviour,
        calls: calls.clone(),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(IngestServer::new(core))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    app_for(&format!("http://{addr}"), calls)
}

/// The adapter pointed at a port where nothing listens.
async fn spawn_app_without_core() -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    app_for(&format!("http://{addr}"), Arc::default())
}

fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    std::fs::read(format!("{path}{name}")).unwrap()
}

fn webhook_request(signature: Option<String>) -> http::request::Builder {
    let mut builder = Request::post(WEBHOOK)
        .header("content-type", "application/json")
        .header("x-webhook-event", "whatsapp.message.received")
        .header("x-idempotency-key", "7f1c7f4e-0000-4000-8000-000000000001")
        .header("x-webhook-payload-version", "v2");
    if let Some(signature) = signature {
        builder = builder.header("x-webhook-signature", signature);
    }
    builder
}

fn signed(body: &[u8]) -> Request<Body> {
    webhook_request(Some(sign(SECRET, body)))
        .body(Body::from(body.to_vec()))
        .unwrap()
}

#[tokio::test]
async fn signed_delivery_is_forwarded_and_answered_200() {
    let app = spawn_app(Core::Stores).await;
    let body = fixture("received_text.json");
    let (status, _, json) = app.send(signed(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json,
        serde_json::json!({"status": "ok", "events": 1, "duplicates": 0})
    );
    let calls = app.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].delivery_key,
        "7f1c7f4e-0000-4000-8000-000000000001"
    );
    assert_eq!(calls[0].payload_version, "v2");
    let event = &calls[0].events[0];
    assert_eq!(event.event_type, "whatsapp.message.received");
    assert_eq!(event.message_id, "wamid.123");
    assert_eq!(event.payload_json.as_bytes(), body);
}

#[tokio::test]
async fn missing_signature_is_401_and_nothing_forwarded() {
    let app = spawn_app(Core::Stores).await;
    let body = fixture("received_text.json");
    let request = webhook_request(None).body(Body::from(body)).unwrap();
    let (status, _, json) = app.send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "missing X-Webhook-Signature header");
    assert!(app.calls().is_empty());
}

#[tokio::test]
async fn bad_signatures_are_401_and_nothing_forwarded() {
    let app = spawn_app(Core::Stores).await;
    let body = fixture("received_text.json");
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    for (body, signature) in [
        (body.clone(), sign("some-other-test-secret", &body)),
        (body.clone(), "not-hex".to_owned()),
        (tampered, sign(SECRET, &body)),
    ] {
        let request = webhook_request(Some(signature))
            .body(Body::from(body))
            .unwrap();
        let (status, _, json) = app.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(json["error"], "invalid signature");
    }
    assert!(app.calls().is_empty());
}

#[tokio::test]
async fn previous_secret_is_accepted_during_rotation() {
    let app = spawn_app(Core::Stores).await;
    let body = fixture("received_image.json");
    let request = webhook_request(Some(format!("sha256={}", sign(OLD_SECRET, &body))))
        .body(Body::from(body))
        .unwrap();
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.calls().len(), 1);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_nothing_forwarded() {
    let app = spawn_app(Core::Stores).await;
    for (body, expected) in [
        (&b"{\"message\": "[..], "not valid JSON"),
        (b"\"just a string\"", "object or array"),
        (
            br#"{"type":"whatsapp.message.received","batch":true}"#,
            "data",
        ),
    ] {
        let (status, _, json) = app.send(signed(body)).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        let error = json["error"].as_str().unwrap();
        assert!(error.contains(expected), "{error}");
    }
    assert!(app.calls().is_empty());
}

#[tokio::test]
async fn batch_header_without_data_is_200_counted_and_nothing_forwarded() {
    let app = spawn_app(Core::Stores).await;
    let body = fixture("received_text.json");
    let request = webhook_request(Some(sign(SECRET, &body)))
        .header("x-webhook-batch", "true")
        .body(Body::from(body))
        .unwrap();
    let (status, _, json) = app.send(request).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["events"], 0);
    assert!(app.calls().is_empty());

    // Present but not an array is still malformed.
    let body = br#"{"type":"whatsapp.message.received","data":{"message":{}}}"#;
    let request = webhook_request(Some(sign(SECRET, body)))
        .header("x-webhook-batch", "true")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(app.calls().is_empty());

    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("kapso_webhook_empty_batches_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = spawn_app(Core::Stores).await;
    let body = format!(r#"{{"padding":"{}"}}"#, "x".repeat(BODY_LIMIT)).into_bytes();
    let (status, _, _) = app.send(signed(&body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(app.calls().is_empty());
}

#[tokio::test]
async fn batch_is_forwarded_as_one_call_with_all_events() {
    let app = spawn_app(Core::Stores).await;
    for name in ["batch_received.json", "legacy_batch.json"] {
        let body = fixture(name);
        let request = webhook_request(Some(sign(SECRET, &body)))
            .header("x-webhook-batch", "TRUE")
            .header("x-batch-size", "2")
            .body(Body::from(body))
            .unwrap();
        let (status, _, json) = app.send(request).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(json["events"], 2, "{name}");
    }
    let calls = app.calls();
    assert_eq!(calls.len(), 2, "one call per delivery");
    let ids: Vec<_> = calls[0]
        .events
        .iter()
        .map(|e| e.message_id.as_str())
        .collect();
    assert_eq!(ids, ["wamid.111", "wamid.112"]);
    let ids: Vec<_> = calls[1]
        .events
        .iter()
        .map(|e| e.message_id.as_str())
        .collect();
    assert_eq!(ids, ["msg-1", "msg-2"]);
}

#[tokio::test]
async fn batch_size_mismatch_is_counted_not_fatal() {
    let app = spawn_app(Core::Stores).await;
    let body = fixture("batch_received.json");
    let request = webhook_request(Some(sign(SECRET, &body)))
        .header("x-batch-size", "3")
        .body(Body::from(body))
        .unwrap();
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("kapso_webhook_batch_size_mismatches_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn empty_batch_is_200_and_nothing_forwarded() {
    let app = spawn_app(Core::Stores).await;
    let (status, _, json) = app.send(signed(b"[]")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["events"], 0);
    assert!(json["message"].as_str().unwrap().contains("nothing"));
    assert!(app.calls().is_empty());
}

#[tokio::test]
async fn core_down_answers_503_with_retry_after() {
    let app = spawn_app_without_core().await;
    let (status, headers, json) = app.send(signed(&fixture("received_text.json"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(json["status"], "error");
}

/// Log lines written at INFO and above while `f` runs on this thread.
async fn logged<F: std::future::Future>(f: F) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    f.await;
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_burst_of_503s_logs_one_warning_naming_the_core() {
    let app = spawn_app_without_core().await;
    let lines = logged(async {
        for _ in 0..5 {
            let (status, _, _) = app.send(signed(&fixture("received_text.json"))).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        }
    })
    .await;
    assert_eq!(lines.len(), 1, "{}", lines.join("\n"));
    assert!(lines[0].contains(" WARN "), "{}", lines[0]);
    assert!(
        lines[0].contains(r#"core="http://127.0.0.1:"#),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("status=503"), "{}", lines[0]);
}

#[tokio::test]
async fn core_error_answers_503_with_retry_after() {
    for code in [tonic::Code::Internal, tonic::Code::Unavailable] {
        let app = spawn_app(Core::Fails(code)).await;
        let (status, headers, _) = app.send(signed(&fixture("received_text.json"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{code:?}");
        assert_eq!(headers["retry-after"], "7");
        assert_eq!(app.calls().len(), 1);
    }
}

#[tokio::test]
async fn core_refusing_the_delivery_itself_is_413_without_retry_after() {
    for code in [tonic::Code::InvalidArgument, tonic::Code::OutOfRange] {
        let app = spawn_app(Core::Fails(code)).await;
        let (status, headers, json) = app.send(signed(&fixture("received_text.json"))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{code:?}");
        assert!(headers.get("retry-after").is_none());
        assert!(
            json["error"]
                .as_str()
                .unwrap()
                .contains("fake core failure"),
            "{json}"
        );
    }
}

#[tokio::test]
async fn a_body_under_another_event_type_is_422_and_counted() {
    let app = spawn_app(Core::Stores).await;
    let body = fixture("received_text.json");
    let request = Request::post(WEBHOOK)
        .header("x-webhook-event", "whatsapp.message.failed")
        .header("x-webhook-signature", sign(SECRET, &body))
        .body(Body::from(body))
        .unwrap();
    let (status, _, json) = app.send(request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("whatsapp.message.failed"),
        "{json}"
    );
    assert!(app.calls().is_empty());
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains(r#"kapso_webhook_requests_total{outcome="event_mismatch"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn core_timeout_answers_503_within_the_deadline() {
    let app = spawn_app(Core::Hangs).await;
    let started = std::time::Instant::now();
    let (status, headers, _) = app.send(signed(&fixture("received_text.json"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "7");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn duplicate_delivery_answers_already_processed() {
    let app = spawn_app(Core::DuplicateDelivery).await;
    let (status, _, json) = app.send(signed(&fixture("received_text.json"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json,
        serde_json::json!({"status": "ok", "message": "Already processed"})
    );
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains(r#"kapso_webhook_requests_total{outcome="duplicate"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn duplicate_events_are_counted_in_the_answer() {
    let app = spawn_app(Core::StoresWithDuplicates).await;
    let body = fixture("batch_received.json");
    let (status, _, json) = app.send(signed(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json,
        serde_json::json!({"status": "ok", "events": 2, "duplicates": 1})
    );
}

#[tokio::test]
async fn healthz_is_always_200() {
    let app = spawn_app_without_core().await;
    assert_eq!(app.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn readyz_follows_the_core_health() {
    let up = spawn_app(Core::Stores).await;
    assert_eq!(up.get("/readyz").await.0, StatusCode::OK);
    let down = spawn_app_without_core().await;
    assert_eq!(down.get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn metrics_count_requests_by_outcome() {
    let app = spawn_app(Core::Stores).await;
    app.send(signed(&fixture("received_text.json"))).await;
    let body = fixture("received_text.json");
    let unsigned = webhook_request(None).body(Body::from(body)).unwrap();
    app.send(unsigned).await;
    let (status, metrics) = app.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        r#"kapso_webhook_requests_total{outcome="ok"} 1"#,
        r#"kapso_webhook_requests_total{outcome="unauthorized"} 1"#,
        r#"kapso_webhook_signature_failures_total{reason="missing"} 1"#,
        "kapso_webhook_events_forwarded_total 1",
        "kapso_webhook_request_duration_seconds_count 2",
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
}

#[tokio::test]
async fn run_serves_while_the_core_is_down_and_stops_on_shutdown() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kapso_adapter::run(
        config("http://127.0.0.1:1"),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .unwrap();
}
