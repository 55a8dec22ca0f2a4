//! `kapso-core` exporting its spans over OTLP to a receiver the test runs:
//! each call's server span continues the caller's `traceparent`, the store
//! commit and the Kapso call are its children, Kapso is sent the trace on,
//! and the spans still buffered at SIGTERM are exported before the exit.

use std::time::Duration;

use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::ingest_client::IngestClient;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use kapso_telemetry::collector::{Collector, ReceivedSpan};

use crate::fake_kapso::FakeKapso;
use crate::process::{Core, received};

const INGEST_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INGEST_PARENT: &str = "00f067aa0ba902b7";
const SEND_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const SEND_PARENT: &str = "b7ad6b7169203331";
const CONTACT: &str = "15551234567";
const TEXT: &str = "hola desde la prueba";

fn with_traceparent<T>(message: T, trace: &str, parent: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{parent}-01").parse().unwrap(),
    );
    request
}

fn one<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    pick: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<_> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "one {what} expected in {spans:#?}");
    found[0]
}

#[tokio::test]
async fn spans_continue_the_callers_trace_and_are_flushed_on_sigterm() {
    let (collector, endpoint) = Collector::http().await;
    let kapso = FakeKapso::start().await;
    let dir = tempfile::tempdir().unwrap();
    let base_url = kapso.base_url();
    let mut core = Core::start(
        &dir.path().join("otlp.db"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            // Nothing leaves before shutdown: what arrives was flushed by SIGTERM.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
            ("KAPSO_API_BASE_URL", &base_url),
            ("KAPSO_API_TOKEN", "fake-kapso-key-not-real"),
            ("KAPSO_PHONE_NUMBER_ID", "1234567890"),
            ("CUSTOMER_WINDOW_ENFORCED", "false"),
        ],
    )
    .await;
    let channel = core.channel().await;

    let mut inbound = received("wamid.otlp-1");
    inbound.text = TEXT.into();
    let delivery = pb::IngestEventsRequest {
        delivery_key: "otlp-delivery".into(),
        events: vec![inbound],
        ..Default::default()
    };
    IngestClient::new(channel.clone())
        .ingest_events(with_traceparent(delivery, INGEST_TRACE, INGEST_PARENT))
        .await
        .unwrap();
    let send = pb::SendTextRequest {
        to: CONTACT.into(),
        text: TEXT.into(),
        ..Default::default()
    };
    MessagingClient::new(channel)
        .send_text(with_traceparent(send, SEND_TRACE, SEND_PARENT))
        .await
        .unwrap();
    assert!(
        collector.spans().is_empty(),
        "exported before shutdown: {:#?}",
        collector.spans()
    );

    core.terminate();
    assert!(core.exit_within(Duration::from_secs(20)).await.is_some());
    let spans = collector.spans();

    let ingest = one(&spans, "ingest server span", |s| {
        s.name == "kapso.gateway.v1.Ingest/IngestEvents"
    });
    assert_eq!(ingest.service, "kapso-core");
    assert_eq!(ingest.kind, 2, "server");
    assert_eq!(ingest.trace_id, INGEST_TRACE);
    assert_eq!(ingest.parent_span_id, INGEST_PARENT);
    let commit = one(&spans, "store commit span", |s| s.name == "store_commit");
    assert_eq!(commit.trace_id, INGEST_TRACE);
    assert_eq!(commit.parent_span_id, ingest.span_id);

    let send = one(&spans, "send server span", |s| {
        s.name == "kapso.gateway.v1.Messaging/SendText"
    });
    assert_eq!(send.trace_id, SEND_TRACE);
    assert_eq!(send.parent_span_id, SEND_PARENT);
    let call = one(&spans, "Kapso client span", |s| s.kind == 3);
    assert_eq!(call.trace_id, SEND_TRACE);
    assert_eq!(call.parent_span_id, send.span_id);
    assert_eq!(call.attribute("http.response.status_code"), Some("200"));
    assert_eq!(call.attribute("kapso.outcome"), Some("done"));

    let requests = kapso.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].headers["traceparent"],
        format!("00-{SEND_TRACE}-{}-01", call.span_id).as_str(),
        "Kapso is told the client span"
    );

    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains("hola") && !value.contains(CONTACT) && !value.contains("fake-"),
                "{key}={value:?} on {}",
                span.name
            );
        }
    }
}
