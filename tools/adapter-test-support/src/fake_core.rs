//! A fake core: serves `Ingest` on a real socket, records every call, and
//! answers as its [`Behaviour`] says.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kapso_gateway_proto::v1::ingest_server::{Ingest, IngestServer};
use kapso_gateway_proto::v1::{
    Disposition, EventOutcome, IngestEventsRequest, IngestEventsResponse,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Server, ServerTlsConfig};

/// How the fake core answers `IngestEvents`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Stores every event as new.
    Stores,
    /// Never answers (until the adapter's deadline).
    Hangs,
    /// Answers UNAUTHENTICATED unless `authorization` is `Bearer <this>`.
    RequiresToken(&'static str),
}

/// What the fake core saw of one call.
#[derive(Debug, Clone)]
pub struct Call {
    pub request: IngestEventsRequest,
    pub metadata: http::HeaderMap,
}

#[derive(Debug, Clone)]
pub struct FakeCore {
    behaviour: Behaviour,
    pub calls: Arc<Mutex<Vec<Call>>>,
    /// Notified on every call, before answering.
    pub called: Arc<Notify>,
}

impl FakeCore {
    pub fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            calls: Arc::default(),
            called: Arc::default(),
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Serves on 127.0.0.1:0, optionally with TLS; returns the address.
    pub async fn serve(&self, tls: Option<ServerTlsConfig>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls).unwrap();
        }
        let router = server.add_service(IngestServer::new(self.clone()));
        tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
        addr
    }
}

#[tonic::async_trait]
impl Ingest for FakeCore {
    async fn ingest_events(
        &self,
        request: tonic::Request<IngestEventsRequest>,
    ) -> Result<tonic::Response<IngestEventsResponse>, tonic::Status> {
        let metadata = request.metadata().clone().into_headers();
        let request = request.into_inner();
        let count = request.events.len();
        self.calls.lock().unwrap().push(Call {
            request,
            metadata: metadata.clone(),
        });
        self.called.notify_waiters();
        match self.behaviour {
            Behaviour::Stores => {}
            Behaviour::Hangs => {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Behaviour::RequiresToken(token) => {
                let presented = metadata.get("authorization").and_then(|v| v.to_str().ok());
                if presented != Some(&format!("Bearer {token}")) {
                    return Err(tonic::Status::unauthenticated("invalid bearer token"));
                }
            }
        }
        let outcomes = (0..count)
            .map(|i| EventOutcome {
                disposition: Disposition::New.into(),
                sequence: i as u64 + 1,
            })
            .collect();
        Ok(tonic::Response::new(IngestEventsResponse {
            outcomes,
            duplicate_delivery: false,
        }))
    }
}
