//! The adapter's configuration: one `clap` struct, every field settable by an
//! environment variable, so `kapso-adapter --help` documents them all.
//!
//! Everything is validated while parsing, before anything binds: a bad value
//! stops the process with a message naming the variable.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{ArgAction, Parser};

use crate::core_client::{ApiToken, CoreTls, PemFile};
use kapso_process::HiddenValue;
use kapso_signature::WebhookSecrets;

/// Kapso webhook adapter: verifies, parses and forwards deliveries to the core.
#[derive(Debug, Clone, Parser)]
#[command(name = "kapso-adapter", version, about)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "ADAPTER_LISTEN_ADDR", default_value = "0.0.0.0:8000")]
    pub listen_addr: SocketAddr,

    /// Webhook secret from the Kapso panel. A comma-separated list during a
    /// rotation: the current secret first, then previous ones still accepted.
    #[arg(
        long,
        env = "KAPSO_WEBHOOK_SECRET",
        value_name = "KAPSO_WEBHOOK_SECRET",
        hide_env_values = true,
        value_parser = HiddenValue::<WebhookSecrets>::new("KAPSO_WEBHOOK_SECRET"),
    )]
    pub webhook_secret: WebhookSecrets,

    /// The core's gRPC endpoint. `https://` needs `CORE_TLS_CA`.
    #[arg(long, env = "CORE_GRPC_URL", default_value = "http://127.0.0.1:50051")]
    pub core_grpc_url: http::Uri,

    /// Bearer token sent to the core as `authorization: Bearer <token>` on every
    /// call. Required when the core sets `GATEWAY_API_TOKENS`: use one of those.
    #[arg(
        long,
        env = "GATEWAY_API_TOKEN",
        value_name = "GATEWAY_API_TOKEN",
        hide_env_values = true,
        value_parser = HiddenValue::<ApiToken>::new("GATEWAY_API_TOKEN"),
    )]
    pub gateway_api_token: Option<ApiToken>,

    /// PEM file of the CA that signed the core's certificate. Turns on TLS to
    /// the core (`CORE_GRPC_URL` must then be `https://`).
    #[arg(long, env = "CORE_TLS_CA", value_parser = PemParser("CORE_TLS_CA"))]
    pub core_tls_ca: Option<PemFile>,

    /// PEM client certificate presented to the core (mTLS, when the core sets
    /// `CORE_TLS_CLIENT_CA`). Needs `CORE_TLS_CLIENT_KEY` and `CORE_TLS_CA`.
    #[arg(
        long,
        env = "CORE_TLS_CLIENT_CERT",
        value_parser = PemParser("CORE_TLS_CLIENT_CERT"),
        requires_all = ["core_tls_client_key", "core_tls_ca"],
    )]
    pub core_tls_client_cert: Option<PemFile>,

    /// PEM private key of `CORE_TLS_CLIENT_CERT`.
    #[arg(
        long,
        env = "CORE_TLS_CLIENT_KEY",
        value_parser = PemParser("CORE_TLS_CLIENT_KEY"),
        requires = "core_tls_client_cert"
    )]
    pub core_tls_client_key: Option<PemFile>,

    /// Largest webhook body accepted; larger ones get 413.
    #[arg(long, env = "ADAPTER_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Bytes of webhook bodies buffered at once before their signature is
    /// checked, across all requests (at least `ADAPTER_BODY_LIMIT_BYTES`).
    /// Beyond it a request is answered 503 with `Retry-After`: unauthenticated
    /// callers cannot make the adapter hold more memory than this.
    #[arg(long, env = "ADAPTER_UNVERIFIED_BODY_BUDGET_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub unverified_body_budget_bytes: usize,

    /// Deadline of the call to the core, in milliseconds. Keeps a whole request
    /// under Kapso's 10 s timeout.
    #[arg(long, env = "CORE_TIMEOUT_MS", default_value_t = 5000)]
    pub core_timeout_ms: u64,

    /// Milliseconds a connection may go without a request open before it is
    /// closed: from accept to the first request's headers, and between
    /// requests (idle keep-alive), for HTTP/1, HTTP/2 or a socket that says nothing.
    #[arg(long, env = "ADAPTER_HEADER_READ_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_ms: u64,

    /// Milliseconds a client has to send a whole webhook body; then 408.
    #[arg(long, env = "ADAPTER_BODY_READ_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_ms: u64,

    /// Open connections served at once; connections beyond it are closed on accept.
    #[arg(long, env = "ADAPTER_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Webhook requests handled at once; beyond it the answer is 503 with
    /// `Retry-After` at once, instead of a queue that grows without bound.
    #[arg(long, env = "ADAPTER_MAX_IN_FLIGHT", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// `Retry-After` seconds sent with a 503 when the core cannot take a delivery.
    #[arg(long, env = "RETRY_AFTER_SECS", default_value_t = 5)]
    pub retry_after_secs: u64,

    /// Log message text and full phone numbers in the per-event DEBUG lines. Off: text
    /// is left out and phones are masked.
    #[arg(
        long,
        env = "LOG_MESSAGE_CONTENT",
        default_value_t = false,
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new(),
    )]
    pub log_message_content: bool,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// The deadline of one `IngestEvents` call.
    pub fn core_timeout(&self) -> Duration {
        Duration::from_millis(self.core_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// The TLS settings towards the core (all `None`: plain HTTP/2).
    pub fn core_tls(&self) -> CoreTls {
        CoreTls {
            ca: self.core_tls_ca.clone(),
            client_cert: self.core_tls_client_cert.clone(),
            client_key: self.core_tls_client_key.clone(),
        }
    }

    /// Checks what clap cannot see across fields (the URL scheme against the TLS
    /// files, the PEM contents). Call before binding.
    pub fn validate(&self) -> Result<(), crate::core_client::SetupError> {
        crate::core_client::endpoint(self).map(drop)
    }
}

/// How log lines are written: one setting for every process.
pub use kapso_telemetry::LogFormat;

/// Reads a PEM file while parsing, so a missing file stops the adapter naming the variable.
#[derive(Debug, Clone, Copy)]
struct PemParser(&'static str);

impl TypedValueParser for PemParser {
    type Value = PemFile;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<PemFile, clap::Error> {
        let path = PathBuf::from(value);
        PemFile::read(&path).map_err(|error| {
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("{}: cannot read {}: {error}\n", self.0, path.display()),
            )
            .with_cmd(cmd)
        })
    }
}

#[cfg(test)]
mod tests;
