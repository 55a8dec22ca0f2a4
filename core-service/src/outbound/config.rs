//! Outbound settings, flattened into the core's `Config` (`#[command(flatten)]`).

use std::num::NonZeroU32;
use std::time::Duration;

use clap::builder::BoolishValueParser;

use super::base_url::KapsoBaseUrl;
use crate::kapso_api::{ApiKey, ClientSettings};

/// Kapso's Meta proxy for Graph API v24.0.
pub const DEFAULT_BASE_URL: &str = "https://api.kapso.ai/meta/whatsapp/v24.0";

/// How the core reaches Kapso and which sending rules it enforces.
#[derive(Debug, Clone, clap::Args)]
pub struct OutboundConfig {
    /// Kapso's Meta proxy: a host (`https://api.kapso.ai`, completed with
    /// `/meta/whatsapp/v24.0`) or the full proxy base; requests go to
    /// `{base}/{phone_number_id}/messages`. The platform API (`/api/v1`) is refused.
    #[arg(long, env = "KAPSO_API_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub kapso_api_base_url: KapsoBaseUrl,

    /// Kapso API key, sent as `X-API-Key`. Without it SendText and MarkRead are refused.
    #[arg(long, env = "KAPSO_API_TOKEN", hide_env_values = true)]
    pub kapso_api_token: Option<ApiKey>,

    /// The same key under Kapso's own name for it; use one of the two.
    #[arg(long, env = "KAPSO_API_KEY", hide_env_values = true)]
    pub kapso_api_key: Option<ApiKey>,

    /// Sending business number when a request names none (and no conversation does).
    #[arg(long, env = "KAPSO_PHONE_NUMBER_ID")]
    pub kapso_phone_number_id: Option<String>,

    /// Client-side limit on Kapso requests per minute (bursts queue); off when unset.
    #[arg(long, env = "KAPSO_RATE_LIMIT_PER_MINUTE")]
    pub kapso_rate_limit_per_minute: Option<NonZeroU32>,

    /// Requests that may go at once under the rate limit; default a tenth of the minute's.
    #[arg(long, env = "KAPSO_RATE_LIMIT_BURST")]
    pub kapso_rate_limit_burst: Option<NonZeroU32>,

    /// Time to open a connection to Kapso, in milliseconds.
    #[arg(long, env = "KAPSO_CONNECT_TIMEOUT_MS", default_value_t = 2000)]
    pub kapso_connect_timeout_ms: u64,

    /// Time for one Kapso request, in milliseconds (the caller's deadline may cut it shorter).
    #[arg(long, env = "KAPSO_REQUEST_TIMEOUT_MS", default_value_t = 8000)]
    pub kapso_request_timeout_ms: u64,

    /// Upstream attempts per call when Kapso answers "retry" (429, 409, unreachable).
    #[arg(long, env = "KAPSO_MAX_ATTEMPTS", default_value_t = 4)]
    pub kapso_max_attempts: u32,

    /// Refuse free-form text to contacts whose last message is over 24 hours old
    /// (WhatsApp would refuse it with 131047; a template is needed).
    #[arg(
        long,
        env = "CUSTOMER_WINDOW_ENFORCED",
        default_value = "true",
        value_parser = BoolishValueParser::new(),
        action = clap::ArgAction::Set
    )]
    pub customer_window_enforced: bool,
}

impl OutboundConfig {
    /// Defaults for everything, pointing at `base_url` (tests point it at a fake Kapso).
    pub fn new(base_url: KapsoBaseUrl, api_key: Option<ApiKey>) -> OutboundConfig {
        OutboundConfig {
            kapso_api_base_url: base_url,
            kapso_api_token: api_key,
            kapso_api_key: None,
            kapso_phone_number_id: None,
            kapso_rate_limit_per_minute: None,
            kapso_rate_limit_burst: None,
            kapso_connect_timeout_ms: 2000,
            kapso_request_timeout_ms: 8000,
            kapso_max_attempts: 4,
            customer_window_enforced: true,
        }
    }

    /// Takes `KAPSO_API_KEY` as the key when `KAPSO_API_TOKEN` is unset. Call
    /// before anything binds: two different keys are refused, since either
    /// choice could send as the wrong account.
    pub fn resolve_api_key(&mut self) -> Result<(), ConflictingApiKeys> {
        match (&self.kapso_api_token, self.kapso_api_key.take()) {
            (Some(token), Some(key)) if *token != key => Err(ConflictingApiKeys),
            (None, Some(key)) => {
                self.kapso_api_token = Some(key);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Settings for [`HttpKapsoApi`](crate::kapso_api::HttpKapsoApi).
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            base_url: self.kapso_api_base_url.to_string(),
            api_key: self.kapso_api_token.clone(),
            connect_timeout: Duration::from_millis(self.kapso_connect_timeout_ms),
            request_timeout: Duration::from_millis(self.kapso_request_timeout_ms),
            rate_limit_per_minute: self.kapso_rate_limit_per_minute,
            rate_limit_burst: self.kapso_rate_limit_burst,
        }
    }
}

/// `KAPSO_API_TOKEN` and `KAPSO_API_KEY` both set, to different keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "KAPSO_API_TOKEN and KAPSO_API_KEY are both set and differ: they name the same \
     Kapso API key, so set only one"
)]
pub struct ConflictingApiKeys;

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        outbound: OutboundConfig,
    }

    #[test]
    fn kapso_api_key_is_the_key_when_kapso_api_token_is_unset() {
        let mut cli = Cli::try_parse_from(["core", "--kapso-api-key", "sk_alias"]).unwrap();
        cli.outbound.resolve_api_key().unwrap();
        assert_eq!(
            cli.outbound.client_settings().api_key,
            Some(ApiKey::new("sk_alias"))
        );
        let mut same = Cli::try_parse_from([
            "core",
            "--kapso-api-key",
            "sk_same",
            "--kapso-api-token",
            "sk_same",
        ])
        .unwrap();
        assert_eq!(same.outbound.resolve_api_key(), Ok(()));
    }

    #[test]
    fn flags_parse_and_the_key_stays_hidden() {
        let cli = Cli::try_parse_from([
            "core",
            "--kapso-api-token",
            "sk_secret",
            "--customer-window-enforced",
            "false",
            "--kapso-rate-limit-per-minute",
            "100",
        ])
        .unwrap();
        assert!(!cli.outbound.customer_window_enforced);
        assert_eq!(
            cli.outbound
                .kapso_rate_limit_per_minute
                .map(NonZeroU32::get),
            Some(100)
        );
        assert!(!format!("{:?}", cli.outbound).contains("sk_secret"));
    }

    #[test]
    fn the_platform_api_as_base_url_is_refused_at_parse() {
        let error = Cli::try_parse_from([
            "core",
            "--kapso-api-base-url",
            "https://app.kapso.ai/api/v1",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("KAPSO_API_BASE_URL=https://api.kapso.ai"),
            "{error}"
        );
        let cli = Cli::try_parse_from(["core"]).unwrap();
        assert_eq!(cli.outbound.kapso_api_base_url.as_str(), DEFAULT_BASE_URL);
    }
}
