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
    let served = kapso_core::run(config, listener, kapso_process::shutdown::signal()).await;
    telemetry.shutdown().await;
    served
}
