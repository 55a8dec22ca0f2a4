//! A tiny HTTP server standing in for the adapter's webhook endpoint: it keeps
//! the last request's headers and exact body and answers with a fixed status.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::net::TcpListener;

pub const WEBHOOK_PATH: &str = "/api/whatsapp/webhook";

/// The last delivery the fake received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
struct AdapterState {
    answer: StatusCode,
    last: Arc<Mutex<Option<Delivery>>>,
}

async fn receive(
    State(state): State<AdapterState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    *state.last.lock().unwrap() = Some(Delivery { headers, body });
    let text = if state.answer.is_success() {
        r#"{"status":"ok"}"#
    } else {
        r#"{"detail":"invalid signature"}"#
    };
    (state.answer, text)
}

/// Serves the fake on 127.0.0.1:0 answering `answer`; returns the webhook URL
/// and the slot holding the last delivery.
pub async fn spawn_adapter(answer: StatusCode) -> (String, Arc<Mutex<Option<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let last = Arc::new(Mutex::new(None));
    let app = Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .with_state(AdapterState {
            answer,
            last: last.clone(),
        });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}{WEBHOOK_PATH}"), last)
}
