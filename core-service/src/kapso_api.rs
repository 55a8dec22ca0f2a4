//! Kapso's outbound API (its proxy of Meta's WhatsApp Cloud API), behind a small
//! trait so the outbound logic can be tested against fakes.
//!
//! Every call ends in an explicit [`CallOutcome`]: done, retryable (the request
//! certainly did not take effect), permanent (Kapso or Meta refused it), or
//! unknown (it may have reached WhatsApp). Kapso's send API has no idempotency
//! key, so callers must never resend an unknown outcome blindly.
//!
//! - [`http`]: the reqwest implementation (one shared client, timeouts, rate limit)
//! - `classify`: HTTP response to outcome, pure
//! - [`content`]: what a send carries, per kind, and its JSON object
//! - [`media`]: uploads and downloads, streamed
//! - `wire`: the exact JSON bodies
//! - `rate_limit`: client-side GCRA so bursts queue instead of collecting 429s

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::model::{MetaError, PhoneNumberId, Recipient, Wamid};

mod classify;
pub mod content;
pub mod http;
pub mod media;
mod rate_limit;
mod wire;

pub use http::{ClientSettings, HttpKapsoApi};
pub use media::{FileChunks, MediaBody, MediaMetadata, MediaRef, MediaUpload, UploadStopped};

/// Kapso's API, held as `Arc<dyn KapsoApi>`.
#[async_trait]
pub trait KapsoApi: Send + Sync + fmt::Debug + 'static {
    /// Sends one message of any kind; one upstream request at most, no retries.
    /// The call gives up by `deadline` (its outcome is then unknown if the request left).
    async fn send_message(&self, message: &OutboundMessage, deadline: Instant) -> SendOutcome;

    /// Marks an inbound message read; one upstream request at most, no retries.
    async fn mark_read(&self, receipt: &ReadReceipt, deadline: Instant) -> ReadOutcome;

    /// Uploads a file whose bytes arrive on `chunks`, in one request that is
    /// never retried (its bytes are spent). `Done` carries Meta's media id.
    async fn upload_media(
        &self,
        upload: &MediaUpload,
        chunks: FileChunks,
        deadline: Instant,
    ) -> CallOutcome<String>;

    /// What Meta knows of a media id, with where its bytes are; safe to repeat.
    async fn media_metadata(
        &self,
        media: &MediaRef,
        deadline: Instant,
    ) -> CallOutcome<MediaMetadata>;

    /// Opens the bytes at a URL from [`media_metadata`](Self::media_metadata)
    /// or a webhook; safe to repeat. The key goes to Kapso's own hosts only.
    async fn open_media(
        &self,
        url: &str,
        phone_number_id: &str,
        deadline: Instant,
    ) -> CallOutcome<MediaBody>;

    /// Counts of upstream calls by outcome since start, for metrics.
    fn stats(&self) -> ApiStats;
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub phone_number_id: PhoneNumberId,
    /// The contact: phone digits (`to`) or a business-scoped user id (`recipient`).
    pub to: Recipient,
    pub content: content::Content,
    /// The wamid this replies to (`context.message_id`).
    pub reply_to: Option<Wamid>,
}

/// A read receipt to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReceipt {
    pub phone_number_id: String,
    /// The inbound message's wamid.
    pub message_id: String,
    pub typing_indicator: bool,
}

/// How one upstream call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome<T> {
    /// Kapso accepted the request.
    Done(T),
    /// The request certainly did not take effect; trying again is safe.
    Retryable(Retry),
    /// Kapso or Meta refused the request; trying again will not help.
    Permanent(Rejection),
    /// The request may have reached WhatsApp (timeout after sending, reset
    /// mid-response, 5xx): resending could deliver twice.
    Unknown(String),
}

/// Outcome of a send: `Done` carries the wamid later status webhooks carry.
pub type SendOutcome = CallOutcome<String>;
/// Outcome of a mark-read.
pub type ReadOutcome = CallOutcome<()>;

/// A retryable failure: why, and how long Kapso asked us to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// `Retry-After`, when Kapso sent one (or the rate limiter's wait).
    pub after: Option<Duration>,
    pub cause: RetryCause,
}

/// Why a call may be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryCause {
    /// HTTP 429 or one of Meta's throttling codes; the error when Meta sent one.
    Throttled(Option<MetaError>),
    /// HTTP 409: another message is in flight for this conversation.
    InFlight(Option<MetaError>),
    /// The request never left: connection refused, DNS failure, connect timeout.
    Unreachable(String),
}

/// A permanent refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No API key is configured: nothing was sent.
    NotConfigured,
    /// HTTP 401/403 or Meta code 190: the API key is wrong.
    BadCredentials(Option<MetaError>),
    /// Meta code 131047: the 24-hour customer service window is closed.
    WindowClosed(MetaError),
    /// Any other refusal (131049, 131050, 131031, 368, 130497, other 4xx).
    Refused { http_status: u16, error: MetaError },
}

/// Meta's code for an invalid or expired access token.
pub const CODE_BAD_CREDENTIALS: i64 = 190;
/// Meta's code for "more than 24 hours since the customer last replied".
pub const CODE_WINDOW_CLOSED: i64 = 131047;
/// Meta's throttling codes: retry after a delay.
pub const THROTTLING_CODES: [i64; 5] = [4, 80007, 130429, 131048, 131056];

/// The Kapso API key, sent as `X-API-Key`. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key itself, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for ApiKey {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<ApiKey, Self::Err> {
        let key = s.trim();
        if key.is_empty() {
            return Err("the Kapso API key is empty");
        }
        Ok(ApiKey(key.to_owned()))
    }
}

/// Upstream calls by outcome since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApiStats {
    pub done: u64,
    pub retryable: u64,
    pub permanent: u64,
    pub unknown: u64,
    /// Calls that waited for the client-side rate limit before leaving.
    pub rate_limit_waits: u64,
}

/// Lock-free counters behind [`ApiStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    done: AtomicU64,
    retryable: AtomicU64,
    permanent: AtomicU64,
    unknown: AtomicU64,
    rate_limit_waits: AtomicU64,
}

impl Counters {
    pub(crate) fn record<T>(&self, outcome: &CallOutcome<T>) {
        let counter = match outcome {
            CallOutcome::Done(_) => &self.done,
            CallOutcome::Retryable(_) => &self.retryable,
            CallOutcome::Permanent(_) => &self.permanent,
            CallOutcome::Unknown(_) => &self.unknown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_rate_limit_wait(&self) {
        self.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ApiStats {
        ApiStats {
            done: self.done.load(Ordering::Relaxed),
            retryable: self.retryable.load(Ordering::Relaxed),
            permanent: self.permanent.load(Ordering::Relaxed),
            unknown: self.unknown.load(Ordering::Relaxed),
            rate_limit_waits: self.rate_limit_waits.load(Ordering::Relaxed),
        }
    }
}

impl<T> CallOutcome<T> {
    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CallOutcome::Done(_) => "done",
            CallOutcome::Retryable(_) => "retryable",
            CallOutcome::Permanent(_) => "permanent",
            CallOutcome::Unknown(_) => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_debug_is_redacted() {
        let key: ApiKey = "sk_live_secret".parse().unwrap();
        assert_eq!(format!("{key:?}"), "[redacted]");
        assert_eq!(key.expose(), "sk_live_secret");
        assert!("  ".parse::<ApiKey>().is_err());
    }
}
