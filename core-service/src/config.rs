//! The core's configuration: one typed struct, read from flags or environment,
//! validated before anything binds.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;

use crate::auth::ApiTokens;

/// kapso-core: durable event log, message status and Kapso API calls, over gRPC.
#[derive(Debug, Clone, Parser)]
#[command(name = "kapso-core", version)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "CORE_LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen_addr: SocketAddr,

    /// Where events and messages are stored: `sqlite://FILE` (embedded default)
    /// or `postgres://USER@HOST:PORT/DB` (several cores on one database).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://kapso-gateway.db"
    )]
    pub database_url: String,

    /// Log output: `text` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: crate::telemetry::LogFormat,

    /// Bearer tokens (comma-separated) that callers of Ingest and Messaging must
    /// present as `authorization: Bearer <token>`. Unset: no authentication.
    /// Health and reflection stay open either way.
    #[arg(long, env = "GATEWAY_API_TOKENS", hide_env_values = true)]
    pub gateway_api_tokens: Option<ApiTokens>,

    #[command(flatten)]
    pub tls: TlsConfig,

    /// Address of the Prometheus endpoint (`GET /metrics`), or `off`.
    #[arg(long, env = "CORE_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: MetricsAddr,

    /// Days log events and de-duplication keys are kept; 0 keeps them forever.
    /// Messages and their status history are never pruned. Must exceed Kapso's
    /// retry horizon (hours): a re-delivery older than this is stored again.
    #[arg(long, env = "EVENT_RETENTION_DAYS", default_value_t = 30)]
    pub event_retention_days: u32,

    /// Milliseconds the SQLite store lets commits gather before copying its
    /// write-ahead log into the database. The default keeps the latency tail
    /// shortest; a longer pause copies each busy page once for more commits:
    /// fewer bytes written and more throughput on a store of several GB, for
    /// a longer tail (see the README's Performance section). Not used with
    /// PostgreSQL.
    #[arg(
        long,
        env = "SQLITE_CHECKPOINT_INTERVAL_MS",
        default_value_t = crate::store::sqlite::DEFAULT_CHECKPOINT_INTERVAL_MS,
        value_parser = clap::value_parser!(u64).range(1..=1_000)
    )]
    pub sqlite_checkpoint_interval_ms: u64,

    #[command(flatten)]
    pub outbound: crate::outbound::OutboundConfig,
}

/// TLS for the gRPC port. Both `CORE_TLS_CERT` and `CORE_TLS_KEY`, or neither (plain HTTP/2).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsConfig {
    /// PEM certificate chain served on the gRPC port; enables TLS (needs `CORE_TLS_KEY`).
    #[arg(long, env = "CORE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `CORE_TLS_CERT`.
    #[arg(long, env = "CORE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate(s): when set, clients must present a certificate it signed (mTLS).
    #[arg(long, env = "CORE_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Where the metrics endpoint listens, if anywhere.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MetricsAddr {
    Off,
    At(SocketAddr),
}

impl FromStr for MetricsAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<MetricsAddr, String> {
        match s.trim() {
            "" | "off" => Ok(MetricsAddr::Off),
            addr => addr
                .parse()
                .map(MetricsAddr::At)
                .map_err(|e| format!("{addr:?} is neither `off` nor an address: {e}")),
        }
    }
}

impl fmt::Debug for MetricsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsAddr::Off => f.write_str("off"),
            MetricsAddr::At(addr) => write!(f, "{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_full_config_shows_no_secret() {
        let config = Config::try_parse_from([
            "kapso-core",
            "--gateway-api-tokens",
            "fake-gw-token-1,fake-gw-token-2",
            "--kapso-api-token",
            "fake-kapso-key",
            "--tls-cert",
            "/etc/core/cert.pem",
            "--tls-key",
            "/etc/core/key.pem",
            "--tls-client-ca",
            "/etc/core/ca.pem",
            "--kapso-phone-number-id",
            "1234567890",
        ])
        .unwrap();
        let printed = format!("{config:?}");
        for secret in ["fake-gw-token", "fake-kapso-key"] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        assert!(printed.contains("[redacted]"));
        assert!(printed.contains("1234567890"));
    }

    #[test]
    fn defaults_and_tls_pairs() {
        let config = Config::try_parse_from(["kapso-core"]).unwrap();
        assert_eq!(config.event_retention_days, 30);
        assert_eq!(
            config.metrics_addr,
            MetricsAddr::At("127.0.0.1:9464".parse().unwrap())
        );
        assert!(config.gateway_api_tokens.is_none());
        assert_eq!(config.sqlite_checkpoint_interval_ms, 10);
        let paced =
            Config::try_parse_from(["kapso-core", "--sqlite-checkpoint-interval-ms", "300"])
                .unwrap();
        assert_eq!(paced.sqlite_checkpoint_interval_ms, 300);
        for out_of_range in ["0", "1001"] {
            let parsed = Config::try_parse_from([
                "kapso-core",
                "--sqlite-checkpoint-interval-ms",
                out_of_range,
            ]);
            assert!(parsed.is_err(), "{out_of_range} accepted");
        }
        assert!(Config::try_parse_from(["kapso-core", "--tls-cert", "c.pem"]).is_err());
        assert!(Config::try_parse_from(["kapso-core", "--tls-client-ca", "ca.pem"]).is_err());
        let off = Config::try_parse_from(["kapso-core", "--metrics-addr", "off"]).unwrap();
        assert_eq!(off.metrics_addr, MetricsAddr::Off);
    }

    #[test]
    fn help_lists_every_variable() {
        let help = <Config as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        for var in [
            "GATEWAY_API_TOKENS",
            "CORE_TLS_CERT",
            "CORE_TLS_KEY",
            "CORE_TLS_CLIENT_CA",
            "CORE_METRICS_ADDR",
            "EVENT_RETENTION_DAYS",
            "SQLITE_CHECKPOINT_INTERVAL_MS",
        ] {
            assert!(help.contains(var), "{var} missing from --help");
        }
    }
}
