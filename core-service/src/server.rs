//! The gRPC server: the core's services, health and reflection on one port,
//! optionally over TLS, with a bounded graceful shutdown; and the same
//! adapter-facing services as an in-process [`Link`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kapso_gateway_proto::v1::{ingest_server::IngestServer, messaging_server::MessagingServer};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tower::Layer as _;

use crate::auth::{ApiTokens, Authenticate, Guarded};
use crate::ingest::IngestService;
use crate::messaging::MessagingService;
use crate::metered::{MeteredIngest, MeteredMessaging};
use crate::metrics::CoreMetrics;
use crate::outbound::Outbound;
use crate::store::Store;
use crate::trace_context::{TraceContext, TraceContextLayer};

/// How long in-flight calls get to finish after shutdown starts. Watch streams
/// never finish on their own, so the drain must be bounded.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// HTTP/2 pings on an idle connection, and how long an unanswered one may
/// wait before the connection (and every stream on it) is closed: a peer that
/// vanished without a FIN otherwise holds its watch streams open forever.
/// gRPC's and Envoy's usual values.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent streams one connection may hold (HTTP/2 `MAX_CONCURRENT_STREAMS`):
/// a client past it waits for a stream to end. Generous for a consumer's
/// watches, but health and reflection are open, so one connection cannot pin
/// unbounded server state.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;
/// How often the health status is refreshed from a real write-path round trip.
const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// How the server guards and reports its calls, from the configuration.
#[derive(Debug)]
pub struct Guards {
    /// Bearer tokens (and their scopes) required on the gateway's services; `None`: open.
    pub tokens: Option<ApiTokens>,
    /// TLS (and client certificates) on the gRPC port; `None`: plain HTTP/2.
    pub tls: Option<ServerTlsConfig>,
    pub metrics: Arc<CoreMetrics>,
}

/// The ingest service as served: behind the token check.
type GuardedIngest = Guarded<IngestServer<MeteredIngest>>;

/// The adapter-facing services (`Ingest` and health) as one gRPC service in
/// this process: the same token check, spans and metrics as over the network,
/// without the HTTP/2 connection and the sockets under it. `kapso-gateway`
/// hands it to its adapter.
pub type Link = TraceContext<Routes>;

/// The core's gRPC services, built once: [`serve`](Services::serve) puts them
/// on a listener, [`link`](Services::link) lends the adapter-facing ones to an
/// adapter in the same process.
pub struct Services {
    store: Arc<dyn Store>,
    outbound: Arc<Outbound>,
    tls: Option<ServerTlsConfig>,
    metrics: Arc<CoreMetrics>,
    auth: Authenticate,
    ingest: GuardedIngest,
    health: HealthServer<HealthService>,
    reporter: HealthReporter,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Services {
    pub fn new(store: Arc<dyn Store>, outbound: Arc<Outbound>, guards: Guards) -> Services {
        let Guards {
            tokens,
            tls,
            metrics,
        } = guards;
        let reporter = HealthReporter::new();
        let health = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        let auth = Authenticate::new(tokens);
        let ingest = MeteredIngest::new(IngestService::new(store.clone()), metrics.clone());
        let ingest = auth.guard(IngestServer::new(ingest));
        Services {
            store,
            outbound,
            tls,
            metrics,
            auth,
            ingest,
            health,
            reporter,
        }
    }

    /// `Ingest` and health, callable in this process (see [`Link`]).
    pub fn link(&self) -> Link {
        let routes = Routes::new(self.health.clone()).add_service(self.ingest.clone());
        TraceContextLayer.layer(routes)
    }

    /// Serves every service on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Services {
            store,
            outbound,
            tls,
            metrics,
            auth,
            ingest,
            health,
            reporter,
        } = self;
        tracing::info!(
            addr = %listener.local_addr()?,
            tls = tls.is_some(),
            auth = auth.requires_token(),
            "core listening"
        );
        let _probe = AbortOnDrop(tokio::spawn(report_health(
            store.clone(),
            reporter,
            metrics.clone(),
        )));
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kapso_gateway_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;

        // Small request/response messages on long-lived HTTP/2 connections:
        // Nagle's algorithm would only add latency.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
        let (closing_tx, closing) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: no new calls, draining in-flight ones");
            let _ = closing_tx.send(true);
            let _ = draining_tx.send(());
        };
        let mut builder = Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
        if let Some(tls) = tls {
            builder = builder.tls_config(tls)?;
        }
        let messaging =
            MeteredMessaging::new(MessagingService::new(store, outbound, closing), metrics);
        // Tokens guard only the gateway's own services, in this one place: health
        // and reflection stay open for load balancers and tooling.
        let server = builder
            // Outermost, so refused calls are logged with the caller's trace context too.
            .layer(TraceContextLayer)
            .add_service(health)
            .add_service(reflection)
            .add_service(ingest)
            .add_service(auth.guard(MessagingServer::new(messaging)))
            .serve_with_incoming_shutdown(incoming, signal);

        let grace_over = async {
            if draining_rx.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = server => result.map_err(anyhow::Error::from),
            () = grace_over => {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "calls still open after the grace period; closing them");
                Ok(())
            }
        }
    }
}

/// Stops a background task when the server future ends or is dropped, so a
/// stopped server holds no reference to the store.
#[derive(Debug)]
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps `grpc.health.v1` (and the `store_writable` gauge) truthful: SERVING
/// only while the store accepts writes.
async fn report_health(store: Arc<dyn Store>, reporter: HealthReporter, metrics: Arc<CoreMetrics>) {
    let services = ["", "kapso.gateway.v1.Ingest", "kapso.gateway.v1.Messaging"];
    let mut last = None;
    loop {
        let status = match store.check_writable().await {
            Ok(()) => ServingStatus::Serving,
            Err(error) => {
                tracing::error!(%error, "store does not accept writes");
                ServingStatus::NotServing
            }
        };
        metrics.set_store_writable(status == ServingStatus::Serving);
        if last != Some(status) {
            for service in services {
                reporter.set_service_status(service, status).await;
            }
            last = Some(status);
        }
        tokio::time::sleep(HEALTH_PROBE_INTERVAL).await;
    }
}
