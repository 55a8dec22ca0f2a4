//! `kapso-adapter`: parse the configuration, start logging, bind, serve until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;
use kapso_adapter::{Config, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("binding ADAPTER_LISTEN_ADDR {}", config.listen_addr))?;
    kapso_adapter::run(config, listener, kapso_adapter::shutdown::signal()).await
}
