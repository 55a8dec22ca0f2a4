//! What every handler shares, built once from the [`Config`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::config::Config;
use crate::core_client::outage::OutageLog;
use crate::core_client::{CoreClient, SetupError};
use crate::metrics::Metrics;
use kapso_signature::WebhookSecrets;

/// Shared, read-only state of the HTTP handlers. Cloning is one `Arc` increment.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub secrets: WebhookSecrets,
    pub core: CoreClient,
    /// When a failing core was last logged.
    pub core_outage: OutageLog,
    pub metrics: Metrics,
    pub body_limit_bytes: usize,
    pub body_read_timeout: Duration,
    /// Permits for webhook requests in flight (`ADAPTER_MAX_IN_FLIGHT`); none left: shed.
    pub in_flight: Semaphore,
    /// One permit per body byte buffered before its signature is checked
    /// (`ADAPTER_UNVERIFIED_BODY_BUDGET_BYTES`); none left: shed.
    pub unverified_bytes: Semaphore,
    pub retry_after_secs: u64,
    pub log_message_content: bool,
}

impl AppState {
    /// Keys the signature check and prepares the (lazy) channel to the core.
    ///
    /// Must be called inside a Tokio runtime; does not contact the core. Fails
    /// only on an inconsistent TLS configuration (see [`Config::validate`]).
    pub fn new(config: &Config) -> Result<Self, SetupError> {
        Ok(Self::with_core(config, CoreClient::connect_lazy(config)?))
    }

    /// As [`new`](Self::new), with the way to the core given (see [`CoreClient::in_process`]).
    pub fn with_core(config: &Config, core: CoreClient) -> Self {
        let shared = Shared {
            secrets: config.webhook_secret.clone(),
            core,
            core_outage: OutageLog::default(),
            metrics: Metrics::new(),
            body_limit_bytes: config.body_limit_bytes,
            body_read_timeout: config.body_read_timeout(),
            in_flight: Semaphore::new(config.max_in_flight as usize),
            // Never below one whole body, or a body under the limit could never be read.
            unverified_bytes: Semaphore::new(
                config
                    .unverified_body_budget_bytes
                    .max(config.body_limit_bytes)
                    .min(Semaphore::MAX_PERMITS),
            ),
            retry_after_secs: config.retry_after_secs,
            log_message_content: config.log_message_content,
        };
        Self {
            inner: Arc::new(shared),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner
    }

    /// The adapter's metrics (for embedding or inspection in tests).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}
