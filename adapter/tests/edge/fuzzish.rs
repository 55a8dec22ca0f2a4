//! Property tests on hostile input: arbitrary bytes and JSON-shaped values never
//! panic the parser, signed ones never get a 5xx from the router in front of a
//! healthy core, and arbitrary signature headers never panic `verify`.
//!
//! The cargo-fuzz targets in `adapter/fuzz/` search the same properties for longer.

use crate::support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use http::Request;
use kapso_adapter::webhook::{self, Hints};
use kapso_adapter::{AppState, router};
use kapso_signature::{self as signature, WebhookSecrets, sign};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::Value;
use support::{Behaviour, FakeCore, SECRET, WEBHOOK, config};
use tower::ServiceExt as _;

/// Field names the parser looks for, so generated objects reach its branches.
const KEYS: &[&str] = &[
    "message",
    "conversation",
    "data",
    "batch",
    "batch_info",
    "type",
    "event_type",
    "event",
    "payload",
    "id",
    "from",
    "to",
    "text",
    "body",
    "kapso",
    "statuses",
    "errors",
    "timestamp",
    "phone_number_id",
    "phone_number",
    "conversation_id",
    "message_id",
    "status",
    "wa_id",
    "content",
    "direction",
    "is_new_conversation",
    "business_scoped_user_id",
    "username",
];
const WORDS: &[&str] = &[
    "text",
    "image",
    "true",
    "whatsapp.message.received",
    "whatsapp.message.failed",
    "inbound",
    "delivered",
    "read",
    "",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn hints(event_type: &Option<String>, batch: bool) -> Hints<'_> {
    Hints {
        event_type: event_type.as_deref(),
        batch,
    }
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(
        body in vec(any::<u8>(), 0..2048),
        event_type in proptest::option::of("\\PC{0,24}"),
        batch: bool,
    ) {
        let _ = webhook::parse(&body, hints(&event_type, batch));
    }

    #[test]
    fn parse_never_panics_on_json_shaped_values(value in json(), batch: bool) {
        let body = serde_json::to_vec(&value).unwrap();
        let _ = webhook::parse(&body, hints(&None, batch));
    }

    #[test]
    fn verify_never_panics_on_arbitrary_header_bytes(
        header in vec(any::<u8>(), 0..160),
        prefixed: bool,
        body in vec(any::<u8>(), 0..64),
    ) {
        let secrets: WebhookSecrets = SECRET.parse().unwrap();
        let header = if prefixed { [b"sha256=".as_slice(), &header].concat() } else { header };
        let verdict = signature::verify(&secrets, Some(&header), &body);
        prop_assert!(verdict.is_err() || header.trim_ascii().len() >= 64);
    }
}

/// A runtime and a router in front of a healthy fake core, shared by every case.
struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let router = runtime.block_on(async {
            let core = FakeCore::new(Behaviour::Stores);
            let addr = core.serve(None).await;
            let state = AppState::new(&config(&format!("http://{addr}"), &[])).unwrap();
            router(state).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))))
        });
        Self { runtime, router }
    }

    /// The status of a correctly signed delivery of `body`.
    fn status(&self, body: Vec<u8>, batch: bool) -> http::StatusCode {
        let mut request = Request::post(WEBHOOK)
            .header("x-webhook-signature", sign(SECRET, &body))
            .header("x-webhook-event", "whatsapp.message.received")
            .header("x-idempotency-key", "00000000-0000-4000-8000-00000000000f");
        if batch {
            request = request.header("x-webhook-batch", "true");
        }
        let request = request.body(Body::from(body)).unwrap();
        self.runtime
            .block_on(self.router.clone().oneshot(request))
            .unwrap()
            .status()
    }
}

#[test]
fn signed_arbitrary_bodies_never_get_a_5xx_from_a_healthy_core() {
    let harness = Harness::new();
    let config = ProptestConfig::with_cases(128);
    proptest!(config, |(value in json(), batch: bool)| {
        let status = harness.status(serde_json::to_vec(&value).unwrap(), batch);
        prop_assert!(!status.is_server_error(), "{status} for {value}");
    });
    proptest!(config, |(body in vec(any::<u8>(), 0..1024), batch: bool)| {
        let status = harness.status(body.clone(), batch);
        prop_assert!(!status.is_server_error(), "{status} for {body:?}");
    });
}
