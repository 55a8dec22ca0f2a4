//! The adapter's configuration: one `clap` struct, every field settable by an
//! environment variable, so `kapso-adapter --help` documents them all.
//!
//! Everything is validated while parsing, before anything binds: a bad value
//! stops the process with a message naming the variable.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::{BoolishValueParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{ArgAction, Parser, ValueEnum};

use crate::signature::WebhookSecrets;

/// Kapso webhook adapter: verifies, parses and forwards deliveries to the core.
#[derive(Debug, Clone, Parser)]
#[command(name = "kapso-adapter", version, about)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "ADAPTER_LISTEN_ADDR", default_value = "0.0.0.0:8000")]
    pub listen_addr: SocketAddr,

    /// Webhook secret from the Kapso panel. A comma-separated list during a
    /// rotation: the current secret first, then previous ones still accepted.
    #[arg(
        long,
        env = "KAPSO_WEBHOOK_SECRET",
        value_name = "KAPSO_WEBHOOK_SECRET",
        hide_env_values = true,
        value_parser = SecretsParser,
    )]
    pub webhook_secret: WebhookSecrets,

    /// The core's gRPC endpoint.
    #[arg(long, env = "CORE_GRPC_URL", default_value = "http://127.0.0.1:50051")]
    pub core_grpc_url: http::Uri,

    /// Largest webhook body accepted; larger ones get 413.
    #[arg(long, env = "ADAPTER_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Deadline of the call to the core, in milliseconds. Keeps a whole request
    /// under Kapso's 10 s timeout.
    #[arg(long, env = "CORE_TIMEOUT_MS", default_value_t = 5000)]
    pub core_timeout_ms: u64,

    /// `Retry-After` seconds sent with a 503 when the core cannot take a delivery.
    #[arg(long, env = "RETRY_AFTER_SECS", default_value_t = 5)]
    pub retry_after_secs: u64,

    /// Log message text and full phone numbers. Off: text is left out and phones are masked.
    #[arg(
        long,
        env = "LOG_MESSAGE_CONTENT",
        default_value_t = false,
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new(),
    )]
    pub log_message_content: bool,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// The deadline of one `IngestEvents` call.
    pub fn core_timeout(&self) -> Duration {
        Duration::from_millis(self.core_timeout_ms)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Parses the secret list without ever echoing it: clap's default error for a
/// bad value quotes the value, which would print a secret to the terminal and logs.
#[derive(Debug, Clone, Copy)]
struct SecretsParser;

impl TypedValueParser for SecretsParser {
    type Value = WebhookSecrets;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let refuse = |why: &str| {
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("KAPSO_WEBHOOK_SECRET: {why} (value not shown)\n"),
            )
            .with_cmd(cmd)
        };
        let list = value.to_str().ok_or_else(|| refuse("not valid UTF-8"))?;
        list.parse()
            .map_err(|_| refuse("empty secret in the comma-separated list"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("kapso-adapter").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let config = parse(&["--webhook-secret", "test-secret-not-real"]).unwrap();
        assert_eq!(config.listen_addr, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(config.core_grpc_url, "http://127.0.0.1:50051");
        assert_eq!(config.body_limit_bytes, 1_048_576);
        assert_eq!(config.core_timeout(), Duration::from_secs(5));
        assert_eq!(config.retry_after_secs, 5);
        assert!(!config.log_message_content);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn missing_secret_is_refused_naming_the_variable() {
        // Guarded: the variable may be set in the environment running the tests.
        if std::env::var_os("KAPSO_WEBHOOK_SECRET").is_some() {
            return;
        }
        let error = parse(&[]).unwrap_err().to_string();
        assert!(error.contains("KAPSO_WEBHOOK_SECRET"), "{error}");
    }

    #[test]
    fn empty_secret_entry_is_refused_without_echoing_the_value() {
        let error = parse(&["--webhook-secret", "test-secret-not-real,"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("KAPSO_WEBHOOK_SECRET"), "{error}");
        assert!(!error.contains("test-secret-not-real"), "{error}");
    }

    #[test]
    fn rotation_list_keeps_every_secret() {
        let config = parse(&["--webhook-secret", "new-test-secret,old-test-secret"]).unwrap();
        assert_eq!(config.webhook_secret.len(), 2);
    }

    #[test]
    fn debug_of_the_config_redacts_the_secret() {
        let config = parse(&["--webhook-secret", "test-secret-not-real"]).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("test-secret-not-real"));
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn log_content_and_format_accept_env_style_values() {
        let config = parse(&[
            "--webhook-secret",
            "s",
            "--log-message-content",
            "true",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert!(config.log_message_content);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn help_documents_every_variable() {
        let help = <Config as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        for variable in [
            "ADAPTER_LISTEN_ADDR",
            "KAPSO_WEBHOOK_SECRET",
            "CORE_GRPC_URL",
            "ADAPTER_BODY_LIMIT_BYTES",
            "CORE_TIMEOUT_MS",
            "RETRY_AFTER_SECS",
            "LOG_MESSAGE_CONTENT",
            "LOG_FORMAT",
        ] {
            assert!(help.contains(variable), "{variable} missing from --help");
        }
    }
}
