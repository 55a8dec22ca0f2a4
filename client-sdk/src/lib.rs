//! Rust client for the kapso-gateway core: send WhatsApp messages, read them
//! back and follow the gateway's durable event log, without touching generated
//! gRPC code.
//!
//! The crate also ships the `kapso` CLI (`src/bin/kapso/`) and tools to sign
//! and send test webhooks the way Kapso does.
//!
//! # Modules
//!
//! - [`client`]: [`Client`] and [`ClientBuilder`]: connection, bearer token, timeouts, unary calls.
//! - [`send`]: [`SendText`], the request of [`Client::send_text`], and
//!   [`SendMessage`] with a builder per kind, the request of [`Client::send_message`].
//! - [`watch`]: [`WatchOptions`] and [`EventStream`], the event log as a reconnecting stream.
//! - [`backoff`]: the capped, jittered reconnect schedule used by [`watch`].
//! - [`error`]: the one [`Error`] type every call returns.
//! - [`json`]: stable JSON renderings of [`Message`] and [`Event`] (what the CLI prints).
//! - [`media`]: [`Upload`] and [`MediaSource`], for [`Client::upload_media`] and
//!   [`Client::download_media`], streamed both ways.
//! - [`webhook`]: [`webhook::sign`] and [`webhook::WebhookRequest`], to act as Kapso in tests.
//!
//! # Example
//!
//! ```no_run
//! use futures::StreamExt;
//! use kapso_client::{Client, SendText, WatchOptions};
//!
//! # async fn run() -> Result<(), kapso_client::Error> {
//! let client = Client::builder("http://127.0.0.1:50051")
//!     .token("my-gateway-token")
//!     .connect()
//!     .await?;
//!
//! let sent = client
//!     .send_text(SendText::to("+56912345678", "hola").idempotency_key("order-42-confirmation"))
//!     .await?;
//! println!("sent {} ({})", sent.id, sent.status().as_str_name());
//!
//! // Follow the log as a named consumer: after a restart it resumes where it acked.
//! let mut events = client.watch(WatchOptions::new().consumer("billing"));
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     println!("{} {}", event.sequence, event.event_type);
//!     client.ack("billing", event.sequence).await?;
//! }
//! # Ok(())
//! # }
//! ```

pub mod backoff;
pub mod client;
pub mod error;
pub mod json;
pub mod media;
pub mod send;
pub mod watch;
pub mod webhook;

pub use backoff::Backoff;
pub use client::{Client, ClientBuilder, MessagePage};
pub use error::Error;
pub use media::{MediaSource, Upload};
pub use send::message::{Interactive, Location, Media, MediaKind, SendMessage, Template};
pub use send::{Recipient, SendText};
pub use watch::{Connection, EventStream, WatchOptions};

/// Generated types a caller sees in results, re-exported so no other crate is needed.
pub use kapso_gateway_proto::v1::{
    ConsumerPosition, Direction, Event, MediaInfo, Message, MessageStatus, MetaError, StatusRecord,
    UploadMediaResponse,
};

/// gRPC status codes, as returned by [`Error::code`].
pub use tonic::Code;

/// The whole generated `kapso.gateway.v1` contract, for what this crate does not wrap.
pub use kapso_gateway_proto::v1 as proto;
