//! A whole gateway in the test process: a core over a temporary SQLite file
//! and an adapter in front of it, both on 127.0.0.1, the core sending to
//! whatever Kapso it is given. Stops when dropped with the test's runtime.

use clap::Parser as _;
use tokio::net::TcpListener;

/// The secret the adapter checks and `kapso dev` signs with.
pub const SECRET: &str = "test-secret-not-real";

#[derive(Debug)]
pub struct Gateway {
    /// The core's gRPC address, `http://127.0.0.1:PORT`.
    pub core_url: String,
    _dir: tempfile::TempDir,
}

/// The adapter's socket, bound before anything else so that `kapso dev` can
/// be told where webhooks go before the core is told where Kapso is.
#[derive(Debug)]
pub struct AdapterSocket {
    listener: TcpListener,
    pub webhook_url: String,
}

impl AdapterSocket {
    pub async fn bind() -> AdapterSocket {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook_url = format!(
            "http://{}/api/whatsapp/webhook",
            listener.local_addr().unwrap()
        );
        AdapterSocket {
            listener,
            webhook_url,
        }
    }

    /// Starts the core, sending to `kapso_base_url` with `api_key` and no
    /// default business number, and the adapter on this socket in front of it.
    pub async fn start_gateway(self, kapso_base_url: &str, api_key: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
        let core_config = kapso_core::Config::try_parse_from([
            "kapso-core",
            "--database-url",
            &database_url,
            "--metrics-addr",
            "off",
            "--kapso-api-base-url",
            kapso_base_url,
            "--kapso-api-token",
            api_key,
        ])
        .unwrap();
        let core_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let core_url = format!("http://{}", core_listener.local_addr().unwrap());
        tokio::spawn(kapso_core::run(
            core_config,
            core_listener,
            std::future::pending(),
        ));
        let adapter_config = kapso_adapter::Config::try_parse_from([
            "kapso-adapter",
            "--webhook-secret",
            SECRET,
            "--core-grpc-url",
            &core_url,
        ])
        .unwrap();
        tokio::spawn(kapso_adapter::run(
            adapter_config,
            self.listener,
            std::future::pending(),
        ));
        Gateway {
            core_url,
            _dir: dir,
        }
    }
}
