//! `kapso-adapter`: parse the configuration, start logging (and traces), bind,
//! serve until Ctrl-C or SIGTERM, then flush the spans still buffered.

use anyhow::Context as _;
use clap::Parser as _;
use kapso_adapter::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = kapso_telemetry::init("kapso-adapter", config.log_format)?;
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("binding ADAPTER_LISTEN_ADDR {}", config.listen_addr))?;
    let served = kapso_adapter::run(config, listener, kapso_process::shutdown::signal()).await;
    telemetry.shutdown().await;
    served
}
