//! The API key and Kapso's download URLs (tokens themselves) stay in the
//! core: not in an answer, not in an error, not in a log line at the default
//! level (the `kapso-core` binary's own output, read whole).

use futures::StreamExt as _;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use serde_json::json;

use super::download::by_media_id;
use super::{chunk, file_of, metadata};
use crate::fake_kapso::{FakeKapso, Reply, Served};
use crate::outbound::{KEY, NUMBER};
use crate::process::Core;

/// Everything an answer, error or log may not contain.
const SECRETS: [&str; 3] = [KEY, "tok-", "meta-signed"];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
    }
}

#[tokio::test]
async fn the_api_key_and_kapsos_urls_reach_no_answer_no_error_and_no_log() {
    let kapso = FakeKapso::start().await;
    let elsewhere = FakeKapso::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("core.log");
    let base = kapso.base_url();
    let env = [
        ("KAPSO_API_BASE_URL", base.as_str()),
        ("KAPSO_API_TOKEN", KEY),
        ("KAPSO_PHONE_NUMBER_ID", NUMBER),
        ("RUST_LOG", "info,kapso_core=debug"),
    ];
    let core = Core::start_logging(&dir.path().join("gateway.db"), &env, &log).await;
    let mut client = MessagingClient::new(core.channel().await);
    let uploader = client.clone();
    let upload = |parts: Vec<pb::UploadMediaRequest>| {
        let mut client = uploader.clone();
        async move { client.upload_media(futures::stream::iter(parts)).await }
    };

    // An upload and its download back, whole.
    let file = file_of(20_000);
    let id = upload(vec![
        metadata("image/png", "a.png", file.len()),
        chunk(&file),
    ])
    .await
    .unwrap()
    .into_inner()
    .id;
    let mut stream = client
        .download_media(by_media_id(&id))
        .await
        .unwrap()
        .into_inner();
    while let Some(message) = stream.next().await {
        assert_clean("a download message", &format!("{:?}", message.unwrap()));
    }

    // Kapso echoing the key in a refusal.
    kapso.script([Reply::Json(
        400,
        json!({"error": {"message": format!("API key {KEY} is not allowed here"), "code": 131009}}),
        Vec::new(),
    )]);
    let refused = upload(vec![metadata("image/png", "a.png", 3), chunk(b"abc")])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("[redacted]"),
        "{}",
        refused.message()
    );
    assert_clean("a refusal", &format!("{refused:?}"));

    // Bytes whose URL expired, on another host.
    kapso.serve_media(
        "88",
        Served {
            bytes_at: Some(elsewhere.host_url()),
            ..Served::new(file_of(10), "image/jpeg")
        },
    );
    let expired = client.download_media(by_media_id("88")).await.unwrap_err();
    assert_clean("an expired download", &format!("{expired:?}"));

    // Kapso failing outright, and not at all reachable.
    kapso.script((0..8).map(|_| Reply::Text(502, "bad gateway")));
    let failed = client.download_media(by_media_id("88")).await.unwrap_err();
    assert_eq!(failed.code(), tonic::Code::Unavailable);
    assert_clean("a failed download", &format!("{failed:?}"));

    // Killed and waited for: everything it wrote is in the file.
    drop(core);
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(
        written.contains("media uploaded"),
        "the log is read: {written}"
    );
    assert_clean("the log", &written);
}
