//! The accept loop: hyper connections with the limits `axum::serve` cannot set.
//!
//! Per connection: a permit of `ADAPTER_MAX_CONNECTIONS` (none left: the
//! connection is closed on accept), an idle timeout of
//! `ADAPTER_HEADER_READ_TIMEOUT_MS` whatever the protocol (silent sockets,
//! slowloris clients and idle keep-alives are dropped; see `idle`), HTTP/2
//! keep-alive pings, and the peer address as `ConnectInfo`.
//! Shutdown stops accepting, lets open requests finish for at most the grace
//! period, and closes idle connections at once.

mod idle;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt as _;
use tracing::{debug, error, info, warn};

use crate::metrics::ConnectionClosed;
use crate::state::AppState;

/// Seconds between HTTP/2 pings while a connection is open, and how long an
/// answer may take before the peer is taken for dead. The idle timeout closes
/// quiet connections long before; pings find peers that vanished mid-request.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// What bounds each connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            // Closing at once costs the client one round trip and us nothing;
            // holding it unserved would tie up a socket and its memory.
            state
                .metrics()
                .connection_closed(ConnectionClosed::OverLimit);
            debug!(%peer, "connection refused: ADAPTER_MAX_CONNECTIONS open");
            continue;
        };
        let app = app.clone();
        let activity = idle::Activity::new();
        let requests = Arc::clone(&activity);
        // The peer goes where `ConnectInfo` looks for it: the request's extensions.
        let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let open = requests.request();
            let response = app.clone().oneshot(request);
            async move {
                let response = response.await;
                drop(open);
                response
            }
        });
        let connection = graceful.watch(builder.serve_connection(io(stream), service).into_owned());
        let state = state.clone();
        let idle_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let timed_out = tokio::select! {
                ended = connection => match ended {
                    Err(error) if is_header_timeout(&*error) => true,
                    Err(error) => {
                        debug!(%peer, %error, "connection ended with an error");
                        false
                    }
                    Ok(()) => false,
                },
                // Dropping the connection closes the socket; no request is open.
                () = activity.idle_for(idle_timeout) => true,
            };
            if timed_out {
                state
                    .metrics()
                    .connection_closed(ConnectionClosed::HeaderTimeout);
                debug!(%peer, "connection closed: no request begun in time");
            }
            drop(permit);
        });
    }

    drop(listener);
    info!("shutting down: no new connections, draining requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            warn!(grace = ?limits.shutdown_grace, "requests still open after the grace period; closing them");
        }
    }
}

fn io(stream: TcpStream) -> TokioIo<TcpStream> {
    // Responses are small and written whole: Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    TokioIo::new(stream)
}

fn is_header_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<hyper::Error>()
        .is_some_and(hyper::Error::is_timeout)
}

/// Accept errors are per connection (reset before accept) or resource
/// exhaustion (EMFILE); neither should stop the server. Backing off on the
/// latter gives open connections time to finish.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    error!(%error, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
