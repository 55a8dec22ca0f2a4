//! Several in-process cores on one PostgreSQL database, and a fake Kapso API
//! that counts the sends it receives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use clap::Parser as _;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::ingest_client::IngestClient;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// The business number every event and send uses.
pub const NUMBER: &str = "647015955153740";
/// The customer.
pub const CONTACT: &str = "15551234567";

/// One core serving on its own port until dropped.
#[derive(Debug)]
pub struct Core {
    pub url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Core {
    /// Starts a core on `127.0.0.1:0` over `database_url`, sending to `kapso`.
    pub async fn start(database_url: &str, kapso: &str) -> Core {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = kapso_core::Config::try_parse_from([
            "kapso-core",
            "--database-url",
            database_url,
            "--kapso-api-base-url",
            kapso,
            "--kapso-api-token",
            "test-token-not-real",
            // Several cores share this process: none takes the default metrics port.
            "--metrics-addr",
            "off",
        ])
        .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = kapso_core::run(config, listener, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(error) = served {
                panic!("core failed: {error:#}");
            }
        });
        // The listener is bound: calls queue until the store is open.
        Core { url, _stop: stop }
    }

    pub async fn ingest(&self) -> IngestClient<Channel> {
        for _ in 0..100 {
            if let Ok(client) = IngestClient::connect(self.url.clone()).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("core at {} never accepted connections", self.url)
    }

    pub async fn messaging(&self) -> MessagingClient<Channel> {
        MessagingClient::connect(self.url.clone()).await.unwrap()
    }
}

/// A fake Kapso API that answers every send with the same wamid after `delay`.
#[derive(Debug, Clone)]
pub struct FakeKapso {
    pub url: String,
    sends: Arc<AtomicUsize>,
}

impl FakeKapso {
    pub async fn start(delay: Duration) -> FakeKapso {
        let sends = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&sends);
        let app = Router::new().fallback(move || {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                (
                    [(CONTENT_TYPE, "application/json")],
                    r#"{"messaging_product":"whatsapp","contacts":[{"input":"x","wa_id":"x"}],"messages":[{"id":"wamid.fake-1"}]}"#,
                )
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeKapso {
            url: format!("http://{addr}"),
            sends,
        }
    }

    /// Requests received so far.
    pub fn sends(&self) -> usize {
        self.sends.load(Ordering::SeqCst)
    }
}

/// `whatsapp.message.received`: a text from [`CONTACT`].
pub fn received(wamid: &str, text: &str) -> pb::InboundEvent {
    pb::InboundEvent {
        event_type: "whatsapp.message.received".into(),
        message_id: wamid.into(),
        conversation_id: "conv-1".into(),
        phone_number_id: NUMBER.into(),
        contact_phone: CONTACT.into(),
        direction: pb::Direction::Inbound as i32,
        message_type: "text".into(),
        text: text.into(),
        timestamp: unix_now(),
        payload_json: format!(r#"{{"message":{{"id":"{wamid}","text":{{"body":"{text}"}}}}}}"#),
        ..Default::default()
    }
}

/// `whatsapp.message.<name>` for an outbound message.
pub fn status(wamid: &str, name: &str, status: pb::MessageStatus, at: i64) -> pb::InboundEvent {
    pb::InboundEvent {
        event_type: format!("whatsapp.message.{name}"),
        message_id: wamid.into(),
        conversation_id: "conv-1".into(),
        phone_number_id: NUMBER.into(),
        contact_phone: CONTACT.into(),
        direction: pb::Direction::Outbound as i32,
        message_type: "text".into(),
        statuses: vec![pb::StatusUpdate {
            status: status as i32,
            timestamp: at,
            errors: Vec::new(),
        }],
        timestamp: at,
        payload_json: format!(r#"{{"message":{{"id":"{wamid}","status":"{name}"}}}}"#),
        ..Default::default()
    }
}

/// A delivery of `events` under `key`.
pub fn delivery(key: &str, events: Vec<pb::InboundEvent>) -> pb::IngestEventsRequest {
    pb::IngestEventsRequest {
        delivery_key: key.into(),
        events,
        ..Default::default()
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}
