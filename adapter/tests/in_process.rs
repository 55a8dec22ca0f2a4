//! The adapter and a real core in one process, as `kapso-gateway` runs them:
//! webhooks reach the core through its in-process link, internal services
//! through its gRPC port. The link must promise what the network hop promises.

mod support;

use std::time::Duration;

use clap::Parser as _;
use kapso_adapter::core_client::CoreClient;
use kapso_gateway_proto::v1::GetMessageRequest;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use reqwest::StatusCode;
use serde_json::Value;
use support::{Adapter, BODY, WEBHOOK, config, signed};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A core on 127.0.0.1:0 and an adapter linked to it in process.
struct Gateway {
    adapter: Adapter,
    core_addr: std::net::SocketAddr,
    stop_core: oneshot::Sender<()>,
    core: JoinHandle<anyhow::Result<()>>,
}

async fn spawn_gateway(database_url: &str, core_flags: &[&str], adapter_flags: &[&str]) -> Gateway {
    let core_config = kapso_core::Config::try_parse_from(
        [
            "kapso-core",
            "--database-url",
            database_url,
            "--kapso-api-base-url",
            "http://127.0.0.1:9/unused",
        ]
        .iter()
        .chain(core_flags),
    )
    .unwrap();
    let core = kapso_core::Core::open(core_config).await.unwrap();
    // The core's configured URL is never used: calls go through the link.
    let adapter_config = config("http://127.0.0.1:9", adapter_flags);
    let link = CoreClient::in_process(core.link(), &adapter_config);
    assert_eq!(link.target(), "in-process");

    let core_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let core_addr = core_listener.local_addr().unwrap();
    let (stop_core, stopped) = oneshot::channel::<()>();
    let core = tokio::spawn(core.serve(core_listener, async {
        let _ = stopped.await;
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(kapso_adapter::run_with_core(
        adapter_config,
        link,
        listener,
        std::future::pending(),
    ));
    Gateway {
        adapter: Adapter { addr, task },
        core_addr,
        stop_core,
        core,
    }
}

async fn deliver(gateway: &Gateway) -> (StatusCode, Value) {
    let response = signed(&reqwest::Client::new(), &gateway.adapter.url(WEBHOOK), BODY)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn stored_text(core_addr: std::net::SocketAddr) -> String {
    let mut messaging = MessagingClient::connect(format!("http://{core_addr}"))
        .await
        .unwrap();
    let request = GetMessageRequest {
        message_id: "wamid.1".into(),
    };
    messaging
        .get_message(request)
        .await
        .unwrap()
        .into_inner()
        .text
}

#[tokio::test]
async fn a_delivery_through_the_link_is_stored_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let gateway = spawn_gateway(&database_url, &[], &[]).await;

    let (status, body) = deliver(&gateway).await;
    assert_eq!((status, body["events"].as_u64()), (StatusCode::OK, Some(1)));
    let (status, body) = deliver(&gateway).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Already processed");
    // Internal services still reach the core on its own port.
    assert_eq!(stored_text(gateway.core_addr).await, "hola");

    // Every holder of the store gone (the link is in the adapter's task):
    // one core per database file.
    gateway.adapter.task.abort();
    let _ = gateway.adapter.task.await;
    let _ = gateway.stop_core.send(());
    gateway.core.await.unwrap().unwrap();
    let reopened = spawn_gateway(&database_url, &[], &[]).await;
    assert_eq!(stored_text(reopened.core_addr).await, "hola");
    let (status, body) = deliver(&reopened).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Already processed");
}

#[tokio::test]
async fn the_link_goes_through_the_cores_token_check() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let tokens = ["--gateway-api-tokens", "fake-token-a"];

    let without = spawn_gateway(&database_url, &tokens, &[]).await;
    let (status, _) = deliver(&without).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "refused: not stored"
    );
    // One core per database file: the first lets go of it before the next.
    without.adapter.task.abort();
    let _ = without.adapter.task.await;
    let _ = without.stop_core.send(());
    without.core.await.unwrap().unwrap();

    let with = spawn_gateway(
        &database_url,
        &tokens,
        &["--gateway-api-token", "fake-token-a"],
    )
    .await;
    let (status, body) = deliver(&with).await;
    assert_eq!((status, body["events"].as_u64()), (StatusCode::OK, Some(1)));
}

#[tokio::test]
async fn readiness_asks_the_core_through_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let gateway = spawn_gateway(&database_url, &[], &[]).await;
    let client = reqwest::Client::new();
    // Ready once the core's first health probe has found the store writable.
    for _ in 0..100 {
        let response = client
            .get(gateway.adapter.url("/readyz"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered 200 through the in-process link");
}
