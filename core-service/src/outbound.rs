//! Sending to customers through Kapso: `SendMessage` (of which `SendText` is
//! the text shorthand) and `MarkRead`, idempotent,
//! retried where that is safe, and tracked in the store.
//!
//! A send is recorded (`Store::begin_send`) before Kapso is called, so every
//! send has a gateway id the caller can look up, whatever happens next; the
//! upstream result is then recorded with `Store::finish_send`. Claim and call
//! run in one task the caller only awaits, so a caller that hangs up cannot
//! split them. An unknown outcome (timeout, 5xx) is never resent: a status
//! webhook settles it.
//!
//! - [`abandoned`]: settling sends whose owner is gone (crash, shutdown)
//! - [`base_url`]: `KAPSO_API_BASE_URL` in the forms Kapso users have it
//! - [`config`]: the settings, flattened into the core's `Config`
//! - [`request`]: the domain requests and their checks
//! - [`content`]: a request's content checked against Meta's limits
//! - [`error`]: the boundary error and its gRPC mapping
//! - `send`: the send flow (claim, window, call, record, replay)
//! - `retry`: backoff within the caller's deadline

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::kapso_api::{
    ApiStats, CallOutcome, HttpKapsoApi, KapsoApi, ReadReceipt, Rejection, Retry, RetryCause,
};
use crate::model::{MessageLookup, MetaError, PhoneNumberId, SendFailure};
use crate::store::Store;

pub mod abandoned;
pub mod base_url;
pub mod config;
pub mod content;
pub mod error;
pub mod request;
pub(crate) mod retry;
mod send;

pub use config::OutboundConfig;
pub use error::OutboundError;
pub use request::{MarkRead, SendMessage, SendText};
pub use retry::RetryPolicy;

use request::{non_empty, phone_number_id};
use retry::Idempotent;

/// How long a call may take when the caller set no deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// The outbound side of the core. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Outbound {
    config: OutboundConfig,
    store: Arc<dyn Store>,
    api: Arc<dyn KapsoApi>,
    retry: RetryPolicy,
}

impl Outbound {
    pub fn new(config: OutboundConfig, store: Arc<dyn Store>, api: Arc<dyn KapsoApi>) -> Outbound {
        let retry = RetryPolicy {
            max_attempts: config.kapso_max_attempts.max(1),
            ..RetryPolicy::default()
        };
        Outbound {
            config,
            store,
            api,
            retry,
        }
    }

    /// With the production HTTP client built from `config`. Called once, at
    /// start: says there if sending is off, rather than only in each refusal.
    pub fn from_config(
        config: OutboundConfig,
        store: Arc<dyn Store>,
    ) -> Result<Outbound, reqwest::Error> {
        if config.kapso_api_token.is_none() {
            tracing::warn!(
                "sending is off: SendText and MarkRead will be refused until KAPSO_API_TOKEN (or KAPSO_API_KEY) is set"
            );
        }
        let number = config
            .kapso_phone_number_id
            .as_deref()
            .unwrap_or("{phone_number_id}");
        tracing::info!(
            url = %config.kapso_api_base_url.messages_url(number),
            "sends go to Kapso's Meta proxy"
        );
        let api = Arc::new(HttpKapsoApi::new(config.client_settings())?);
        Ok(Outbound::new(config, store, api))
    }

    /// Replaces the retry policy (tests use short delays).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Outbound {
        self.retry = retry;
        self
    }

    /// Upstream calls by outcome since start, for metrics.
    pub fn api_stats(&self) -> ApiStats {
        self.api.stats()
    }

    /// Uploads and downloads through the same Kapso client, store and settings.
    pub fn media(&self) -> crate::media::Media {
        let settings = crate::media::MediaSettings {
            api_key_configured: self.config.kapso_api_token.is_some(),
            default_phone_number_id: self.config.kapso_phone_number_id.clone(),
        };
        crate::media::Media::new(self.api.clone(), self.store.clone(), settings, self.retry)
    }

    /// Marks an inbound message read. Safe to retry on any transient failure:
    /// a repeated read receipt changes nothing upstream.
    pub async fn mark_read(&self, request: MarkRead) -> Result<(), OutboundError> {
        let deadline = request
            .deadline
            .unwrap_or_else(|| Instant::now() + DEFAULT_DEADLINE);
        let message_id = MessageLookup::any(request.message_id.trim())
            .ok_or_else(|| OutboundError::invalid("message_id", "must not be empty"))?;
        if self.config.kapso_api_token.is_none() {
            return Err(OutboundError::NotConfigured);
        }
        let phone_number_id = match non_empty(&request.phone_number_id) {
            Some(id) => phone_number_id("phone_number_id", &id)?,
            None => {
                let stored = self.store.message(&message_id).await?;
                let id = stored.and_then(|m| non_empty(&m.phone_number_id));
                self.phone_number_id_or_default(id)?
            }
        };
        let receipt = ReadReceipt {
            phone_number_id: phone_number_id.to_string(),
            message_id: message_id.to_string(),
            typing_indicator: request.typing_indicator,
        };
        let api = &self.api;
        let outcome = self
            .retry
            .run(deadline, Idempotent::Yes, |_| {
                api.mark_read(&receipt, deadline)
            })
            .await;
        match outcome {
            CallOutcome::Done(()) => Ok(()),
            CallOutcome::Unknown(reason) => Err(OutboundError::Unavailable {
                gateway_id: None,
                reason: format!("Kapso did not confirm the read receipt ({reason})"),
            }),
            failed => Err(OutboundError::from_failure(None, &failure_of(&failed))),
        }
    }

    /// `id` if given, else `KAPSO_PHONE_NUMBER_ID`, else the caller must name one.
    fn phone_number_id_or_default(
        &self,
        id: Option<String>,
    ) -> Result<PhoneNumberId, OutboundError> {
        let id = id.or_else(|| {
            self.config
                .kapso_phone_number_id
                .as_deref()
                .and_then(non_empty)
        });
        match id {
            Some(id) => phone_number_id("phone_number_id", &id),
            None => Err(OutboundError::invalid(
                "phone_number_id",
                "not given, not known from a conversation or message, and KAPSO_PHONE_NUMBER_ID is not set",
            )),
        }
    }
}

/// How a call that did not succeed and certainly sent nothing failed. Errors
/// Kapso answered without Meta's error get Meta's code that means the same
/// thing (190 bad token, 130429 rate limit), so a replay raises the same class.
pub(crate) fn failure_of<T>(outcome: &CallOutcome<T>) -> SendFailure {
    let made = |code: i64, title: &str, message: String| MetaError {
        code,
        title: title.to_owned(),
        message,
        details: String::new(),
    };
    let not_taken = |reason: String| SendFailure::NotTaken { reason };
    let error = match outcome {
        CallOutcome::Permanent(Rejection::BadCredentials(Some(e)))
        | CallOutcome::Permanent(Rejection::WindowClosed(e))
        | CallOutcome::Permanent(Rejection::Refused { error: e, .. })
        | CallOutcome::Retryable(Retry {
            cause: RetryCause::Throttled(Some(e)),
            ..
        }) => e.clone(),
        CallOutcome::Permanent(Rejection::BadCredentials(None)) => made(
            crate::kapso_api::CODE_BAD_CREDENTIALS,
            "Invalid API key",
            "Kapso refused the API key".into(),
        ),
        CallOutcome::Permanent(Rejection::NotConfigured) => {
            return not_taken("the Kapso API key is not configured".into());
        }
        CallOutcome::Retryable(Retry {
            cause: RetryCause::Throttled(None),
            ..
        }) => made(130429, "Rate limit hit", "Kapso answered HTTP 429".into()),
        CallOutcome::Retryable(Retry {
            cause: RetryCause::InFlight(e),
            ..
        }) => {
            return not_taken(format!(
                "Kapso still had another message in flight for this conversation (HTTP 409{})",
                e.as_ref()
                    .map_or_else(String::new, |e| format!(": {}", e.message))
            ));
        }
        CallOutcome::Retryable(Retry {
            cause: RetryCause::Unreachable(reason),
            ..
        }) => return not_taken(reason.clone()),
        // Not failures: nothing to record.
        CallOutcome::Done(_) | CallOutcome::Unknown(_) => return SendFailure::Refused(Vec::new()),
    };
    SendFailure::Refused(vec![error])
}
