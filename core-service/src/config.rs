//! The core's configuration: one typed struct, read from flags or environment,
//! validated before anything binds.

use std::net::SocketAddr;

use clap::Parser;

/// kapso-core: durable event log, message status and Kapso API calls, over gRPC.
#[derive(Debug, Clone, Parser)]
#[command(name = "kapso-core", version)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "CORE_LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen_addr: SocketAddr,

    /// Where events and messages are stored: `sqlite://FILE` (embedded default).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://kapso-gateway.db"
    )]
    pub database_url: String,

    /// Log output: `text` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: crate::telemetry::LogFormat,

    #[command(flatten)]
    pub outbound: crate::outbound::OutboundConfig,
}
