//! `kapso_adapter_test_support`: what the adapter's tests and the gateway's
//! whole-system tests both need, written once. A `[dev-dependencies]` crate only.
//!
//! Modules:
//! - [`fake_core`]: a core that records each `IngestEvents` call and answers as told.
//! - [`adapter`]: an adapter on 127.0.0.1:0, its configuration, signed requests to it.
//! - [`fixtures`]: the recorded Kapso deliveries in `adapter/tests/fixtures`.
//! - [`binaries`]: the `kapso-adapter` executable, for tests of other crates.

pub mod adapter;
pub mod binaries;
pub mod fake_core;
pub mod fixtures;

pub use adapter::{Adapter, config, signed, spawn_adapter};
pub use binaries::kapso_adapter_beside;
pub use fake_core::{Behaviour, Call, FakeCore};
pub use fixtures::fixture;

/// The webhook secret of [`config`]: not a real one.
pub const SECRET: &str = "test-secret-not-real";
/// The adapter's webhook path.
pub const WEBHOOK: &str = "/api/whatsapp/webhook";
/// A one-message delivery, the smallest the adapter accepts.
pub const BODY: &[u8] = br#"{"message":{"id":"wamid.1","type":"text","text":{"body":"hola"}}}"#;
