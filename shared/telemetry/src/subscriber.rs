//! The process-wide `tracing` subscriber: log lines, and spans over OTLP when
//! the environment asks for them.

use std::io::IsTerminal as _;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, filter};

use crate::otlp::{self, OtlpError, Settings};
use crate::spans;

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// What [`init`] installed; [`shutdown`](Telemetry::shutdown) before the process exits.
#[derive(Debug)]
#[must_use = "spans still buffered are lost unless `shutdown` is awaited"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still buffered and stops the exporter. Waits for at
    /// most the batch processor's own shutdown timeout (5 s).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // Blocking: the processor's thread exports while this waits, and the
        // export itself needs the runtime's workers free.
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "spans not exported at shutdown"),
            Err(error) => tracing::warn!(%error, "span export shutdown failed"),
        }
    }
}

/// Why telemetry cannot start. The process refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(transparent)]
    Otlp(#[from] OtlpError),
}

/// Installs the global subscriber: `RUST_LOG` filters log lines (default
/// `info`), `format` shapes them; and, when an OTLP endpoint is configured,
/// spans at INFO and above are exported as `service` (unless
/// `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names the service).
///
/// Text is coloured only on a terminal: escape codes in a file or a log
/// collector are noise that breaks searching. JSON is never coloured.
/// Does nothing if a subscriber is already installed (tests call it
/// repeatedly). Must be called inside a Tokio runtime.
pub fn init(service: &'static str, format: LogFormat) -> Result<Telemetry, TelemetryError> {
    let settings = Settings::from_env(|name| std::env::var(name).ok())?;
    let Some(settings) = settings else {
        logs_only(format);
        return Ok(Telemetry { provider: None });
    };
    let provider = otlp::provider(&settings, service)?;
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    // Spans only: log events stay in the log, where LOG_MESSAGE_CONTENT and
    // the masking decide what they show. INFO and above whatever RUST_LOG
    // says, so quieter logs do not cut traces.
    let spans_only = filter::filter_fn(|meta| meta.is_span() && *meta.level() <= Level::INFO);
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(spans_only);
    let installed = tracing_subscriber::registry()
        .with(log_layer(format).with_filter(env_filter()))
        .with(traces)
        .try_init();
    if installed.is_err() {
        return Ok(Telemetry { provider: None });
    }
    spans::start_exporting();
    tracing::info!(
        protocol = ?settings.protocol,
        "exporting traces over OTLP"
    );
    Ok(Telemetry {
        provider: Some(provider),
    })
}

fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Log lines alone, filtered once for the whole subscriber: the cheapest
/// subscriber there is, for the processes that export nothing.
fn logs_only(format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_env_filter(env_filter());
    let _already_set = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_ansi(false)
            .try_init(),
    };
}

/// The same log lines as [`logs_only`], as one layer beside the exporter's.
fn log_layer<S>(format: LogFormat) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let layer = tracing_subscriber::fmt::layer();
    match format {
        LogFormat::Text => layer.with_ansi(std::io::stdout().is_terminal()).boxed(),
        LogFormat::Json => layer.json().flatten_event(true).with_ansi(false).boxed(),
    }
}
