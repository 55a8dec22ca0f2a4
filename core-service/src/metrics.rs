//! The core's Prometheus metrics and the registry that exposes them.
//!
//! Most series are updated where things happen (ingest, commits, watch
//! streams, the health probe). Values that live elsewhere (Kapso call counts,
//! consumer lag, time since the last event per number) are read at scrape time
//! by [`endpoint`], so they cost nothing between scrapes.
//!
//! - [`endpoint`]: the HTTP server behind `CORE_METRICS_ADDR`

pub mod endpoint;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::CommitObserver;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct DispositionLabels {
    pub(crate) disposition: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct ConsumerLabels {
    pub(crate) consumer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct PhoneNumberLabels {
    pub(crate) phone_number_id: String,
}

/// The core's metrics. Shared as `Arc<CoreMetrics>`.
#[derive(Debug)]
pub struct CoreMetrics {
    pub(crate) registry: Registry,
    ingest_calls: Counter,
    ingest_events: Family<DispositionLabels, Counter>,
    ingest_latency: Histogram,
    commit_batch: Histogram,
    watch_streams: Gauge,
    store_writable: Gauge,
    pruned_rows: Counter,
    pub(crate) consumer_lag: Family<ConsumerLabels, Gauge>,
    pub(crate) last_event_age: Family<PhoneNumberLabels, Gauge<f64, AtomicU64>>,
    /// When the last event for each business number arrived (in memory).
    last_event_at: Mutex<HashMap<String, SystemTime>>,
}

impl Default for CoreMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CoreMetrics {
    pub fn new() -> Self {
        let mut registry = kapso_telemetry::metrics::registry(None);
        let ingest_calls = Counter::default();
        registry.register(
            "kapso_core_ingest_calls",
            "IngestEvents calls answered OK",
            ingest_calls.clone(),
        );
        let ingest_events = Family::<DispositionLabels, Counter>::default();
        registry.register(
            "kapso_core_ingest_events",
            "Events ingested, by disposition (new or duplicate)",
            ingest_events.clone(),
        );
        // Durable commits take a few ms; the adapter gives up after seconds.
        let ingest_latency = Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]);
        registry.register(
            "kapso_core_ingest_duration_seconds",
            "IngestEvents time in the core, durable commit included",
            ingest_latency.clone(),
        );
        let commit_batch =
            Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]);
        registry.register(
            "kapso_core_store_commit_batch_size",
            "Write requests per group commit",
            commit_batch.clone(),
        );
        let watch_streams = Gauge::default();
        registry.register(
            "kapso_core_watch_streams",
            "WatchEvents streams open now",
            watch_streams.clone(),
        );
        let store_writable = Gauge::default();
        registry.register(
            "kapso_core_store_writable",
            "1 while the store accepts writes (health probe), else 0",
            store_writable.clone(),
        );
        let pruned_rows = Counter::default();
        registry.register(
            "kapso_core_retention_pruned_rows",
            "Log events and de-duplication keys deleted by retention",
            pruned_rows.clone(),
        );
        let consumer_lag = Family::<ConsumerLabels, Gauge>::default();
        registry.register(
            "kapso_core_consumer_lag_events",
            "Head sequence minus the consumer's acknowledged position",
            consumer_lag.clone(),
        );
        let last_event_age = Family::<PhoneNumberLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "kapso_last_inbound_event_age_seconds",
            "Seconds since the last webhook event for the business number (since start)",
            last_event_age.clone(),
        );
        Self {
            registry,
            ingest_calls,
            ingest_events,
            ingest_latency,
            commit_batch,
            watch_streams,
            store_writable,
            pruned_rows,
            consumer_lag,
            last_event_age,
            last_event_at: Mutex::new(HashMap::new()),
        }
    }

    /// Adds the Kapso API call counters of `outbound`, read at each scrape.
    pub fn with_outbound(mut self, outbound: Arc<crate::outbound::Outbound>) -> Self {
        self.registry
            .register_collector(Box::new(endpoint::ApiCalls(outbound)));
        self
    }

    /// Records an IngestEvents call that succeeded.
    pub fn ingested(&self, new: u64, duplicate: u64, elapsed: Duration) {
        self.ingest_calls.inc();
        self.ingest_latency.observe(elapsed.as_secs_f64());
        for (disposition, count) in [("new", new), ("duplicate", duplicate)] {
            self.ingest_events
                .get_or_create(&DispositionLabels { disposition })
                .inc_by(count);
        }
    }

    /// Notes that the webhook delivered events for these business numbers just now.
    pub fn events_seen<'a>(&self, phone_number_ids: impl IntoIterator<Item = &'a str>) {
        let now = SystemTime::now();
        let mut seen = self.last_event_at.lock().unwrap_or_else(|e| e.into_inner());
        for id in phone_number_ids {
            if id.is_empty() {
                continue;
            }
            match seen.get_mut(id) {
                Some(at) => *at = now,
                None => {
                    seen.insert(id.to_owned(), now);
                }
            }
        }
    }

    /// Seconds since the last event of each business number, as of `now`.
    pub(crate) fn event_ages(&self, now: SystemTime) -> Vec<(String, f64)> {
        let seen = self.last_event_at.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter()
            .map(|(id, at)| {
                let age = now.duration_since(*at).unwrap_or_default();
                (id.clone(), age.as_secs_f64())
            })
            .collect()
    }

    /// A callback for [`Store::observe_commits`](crate::store::Store::observe_commits).
    pub fn commit_observer(self: &Arc<Self>) -> CommitObserver {
        let histogram = self.commit_batch.clone();
        Arc::new(move |requests| histogram.observe(requests as f64))
    }

    /// Counts an open WatchEvents stream until the returned guard is dropped.
    pub fn watch_opened(&self) -> WatchGuard {
        self.watch_streams.inc();
        WatchGuard(self.watch_streams.clone())
    }

    pub fn set_store_writable(&self, writable: bool) {
        self.store_writable.set(i64::from(writable));
    }

    pub fn pruned(&self, rows: u64) {
        self.pruned_rows.inc_by(rows);
    }
}

/// Decrements the open-streams gauge when the stream ends, however it ends.
#[derive(Debug)]
pub struct WatchGuard(Gauge);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ages_grow_from_the_last_event() {
        let metrics = CoreMetrics::new();
        metrics.events_seen(["111", "", "222"]);
        let later = SystemTime::now() + Duration::from_secs(90);
        let mut ages = metrics.event_ages(later);
        ages.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(ages.len(), 2);
        assert_eq!(ages[0].0, "111");
        assert!(ages[0].1 >= 89.0 && ages[0].1 < 100.0);
    }

    #[test]
    fn watch_guard_counts_open_streams() {
        let metrics = CoreMetrics::new();
        let a = metrics.watch_opened();
        let b = metrics.watch_opened();
        assert_eq!(metrics.watch_streams.get(), 2);
        drop(a);
        drop(b);
        assert_eq!(metrics.watch_streams.get(), 0);
    }
}
