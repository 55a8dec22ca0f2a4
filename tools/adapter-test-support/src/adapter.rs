//! An adapter on 127.0.0.1:0 and signed requests to it, as Kapso would send them.

use std::net::SocketAddr;

use clap::Parser as _;
use kapso_adapter::Config;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::SECRET;

/// An adapter configuration in front of `core_url`, plus `extra` flags.
pub fn config(core_url: &str, extra: &[&str]) -> Config {
    let base = [
        "kapso-adapter",
        "--webhook-secret",
        SECRET,
        "--core-grpc-url",
        core_url,
        "--retry-after-secs",
        "3",
    ];
    Config::try_parse_from(base.iter().chain(extra.iter()).copied()).unwrap()
}

/// An adapter serving `config` on 127.0.0.1:0 until the test ends.
#[derive(Debug)]
pub struct Adapter {
    pub addr: SocketAddr,
    pub task: JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_adapter(config: Config) -> Adapter {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(kapso_adapter::run(config, listener, std::future::pending()));
    Adapter { addr, task }
}

impl Adapter {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A signed webhook request for `body`.
pub fn signed(client: &reqwest::Client, url: &str, body: &[u8]) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-webhook-event", "whatsapp.message.received")
        .header("x-idempotency-key", "00000000-0000-4000-8000-000000000001")
        .header("x-webhook-signature", kapso_signature::sign(SECRET, body))
        .body(body.to_vec())
}
