//! `kapso-core` binary: parse configuration, start logging (and traces), bind,
//! run, then flush the spans still buffered.

use clap::Parser;
use kapso_core::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config::parse();
    let telemetry = kapso_telemetry::init("kapso-core", config.log_format)?;
    config.outbound.resolve_api_key()?;
    config.check_protected(config.listen_addr)?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    let served = kapso_core::run(config, listener, shutdown_signal()).await;
    telemetry.shutdown().await;
    served
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
