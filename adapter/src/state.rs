//! What every handler shares, built once from the [`Config`].

use std::sync::Arc;

use crate::config::Config;
use crate::core_client::CoreClient;
use crate::metrics::Metrics;
use crate::signature::WebhookSecrets;

/// Shared, read-only state of the HTTP handlers. Cloning is one `Arc` increment.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub secrets: WebhookSecrets,
    pub core: CoreClient,
    pub metrics: Metrics,
    pub body_limit_bytes: usize,
    pub retry_after_secs: u64,
    pub log_message_content: bool,
}

impl AppState {
    /// Keys the signature check and prepares the (lazy) channel to the core.
    ///
    /// Must be called inside a Tokio runtime; does not contact the core.
    pub fn new(config: &Config) -> Self {
        let shared = Shared {
            secrets: config.webhook_secret.clone(),
            core: CoreClient::connect_lazy(config.core_grpc_url.clone(), config.core_timeout()),
            metrics: Metrics::new(),
            body_limit_bytes: config.body_limit_bytes,
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
