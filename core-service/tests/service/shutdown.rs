//! SIGTERM with calls in flight: they complete OK, an open WatchEvents stream
//! ends at once with UNAVAILABLE, and the process exits 0 within the grace period.

use crate::process;

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use process::Core;
use serde_json::json;
use tokio::time::{Instant, timeout};
use tonic::Code;

/// How long the fake Kapso takes to answer a send: keeps calls in flight.
const SLOW: Duration = Duration::from_millis(1500);
/// The core's shutdown grace period (server.rs).
const GRACE: Duration = Duration::from_secs(10);

/// A Kapso that answers every send after [`SLOW`]; returns its base URL.
async fn slow_kapso() -> String {
    let app = Router::new().route(
        "/meta/whatsapp/v24.0/{phone_number_id}/messages",
        post(|| async {
            tokio::time::sleep(SLOW).await;
            axum::Json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": "15551234567", "wa_id": "15551234567"}],
                "messages": [{"id": format!("wamid.{}", uuid::Uuid::new_v4().simple())}],
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn send(n: usize) -> pb::SendTextRequest {
    pb::SendTextRequest {
        to: "+15551234567".into(),
        text: format!("in flight {n}"),
        idempotency_key: format!("shutdown-{n}"),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_calls_ends_watches_and_exits_zero() {
    let kapso = slow_kapso().await;
    let dir = tempfile::tempdir().unwrap();
    let mut core = Core::start(
        &dir.path().join("gw.db"),
        &[
            ("KAPSO_API_BASE_URL", &kapso),
            ("KAPSO_API_TOKEN", "fake-kapso-key"),
            ("KAPSO_PHONE_NUMBER_ID", "1234567890"),
            ("CUSTOMER_WINDOW_ENFORCED", "false"),
        ],
    )
    .await;
    let channel = core.channel().await;

    let mut watch = MessagingClient::new(channel.clone())
        .watch_events(pb::WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let in_flight: Vec<_> = (0..8)
        .map(|n| {
            let mut client = MessagingClient::new(channel.clone());
            tokio::spawn(async move { client.send_text(send(n)).await })
        })
        .collect();
    // Well inside SLOW: every send has reached the core and waits on Kapso.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let signalled = Instant::now();
    core.terminate();

    let ended = timeout(Duration::from_secs(2), watch.message())
        .await
        .expect("the watch stream stayed open after SIGTERM");
    assert_eq!(ended.unwrap_err().code(), Code::Unavailable);

    for call in in_flight {
        let reply = timeout(GRACE, call).await.unwrap().unwrap();
        let message = reply.expect("an in-flight call failed during shutdown");
        assert!(message.into_inner().message.is_some());
    }
    let status = core
        .exit_within(GRACE)
        .await
        .expect("kapso-core still running after the grace period");
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() < GRACE);
}
