//! The adapter's only outbound dependency: the core's `Ingest` gRPC service.
//!
//! The channel connects lazily so the adapter starts, and answers 503, while the
//! core is down; tonic reconnects on the next call once it is back.

use std::time::Duration;

use kapso_gateway_proto::v1::ingest_client::IngestClient;
use kapso_gateway_proto::v1::{IngestEventsRequest, IngestEventsResponse, ingest_server};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Longest wait for the core's health answer in `/readyz`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a delivery could not be handed to the core. Each means "not stored": Kapso should retry.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No answer within `CORE_TIMEOUT_MS` (the core may still commit; the retry is then a duplicate).
    #[error("core did not answer within {0:?}")]
    Timeout(Duration),
    /// Unreachable (`Unavailable`) or refused with any other gRPC status.
    #[error("core call failed: {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
}

/// Handle to the core; cheap to clone (one shared HTTP/2 channel).
#[derive(Debug, Clone)]
pub struct CoreClient {
    ingest: IngestClient<Channel>,
    health: HealthClient<Channel>,
    timeout: Duration,
}

impl CoreClient {
    /// Prepares a channel to `url` without connecting. Must run inside a Tokio runtime.
    pub fn connect_lazy(url: http::Uri, timeout: Duration) -> Self {
        let channel = Endpoint::from(url)
            // A refused or black-holed connect must not eat the whole call deadline.
            .connect_timeout(timeout.min(HEALTH_TIMEOUT))
            .connect_lazy();
        Self {
            ingest: IngestClient::new(channel.clone()),
            health: HealthClient::new(channel),
            timeout,
        }
    }

    /// Stores one delivery. `Ok` means the core committed it durably.
    pub async fn ingest(
        &self,
        request: IngestEventsRequest,
    ) -> Result<IngestEventsResponse, CoreError> {
        let mut request = tonic::Request::new(request);
        // Sent as `grpc-timeout` so the core can give up too; enforced here regardless.
        request.set_timeout(self.timeout);
        let mut client = self.ingest.clone();
        match tokio::time::timeout(self.timeout, client.ingest_events(request)).await {
            Ok(response) => Ok(response?.into_inner()),
            Err(_elapsed) => Err(CoreError::Timeout(self.timeout)),
        }
    }

    /// Whether the core reports its `Ingest` service SERVING within a second.
    pub async fn is_serving(&self) -> bool {
        let mut client = self.health.clone();
        let request = HealthCheckRequest {
            service: ingest_server::SERVICE_NAME.to_owned(),
        };
        match tokio::time::timeout(HEALTH_TIMEOUT, client.check(request)).await {
            Ok(Ok(response)) => response.into_inner().status() == ServingStatus::Serving,
            Ok(Err(status)) => {
                tracing::debug!(code = ?status.code(), message = status.message(), "core health check failed");
                false
            }
            Err(_elapsed) => false,
        }
    }
}
