//! The client and the `kapso` binary against in-process fakes on real sockets:
//! a fake core (`Messaging` gRPC) and a fake adapter webhook endpoint; and
//! `kapso dev` in front of a real gateway ([`dev`]).

#[path = "dev/mod.rs"]
mod dev;
#[path = "support/fake_adapter.rs"]
mod fake_adapter;
#[path = "support/fake_core.rs"]
mod fake_core;
#[path = "client/media.rs"]
mod media;

use std::process::{Command, Output};
use std::time::Duration;

use axum::http::StatusCode;
use fake_adapter::spawn_adapter;
use fake_core::{
    EVENTS_PER_CONNECTION, FAILING_TEXT, LOG_LEN, REJECTED_EVENT_TYPE, spawn_core, spawn_core_on,
};
use futures::{StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use kapso_client::{Backoff, Client, Code, SendText, WatchOptions};
use sha2::Sha256;

const TOKEN: &str = "test-token-not-real";
const SECRET: &str = "test-secret-not-real";

/// Reconnects within milliseconds so the resume test stays fast.
fn quick_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(1), Duration::from_millis(20))
}

async fn client_with_token(url: &str) -> Client {
    Client::builder(url)
        .token(TOKEN)
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn send_text_maps_the_request_and_sends_the_bearer_token() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;

    let message = client
        .send_text(
            SendText::to("+56912345678", "hola")
                .reply_to("wamid.in")
                .idempotency_key("k-1")
                .phone_number_id("pn_1")
                .preview_url(true),
        )
        .await
        .unwrap();

    assert_eq!(message.id, "wamid.sent");
    assert_eq!(message.idempotency_key, "k-1");
    let calls = calls.lock().unwrap();
    let sent = &calls.send_text[0];
    assert_eq!(sent.to, "+56912345678");
    assert_eq!(sent.conversation_id, "");
    assert_eq!(sent.text, "hola");
    assert_eq!(sent.reply_to_message_id, "wamid.in");
    assert_eq!(sent.idempotency_key, "k-1");
    assert_eq!(sent.phone_number_id, "pn_1");
    assert!(sent.preview_url);
    assert_eq!(
        calls.authorization,
        [Some(format!("Bearer {TOKEN}"))],
        "every call carries the token"
    );
}

#[tokio::test]
async fn send_message_maps_each_builder_to_its_content() {
    use kapso_client::proto::send_message_request::Content as C;
    use kapso_client::{Interactive, Location, Media, MediaKind, SendMessage, send::message};
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;

    let message = client
        .send_message(
            SendMessage::to_conversation(
                "conv_1",
                Interactive::buttons("¿Confirmas?", [("yes", "Sí")]).footer("Clínica"),
            )
            .reply_to("wamid.in")
            .idempotency_key("k-2"),
        )
        .await
        .unwrap();
    assert_eq!(message.id, "wamid.sent");
    for content in [
        message::text("hola"),
        message::reaction("wamid.in", "\u{1F44D}"),
        Media::id(MediaKind::Audio, "224").voice().into(),
        Location::new(19.43, -99.13).name("Centro").into(),
    ] {
        client
            .send_message(SendMessage::to("+56912345678", content))
            .await
            .unwrap();
    }

    let calls = calls.lock().unwrap();
    let sent = &calls.send_message;
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[0].conversation_id, "conv_1");
    assert_eq!(sent[0].reply_to_message_id, "wamid.in");
    assert_eq!(sent[0].idempotency_key, "k-2");
    let Some(C::Interactive(i)) = &sent[0].content else {
        panic!("not interactive: {:?}", sent[0].content)
    };
    assert_eq!(i.footer, "Clínica");
    assert!(matches!(&sent[1].content, Some(C::Text(t)) if t.body == "hola"));
    assert!(matches!(&sent[2].content, Some(C::Reaction(r)) if r.message_id == "wamid.in"));
    assert!(matches!(&sent[3].content, Some(C::Media(m)) if m.voice && m.id == "224"));
    assert!(matches!(&sent[4].content, Some(C::Location(l)) if l.name == "Centro"));
    assert_eq!(sent[4].to, "+56912345678");
}

#[tokio::test]
async fn a_client_without_token_sends_no_authorization() {
    let (url, calls) = spawn_core().await;
    let client = Client::connect(&url).await.unwrap();
    client.mark_read("wamid.in", true).await.unwrap();
    assert_eq!(calls.lock().unwrap().authorization, [None]);
}

#[tokio::test]
async fn the_core_address_may_come_without_a_scheme() {
    let (url, calls) = spawn_core().await;
    let address = url.strip_prefix("http://").unwrap();
    let client = Client::connect(address).await.unwrap();
    client.mark_read("wamid.in", true).await.unwrap();
    let output = kapso(
        &["mark-read", "wamid.in"],
        &[("KAPSO_CORE_URL", address), ("GATEWAY_API_TOKEN", TOKEN)],
    )
    .await;
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(calls.lock().unwrap().authorization.len(), 2);
}

#[tokio::test]
async fn cli_mark_read_says_what_it_did() {
    let (url, _) = spawn_core().await;
    for (args, said) in [
        (&["mark-read", "wamid.in"][..], "marked wamid.in read\n"),
        (
            &["mark-read", "wamid.in", "--typing"][..],
            "marked wamid.in read (typing indicator shown)\n",
        ),
    ] {
        let output = kapso(args, &[("KAPSO_CORE_URL", &url)]).await;
        assert!(
            output.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), said);
    }
}

#[tokio::test]
async fn failed_send_exposes_code_message_id_and_meta_code() {
    let (url, _) = spawn_core().await;
    let client = client_with_token(&url).await;

    let error = client
        .send_text(SendText::to_conversation("conv_1", FAILING_TEXT))
        .await
        .unwrap_err();

    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(error.message(), "outcome unknown for message gw_1");
    assert_eq!(error.message_id(), Some("gw_1"));
    assert_eq!(error.meta_error_code(), Some(131047));
    assert!(error.is_retryable());
}

#[tokio::test]
async fn unknown_message_is_not_found() {
    let (url, _) = spawn_core().await;
    let client = client_with_token(&url).await;
    let error = client.get_message("missing").await.unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    assert_eq!(error.message_id(), None);
}

#[tokio::test]
async fn all_messages_pages_through_the_conversation() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;
    let messages: Vec<_> = client.all_messages("conv_1").try_collect().await.unwrap();
    let ids: Vec<_> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        ["wamid.c0", "wamid.c1", "wamid.c2", "wamid.c3", "wamid.c4"]
    );
    let tokens: Vec<_> = calls
        .lock()
        .unwrap()
        .list
        .iter()
        .map(|r| r.page_token.clone())
        .collect();
    assert_eq!(tokens, ["", "2", "4"]);
}

#[tokio::test]
async fn watch_resumes_after_the_server_drops_the_stream_without_duplicates_or_gaps() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;
    let options = WatchOptions::new().consumer("bot").backoff(quick_backoff());

    let mut events = client.watch(options);
    let mut sequences = Vec::new();
    while sequences.len() < LOG_LEN as usize {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("the watch keeps delivering")
            .expect("the watch does not end")
            .expect("cuts are retried, not surfaced");
        sequences.push(event.sequence);
    }

    assert_eq!(sequences, (1..=LOG_LEN).collect::<Vec<_>>());
    assert_eq!(events.last_sequence(), Some(LOG_LEN));
    let calls = calls.lock().unwrap();
    let resumed_after: Vec<_> = calls.watch.iter().map(|r| r.after_sequence).collect();
    let expected: Vec<_> = (0..LOG_LEN)
        .step_by(EVENTS_PER_CONNECTION as usize)
        .collect();
    assert_eq!(
        resumed_after, expected,
        "each reconnect resumes after the last event seen"
    );
    assert!(calls.watch.iter().all(|r| r.consumer == "bot"));
}

#[tokio::test]
async fn watch_ends_with_the_error_when_it_is_not_retryable() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;
    let options = WatchOptions::new()
        .event_type(REJECTED_EVENT_TYPE)
        .backoff(quick_backoff());

    let mut events = client.watch(options);
    let error = events.next().await.unwrap().unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(events.next().await.is_none());
    assert_eq!(
        calls.lock().unwrap().watch.len(),
        1,
        "no reconnect attempts"
    );
}

/// Runs the `kapso` binary with a clean environment for its own variables.
async fn kapso(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kapso"));
    for var in [
        "KAPSO_CORE_URL",
        "GATEWAY_API_TOKEN",
        "KAPSO_WEBHOOK_SECRET",
        "KAPSO_WEBHOOK_URL",
    ] {
        command.env_remove(var);
    }
    command.args(args).envs(envs.iter().copied());
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn cli_answers_version() {
    let output = kapso(&["--version"], &[]).await;
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("kapso {}", env!("CARGO_PKG_VERSION"))
    );
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn cli_webhook_send_signs_the_exact_file_bytes_and_sends_kapso_headers() {
    let (url, last) = spawn_adapter(StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch.json");
    // The trailing newline must be signed and sent too.
    let body = b"{\"type\":\"whatsapp.message.received\",\"batch\":true,\"data\":[{},{},{}]}\n";
    std::fs::write(&file, body).unwrap();

    let output = kapso(
        &[
            "webhook",
            "send",
            file.to_str().unwrap(),
            "--url",
            &url,
            "--batch",
            "--idempotency-key",
            "delivery-1",
        ],
        &[("KAPSO_WEBHOOK_SECRET", SECRET)],
    )
    .await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("HTTP 200 OK"), "{stdout}");
    assert!(stdout.contains(r#"{"status":"ok"}"#), "{stdout}");
    let delivery = last
        .lock()
        .unwrap()
        .clone()
        .expect("the adapter got the request");
    assert_eq!(&delivery.body[..], body);
    let header = |name: &str| {
        delivery
            .headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("x-webhook-signature"), hmac_hex(SECRET, body));
    assert_eq!(header("x-webhook-event"), "whatsapp.message.received");
    assert_eq!(header("x-idempotency-key"), "delivery-1");
    assert_eq!(header("x-webhook-payload-version"), "v2");
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("x-webhook-batch"), "true");
    assert_eq!(header("x-batch-size"), "3", "counted from data[]");
}

#[tokio::test]
async fn cli_webhook_send_takes_the_event_from_the_body_a_payload_version_and_extra_headers() {
    let (url, last) = spawn_adapter(StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.json");
    std::fs::write(
        &file,
        br#"{"type":"whatsapp.message.delivered","message":{}}"#,
    )
    .unwrap();

    let output = kapso(
        &[
            "webhook",
            "send",
            file.to_str().unwrap(),
            "--url",
            &url,
            "--payload-version",
            "v1",
            "-H",
            "X-Trace: abc",
            "-H",
            "X-Other:1",
        ],
        &[("KAPSO_WEBHOOK_SECRET", SECRET)],
    )
    .await;
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let delivery = last
        .lock()
        .unwrap()
        .clone()
        .expect("the adapter got the request");
    let header = |name: &str| {
        delivery
            .headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("x-webhook-event"), "whatsapp.message.delivered");
    assert_eq!(header("x-webhook-payload-version"), "v1");
    assert_eq!(header("x-trace"), "abc");
    assert_eq!(header("x-other"), "1");
}

#[tokio::test]
async fn cli_webhook_send_exits_non_zero_when_the_adapter_refuses() {
    let (url, last) = spawn_adapter(StatusCode::UNAUTHORIZED).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("single.json");
    std::fs::write(&file, b"{\"message\":{\"id\":\"wamid.1\"}}").unwrap();

    let output = kapso(
        &[
            "webhook",
            "send",
            file.to_str().unwrap(),
            "--url",
            &url,
            "--secret",
            SECRET,
            "--event",
            "whatsapp.message.sent",
        ],
        &[],
    )
    .await;

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("HTTP 401"));
    let delivery = last.lock().unwrap().clone().unwrap();
    assert!(delivery.headers.get("x-webhook-batch").is_none());
    assert_eq!(delivery.headers["x-webhook-event"], "whatsapp.message.sent");
}

#[tokio::test]
async fn cli_send_text_prints_the_message_as_json() {
    let (url, calls) = spawn_core().await;
    let output = kapso(
        &[
            "send-text",
            "--to",
            "+56912345678",
            "--text",
            "hola",
            "--idempotency-key",
            "k-9",
        ],
        &[("KAPSO_CORE_URL", &url), ("GATEWAY_API_TOKEN", TOKEN)],
    )
    .await;

    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["id"], "wamid.sent");
    assert_eq!(printed["status"], "MESSAGE_STATUS_SENT");
    assert_eq!(printed["direction"], "DIRECTION_OUTBOUND");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.send_text[0].idempotency_key, "k-9");
    assert_eq!(calls.authorization, [Some(format!("Bearer {TOKEN}"))]);
}

#[tokio::test]
async fn cli_send_builds_each_kind_from_the_flags_a_person_types() {
    use kapso_client::proto as pb;
    use pb::send_message_request::Content as C;
    let (url, calls) = spawn_core().await;
    let to = ["--to", "+15551234567"];
    let commands: [&[&str]; 6] = [
        &[
            "template",
            "--name",
            "order_shipped",
            "--language",
            "es",
            "--body-param",
            "Ana",
            "--body-param",
            "1042",
        ],
        &[
            "media",
            "--kind",
            "document",
            "--link",
            "https://example.com/invoice.pdf",
            "--filename",
            "invoice.pdf",
            "--caption",
            "Your invoice",
        ],
        &[
            "interactive",
            "--body",
            "Confirm?",
            "--button",
            "yes:Yes",
            "--button",
            "no:No",
            "--footer",
            "Clinic",
        ],
        &[
            "interactive",
            "--body",
            "Pick a day",
            "--list-button",
            "Days",
            "--list-row",
            "mon:Monday:9:00 to 13:00",
            "--list-row",
            "tue:Tuesday",
        ],
        &[
            "reaction",
            "--message-id",
            "wamid.IN",
            "--emoji",
            "\u{1F44D}",
        ],
        &[
            "location",
            "--lat",
            "19.4",
            "--lng",
            "-99.1",
            "--name",
            "Centro",
            "--reply-to",
            "wamid.IN",
            "--idempotency-key",
            "k-loc",
        ],
    ];
    for command in commands {
        let args = [&["send"][..], command, &to[..]].concat();
        let output = kapso(&args, &[("KAPSO_CORE_URL", &url)]).await;
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(printed["id"], "wamid.sent");
    }

    // Without --to, a reaction goes to the reacted message's conversation.
    let output = kapso(
        &[
            "send",
            "reaction",
            "--message-id",
            "wamid.IN",
            "--emoji",
            "",
        ],
        &[("KAPSO_CORE_URL", &url)],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let calls = calls.lock().unwrap();
    let sent = &calls.send_message;
    assert_eq!(sent.len(), 7);
    assert_eq!(
        (sent[6].to.as_str(), sent[6].conversation_id.as_str()),
        ("", "conv_1")
    );
    assert!(matches!(&sent[6].content, Some(C::Reaction(r)) if r.emoji.is_empty()));
    assert!(sent[..6].iter().all(|r| r.to == "+15551234567"));
    let body = |values: &[&str]| pb::TemplateComponent {
        r#type: pb::TemplateComponentType::Body.into(),
        parameters: values
            .iter()
            .map(|v| pb::TemplateParameter {
                value: Some(pb::template_parameter::Value::Text((*v).into())),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    assert_eq!(
        sent[0].content,
        Some(C::Template(pb::TemplateContent {
            name: "order_shipped".into(),
            language: "es".into(),
            components: vec![body(&["Ana", "1042"])],
            ..Default::default()
        }))
    );
    assert_eq!(
        sent[1].content,
        Some(C::Media(pb::MediaContent {
            kind: pb::MediaKind::Document.into(),
            link: "https://example.com/invoice.pdf".into(),
            filename: "invoice.pdf".into(),
            caption: "Your invoice".into(),
            ..Default::default()
        }))
    );
    let Some(C::Interactive(buttons)) = &sent[2].content else {
        panic!("{:?}", sent[2].content)
    };
    assert_eq!(buttons.body, "Confirm?");
    assert_eq!(buttons.footer, "Clinic");
    let button = |id: &str, title: &str| pb::ReplyButton {
        id: id.into(),
        title: title.into(),
    };
    assert_eq!(
        buttons.action,
        Some(pb::interactive_content::Action::Buttons(pb::ReplyButtons {
            buttons: vec![button("yes", "Yes"), button("no", "No")],
        }))
    );
    let Some(C::Interactive(list)) = &sent[3].content else {
        panic!("{:?}", sent[3].content)
    };
    let row = |id: &str, title: &str, description: &str| pb::ListRow {
        id: id.into(),
        title: title.into(),
        description: description.into(),
    };
    assert_eq!(
        list.action,
        Some(pb::interactive_content::Action::List(pb::ListAction {
            button: "Days".into(),
            sections: vec![pb::ListSection {
                title: String::new(),
                rows: vec![
                    row("mon", "Monday", "9:00 to 13:00"),
                    row("tue", "Tuesday", "")
                ],
            }],
        }))
    );
    assert_eq!(
        sent[4].content,
        Some(C::Reaction(pb::ReactionContent {
            message_id: "wamid.IN".into(),
            emoji: "\u{1F44D}".into(),
        }))
    );
    assert_eq!(
        sent[5].content,
        Some(C::Location(pb::LocationContent {
            latitude: 19.4,
            longitude: -99.1,
            name: "Centro".into(),
            ..Default::default()
        }))
    );
    assert_eq!(sent[5].reply_to_message_id, "wamid.IN");
    assert_eq!(sent[5].idempotency_key, "k-loc");
}

#[tokio::test]
async fn cli_send_refuses_a_half_typed_button_without_calling_the_core() {
    let (url, calls) = spawn_core().await;
    let output = kapso(
        &[
            "send",
            "interactive",
            "--to",
            "+15551234567",
            "--body",
            "Confirm?",
            "--button",
            "yes",
        ],
        &[("KAPSO_CORE_URL", &url)],
    )
    .await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ID:TITLE"));
    assert!(calls.lock().unwrap().send_message.is_empty());
}

#[tokio::test]
async fn cli_errors_print_one_line_with_the_trailers_and_exit_1() {
    let (url, _) = spawn_core().await;
    let output = kapso(
        &[
            "--core-url",
            &url,
            "send-text",
            "--conversation",
            "conv_1",
            "--text",
            FAILING_TEXT,
        ],
        &[],
    )
    .await;

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("UNAVAILABLE"), "{stderr}");
    assert!(stderr.contains("meta error code 131047"), "{stderr}");
    assert!(stderr.contains("message id gw_1"), "{stderr}");
}

#[tokio::test]
async fn cli_watch_prints_json_lines_and_acks_as_the_consumer() {
    let (url, calls) = spawn_core().await;
    let mut child = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_kapso"))
                .args(["--core-url", &url, "watch", "--consumer", "cli", "--ack"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(2)
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["payload"]["message"]["id"], "wamid.1");
    let second: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(second["sequence"], 2);
    // The first ack lands before the second event is printed.
    assert_eq!(calls.lock().unwrap().ack[0].sequence, 1);
}

#[tokio::test]
async fn watch_from_end_asks_the_core_to_start_at_the_head() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;
    let options = WatchOptions::new().consumer("bot").from_end();
    let mut events = client.watch(options);
    events.next().await.unwrap().unwrap();
    let calls = calls.lock().unwrap();
    assert!(calls.watch[0].from_end);
    assert_eq!(calls.watch[0].consumer, "bot");
}

#[tokio::test]
async fn seek_and_list_consumers_map_requests_and_answers() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;
    assert_eq!(client.seek_consumer("crm", 3).await.unwrap(), 3);
    let beyond = client.seek_consumer("crm", LOG_LEN + 1).await.unwrap_err();
    assert_eq!(beyond.code(), Code::OutOfRange);
    let listed = client.list_consumers().await.unwrap();
    let rows: Vec<_> = listed
        .iter()
        .map(|c| (c.consumer.as_str(), c.sequence, c.lag))
        .collect();
    assert_eq!(rows, [("billing", LOG_LEN, 0), ("crm", LOG_LEN - 4, 4)]);
    let calls = calls.lock().unwrap();
    assert_eq!(calls.seek[0].consumer, "crm");
    assert_eq!(calls.seek[0].sequence, 3);
}

#[tokio::test]
async fn cli_consumer_seek_reset_and_list() {
    let (url, calls) = spawn_core().await;
    let seek = kapso(&["--core-url", &url, "consumer", "seek", "crm", "7"], &[]).await;
    assert!(seek.status.success(), "{seek:?}");
    assert_eq!(
        String::from_utf8(seek.stdout).unwrap(),
        "{\"consumer\":\"crm\",\"sequence\":7}\n"
    );
    let reset = kapso(&["--core-url", &url, "consumer", "reset", "crm"], &[]).await;
    assert!(reset.status.success(), "{reset:?}");
    let list = kapso(&["--core-url", &url, "consumer", "list"], &[]).await;
    assert!(list.status.success(), "{list:?}");
    assert_eq!(
        String::from_utf8(list.stdout).unwrap(),
        "{\"consumer\":\"billing\",\"lag\":0,\"sequence\":10}\n\
         {\"consumer\":\"crm\",\"lag\":4,\"sequence\":6}\n"
    );
    let seeks: Vec<_> = calls
        .lock()
        .unwrap()
        .seek
        .iter()
        .map(|s| s.sequence)
        .collect();
    assert_eq!(seeks, [7, 0], "reset seeks to 0");
    let beyond = kapso(&["--core-url", &url, "consumer", "seek", "crm", "99"], &[]).await;
    assert_eq!(beyond.status.code(), Some(1));
}

#[tokio::test]
async fn cli_get_prints_the_typed_content() {
    let (url, _calls) = spawn_core().await;
    let get = kapso(&["--core-url", &url, "get", "wamid.img"], &[]).await;
    assert!(get.status.success(), "{get:?}");
    let printed: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(printed["id"], "wamid.img");
    assert_eq!(printed["content"]["media"]["kind"], "MEDIA_KIND_IMAGE");
    assert_eq!(printed["content"]["media"]["id"], "1234");
    assert_eq!(printed["content"]["media"]["caption"], "la foto");

    let list = kapso(&["--core-url", &url, "list", "conv_1"], &[]).await;
    assert!(list.status.success(), "{list:?}");
    let first = String::from_utf8(list.stdout).unwrap();
    let first: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert!(
        first["content"].is_null(),
        "a message without content: {first}"
    );
}

/// `kapso watch` started before the core waits for it, saying so on stderr,
/// and says when it is back; `--from-end` reaches the core.
#[tokio::test]
async fn cli_watch_waits_for_the_core_and_reports_reconnecting() {
    use std::io::BufRead;

    // An address nothing listens on yet; the fake core takes it later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kapso"))
        .args(["--core-url", &url, "watch", "--from-end"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let stdout = child.stdout.take().unwrap();

    let first = tokio::task::spawn_blocking(move || {
        let line = stderr.next().unwrap().unwrap();
        (line, stderr)
    });
    let (line, mut stderr) = first.await.unwrap();
    assert!(line.contains("reconnecting"), "{line}");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (_, calls) = spawn_core_on(listener);
    let back = tokio::task::spawn_blocking(move || stderr.next().unwrap().unwrap());
    let back = back.await.unwrap();
    assert_eq!(back, "kapso: connected to the core again");
    let event = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .next()
            .unwrap()
            .unwrap()
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let event: serde_json::Value = serde_json::from_str(&event).unwrap();
    assert_eq!(event["sequence"], 1);
    assert!(calls.lock().unwrap().watch[0].from_end);
}

/// `Client::from_env` reads the process's own environment, which a test must
/// not change: `from_env_in_a_child` runs in a child of this test binary with
/// the variables set, and what reached the fake core is checked here.
#[tokio::test]
async fn from_env_connects_to_kapso_core_url_with_gateway_api_token() {
    let (url, calls) = spawn_core().await;
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["from_env_in_a_child", "--exact", "--ignored", "--quiet"])
        // host:port, as deployments often give it.
        .env("KAPSO_CORE_URL", url.trim_start_matches("http://"))
        .env("GATEWAY_API_TOKEN", TOKEN);
    let output = tokio::task::spawn_blocking(move || child.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
    assert_eq!(
        calls.lock().unwrap().authorization,
        [Some(format!("Bearer {TOKEN}"))]
    );
}

#[tokio::test]
#[ignore = "run by from_env_connects_to_kapso_core_url_with_gateway_api_token with its variables"]
async fn from_env_in_a_child() {
    let client = Client::from_env()
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    client.get_message("wamid.1").await.unwrap();
}
