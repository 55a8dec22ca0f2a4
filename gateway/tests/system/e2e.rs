//! End to end over real sockets: the adapter on 127.0.0.1:0 in front of a real
//! core on 127.0.0.1:0 with a temporary SQLite database. What a webhook answer
//! promises is checked by reading the core's event log and messages back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser as _;
use futures::StreamExt as _;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use kapso_signature::sign;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::fixture;

const SECRET: &str = "e2e-secret-not-real";

/// A core serving on a fixed address until stopped.
struct Core {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Core {
    async fn start(listener: TcpListener, database_url: &str) -> Core {
        let addr = listener.local_addr().unwrap();
        let config = kapso_core::Config::try_parse_from([
            "kapso-core",
            "--database-url",
            database_url,
            "--kapso-api-base-url",
            "http://127.0.0.1:9/unused",
        ])
        .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(kapso_core::run(config, listener, async {
            let _ = stopped.await;
        }));
        Core {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn shut_down(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Adapter and core on port 0 over a temporary database.
struct App {
    webhook_url: String,
    core: Option<Core>,
    database_url: String,
    http: reqwest::Client,
    _adapter: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn spawn_app() -> App {
    spawn_app_with(&[]).await
}

/// As [`spawn_app`], the adapter configured with `extra` flags as well.
async fn spawn_app_with(extra: &[&str]) -> App {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let core = Core::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        &database_url,
    )
    .await;
    let adapter = spawn_adapter_with(&format!("http://{}", core.addr), extra).await;
    App {
        webhook_url: adapter.0,
        core: Some(core),
        database_url,
        http: reqwest::Client::new(),
        _adapter: adapter.1,
        _dir: dir,
    }
}

async fn spawn_adapter(core_url: &str) -> (String, JoinHandle<anyhow::Result<()>>) {
    spawn_adapter_with(core_url, &[]).await
}

async fn spawn_adapter_with(
    core_url: &str,
    extra: &[&str],
) -> (String, JoinHandle<anyhow::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/api/whatsapp/webhook",
        listener.local_addr().unwrap()
    );
    let mut args = vec![
        "kapso-adapter",
        "--webhook-secret",
        SECRET,
        "--core-grpc-url",
        core_url,
        "--retry-after-secs",
        "7",
    ];
    if !extra.contains(&"--core-timeout-ms") {
        args.extend(["--core-timeout-ms", "2000"]);
    }
    args.extend(extra);
    let config = kapso_adapter::Config::try_parse_from(args).unwrap();
    (
        url,
        tokio::spawn(kapso_adapter::run(config, listener, std::future::pending())),
    )
}

/// One webhook request as Kapso would send it.
struct Delivery<'a> {
    body: &'a [u8],
    event: &'a str,
    key: String,
    batch_size: Option<usize>,
}

impl<'a> Delivery<'a> {
    fn new(body: &'a [u8], event: &'a str, key: impl Into<String>) -> Self {
        Delivery {
            body,
            event,
            key: key.into(),
            batch_size: None,
        }
    }

    fn batch(mut self, size: usize) -> Self {
        self.batch_size = Some(size);
        self
    }
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl App {
    async fn post(&self, delivery: &Delivery<'_>) -> Answer {
        self.post_signed(delivery, &sign(SECRET, delivery.body))
            .await
    }

    async fn post_signed(&self, delivery: &Delivery<'_>, signature: &str) -> Answer {
        let mut request = self
            .http
            .post(&self.webhook_url)
            .header("content-type", "application/json")
            .header("x-webhook-signature", signature)
            .header("x-idempotency-key", &delivery.key)
            .header("x-webhook-payload-version", "v2")
            .body(delivery.body.to_vec());
        if !delivery.event.is_empty() {
            request = request.header("x-webhook-event", delivery.event);
        }
        if let Some(size) = delivery.batch_size {
            request = request
                .header("x-webhook-batch", "true")
                .header("x-batch-size", size.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            retry_after,
            body,
        }
    }

    async fn messaging(&self) -> MessagingClient<tonic::transport::Channel> {
        let addr = self.core.as_ref().unwrap().addr;
        MessagingClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
    }

    /// The whole event log, read up to a marker event posted last: everything
    /// stored before the marker is in the result, so "stored once" is exact.
    async fn log(&self) -> Vec<pb::Event> {
        let marker_id = format!("wamid.marker-{}", uuid_like());
        let marker = format!(
            r#"{{"message":{{"id":"{marker_id}","type":"text","kapso":{{"direction":"inbound"}}}}}}"#
        );
        let answer = self
            .post(&Delivery::new(
                marker.as_bytes(),
                "test.marker",
                uuid_like(),
            ))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "marker not stored: {:?}",
            answer.body
        );
        let request = pb::WatchEventsRequest {
            after_sequence: 0,
            ..Default::default()
        };
        let mut stream = self
            .messaging()
            .await
            .watch_events(request)
            .await
            .unwrap()
            .into_inner();
        let mut events = Vec::new();
        while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
        {
            let event = event.unwrap();
            if event.event_type == "test.marker"
                && event.message.as_ref().is_some_and(|m| m.id == marker_id)
            {
                return events;
            }
            if event.event_type != "test.marker" {
                events.push(event);
            }
        }
        panic!("stream ended before the marker");
    }

    async fn message(&self, id: &str) -> pb::Message {
        let request = pb::GetMessageRequest {
            message_id: id.into(),
        };
        self.messaging()
            .await
            .get_message(request)
            .await
            .unwrap()
            .into_inner()
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test]
async fn every_fixture_is_acknowledged_and_stored_verbatim() {
    let app = spawn_app().await;
    let cases: [(&str, &str, Option<usize>, usize); 13] = [
        ("received_text.json", "whatsapp.message.received", None, 1),
        ("received_image.json", "whatsapp.message.received", None, 1),
        ("received_audio.json", "whatsapp.message.received", None, 1),
        (
            "received_location.json",
            "whatsapp.message.received",
            None,
            1,
        ),
        (
            "received_button_reply.json",
            "whatsapp.message.received",
            None,
            1,
        ),
        (
            "received_reaction.json",
            "whatsapp.message.received",
            None,
            1,
        ),
        ("sent.json", "whatsapp.message.sent", None, 1),
        ("delivered.json", "whatsapp.message.delivered", None, 1),
        ("read.json", "whatsapp.message.read", None, 1),
        ("failed.json", "whatsapp.message.failed", None, 1),
        (
            "batch_received.json",
            "whatsapp.message.received",
            Some(2),
            2,
        ),
        ("legacy_single.json", "whatsapp.message.received", None, 1),
        ("legacy_batch.json", "whatsapp.message.received", Some(2), 2),
    ];
    let mut expected = Vec::new();
    for (name, event, batch, count) in cases {
        let body = fixture(name);
        let mut delivery = Delivery::new(&body, event, format!("key-{name}"));
        if let Some(size) = batch {
            delivery = delivery.batch(size);
        }
        let answer = app.post(&delivery).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {:?}", answer.body);
        assert_eq!(answer.body["events"], count, "{name}: {:?}", answer.body);
        expected.push((name, body, count));
    }
    // Meta's own format is not a Kapso shape, but it is stored, never refused.
    let meta = fixture("meta_text.json");
    assert_eq!(
        app.post(&Delivery::new(&meta, "", "key-meta")).await.status,
        StatusCode::OK
    );

    let log = app.log().await;
    let total: usize = expected.iter().map(|(_, _, n)| n).sum::<usize>() + 1;
    assert_eq!(log.len(), total);
    assert!(
        log.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "sequences strictly increase"
    );
    let mut events = log.iter();
    for (name, body, count) in &expected {
        let body = std::str::from_utf8(body).unwrap();
        for _ in 0..*count {
            let event = events.next().unwrap();
            if *count == 1 && !name.starts_with("legacy_batch") {
                assert_eq!(
                    event.payload_json, body,
                    "{name}: the payload is the body, byte for byte"
                );
            } else {
                assert!(
                    body.contains(&event.payload_json),
                    "{name}: each item's exact bytes"
                );
            }
        }
    }
    assert_eq!(log[0].event_type, "whatsapp.message.received");
    assert_eq!(log[0].conversation_id, "conv_123");
    assert_eq!(log[0].message.as_ref().unwrap().text, "Hello");
}

#[tokio::test]
async fn duplicate_delivery_is_stored_once_and_answered_already_processed() {
    let app = spawn_app().await;
    let body = fixture("received_text.json");
    let delivery = Delivery::new(&body, "whatsapp.message.received", "dup-key");
    let first = app.post(&delivery).await;
    assert_eq!(
        (first.status, first.body["events"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let again = app.post(&delivery).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["message"], "Already processed");
    assert_eq!(app.log().await.len(), 1);
}

#[tokio::test]
async fn batch_resent_message_by_message_under_new_keys_is_stored_once() {
    let app = spawn_app().await;
    let batch = fixture("batch_received.json");
    assert_eq!(
        app.post(&Delivery::new(&batch, "whatsapp.message.received", "batch-key").batch(2))
            .await
            .status,
        StatusCode::OK
    );
    let parsed: Value = serde_json::from_slice(&batch).unwrap();
    for (i, item) in parsed["data"].as_array().unwrap().iter().enumerate() {
        let single = serde_json::to_vec(item).unwrap();
        let answer = app
            .post(&Delivery::new(
                &single,
                "whatsapp.message.received",
                format!("resend-{i}"),
            ))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body["duplicates"], 1, "{:?}", answer.body);
    }
    assert_eq!(app.log().await.len(), 2);
}

#[tokio::test]
async fn out_of_order_statuses_never_move_a_message_backwards() {
    let app = spawn_app().await;
    for (name, event) in [
        ("read.json", "whatsapp.message.read"),
        ("delivered.json", "whatsapp.message.delivered"),
        ("sent.json", "whatsapp.message.sent"),
    ] {
        let body = fixture(name);
        assert_eq!(
            app.post(&Delivery::new(&body, event, name)).await.status,
            StatusCode::OK
        );
    }
    let message = app.message("wamid.456").await;
    assert_eq!(message.status, pb::MessageStatus::Read as i32);
    assert_eq!(message.direction, pb::Direction::Outbound as i32);
    let history: Vec<(i32, i64)> = message
        .status_history
        .iter()
        .map(|r| (r.status, r.timestamp))
        .collect();
    assert_eq!(
        history,
        [
            (pb::MessageStatus::Sent as i32, 1730092860),
            (pb::MessageStatus::Delivered as i32, 1730092888),
            (pb::MessageStatus::Read as i32, 1730092900),
        ]
    );
}

#[tokio::test]
async fn failed_message_keeps_meta_errors() {
    let app = spawn_app().await;
    let body = fixture("failed.json");
    assert_eq!(
        app.post(&Delivery::new(&body, "whatsapp.message.failed", "failed"))
            .await
            .status,
        StatusCode::OK
    );
    let message = app.message("wamid.789f").await;
    assert_eq!(message.status, pb::MessageStatus::Failed as i32);
    assert_eq!(message.errors[0].code, 131047);
    assert_eq!(message.errors[0].title, "Re-engagement message");
}

#[tokio::test]
async fn bad_or_missing_signature_is_401_and_stores_nothing() {
    let app = spawn_app().await;
    let body = fixture("received_text.json");
    let delivery = Delivery::new(&body, "whatsapp.message.received", "unsigned");
    let wrong = sign("another-secret-not-real", &body);
    assert_eq!(
        app.post_signed(&delivery, &wrong).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post_signed(&delivery, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    let signature = sign(SECRET, &body);
    let tampered_delivery = Delivery::new(&tampered, "whatsapp.message.received", "tampered");
    assert_eq!(
        app.post_signed(&tampered_delivery, &signature).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(app.log().await.is_empty());
    // The refused key was not consumed: the genuine delivery is still new.
    assert_eq!(app.post(&delivery).await.body["events"], 1);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_store_nothing() {
    let app = spawn_app().await;
    for body in [
        &b"{not json"[..],
        b"42",
        b"\"text\"",
        br#"{"type":"x","batch":true}"#,
    ] {
        let answer = app
            .post(&Delivery::new(
                body,
                "whatsapp.message.received",
                uuid_like(),
            ))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(app.log().await.is_empty());
}

#[tokio::test]
async fn a_signed_body_under_another_event_header_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let body = fixture("received_text.json");
    let received = Delivery::new(&body, "whatsapp.message.received", uuid_like());
    assert_eq!(app.post(&received).await.status, StatusCode::OK);

    // The same signed bytes, replayed as a failure under a fresh key.
    let forged = Delivery::new(&body, "whatsapp.message.failed", uuid_like());
    let answer = app.post(&forged).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        answer.body
    );
    let error = answer.body["error"].as_str().unwrap();
    assert!(error.contains("inbound"), "{error}");

    // A signed body that is no Kapso event at all.
    let not_an_event = Delivery::new(br#"{"foo":1}"#, "whatsapp.message.received", uuid_like());
    assert_eq!(
        app.post(&not_an_event).await.status,
        StatusCode::BAD_REQUEST
    );

    let message = app.message("wamid.123").await;
    assert_ne!(message.status, pb::MessageStatus::Failed as i32);
    let types: Vec<_> = app.log().await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["whatsapp.message.received"]);
}

/// A v2 batch of `count` received messages, each with `text_bytes` of text.
fn large_batch(prefix: &str, count: usize, text_bytes: usize) -> Vec<u8> {
    let text = "x".repeat(text_bytes);
    let items: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"message":{{"id":"wamid.{prefix}-{i}","type":"text","from":"15551234567","text":{{"body":"{text}"}},"kapso":{{"direction":"inbound"}}}},"conversation":{{"id":"conv_{prefix}"}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"type":"whatsapp.message.received","batch":true,"data":[{}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

#[tokio::test]
async fn a_delivery_beyond_what_one_core_call_takes_is_stored_whole() {
    let app = spawn_app_with(&[
        "--body-limit-bytes",
        "16777216",
        "--core-timeout-ms",
        "60000",
    ])
    .await;
    // More events than the core takes in one call.
    let many = large_batch("many", 12_000, 8);
    let delivery = Delivery::new(&many, "whatsapp.message.received", uuid_like()).batch(12_000);
    let answer = app.post(&delivery).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["events"], 12_000);
    // More bytes than one gRPC message to the core may hold.
    let heavy = large_batch("heavy", 6, 1024 * 1024);
    let heavy_delivery = Delivery::new(&heavy, "whatsapp.message.received", uuid_like()).batch(6);
    let answer = app.post(&heavy_delivery).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["events"], 6);

    // A retry of the whole delivery is de-duplicated part by part.
    let again = app.post(&delivery).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["message"], "Already processed");
    assert_eq!(app.log().await.len(), 12_006);
}

#[tokio::test]
async fn core_down_is_503_with_retry_after() {
    // A port that was just free: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (url, _adapter) = spawn_adapter(&format!("http://{addr}")).await;
    let body = fixture("received_text.json");
    let response = reqwest::Client::new()
        .post(&url)
        .header("x-webhook-signature", sign(SECRET, &body))
        .header("x-webhook-event", "whatsapp.message.received")
        .header("x-idempotency-key", "down")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "7");
}

#[tokio::test]
async fn core_restart_loses_nothing_acknowledged_and_retries_land_once() {
    let mut app = spawn_app().await;
    let bodies: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            format!(
                r#"{{"message":{{"id":"wamid.restart-{i}","type":"text","from":"15551234567","text":{{"body":"n{i}"}},"kapso":{{"direction":"inbound"}}}},"conversation":{{"id":"conv_r"}}}}"#
            )
            .into_bytes()
        })
        .collect();
    let deliveries: Vec<Delivery<'_>> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| Delivery::new(b, "whatsapp.message.received", format!("restart-{i}")))
        .collect();

    // Half arrive while the core is up, then it stops; the rest find it down.
    for delivery in &deliveries[..20] {
        assert_eq!(app.post(delivery).await.status, StatusCode::OK);
    }
    let core = app.core.take().unwrap();
    let addr = core.addr;
    core.shut_down().await;
    let mut refused = Vec::new();
    for delivery in &deliveries[20..] {
        let answer = app.post(delivery).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.retry_after.as_deref(), Some("7"));
        refused.push(delivery);
    }

    // Back on the same address and database: Kapso's retries land, once, and
    // a retry of an acknowledged delivery is recognised.
    app.core = Some(Core::start(TcpListener::bind(addr).await.unwrap(), &app.database_url).await);
    for delivery in refused
        .iter()
        .chain(&deliveries[..3].iter().collect::<Vec<_>>())
    {
        let answer = retry_until_ok(&app, delivery).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let log = app.log().await;
    let mut ids: Vec<String> = log
        .iter()
        .map(|e| e.message.as_ref().unwrap().id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(log.len(), 40, "every delivery stored exactly once");
    assert_eq!(ids.len(), 40);
}

/// Kapso's behaviour: retry a non-200 after a pause. The adapter's channel
/// reconnects to the restarted core on its own.
async fn retry_until_ok(app: &App, delivery: &Delivery<'_>) -> Answer {
    for _ in 0..50 {
        let answer = app.post(delivery).await;
        if answer.status == StatusCode::OK {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("delivery {} never accepted", delivery.key);
}

#[tokio::test]
async fn v1_delivery_is_stored_like_its_v2_equivalent() {
    let app = spawn_app().await;
    let body = fixture("v1_received_text.json");
    let response = app
        .http
        .post(&app.webhook_url)
        .header("content-type", "application/json")
        .header("x-webhook-signature", sign(SECRET, &body))
        .header("x-webhook-event", "whatsapp.message.received")
        .header("x-webhook-payload-version", "v1")
        .header("x-idempotency-key", "v1-delivery")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let message = app
        .message("wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBRGQUtFVjFURVhUMDAx")
        .await;
    assert_eq!(message.text, "Necesito ayuda con mi pedido");
    assert_eq!(message.phone_number_id, "123456789012345");
    assert_eq!(message.direction, pb::Direction::Inbound as i32);
    assert_eq!(message.r#type, "text");
    assert_eq!(
        message.conversation_id,
        "7c1e0c5a-3b1f-4f0e-9d7a-2a6b5c4d3e21"
    );
}

/// A `kapso-gateway` process logging at the default level to a file.
struct GatewayProcess {
    child: std::process::Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    async fn start() -> GatewayProcess {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gateway.log");
        let out = std::fs::File::create(&log).unwrap();
        let free = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let (adapter_addr, core_addr) = (free(), free());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_kapso-gateway"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KAPSO_WEBHOOK_SECRET", SECRET)
            .env("ADAPTER_LISTEN_ADDR", adapter_addr.to_string())
            .env("CORE_LISTEN_ADDR", core_addr.to_string())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("gateway.db").display()),
            )
            .env("CORE_METRICS_ADDR", "off")
            .env("KAPSO_API_BASE_URL", "http://127.0.0.1:9/unused")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let process = GatewayProcess {
            child,
            base: format!("http://{adapter_addr}"),
            log,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            let ready = http.get(format!("{}/readyz", process.base)).send().await;
            if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("kapso-gateway never ready:\n{}", process.lines().join("\n"));
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn kapso_gateway_logs_one_line_per_delivery_and_none_per_probe() {
    const DELIVERIES: usize = 20;
    let gateway = GatewayProcess::start().await;
    let http = reqwest::Client::new();
    let before = gateway.lines().len();
    for i in 0..DELIVERIES {
        let body = format!(
            r#"{{"message":{{"id":"wamid.log-{i}","type":"text","from":"15551234567","text":{{"body":"secret {i}"}},"kapso":{{"direction":"inbound"}}}},"conversation":{{"id":"conv_log"}}}}"#
        );
        let response = http
            .post(format!("{}/api/whatsapp/webhook", gateway.base))
            .header("content-type", "application/json")
            .header("x-webhook-signature", sign(SECRET, body.as_bytes()))
            .header("x-webhook-event", "whatsapp.message.received")
            .header("x-idempotency-key", format!("log-key-{i}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        for probe in ["/healthz", "/readyz", "/metrics"] {
            let response = http
                .get(format!("{}{probe}", gateway.base))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{probe}");
        }
    }
    // Lines are written before the answer; give the file a moment anyway.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = gateway.lines();
    let during = &lines[before..];
    assert_eq!(during.len(), DELIVERIES, "{}", during.join("\n"));
    for (i, line) in during.iter().enumerate() {
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains("status=200"), "{line}");
        assert!(line.contains(&format!("log-key-{i}")), "{line}");
        assert!(line.contains("request_id="), "{line}");
        assert!(!line.contains("secret"), "message text logged: {line}");
    }
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "colour codes in a log that is not a terminal:\n{}",
        lines.join("\n")
    );
}
