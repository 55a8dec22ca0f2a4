//! `GET /metrics` on its own small HTTP server, apart from the gRPC port so
//! scrapers need neither gRPC nor the API tokens.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use tokio::net::TcpListener;

use super::{ConsumerLabels, CoreMetrics, PhoneNumberLabels};
use crate::outbound::Outbound;
use crate::store::Store;

/// What a scrape reads besides the registry.
#[derive(Debug)]
struct Scrape {
    metrics: Arc<CoreMetrics>,
    store: Arc<dyn Store>,
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<CoreMetrics>,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state(Arc::new(Scrape { metrics, store }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn render(State(scrape): State<Arc<Scrape>>) -> impl IntoResponse {
    scrape.refresh().await;
    kapso_telemetry::metrics::response(&scrape.metrics.registry)
}

impl Scrape {
    /// Brings the values computed at scrape time up to date.
    async fn refresh(&self) {
        let ages = self.metrics.event_ages(SystemTime::now());
        for (phone_number_id, age) in ages {
            self.metrics
                .last_event_age
                .get_or_create(&PhoneNumberLabels { phone_number_id })
                .set(age);
        }
        let head = *self.store.committed().borrow();
        match self.store.consumer_positions().await {
            Ok(positions) => {
                for (consumer, position) in positions {
                    let lag = i64::try_from(head.saturating_sub(position)).unwrap_or(i64::MAX);
                    self.metrics
                        .consumer_lag
                        .get_or_create(&ConsumerLabels { consumer })
                        .set(lag);
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read consumer positions for metrics"),
        }
    }
}

/// Kapso API calls by outcome and rate-limit waits, read from the client's own
/// counters at scrape time so the outbound path knows nothing of Prometheus.
pub(super) struct ApiCalls(pub(super) Arc<Outbound>);

impl fmt::Debug for ApiCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiCalls")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

impl Collector for ApiCalls {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let stats = self.0.api_stats();
        let mut calls = encoder.encode_descriptor(
            "kapso_core_kapso_api_calls",
            "Kapso API calls by outcome (done, retryable, permanent, unknown)",
            None,
            MetricType::Counter,
        )?;
        for (outcome, value) in [
            ("done", stats.done),
            ("retryable", stats.retryable),
            ("permanent", stats.permanent),
            ("unknown", stats.unknown),
        ] {
            ConstCounter::new(value).encode(calls.encode_family(&OutcomeLabels { outcome })?)?;
        }
        let waits = encoder.encode_descriptor(
            "kapso_core_kapso_rate_limit_waits",
            "Kapso API calls that waited for the client-side rate limit",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(stats.rate_limit_waits).encode(waits)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outbound::OutboundConfig;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn a_scrape_shows_every_series() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("gw.db").to_str().unwrap()).unwrap());
        let outbound = Arc::new(
            Outbound::from_config(
                OutboundConfig::new("http://127.0.0.1:9/unused".parse().unwrap(), None),
                store.clone(),
            )
            .unwrap(),
        );
        let metrics = Arc::new(CoreMetrics::new().with_outbound(outbound));
        store.observe_commits(metrics.commit_observer());
        store.ack("fake-consumer", 0).await.unwrap();
        metrics.ingested(2, 1, Duration::from_millis(3));
        metrics.events_seen(["1234567890"]);
        metrics.set_store_writable(true);
        let _watch = metrics.watch_opened();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, metrics, store, async {
            let _ = stopped.await;
        }));
        let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        for series in [
            "kapso_core_ingest_calls_total 1",
            "kapso_core_ingest_events_total{disposition=\"new\"} 2",
            "kapso_core_ingest_events_total{disposition=\"duplicate\"} 1",
            "kapso_core_ingest_duration_seconds_count 1",
            "kapso_core_store_commit_batch_size_count 1",
            "kapso_core_watch_streams 1",
            "kapso_core_store_writable 1",
            "kapso_core_retention_pruned_rows_total 0",
            "kapso_core_consumer_lag_events{consumer=\"fake-consumer\"} 0",
            "kapso_last_inbound_event_age_seconds{phone_number_id=\"1234567890\"}",
            "kapso_core_kapso_api_calls_total{outcome=\"done\"} 0",
            "kapso_core_kapso_rate_limit_waits_total 0",
        ] {
            assert!(body.contains(series), "{series} missing from:\n{body}");
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
