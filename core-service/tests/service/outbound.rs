//! Outbound sends and read receipts against a fake Kapso on a real socket, with
//! the SQLite store on a temporary file.

use crate::fake_kapso;
use crate::store_suite::any_id;
mod contact_conversation;
mod mark_read_kinds;
mod outbound_kinds;
mod stored_content;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser as _;
use fake_kapso::{FakeKapso, PROXY, Reply};
use kapso_core::kapso_api::ApiKey;
use kapso_core::model::{
    ConversationId, Delivery, Direction, EventType, Message, MessageLookup, NewEvent, StatusUpdate,
    Wamid,
};
use kapso_core::outbound::{MarkRead, Outbound, OutboundConfig, RetryPolicy, SendText};
use kapso_core::status::MessageStatus;
use kapso_core::store::Store;
use kapso_core::store::sqlite::SqliteStore;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use serde_json::json;
use tokio::time::Instant;
use tonic::{Code, Status};

pub(crate) const NUMBER: &str = "1234567890";
const CONTACT: &str = "15551234567";
pub(crate) const KEY: &str = "sk_test_key";

struct TestApp {
    kapso: FakeKapso,
    store: Arc<dyn Store>,
    outbound: Arc<Outbound>,
    _dir: tempfile::TempDir,
}

async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Upstream attempts per call in these tests (short delays keep them fast).
const ATTEMPTS: u32 = 6;

/// A fake Kapso, a fresh store and an `Outbound` between them; `tweak` adjusts the config.
async fn spawn_app_with(tweak: impl FnOnce(&mut OutboundConfig)) -> TestApp {
    let kapso = FakeKapso::start().await;
    let (store, dir) = open_store();
    let outbound = outbound_for(&kapso.base_url(), &store, tweak);
    TestApp {
        kapso,
        store,
        outbound,
        _dir: dir,
    }
}

fn open_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    (Arc::new(SqliteStore::open(&url).unwrap()), dir)
}

fn outbound_for(
    base_url: &str,
    store: &Arc<dyn Store>,
    tweak: impl FnOnce(&mut OutboundConfig),
) -> Arc<Outbound> {
    let mut config = OutboundConfig::new(base_url.parse().unwrap(), Some(ApiKey::new(KEY)));
    config.kapso_phone_number_id = Some(NUMBER.into());
    config.kapso_request_timeout_ms = 1000;
    tweak(&mut config);
    let outbound = Outbound::from_config(config, store.clone())
        .unwrap()
        .with_retry_policy(RetryPolicy {
            max_attempts: ATTEMPTS,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        });
    Arc::new(outbound)
}

/// A whole core serving gRPC on 127.0.0.1:0, sending to `kapso`; stops when dropped.
pub(crate) struct GrpcCore {
    pub(crate) url: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub(crate) async fn spawn_core(kapso: &FakeKapso) -> GrpcCore {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let base_url = kapso.base_url();
    let config = kapso_core::Config::try_parse_from([
        "kapso-core",
        "--database-url",
        &database_url,
        "--metrics-addr",
        "off",
        "--kapso-api-base-url",
        &base_url,
        "--kapso-api-token",
        KEY,
        "--kapso-phone-number-id",
        NUMBER,
    ])
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kapso_core::run(config, listener, async {
        let _ = stopped.await;
    }));
    GrpcCore {
        url,
        _dir: dir,
        _stop: stop,
    }
}

impl GrpcCore {
    pub(crate) async fn messaging(&self) -> MessagingClient<tonic::transport::Channel> {
        MessagingClient::connect(self.url.clone()).await.unwrap()
    }
}

fn text(body: &str) -> SendText {
    SendText {
        to: format!("+{CONTACT}"),
        text: body.into(),
        ..Default::default()
    }
}

fn keyed(body: &str, key: &str) -> SendText {
    SendText {
        idempotency_key: key.into(),
        ..text(body)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An inbound message from `CONTACT` in conversation `conv_1`, `age_secs` ago.
async fn customer_wrote(store: &Arc<dyn Store>, wamid: &str, age_secs: i64) {
    let event = NewEvent {
        event_type: EventType::MessageReceived,
        message_id: Wamid::parse(wamid),
        conversation_id: ConversationId::parse("conv_1"),
        phone_number_id: NUMBER.into(),
        contact_phone: CONTACT.into(),
        direction: Direction::Inbound,
        message_type: "text".into(),
        text: "hola".into(),
        timestamp: unix_now() - age_secs,
        payload_json: format!(r#"{{"id":"{wamid}"}}"#),
        ..Default::default()
    };
    store
        .ingest(Delivery {
            key: None,
            events: vec![event],
        })
        .await
        .unwrap();
}

/// A status webhook for an outbound message, as the adapter would hand it over.
fn status_event(wamid: &str, status: MessageStatus, text: &str) -> Delivery {
    Delivery {
        key: None,
        events: vec![NewEvent {
            event_type: EventType::parse(&format!("whatsapp.message.{status}")),
            message_id: Wamid::parse(wamid),
            phone_number_id: NUMBER.into(),
            contact_phone: CONTACT.into(),
            direction: Direction::Outbound,
            message_type: "text".into(),
            text: text.into(),
            statuses: vec![StatusUpdate {
                status,
                timestamp: unix_now(),
                errors: Vec::new(),
            }],
            timestamp: unix_now(),
            payload_json: format!(r#"{{"id":"{wamid}","status":"{status}"}}"#),
            ..Default::default()
        }],
    }
}

fn status_of(result: Result<Message, kapso_core::outbound::OutboundError>) -> Status {
    Status::from(result.expect_err("the send must fail"))
}

fn trailer<'a>(status: &'a Status, name: &str) -> Option<&'a str> {
    status.metadata().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn send_posts_the_exact_body_with_the_api_key_and_stores_sent() {
    let app = spawn_app().await;
    let message = app
        .outbound
        .send_text(text("Hola, ¿cómo estás?"))
        .await
        .unwrap();

    let requests = app.kapso.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, format!("{PROXY}/{NUMBER}/messages"));
    assert_eq!(requests[0].headers["x-api-key"], KEY);
    assert_eq!(requests[0].headers["content-type"], "application/json");
    assert_eq!(
        requests[0].body,
        json!({"messaging_product":"whatsapp","recipient_type":"individual","to":CONTACT,
               "type":"text","text":{"body":"Hola, ¿cómo estás?","preview_url":false}})
    );
    assert_eq!(message.status, MessageStatus::Sent);
    assert_eq!(message.id, "wamid.FAKE1");
    assert!(
        message
            .gateway_id
            .as_ref()
            .is_some_and(|id| id.as_str().starts_with("gw_"))
    );
    assert_eq!(message.direction, Direction::Outbound);
    let stored = app
        .store
        .message(&any_id("wamid.FAKE1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(stored.gateway_id, message.gateway_id);
}

#[tokio::test]
async fn a_reply_carries_the_context_message_id() {
    let app = spawn_app().await;
    let request = SendText {
        reply_to_message_id: "wamid.ORIGINAL".into(),
        preview_url: true,
        ..text("see https://example.com")
    };
    let message = app.outbound.send_text(request).await.unwrap();
    let body = &app.kapso.requests()[0].body;
    assert_eq!(body["context"], json!({"message_id": "wamid.ORIGINAL"}));
    assert_eq!(body["text"]["preview_url"], json!(true));
    assert_eq!(message.reply_to_message_id, Wamid::parse("wamid.ORIGINAL"));
}

#[tokio::test]
async fn mark_read_posts_the_exact_body_with_and_without_typing_indicator() {
    let app = spawn_app_with(|c| c.kapso_phone_number_id = None).await;
    customer_wrote(&app.store, "wamid.IN1", 60).await;
    // The business number comes from the stored message.
    let read = MarkRead {
        message_id: "wamid.IN1".into(),
        ..Default::default()
    };
    app.outbound.mark_read(read.clone()).await.unwrap();
    app.outbound
        .mark_read(MarkRead {
            typing_indicator: true,
            ..read
        })
        .await
        .unwrap();

    let requests = app.kapso.requests();
    assert_eq!(requests[0].path, format!("{PROXY}/{NUMBER}/messages"));
    assert_eq!(requests[0].headers["x-api-key"], KEY);
    assert_eq!(
        requests[0].body,
        json!({"messaging_product":"whatsapp","status":"read","message_id":"wamid.IN1"})
    );
    assert_eq!(
        requests[1].body,
        json!({"messaging_product":"whatsapp","status":"read","message_id":"wamid.IN1",
               "typing_indicator":{"type":"text"}})
    );
}

#[tokio::test]
async fn mark_read_is_retried_on_server_errors() {
    let app = spawn_app().await;
    app.kapso.script([Reply::Text(502, "bad gateway")]);
    let read = MarkRead {
        message_id: "wamid.IN1".into(),
        ..Default::default()
    };
    app.outbound.mark_read(read).await.unwrap();
    assert_eq!(app.kapso.calls(), 2);
}

#[tokio::test]
async fn rate_limited_send_waits_for_retry_after_then_sends_once() {
    let app = spawn_app().await;
    app.kapso.script([Reply::Json(
        429,
        json!({"error":{"message":"rate limit","code":130429}}),
        vec![("retry-after", "1".into())],
    )]);
    let started = std::time::Instant::now();
    let message = app.outbound.send_text(text("hola")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After not honoured"
    );
    assert_eq!(app.kapso.calls(), 2);
    assert_eq!(message.status, MessageStatus::Sent);
    let page = app
        .store
        .message(&MessageLookup::from(message.gateway_id.as_ref().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.id, message.id);
}

#[tokio::test]
async fn message_in_flight_conflict_is_retried() {
    let app = spawn_app().await;
    app.kapso
        .script([Reply::meta_error(409, 0, "another message in flight")]);
    let message = app.outbound.send_text(text("hola")).await.unwrap();
    assert_eq!(app.kapso.calls(), 2);
    assert_eq!(message.status, MessageStatus::Sent);
}

#[tokio::test]
async fn rate_limit_that_outlasts_retries_is_resource_exhausted_and_the_key_stays_usable() {
    let app = spawn_app().await;
    let throttled = || Reply::meta_error(400, 131056, "pair rate limit");
    app.kapso.script((0..ATTEMPTS).map(|_| throttled()));
    let status = status_of(app.outbound.send_text(keyed("hola", "k-busy")).await);
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(app.kapso.calls(), ATTEMPTS as usize);
    assert_eq!(trailer(&status, "x-meta-error-code"), Some("131056"));
    // Nothing was sent, so nothing is kept under the key or a message id.
    assert_eq!(trailer(&status, "x-message-id"), None);
    assert_eq!(app.store.message(&any_id("k-busy")).await.unwrap(), None);
    // Once Kapso takes requests again, the caller's retry with the same key sends, once.
    let sent = app
        .outbound
        .send_text(keyed("hola", "k-busy"))
        .await
        .unwrap();
    assert_eq!(sent.status, MessageStatus::Sent);
    assert_eq!(app.kapso.calls(), ATTEMPTS as usize + 1);
    let replayed = app
        .outbound
        .send_text(keyed("hola", "k-busy"))
        .await
        .unwrap();
    assert_eq!(replayed, sent);
    assert_eq!(app.kapso.calls(), ATTEMPTS as usize + 1);
}

#[tokio::test]
async fn refused_connection_is_retried_until_kapso_listens() {
    // Reserve a port, free it, and only start Kapso there after the first attempt failed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(60)).await;
        FakeKapso::serve(tokio::net::TcpListener::bind(addr).await.unwrap())
    });
    let (store, _dir) = open_store();
    let outbound = outbound_for(&format!("http://{addr}"), &store, |_| {});
    let message = outbound.send_text(text("hola")).await.unwrap();
    let kapso = late.await.unwrap();
    assert_eq!(message.status, MessageStatus::Sent);
    assert_eq!(kapso.calls(), 1);
    assert!(outbound.api_stats().retryable >= 1);
}

#[tokio::test]
async fn server_error_is_an_unknown_outcome_until_a_status_webhook_settles_it() {
    let app = spawn_app().await;
    app.kapso.script([Reply::Text(503, "upstream unavailable")]);
    let status = status_of(app.outbound.send_text(text("did it go?")).await);

    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("outcome unknown"),
        "{}",
        status.message()
    );
    assert_eq!(app.kapso.calls(), 1, "an unknown outcome is never resent");
    let gateway_id = trailer(&status, "x-message-id").unwrap().to_owned();
    assert!(status.message().contains(&gateway_id));
    let stored = app
        .store
        .message(&any_id(&gateway_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, MessageStatus::OutcomeUnknown);

    // WhatsApp did send it: Kapso's status webhook settles the message.
    app.store
        .ingest(status_event(
            "wamid.LATE",
            MessageStatus::Delivered,
            "did it go?",
        ))
        .await
        .unwrap();
    let settled = app
        .store
        .message(&any_id(&gateway_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.status, MessageStatus::Delivered);
    assert_eq!(settled.id, "wamid.LATE");
}

#[tokio::test]
async fn timeout_after_sending_is_an_unknown_outcome() {
    let app = spawn_app_with(|c| c.kapso_request_timeout_ms = 200).await;
    app.kapso.script([Reply::Delay(
        Duration::from_millis(600),
        Box::new(Reply::Ok),
    )]);
    let status = status_of(app.outbound.send_text(text("slow")).await);
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("outcome unknown"),
        "{}",
        status.message()
    );
    assert_eq!(app.kapso.calls(), 1);
    assert_eq!(app.outbound.api_stats().unknown, 1);
}

#[tokio::test]
async fn closed_window_from_meta_asks_for_a_template_and_replays_the_same() {
    let app = spawn_app().await;
    app.kapso
        .script([Reply::meta_error(400, 131047, "Re-engagement message")]);
    let status = status_of(app.outbound.send_text(keyed("hola", "k-window")).await);
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("template"),
        "{}",
        status.message()
    );
    assert_eq!(trailer(&status, "x-meta-error-code"), Some("131047"));

    let again = status_of(app.outbound.send_text(keyed("hola", "k-window")).await);
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(
        trailer(&again, "x-message-id"),
        trailer(&status, "x-message-id")
    );
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn wrong_api_key_fails_at_once_with_one_call() {
    for reply in [
        Reply::Text(401, "unauthorized"),
        Reply::meta_error(400, 190, "Invalid OAuth access token"),
    ] {
        let app = spawn_app().await;
        app.kapso.script([reply]);
        let status = status_of(app.outbound.send_text(text("hola")).await);
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(status.message().contains("API key"), "{}", status.message());
        assert!(trailer(&status, "x-message-id").is_some());
        assert_eq!(app.kapso.calls(), 1);
    }
}

#[tokio::test]
async fn other_meta_refusals_carry_code_and_title() {
    let app = spawn_app().await;
    app.kapso
        .script([Reply::meta_error(400, 131026, "Message undeliverable")]);
    let status = status_of(app.outbound.send_text(text("hola")).await);
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("131026"), "{}", status.message());
    assert!(
        status.message().contains("OAuthException"),
        "{}",
        status.message()
    );
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn without_an_api_key_nothing_is_sent() {
    let app = spawn_app_with(|c| c.kapso_api_token = None).await;
    let status = status_of(app.outbound.send_text(text("hola")).await);
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("API key is not configured"));
    let read = MarkRead {
        message_id: "wamid.IN1".into(),
        ..Default::default()
    };
    let status = Status::from(app.outbound.mark_read(read).await.unwrap_err());
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(app.kapso.calls(), 0);
}

#[tokio::test]
async fn retry_with_the_same_key_returns_the_first_message_without_sending_again() {
    let app = spawn_app().await;
    let first = app.outbound.send_text(keyed("hola", "k-1")).await.unwrap();
    let second = app.outbound.send_text(keyed("hola", "k-1")).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(app.kapso.calls(), 1);
    // Without a key every call is a new send.
    app.outbound.send_text(text("hola")).await.unwrap();
    app.outbound.send_text(text("hola")).await.unwrap();
    assert_eq!(app.kapso.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_with_one_key_make_one_upstream_call() {
    let app = spawn_app().await;
    // A slow Kapso keeps the first call in flight while the others arrive.
    app.kapso.script([Reply::Delay(
        Duration::from_millis(200),
        Box::new(Reply::Ok),
    )]);
    let sends = (0..20).map(|_| {
        let outbound = app.outbound.clone();
        tokio::spawn(async move { outbound.send_text(keyed("hola", "k-burst")).await })
    });
    let results = futures::future::join_all(sends).await;
    let messages: Vec<Message> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(app.kapso.calls(), 1);
    assert!(
        messages
            .iter()
            .all(|m| m.id == messages[0].id && m.gateway_id == messages[0].gateway_id)
    );
    assert_eq!(messages[0].status, MessageStatus::Sent);
}

#[tokio::test]
async fn same_key_with_a_different_request_is_already_exists() {
    let app = spawn_app().await;
    app.outbound.send_text(keyed("hola", "k-2")).await.unwrap();
    let status = status_of(app.outbound.send_text(keyed("adiós", "k-2")).await);
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn status_webhook_before_the_send_response_is_kept() {
    let app = spawn_app().await;
    let store = app.store.clone();
    let hook: fake_kapso::Hook = Arc::new(move |_body| {
        let store = store.clone();
        Box::pin(async move {
            store
                .ingest(status_event("wamid.RACE", MessageStatus::Delivered, "race"))
                .await
                .unwrap();
        })
    });
    app.kapso.script([Reply::Before(
        hook,
        Box::new(Reply::SentAs("wamid.RACE".into())),
    )]);
    let message = app.outbound.send_text(text("race")).await.unwrap();
    assert_eq!(message.id, "wamid.RACE");
    assert_eq!(message.status, MessageStatus::Delivered);
    let history: Vec<_> = message.status_history.iter().map(|r| r.status).collect();
    assert!(history.contains(&MessageStatus::Delivered), "{history:?}");
}

#[tokio::test]
async fn conversation_id_resolves_number_and_contact() {
    let app = spawn_app_with(|c| c.kapso_phone_number_id = None).await;
    customer_wrote(&app.store, "wamid.IN2", 60).await;
    let request = SendText {
        conversation_id: "conv_1".into(),
        text: "hola".into(),
        ..Default::default()
    };
    let message = app.outbound.send_text(request).await.unwrap();
    let requests = app.kapso.requests();
    assert_eq!(requests[0].path, format!("{PROXY}/{NUMBER}/messages"));
    assert_eq!(requests[0].body["to"], CONTACT);
    assert_eq!(message.conversation_id, ConversationId::parse("conv_1"));

    let unknown = SendText {
        conversation_id: "conv_nope".into(),
        text: "hola".into(),
        ..Default::default()
    };
    let status = status_of(app.outbound.send_text(unknown).await);
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn a_contact_known_only_by_user_id_is_sent_to_as_recipient() {
    let app = spawn_app().await;
    let bsuid = "US.13491208655302741918";
    let event = NewEvent {
        event_type: EventType::MessageReceived,
        message_id: Wamid::parse("wamid.BSUID"),
        conversation_id: ConversationId::parse("conv_bsuid"),
        phone_number_id: NUMBER.into(),
        contact_phone: bsuid.into(),
        direction: Direction::Inbound,
        message_type: "text".into(),
        text: "hola".into(),
        timestamp: unix_now() - 60,
        payload_json: "{}".into(),
        ..Default::default()
    };
    let delivery = Delivery {
        key: None,
        events: vec![event],
    };
    app.store.ingest(delivery).await.unwrap();
    let request = SendText {
        conversation_id: "conv_bsuid".into(),
        text: "hola".into(),
        ..Default::default()
    };
    app.outbound.send_text(request).await.unwrap();
    assert_eq!(
        app.kapso.requests()[0].body,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
               "recipient": bsuid, "type": "text",
               "text": {"body": "hola", "preview_url": false}})
    );
}

#[tokio::test]
async fn invalid_requests_name_the_field_and_call_nobody() {
    let app = spawn_app_with(|c| c.kapso_phone_number_id = None).await;
    let cases = [
        (
            SendText {
                to: String::new(),
                ..text("hola")
            },
            "recipient",
        ),
        (text(""), "text"),
        (text(&"a".repeat(4097)), "text"),
        (
            SendText {
                to: "+1-555-CALL-NOW".into(),
                ..text("hola")
            },
            "to",
        ),
        (text("hola"), "phone_number_id"),
    ];
    for (request, field) in cases {
        let status = status_of(app.outbound.send_text(request).await);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains(field),
            "{field}: {}",
            status.message()
        );
        assert!(trailer(&status, "x-message-id").is_none());
    }
    // 4096 characters of two-byte text is within the limit.
    let request = SendText {
        phone_number_id: NUMBER.into(),
        ..text(&"ñ".repeat(4096))
    };
    app.outbound.send_text(request).await.unwrap();
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn closed_customer_window_is_refused_before_calling_kapso_and_keeps_nothing() {
    let app = spawn_app().await;
    customer_wrote(&app.store, "wamid.OLD", 25 * 3600).await;
    let status = status_of(app.outbound.send_text(keyed("hola", "k-window")).await);
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().starts_with("refused by the gateway:")
            && status.message().contains("template")
            && !status.message().contains("Meta"),
        "{}",
        status.message()
    );
    assert!(trailer(&status, "x-message-id").is_none());
    assert!(trailer(&status, "x-meta-error-code").is_none());
    assert_eq!(app.store.message(&any_id("k-window")).await.unwrap(), None);
    assert_eq!(app.kapso.calls(), 0);

    // A fresh message from the customer opens the window again: the same
    // request under the same key goes out now.
    customer_wrote(&app.store, "wamid.NEW", 60).await;
    let sent = app
        .outbound
        .send_text(keyed("hola", "k-window"))
        .await
        .unwrap();
    assert_eq!(sent.status, MessageStatus::Sent);
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn window_rule_can_be_switched_off() {
    let app = spawn_app_with(|c| c.customer_window_enforced = false).await;
    customer_wrote(&app.store, "wamid.OLD", 25 * 3600).await;
    app.outbound.send_text(text("hola")).await.unwrap();
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn client_rate_limit_queues_a_burst_instead_of_collecting_429s() {
    let app = spawn_app_with(|c| {
        c.kapso_rate_limit_per_minute = NonZeroU32::new(600);
        c.kapso_rate_limit_burst = NonZeroU32::new(1);
    })
    .await;
    let started = std::time::Instant::now();
    let sends = (0..4).map(|i| app.outbound.send_text(text(&format!("hola {i}"))));
    for result in futures::future::join_all(sends).await {
        assert_eq!(result.unwrap().status, MessageStatus::Sent);
    }
    // 600 a minute is one per 100 ms: the last of four leaves 300 ms after the first.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(app.kapso.calls(), 4);
    assert!(app.outbound.api_stats().rate_limit_waits >= 3);
}

#[tokio::test]
async fn an_expired_deadline_leaves_a_send_in_flight_to_its_owner() {
    let app = spawn_app().await;
    app.kapso.script([Reply::Delay(
        Duration::from_millis(300),
        Box::new(Reply::Ok),
    )]);
    let owner = {
        let outbound = app.outbound.clone();
        tokio::spawn(async move { outbound.send_text(keyed("hola", "k-slow")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let impatient = SendText {
        deadline: Some(Instant::now() + Duration::from_millis(50)),
        ..keyed("hola", "k-slow")
    };
    let status = status_of(app.outbound.send_text(impatient).await);
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("still being sent"),
        "{}",
        status.message()
    );
    assert_eq!(owner.await.unwrap().unwrap().status, MessageStatus::Sent);
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn a_grpc_timeout_beyond_any_clock_is_a_long_deadline_not_a_panic() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let mut client = core.messaging().await;
    for timeout in [
        "18446744073709551615S",
        "18446744073709551615H",
        "99999999H",
    ] {
        let mut read = tonic::Request::new(pb::MarkReadRequest {
            message_id: "wamid.IN1".into(),
            ..Default::default()
        });
        read.metadata_mut()
            .insert("grpc-timeout", timeout.parse().unwrap());
        client.mark_read(read).await.unwrap();

        let mut send = tonic::Request::new(pb::SendTextRequest {
            to: CONTACT.into(),
            text: "hola".into(),
            ..Default::default()
        });
        send.metadata_mut()
            .insert("grpc-timeout", timeout.parse().unwrap());
        let sent = client.send_text(send).await.unwrap().into_inner();
        assert_eq!(sent.message.unwrap().status, pb::MessageStatus::Sent as i32);
    }
    assert_eq!(kapso.calls(), 6);
}

#[tokio::test]
async fn a_caller_that_hangs_up_once_its_send_is_claimed_never_blocks_the_key() {
    let app = spawn_app().await;
    let mut first = Box::pin(app.outbound.send_text(keyed("hola", "k-cut")));
    // Polled until it has handed its claim to the store (it looks the
    // contact's conversation up first), the call is then dropped without
    // another poll, as tonic drops a handler whose caller went away.
    let claimed = Instant::now() + Duration::from_secs(10);
    while app.store.message(&any_id("k-cut")).await.unwrap().is_none() {
        assert!(futures::poll!(&mut first).is_pending());
        assert!(Instant::now() < claimed, "the send was never claimed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(first);

    let retry = SendText {
        deadline: Some(Instant::now() + Duration::from_secs(5)),
        ..keyed("hola", "k-cut")
    };
    let sent = app.outbound.send_text(retry).await.unwrap();
    assert_eq!(sent.status, MessageStatus::Sent);
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn a_redirect_is_refused_and_the_api_key_never_follows_it() {
    let app = spawn_app().await;
    let elsewhere = FakeKapso::start().await;
    let target = format!("{}/{NUMBER}/messages", elsewhere.base_url());
    for _ in 0..2 {
        app.kapso.script([Reply::Json(
            307,
            json!({}),
            vec![("location", target.clone())],
        )]);
    }
    let status = status_of(app.outbound.send_text(text("hola")).await);
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("redirect") && status.message().contains("KAPSO_API_BASE_URL"),
        "{}",
        status.message()
    );
    let read = MarkRead {
        message_id: "wamid.IN1".into(),
        ..Default::default()
    };
    let status = Status::from(app.outbound.mark_read(read).await.unwrap_err());
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(app.kapso.calls(), 2);
    assert_eq!(elsewhere.calls(), 0, "the key went to the redirect's host");
}

#[tokio::test]
async fn an_oversized_answer_is_not_read_and_leaves_the_send_unknown() {
    let app = spawn_app().await;
    let padding = "x".repeat(256 * 1024);
    app.kapso.script([Reply::Json(
        200,
        json!({"messaging_product": "whatsapp", "padding": padding,
               "messages": [{"id": "wamid.BIG"}]}),
        Vec::new(),
    )]);
    let status = status_of(app.outbound.send_text(keyed("hola", "k-big")).await);
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("outcome unknown"),
        "{}",
        status.message()
    );
    let stored = app.store.message(&any_id("k-big")).await.unwrap().unwrap();
    assert_eq!(stored.status, MessageStatus::OutcomeUnknown);
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn a_retry_of_a_send_whose_owner_died_gets_an_unknown_outcome_at_once() {
    let app = spawn_app().await;
    app.outbound
        .send_text(keyed("hola", "k-orphan"))
        .await
        .unwrap();
    // As a crash right after the claim leaves it: `accepted`, no wamid, and
    // long enough ago that no live owner can still be sending it.
    let db = rusqlite::Connection::open(app._dir.path().join("gateway.db")).unwrap();
    let claimed_at = unix_now() - 600;
    db.execute(
        "UPDATE messages SET status = 'accepted', wamid = NULL, timestamp = ?1, created_at = ?1 \
         WHERE idempotency_key = 'k-orphan'",
        [claimed_at],
    )
    .unwrap();
    db.execute("DELETE FROM status_history WHERE status = 'sent'", [])
        .unwrap();

    let retry = SendText {
        deadline: Some(Instant::now() + Duration::from_secs(30)),
        ..keyed("hola", "k-orphan")
    };
    let started = Instant::now();
    let status = status_of(app.outbound.send_text(retry).await);
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("outcome unknown"),
        "{}",
        status.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for the deadline"
    );
    let stored = app
        .store
        .message(&any_id("k-orphan"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, MessageStatus::OutcomeUnknown);
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn without_a_token_sending_off_is_warned_once_at_build() {
    #[derive(Clone, Default)]
    struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (store, _dir) = open_store();
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let config = OutboundConfig::new("http://127.0.0.1:9/unused".parse().unwrap(), None);
        Outbound::from_config(config, store.clone()).unwrap();
        let config = OutboundConfig::new(
            "http://127.0.0.1:9/unused".parse().unwrap(),
            Some(ApiKey::new(KEY)),
        );
        Outbound::from_config(config, store).unwrap();
    });
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("KAPSO_API_TOKEN"), "{text}");
}
