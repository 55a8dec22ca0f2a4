//! The adapter's only outbound dependency: the core's `Ingest` gRPC service.
//!
//! The channel connects lazily so the adapter starts, and answers 503, while the
//! core is down; tonic reconnects on the next call once it is back. Every call
//! carries the bearer token (when configured) and the delivery's trace context.
//! In `kapso-gateway` the same calls go to the core's services in the process
//! instead ([`CoreClient::in_process`]): same messages, same checks, no sockets.
//!
//! - `credentials`: the bearer token and the TLS files.
//! - [`outage`]: how often a failing core is logged.

mod credentials;
pub mod outage;

use std::convert::Infallible;
use std::time::Duration;

use http::{HeaderMap, HeaderName, header};
use kapso_gateway_proto::v1::ingest_client::IngestClient;
use kapso_gateway_proto::v1::{IngestEventsRequest, IngestEventsResponse, ingest_server};
use tonic::metadata::MetadataMap;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

pub use credentials::{ApiToken, CoreTls, PemFile, TokenError};

use crate::config::Config;
use crate::trace_context::TraceContext;

/// Longest wait for the core's health answer in `/readyz`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Why a delivery could not be handed to the core. Each means "not stored"; all
/// but [`Refused`](Self::Refused) are worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No answer within `CORE_TIMEOUT_MS` (the core may still commit; the retry is then a duplicate).
    #[error("core did not answer within {0:?}")]
    Timeout(Duration),
    /// The core refused the adapter's `GATEWAY_API_TOKEN` (missing, or not in its `GATEWAY_API_TOKENS`).
    #[error("core refused the adapter's credentials: {}", .0.message())]
    Unauthenticated(tonic::Status),
    /// The core refused the delivery for what it is (`InvalidArgument`, or
    /// `OutOfRange`: larger than its gRPC limit): a retry gets the same answer.
    #[error("core refused the delivery: {}", .0.message())]
    Refused(tonic::Status),
    /// Unreachable (`Unavailable`) or refused with any other gRPC status.
    #[error("core call failed: {}: {}", .0.code(), .0.message())]
    Status(tonic::Status),
}

impl From<tonic::Status> for CoreError {
    fn from(status: tonic::Status) -> Self {
        match status.code() {
            tonic::Code::Unauthenticated => Self::Unauthenticated(status),
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => Self::Refused(status),
            _ => Self::Status(status),
        }
    }
}

/// Why the channel to the core cannot be set up. The adapter refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("CORE_GRPC_URL is https:// but CORE_TLS_CA is not set: name the CA to trust")]
    HttpsWithoutCa,
    #[error("CORE_TLS_CA is set but CORE_GRPC_URL is not https://")]
    CaWithoutHttps,
    #[error("CORE_TLS_* files are not usable: {0}")]
    Tls(#[from] tonic::transport::Error),
}

/// The endpoint `config` describes: URL, TLS and connect timeout, checked for consistency.
///
/// Pure: callable before anything binds, to refuse a bad configuration early.
pub fn endpoint(config: &Config) -> Result<Endpoint, SetupError> {
    let https = config.core_grpc_url.scheme_str() == Some("https");
    let endpoint = Endpoint::from(config.core_grpc_url.clone())
        // A refused or black-holed connect must not eat the whole call deadline.
        .connect_timeout(config.core_timeout().min(HEALTH_TIMEOUT));
    match (https, config.core_tls().client_config()) {
        (true, Some(tls)) => Ok(endpoint.tls_config(tls)?),
        (false, None) => Ok(endpoint),
        (true, None) => Err(SetupError::HttpsWithoutCa),
        (false, Some(_)) => Err(SetupError::CaWithoutHttps),
    }
}

/// How calls reach the core: an HTTP/2 channel, or the core's services in this
/// process. The channel's error type for both, since reaching services in the
/// process cannot fail.
type Transport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    tonic::transport::Error,
>;

/// Handle to the core; cheap to clone (one shared HTTP/2 channel, or the in-process services).
#[derive(Clone)]
pub struct CoreClient {
    ingest: IngestClient<Transport>,
    health: HealthClient<Transport>,
    token: Option<ApiToken>,
    timeout: Duration,
    /// Where calls go, for the logs: the URL, or "in-process".
    target: String,
}

impl std::fmt::Debug for CoreClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreClient")
            .field("target", &self.target)
            .field("token", &self.token)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CoreClient {
    /// Prepares a channel to the configured core without connecting. Must run inside a Tokio runtime.
    pub fn connect_lazy(config: &Config) -> Result<Self, SetupError> {
        let channel = endpoint(config)?.connect_lazy();
        let target = config.core_grpc_url.to_string();
        Ok(Self::over(Transport::new(channel), config, target))
    }

    /// Calls `services`, the core's `Ingest` and health services in this
    /// process (`kapso-gateway`), instead of a channel to `CORE_GRPC_URL`.
    /// Requests and answers are the same gRPC messages, through the same token
    /// check; only the HTTP/2 connection and its sockets are left out.
    pub fn in_process<S>(services: S, config: &Config) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let transport = Transport::new(services.map_err(|never| match never {}));
        Self::over(transport, config, "in-process".to_owned())
    }

    fn over(transport: Transport, config: &Config, target: String) -> Self {
        Self {
            ingest: IngestClient::new(transport.clone()),
            health: HealthClient::new(transport),
            token: config.gateway_api_token.clone(),
            timeout: config.core_timeout(),
            target,
        }
    }

    /// Where calls go: the core's URL, or "in-process".
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Stores one delivery. `Ok` means the core committed it durably.
    pub async fn ingest(
        &self,
        request: IngestEventsRequest,
        trace: &TraceContext,
    ) -> Result<IngestEventsResponse, CoreError> {
        let mut metadata = self.metadata(3);
        metadata.insert(TRACEPARENT, trace.traceparent().clone());
        metadata.insert(REQUEST_ID, trace.request_id().clone());
        let mut request = tonic::Request::from_parts(
            MetadataMap::from_headers(metadata),
            tonic::Extensions::default(),
            request,
        );
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
        let request = tonic::Request::from_parts(
            MetadataMap::from_headers(self.metadata(1)),
            tonic::Extensions::default(),
            HealthCheckRequest {
                service: ingest_server::SERVICE_NAME.to_owned(),
            },
        );
        match tokio::time::timeout(HEALTH_TIMEOUT, client.check(request)).await {
            Ok(Ok(response)) => response.into_inner().status() == ServingStatus::Serving,
            Ok(Err(status)) => {
                tracing::debug!(code = ?status.code(), message = status.message(), "core health check failed");
                false
            }
            Err(_elapsed) => false,
        }
    }

    /// Call metadata with the bearer token, room left for `capacity` entries.
    fn metadata(&self, capacity: usize) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(capacity);
        if let Some(token) = &self.token {
            headers.insert(header::AUTHORIZATION, token.header().clone());
        }
        headers
    }
}
