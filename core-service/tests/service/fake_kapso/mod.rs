//! A fake Kapso Meta proxy on a real socket: records every request (headers and
//! JSON body) and answers from a script, one reply per request, falling back to
//! success when the script is empty. Its media endpoints are in [`media`].

mod media;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The proxy path every send goes under; recorded paths start with it.
pub const PROXY: &str = "/meta/whatsapp/v24.0";

/// Runs before a reply is sent, given the request body (e.g. to ingest a status webhook first).
pub type Hook = Arc<dyn Fn(Value) -> BoxFuture<'static, ()> + Send + Sync>;

/// One scripted answer.
pub enum Reply {
    /// Send success with a fresh wamid (or mark-read success for read receipts).
    Ok,
    /// Send success with this wamid.
    SentAs(String),
    /// Any status with a JSON body and extra headers.
    Json(u16, Value, Vec<(&'static str, String)>),
    /// Any status with a plain body.
    Text(u16, &'static str),
    /// Waits, then answers with the inner reply (long enough to time the client out).
    Delay(Duration, Box<Reply>),
    /// Runs the hook, then answers with the inner reply.
    Before(Hook, Box<Reply>),
}

impl Reply {
    /// Meta's error envelope with `code` under HTTP `status`.
    pub fn meta_error(status: u16, code: i64, message: &str) -> Reply {
        Reply::Json(
            status,
            json!({"error": {"message": message, "type": "OAuthException", "code": code,
                   "error_data": {"details": message}, "fbtrace_id": "AbCdEf"}}),
            Vec::new(),
        )
    }
}

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    wamids: AtomicU64,
    /// `host:port` the fake listens on, for the URLs it hands out.
    host: Mutex<String>,
    media: media::MediaState,
}

pub use media::Served;

/// Handle to a running fake; the server stops when the test's runtime ends.
#[derive(Clone)]
pub struct FakeKapso {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FakeKapso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKapso")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeKapso {
    pub async fn start() -> FakeKapso {
        FakeKapso::serve(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// Serves on a listener the test bound itself (to start late on a known port).
    pub fn serve(listener: TcpListener) -> FakeKapso {
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner::default());
        *inner.host.lock().unwrap() = addr.to_string();
        let app = Router::new()
            .route(
                "/meta/whatsapp/v24.0/{phone_number_id}/messages",
                post(messages),
            )
            .merge(media::routes())
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeKapso { addr, inner }
    }

    /// The full proxy base, as the core's default has it.
    pub fn base_url(&self) -> String {
        format!("http://{}{PROXY}", self.addr)
    }

    /// The host alone, as Kapso's own tooling sets `KAPSO_API_BASE_URL`.
    pub fn host_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues replies for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn calls(&self) -> usize {
        self.inner.requests.lock().unwrap().len()
    }
}

async fn messages(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_owned(),
        headers,
        body: body.clone(),
    });
    let reply = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Ok);
    answer(&inner, reply, body).await
}

fn answer(inner: &Arc<Inner>, reply: Reply, body: Value) -> BoxFuture<'static, Response> {
    let inner = inner.clone();
    Box::pin(async move {
        match reply {
            Reply::Ok if body["status"] == "read" => {
                axum::Json(json!({"success": true})).into_response()
            }
            Reply::Ok => {
                let n = inner.wamids.fetch_add(1, Ordering::Relaxed) + 1;
                sent(&body, &format!("wamid.FAKE{n}"))
            }
            Reply::SentAs(wamid) => sent(&body, &wamid),
            Reply::Json(status, json, headers) => {
                let mut response =
                    (StatusCode::from_u16(status).unwrap(), axum::Json(json)).into_response();
                for (name, value) in headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
            Reply::Text(status, text) => {
                (StatusCode::from_u16(status).unwrap(), text).into_response()
            }
            Reply::Delay(wait, inner_reply) => {
                tokio::time::sleep(wait).await;
                answer(&inner, *inner_reply, body).await
            }
            Reply::Before(hook, inner_reply) => {
                hook(body.clone()).await;
                answer(&inner, *inner_reply, body).await
            }
        }
    })
}

fn sent(body: &Value, wamid: &str) -> Response {
    let to = body["to"].as_str().unwrap_or_default();
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid}],
    }))
    .into_response()
}
