//! The core's configuration: one typed struct, read from flags or environment,
//! validated before anything binds.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser};

use kapso_process::HiddenValue;

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
    /// A password in it is never printed.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://kapso-gateway.db",
        value_parser = HiddenValue::<DatabaseUrl>::new("DATABASE_URL"),
    )]
    pub database_url: DatabaseUrl,

    /// Seconds to wait for a PostgreSQL server that refuses connections at
    /// start (not up yet, as when both start together) before giving up.
    #[arg(long, env = "DATABASE_START_TIMEOUT_SECS", default_value_t = 30)]
    pub database_start_timeout_secs: u64,

    /// Log output: `text` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: kapso_telemetry::LogFormat,

    /// Bearer tokens that callers of Ingest and Messaging must present as
    /// `authorization: Bearer <token>`, comma-separated. Each is `TOKEN` (every
    /// scope) or `TOKEN=SCOPE+SCOPE`: `ingest` (IngestEvents, for the adapter),
    /// `read` (GetMessage, ListMessages, WatchEvents, AckEvents), `send`
    /// (SendText, MarkRead). A token cannot contain `,` `=` `+` or blanks.
    /// Unset: no authentication (loopback only, see
    /// GATEWAY_ALLOW_UNAUTHENTICATED). Health and reflection stay open either way.
    #[arg(
        long,
        env = "GATEWAY_API_TOKENS",
        value_name = "GATEWAY_API_TOKENS",
        hide_env_values = true,
        value_parser = HiddenValue::<ApiTokens>::new("GATEWAY_API_TOKENS"),
    )]
    pub gateway_api_tokens: Option<ApiTokens>,

    /// Serve without `GATEWAY_API_TOKENS` on an address other than loopback.
    /// Off (the default), the core refuses to start that way: anyone who can
    /// reach the port could ingest, read every message and send as the business.
    #[arg(
        long,
        env = "GATEWAY_ALLOW_UNAUTHENTICATED",
        default_value_t = false,
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new(),
    )]
    pub gateway_allow_unauthenticated: bool,

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

impl Config {
    /// Protected mode: without tokens the core serves only loopback, unless
    /// `GATEWAY_ALLOW_UNAUTHENTICATED` says an open port is intended.
    pub fn check_protected(&self, addr: SocketAddr) -> Result<(), Unprotected> {
        let loopback = addr.ip().to_canonical().is_loopback();
        if loopback || self.gateway_api_tokens.is_some() || self.gateway_allow_unauthenticated {
            Ok(())
        } else {
            Err(Unprotected(addr))
        }
    }
}

/// The core would listen beyond loopback with no token required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to serve on {0} without GATEWAY_API_TOKENS: anyone who can reach it could \
     ingest events, read every message and send as the business. Set GATEWAY_API_TOKENS, \
     listen on loopback (CORE_LISTEN_ADDR=127.0.0.1:50051), or set \
     GATEWAY_ALLOW_UNAUTHENTICATED=true if only trusted callers can reach this address"
)]
pub struct Unprotected(pub SocketAddr);

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

/// Where the store lives, as `DATABASE_URL` gives it: one of the two backends,
/// told apart once here. `Debug` and `Display` replace a password (in the user
/// part or a `password=` parameter) with `[redacted]`, so the URL can be
/// logged and shown in errors.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://FILE`: the embedded store, in that file.
    Sqlite(String),
    /// `postgres://…` or `postgresql://…`: a PostgreSQL database.
    Postgres(String),
}

impl DatabaseUrl {
    /// The URL itself, password included, for opening the store only.
    pub fn expose(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(url) | DatabaseUrl::Postgres(url) => url,
        }
    }
}

/// A `DATABASE_URL` naming neither backend. Says only the scheme: the rest
/// may carry a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "DATABASE_URL must be sqlite://FILE or postgres://USER@HOST:PORT/DB \
     (postgresql:// also), not {0}"
)]
pub struct UnknownDatabase(String);

impl FromStr for DatabaseUrl {
    type Err = UnknownDatabase;

    fn from_str(s: &str) -> Result<DatabaseUrl, Self::Err> {
        if s.starts_with("sqlite://") {
            Ok(DatabaseUrl::Sqlite(s.to_owned()))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(s.to_owned()))
        } else {
            Err(UnknownDatabase(match s.split_once("://") {
                Some((scheme, _)) => format!("a {scheme}:// URL"),
                None => "a URL without a scheme".to_owned(),
            }))
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_password(self.expose()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// `scheme://user:PASSWORD@host/db?password=PASSWORD` with both passwords replaced.
fn redact_password(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            // The last `@` ends the user part: a password may contain `@` itself.
            let authority = match authority.rsplit_once('@') {
                Some((user, host)) => match user.split_once(':') {
                    Some((name, _password)) => format!("{name}:[redacted]@{host}"),
                    None => format!("{user}@{host}"),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_owned(),
    };
    if url.contains('?') {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}=[redacted]")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
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
            "--database-url",
            "postgres://kapso:fake-db-password@db.internal:5432/kapso",
        ])
        .unwrap();
        let printed = format!("{config:?}");
        for secret in ["fake-gw-token", "fake-kapso-key", "fake-db-password"] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        assert!(printed.contains("[redacted]"));
        assert!(printed.contains("1234567890"));
    }

    #[test]
    fn database_urls_show_without_their_password() {
        let shown = |url: &str| url.parse::<DatabaseUrl>().unwrap().to_string();
        assert_eq!(
            shown("postgres://kapso:p@ss:w@rd@db:5432/kapso?sslmode=require"),
            "postgres://kapso:[redacted]@db:5432/kapso?sslmode=require"
        );
        assert_eq!(
            shown("postgresql://db/kapso?user=k&PASSWORD=secret&sslmode=verify-full"),
            "postgresql://db/kapso?user=k&PASSWORD=[redacted]&sslmode=verify-full"
        );
        assert_eq!(
            shown("postgres://kapso@db/kapso"),
            "postgres://kapso@db/kapso"
        );
        assert_eq!(shown("sqlite://gw.db"), "sqlite://gw.db");
        let url: DatabaseUrl = "postgres://u:secret@h/d".parse().unwrap();
        assert!(!format!("{url:?}").contains("secret"));
        assert_eq!(url.expose(), "postgres://u:secret@h/d");
    }

    #[test]
    fn only_the_two_backends_parse() {
        assert!(matches!(
            "sqlite://gw.db".parse(),
            Ok(DatabaseUrl::Sqlite(_))
        ));
        for url in ["postgres://h/d", "postgresql://h/d"] {
            assert!(matches!(url.parse(), Ok(DatabaseUrl::Postgres(_))), "{url}");
        }
        for url in ["mysql://u:fake-pw@h/d", "kapso.db", "sqlite:gw.db", ""] {
            let error = url.parse::<DatabaseUrl>().unwrap_err().to_string();
            assert!(
                error.contains("sqlite://") && error.contains("postgres://"),
                "{error}"
            );
            assert!(!error.contains("fake-pw"), "{error}");
        }
    }

    #[test]
    fn a_malformed_token_list_is_refused_without_quoting_it() {
        let error = Config::try_parse_from(["kapso-core", "--gateway-api-tokens", "fake secret"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("GATEWAY_API_TOKENS"), "{error}");
        assert!(!error.contains("fake"), "{error}");
    }

    #[test]
    fn without_tokens_only_loopback_is_served_unless_allowed() {
        let open = Config::try_parse_from(["kapso-core"]).unwrap();
        for loopback in ["127.0.0.1:50051", "[::1]:50051", "[::ffff:127.0.0.1]:1"] {
            assert_eq!(open.check_protected(loopback.parse().unwrap()), Ok(()));
        }
        for exposed in ["0.0.0.0:50051", "[::]:50051", "10.0.0.5:50051"] {
            let addr = exposed.parse().unwrap();
            let refused = open.check_protected(addr).unwrap_err();
            assert!(refused.to_string().contains("GATEWAY_API_TOKENS"));
        }
        let any: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let allowed =
            Config::try_parse_from(["kapso-core", "--gateway-allow-unauthenticated", "true"])
                .unwrap();
        assert_eq!(allowed.check_protected(any), Ok(()));
        let tokens =
            Config::try_parse_from(["kapso-core", "--gateway-api-tokens", "fake-token"]).unwrap();
        assert_eq!(tokens.check_protected(any), Ok(()));
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
            "GATEWAY_ALLOW_UNAUTHENTICATED",
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
