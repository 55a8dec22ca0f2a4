//! `kapso dev` end to end: the `kapso` binary standing in for Kapso in front
//! of a whole gateway (core and adapter in the test process), and `kapso dev
//! trigger` playing the customer. A reply sent through the core reaches READ
//! through the receipts `kapso dev` posts back to the adapter.

mod gateway;
mod process;

use std::time::Duration;

use gateway::{AdapterSocket, Gateway};
use kapso_client::{Client, Code, Direction, Interactive, MessageStatus, SendMessage, SendText};
use process::{DevKapso, trigger, trigger_output};
use serde_json::{Value, json};

const API_KEY: &str = "test-kapso-key-not-real";
const CUSTOMER: &str = "+15551234567";
/// The conversation `kapso dev` puts the customer's messages and the receipts in.
const CONVERSATION: &str = "conv_123456789012345_15551234567";
/// Longest wait for receipts to arrive.
const RECEIPTS: Duration = Duration::from_secs(30);

/// `kapso dev`, the gateway in front of it, and a client of its core.
struct Setup {
    dev: DevKapso,
    client: Client,
    /// The adapter's webhook URL, where triggers post.
    webhook_url: String,
    _gateway: Gateway,
}

/// `kapso dev` with `extra` flags, and a gateway whose core sends to it with `core_key`.
async fn start(extra: &[&str], core_key: &str) -> Setup {
    let socket = AdapterSocket::bind().await;
    let webhook_url = socket.webhook_url.clone();
    let dev = DevKapso::start(&webhook_url, API_KEY, extra);
    let gateway = socket.start_gateway(&dev.url, core_key).await;
    let client = Client::builder(&gateway.core_url)
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    Setup {
        dev,
        client,
        webhook_url,
        _gateway: gateway,
    }
}

/// The customer writes `text`; returns the inbound wamid once the adapter stored it.
async fn customer_writes(webhook_url: &str, text: &str) -> String {
    let posted = trigger(webhook_url, &["--from", CUSTOMER, "--text", text]).await;
    assert_eq!(posted["http_status"], 200, "{posted}");
    assert_eq!(posted["response"]["status"], "ok", "{posted}");
    assert_eq!(posted["conversation_id"], CONVERSATION);
    posted["message_id"].as_str().unwrap().to_owned()
}

/// Polls the message until it reaches `status` (bounded).
async fn wait_for(client: &Client, id: &str, status: MessageStatus) -> kapso_client::Message {
    let deadline = tokio::time::Instant::now() + RECEIPTS;
    loop {
        let message = client.get_message(id).await.unwrap();
        if message.status() == status {
            return message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} stayed {:?}, never {status:?}",
            message.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_reaches_read_by_the_receipts_kapso_dev_posts() {
    let setup = start(&[], API_KEY).await;
    let (client, webhook_url) = (&setup.client, setup.webhook_url.as_str());
    let inbound = customer_writes(webhook_url, "Hola, necesito ayuda").await;

    let stored = client.get_message(&inbound).await.unwrap();
    assert_eq!(stored.direction(), Direction::Inbound);
    assert_eq!(stored.text, "Hola, necesito ayuda");
    assert_eq!(stored.conversation_id, CONVERSATION);

    // No phone_number_id anywhere: the contact's one conversation gives it.
    let sent = client
        .send_text(SendText::to(CUSTOMER, "¿En qué te ayudo?").idempotency_key("reply-1"))
        .await
        .unwrap();
    assert!(sent.id.starts_with("wamid."), "{}", sent.id);
    assert_eq!(sent.conversation_id, CONVERSATION);

    let read = wait_for(client, "reply-1", MessageStatus::Read).await;
    let history: Vec<_> = read.status_history.iter().map(|s| s.status()).collect();
    for status in [
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
    ] {
        assert!(history.contains(&status), "{history:?}");
    }
    let listed = client.list_messages(CONVERSATION, 10, None).await.unwrap();
    let ids: Vec<_> = listed.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [inbound.as_str(), sent.id.as_str()]);

    client.mark_read(&inbound, true).await.unwrap();
    // Other kinds are taken as text is, and get their receipts too.
    let buttons = Interactive::buttons("¿Confirmas?", [("yes", "Sí"), ("no", "No")]);
    let interactive = client
        .send_message(SendMessage::to(CUSTOMER, buttons).idempotency_key("buttons-1"))
        .await
        .unwrap();
    assert_eq!(interactive.r#type, "interactive");
    wait_for(client, "buttons-1", MessageStatus::Read).await;
    assert!(
        setup.dev.stderr().contains("whatsapp.message.read"),
        "{}",
        setup.dev.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggered_replies_and_locations_are_stored_as_received() {
    let setup = start(&[], API_KEY).await;
    let (client, webhook_url) = (&setup.client, setup.webhook_url.as_str());
    let cases = [
        (["--button-reply", "yes:Sí"], "interactive", "Sí"),
        (
            ["--list-reply", "t18:18:00-20:00"],
            "interactive",
            "18:00-20:00",
        ),
        (
            ["--location", "-33.45,-70.66"],
            "location",
            "Location: -33.45, -70.66",
        ),
    ];
    for (flags, kind, text) in cases {
        let args = [&["--from", CUSTOMER][..], &flags[..]].concat();
        let posted = trigger(webhook_url, &args).await;
        assert_eq!(posted["http_status"], 200, "{posted}");
        let stored = client
            .get_message(posted["message_id"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(stored.r#type, kind);
        assert_eq!(stored.text, text);
        assert_eq!(stored.conversation_id, CONVERSATION);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_with_the_wrong_secret_is_refused_and_says_why() {
    let setup = start(&[], API_KEY).await;
    let args = ["--from", CUSTOMER, "--text", "hola"];
    let output = trigger_output(&setup.webhook_url, "another-secret-not-real", &args).await;
    assert_eq!(output.status.code(), Some(1));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["http_status"], 401);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("KAPSO_WEBHOOK_SECRET"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fail_rate_1_every_send_fails_as_retryable() {
    let setup = start(&["--fail-rate", "1"], API_KEY).await;
    let (client, webhook_url) = (&setup.client, setup.webhook_url.as_str());
    customer_writes(webhook_url, "hola").await;

    let error = client
        .send_text(SendText::to(CUSTOMER, "hola").idempotency_key("fails-1"))
        .await
        .unwrap_err();

    assert_eq!(error.code(), Code::Unavailable, "{error}");
    let message = client.get_message("fails-1").await.unwrap();
    assert_eq!(message.status(), MessageStatus::OutcomeUnknown);
    assert!(
        setup.dev.stderr().contains("HTTP 503 code 131016"),
        "{}",
        setup.dev.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_429s_is_waited_out_by_the_core() {
    let setup = start(&["--burst-429", "1"], API_KEY).await;
    let (client, webhook_url) = (&setup.client, setup.webhook_url.as_str());
    customer_writes(webhook_url, "hola").await;

    let sent = client
        .send_text(SendText::to(CUSTOMER, "hola").idempotency_key("burst-1"))
        .await
        .unwrap();

    assert!(sent.id.starts_with("wamid."), "{}", sent.id);
    assert!(
        setup.dev.stderr().contains("HTTP 429 code 130429"),
        "{}",
        setup.dev.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_is_refused() {
    let setup = start(&[], "wrong-key-not-real").await;
    let (client, webhook_url) = (&setup.client, setup.webhook_url.as_str());
    customer_writes(webhook_url, "hola").await;

    let error = client
        .send_text(SendText::to(CUSTOMER, "hola"))
        .await
        .unwrap_err();

    assert_eq!(error.code(), Code::Unauthenticated, "{error}");
}

/// The raw HTTP answers, compared with Kapso's documented shapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kapso_dev_answers_as_kapsos_api_does() {
    // Receipts go nowhere here; they are retried and given up in the background.
    let dev = DevKapso::start("http://127.0.0.1:9/unused", API_KEY, &[]);
    let http = reqwest::Client::new();
    let url = format!("{}/meta/whatsapp/v24.0/123456789012345/messages", dev.url);
    let post = |body: Value, key: Option<&str>| {
        let mut request = http.post(&url).json(&body);
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let text = json!({"messaging_product": "whatsapp", "recipient_type": "individual",
        "to": "15551234567", "type": "text", "text": {"body": "Hola", "preview_url": false}});

    let (status, body) = post(text.clone(), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], 190);
    assert_eq!(body["error"]["type"], "OAuthException");
    let (status, _) = post(text.clone(), Some("wrong-key-not-real")).await;
    assert_eq!(status, 401);

    let (status, body) = post(text, Some(API_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(
        body["contacts"],
        json!([{"input": "15551234567", "wa_id": "15551234567"}])
    );
    assert!(
        body["messages"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("wamid.")
    );

    let image = json!({"messaging_product": "whatsapp", "to": "15551234567", "type": "image",
        "image": {"link": "https://example.com/p.jpg", "caption": "Tu pedido"}});
    assert_eq!(post(image, Some(API_KEY)).await.0, 200);
    let read = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.1"});
    assert_eq!(
        post(read, Some(API_KEY)).await,
        (200, json!({"success": true}))
    );
    let no_recipient =
        json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}});
    let (status, body) = post(no_recipient, Some(API_KEY)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 131008);

    let elsewhere = http
        .post(format!("{}/platform/v1/whatsapp/messages", dev.url))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status().as_u16(), 404);
    let health = http
        .get(format!("{}/healthz", dev.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kapso_dev_stops_cleanly_on_sigterm() {
    let mut dev = DevKapso::start("http://127.0.0.1:9/unused", "test-key-not-real", &[]);
    let status = dev
        .terminate()
        .expect("kapso dev still running 10 s after SIGTERM");
    assert!(status.success(), "kapso dev ended with {status}");
}
