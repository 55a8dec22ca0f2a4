//! `kapso-core` binary: parse configuration, start logging, bind, run.

use clap::Parser;
use kapso_core::{Config, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config::parse();
    telemetry::init(config.log_format);
    config.outbound.resolve_api_key()?;
    config.check_protected(config.listen_addr)?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    kapso_core::run(config, listener, shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
