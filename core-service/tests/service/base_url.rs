//! `KAPSO_API_BASE_URL` as Kapso users have it, through the `kapso-core` binary.

use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;

use crate::fake_kapso::FakeKapso;
use crate::process::{self, Core};

#[tokio::test]
async fn the_platform_api_as_base_url_stops_the_core_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db");
    let (status, output) = process::run_to_exit(
        &db,
        &[],
        &[("KAPSO_API_BASE_URL", "https://app.kapso.ai/api/v1")],
    )
    .await;
    let status = status.expect("the core exits instead of serving");
    assert!(!status.success(), "{output}");
    assert!(output.contains("KAPSO_API_BASE_URL"), "{output}");
    assert!(output.contains("https://api.kapso.ai"), "{output}");
}

#[tokio::test]
async fn a_host_only_base_url_sends_under_the_meta_proxy_path() {
    let kapso = FakeKapso::start().await;
    let dir = tempfile::tempdir().unwrap();
    let base_url = kapso.host_url();
    let core = Core::start(
        &dir.path().join("gw.db"),
        &[
            ("KAPSO_API_BASE_URL", base_url.as_str()),
            ("KAPSO_API_TOKEN", "sk_test"),
            ("KAPSO_PHONE_NUMBER_ID", "1234567890"),
            ("CUSTOMER_WINDOW_ENFORCED", "false"),
        ],
    )
    .await;
    MessagingClient::new(core.channel().await)
        .send_text(pb::SendTextRequest {
            to: "15551234567".into(),
            text: "hola".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let requests = kapso.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/meta/whatsapp/v24.0/1234567890/messages");
}
