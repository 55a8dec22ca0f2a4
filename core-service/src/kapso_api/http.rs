//! [`KapsoApi`] over HTTPS with reqwest: one shared client (connection pool,
//! connect and request timeouts), the optional client-side rate limit, and one
//! log line and one counter increment per upstream call. The API key is only
//! ever put in the `X-API-Key` header.
//!
//! - `media`: uploads, the media endpoint and byte downloads

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use kapso_telemetry::spans::{self, Kind};
use kapso_telemetry::trace_context::TRACEPARENT;
use serde::Serialize;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::media::{FileChunks, MediaBody, MediaMetadata, MediaRef, MediaUpload};
use super::rate_limit::{Admission, RateLimiter};
use super::{
    ApiKey, ApiStats, CallOutcome, Counters, KapsoApi, OutboundMessage, ReadOutcome, ReadReceipt,
    Rejection, Retry, RetryCause, SendOutcome, classify, wire,
};

mod media;

/// How to reach Kapso.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// e.g. `https://api.kapso.ai/meta/whatsapp/v24.0`; requests go to `{base}/{phone_number_id}/messages`.
    pub base_url: String,
    /// `None`: every call is refused with [`Rejection::NotConfigured`] without a request.
    pub api_key: Option<ApiKey>,
    pub connect_timeout: Duration,
    /// Per request, further bounded by each call's deadline.
    pub request_timeout: Duration,
    /// Client-side limit per minute; `None` leaves limiting to Kapso.
    pub rate_limit_per_minute: Option<NonZeroU32>,
    /// How many requests may go at once before the steady rate applies.
    pub rate_limit_burst: Option<NonZeroU32>,
}

/// The production [`KapsoApi`].
#[derive(Debug)]
pub struct HttpKapsoApi {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<ApiKey>,
    request_timeout: Duration,
    limiter: Option<RateLimiter>,
    counters: Counters,
}

impl HttpKapsoApi {
    pub fn new(settings: ClientSettings) -> Result<HttpKapsoApi, reqwest::Error> {
        let client = reqwest::Client::builder()
            // A redirect would carry the API key to whatever host it names;
            // Kapso's API never redirects, so a 3xx is an error (see `classify`).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("kapso-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let limiter = settings.rate_limit_per_minute.map(|per_minute| {
            // Default burst: a tenth of a minute's allowance, so a minute never
            // sees much more than the plan's limit.
            let burst = settings.rate_limit_burst.unwrap_or_else(|| {
                NonZeroU32::new(per_minute.get() / 10).unwrap_or(NonZeroU32::MIN)
            });
            RateLimiter::new(per_minute, burst)
        });
        Ok(HttpKapsoApi {
            client,
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
            api_key: settings.api_key,
            request_timeout: settings.request_timeout,
            limiter,
            counters: Counters::default(),
        })
    }

    /// One POST to `{base}/{phone_number_id}/messages`, classified.
    /// `success` reads a 2xx body; `None` means the body did not say it worked.
    async fn post<T>(
        &self,
        op: &'static str,
        phone_number_id: &str,
        body: &impl Serialize,
        deadline: Instant,
        success: impl FnOnce(&[u8]) -> Option<T>,
    ) -> CallOutcome<T> {
        let url = format!("{}/{phone_number_id}/messages", self.base_url);
        self.call(op, phone_number_id, deadline, success, |client, timeout| {
            client.post(&url).timeout(timeout).json(body)
        })
        .await
    }

    /// One request to Kapso, with the key, within the rate limit and
    /// `deadline`, its answer classified and logged. `build` makes the
    /// request given the time it may take; `success` reads a 2xx body.
    pub(super) async fn call<T>(
        &self,
        op: &'static str,
        phone_number_id: &str,
        deadline: Instant,
        success: impl FnOnce(&[u8]) -> Option<T>,
        build: impl FnOnce(&reqwest::Client, Duration) -> reqwest::RequestBuilder,
    ) -> CallOutcome<T> {
        let Some(api_key) = &self.api_key else {
            return CallOutcome::Permanent(Rejection::NotConfigured);
        };
        if let Some(outcome) = self.wait_for_slot(deadline).await {
            self.counters.record(&outcome);
            return outcome;
        }
        let Some(remaining) = remaining(deadline) else {
            return deadline_passed();
        };
        let started = Instant::now();
        let span = call_span(op, &self.base_url);
        let mut request = build(&self.client, self.request_timeout.min(remaining))
            .header("X-API-Key", api_key.expose());
        // Kapso sees the call as part of the caller's trace.
        if let Some(traceparent) = spans::traceparent(&span) {
            request = request.header(TRACEPARENT, traceparent.to_string());
        }
        let sent = request.send().instrument(span.clone()).await;
        let (http_status, outcome) = match sent {
            Err(error) => (None, classify::transport(&error)),
            Ok(response) => self.answer(response, success).await,
        };
        self.counters.record(&outcome);
        if let Some(status) = http_status {
            spans::set_attribute(&span, "http.response.status_code", i64::from(status));
        }
        spans::set_attribute(&span, "kapso.outcome", outcome.kind());
        if !matches!(outcome, CallOutcome::Done(_)) {
            spans::set_error(&span, outcome.kind());
        }
        log_call(
            op,
            phone_number_id,
            http_status,
            &outcome,
            started.elapsed(),
        );
        outcome
    }

    /// A response classified: `success` reads a 2xx body, a failure status
    /// classifies itself. Returns the HTTP status beside the outcome.
    pub(super) async fn answer<T>(
        &self,
        response: reqwest::Response,
        success: impl FnOnce(&[u8]) -> Option<T>,
    ) -> (Option<u16>, CallOutcome<T>) {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let success_status = (200..300).contains(&status);
        let outcome = match read_body(response).await {
            Err(error) => CallOutcome::Unknown(format!(
                "HTTP {status} from Kapso but its body was lost: {}",
                classify::chain(&error.without_url())
            )),
            // The request arrived; what it did is unreadable.
            Ok(Body::TooLarge) if success_status => CallOutcome::Unknown(format!(
                "HTTP {status} from Kapso with a body over {MAX_BODY} bytes, not read"
            )),
            // A failure status classifies itself; the body only adds detail.
            Ok(Body::TooLarge) => classify::failure(status, retry_after.as_deref(), b""),
            Ok(Body::Read(bytes)) if success_status => match success(&bytes) {
                Some(done) => CallOutcome::Done(done),
                None => CallOutcome::Unknown(format!(
                    "HTTP {status} from Kapso without the expected answer"
                )),
            },
            Ok(Body::Read(bytes)) => {
                classify::failure(status, retry_after.as_deref(), &self.scrub(bytes))
            }
        };
        (Some(status), outcome)
    }

    /// An upstream error body without the API key: a proxy that echoes the
    /// request's headers must not put the key into an error a caller reads.
    fn scrub(&self, body: Vec<u8>) -> Vec<u8> {
        match &self.api_key {
            Some(key) if !key.expose().is_empty() => {
                let text = String::from_utf8_lossy(&body);
                if text.contains(key.expose()) {
                    text.replace(key.expose(), "[redacted]").into_bytes()
                } else {
                    body
                }
            }
            _ => body,
        }
    }

    /// Waits for the rate limiter; `Some` when the wait would outlast the deadline.
    async fn wait_for_slot<T>(&self, deadline: Instant) -> Option<CallOutcome<T>> {
        let limiter = self.limiter.as_ref()?;
        match limiter.admit(deadline) {
            Admission::Now => None,
            Admission::After(wait) => {
                self.counters.record_rate_limit_wait();
                tracing::debug!(
                    wait_ms = wait.as_millis() as u64,
                    "waiting for the Kapso rate limit"
                );
                tokio::time::sleep(wait).await;
                None
            }
            Admission::TooLate(wait) => {
                self.counters.record_rate_limit_wait();
                Some(CallOutcome::Retryable(Retry {
                    after: Some(wait),
                    cause: RetryCause::Throttled(None),
                }))
            }
        }
    }
}

/// One upstream call as a client span of the exported trace, named after the
/// operation; only built when traces are exported. The URL's path (it holds
/// the business number's id) and the body stay out of it.
fn call_span(op: &'static str, base_url: &str) -> tracing::Span {
    if !spans::exporting() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "kapso_api",
        op,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
    );
    spans::describe(&span, &format!("kapso {op}"), Kind::Client);
    if let Ok(url) = reqwest::Url::parse(base_url)
        && let Some(host) = url.host_str()
    {
        spans::set_attribute(&span, "server.address", host.to_owned());
    }
    span
}

/// The time left before `deadline`; `None` once it passed.
pub(super) fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// The outcome of a call whose deadline passed before its request left.
pub(super) fn deadline_passed<T>() -> CallOutcome<T> {
    CallOutcome::Retryable(Retry {
        after: None,
        cause: RetryCause::Unreachable("the deadline passed before the request left".into()),
    })
}

/// Largest Kapso response body read into memory. Meta's answers are well under
/// a kilobyte; anything far larger is not an answer to trust or to buffer.
pub const MAX_BODY: usize = 64 * 1024;

/// A response body read up to [`MAX_BODY`].
enum Body {
    Read(Vec<u8>),
    TooLarge,
}

/// Reads the body chunk by chunk, giving up (and dropping the connection) at [`MAX_BODY`].
async fn read_body(mut response: reqwest::Response) -> Result<Body, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY as u64)
    {
        return Ok(Body::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Ok(Body::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body::Read(body))
}

#[async_trait]
impl KapsoApi for HttpKapsoApi {
    async fn send_message(&self, message: &OutboundMessage, deadline: Instant) -> SendOutcome {
        let body = wire::send_body(message);
        self.post(
            "send_message",
            message.phone_number_id.as_str(),
            &body,
            deadline,
            wire::sent_wamid,
        )
        .await
    }

    async fn mark_read(&self, receipt: &ReadReceipt, deadline: Instant) -> ReadOutcome {
        let body = wire::ReadBody::new(receipt);
        self.post(
            "mark_read",
            &receipt.phone_number_id,
            &body,
            deadline,
            |bytes| wire::read_succeeded(bytes).then_some(()),
        )
        .await
    }

    async fn upload_media(
        &self,
        upload: &MediaUpload,
        chunks: FileChunks,
        deadline: Instant,
    ) -> CallOutcome<String> {
        self.upload(upload, chunks, deadline).await
    }

    async fn media_metadata(
        &self,
        media: &MediaRef,
        deadline: Instant,
    ) -> CallOutcome<MediaMetadata> {
        self.metadata(media, deadline).await
    }

    async fn open_media(
        &self,
        url: &str,
        phone_number_id: &str,
        deadline: Instant,
    ) -> CallOutcome<MediaBody> {
        self.open(url, phone_number_id, deadline).await
    }

    fn stats(&self) -> ApiStats {
        self.counters.snapshot()
    }
}

pub(super) fn log_call<T>(
    op: &'static str,
    phone_number_id: &str,
    http_status: Option<u16>,
    outcome: &CallOutcome<T>,
    latency: Duration,
) {
    let latency_ms = latency.as_millis() as u64;
    let http_status = http_status.unwrap_or(0);
    let kind = outcome.kind();
    match outcome {
        CallOutcome::Done(_) => {
            tracing::info!(
                op,
                phone_number_id,
                http_status,
                outcome = kind,
                latency_ms,
                "Kapso call"
            );
        }
        CallOutcome::Retryable(retry) => tracing::warn!(
            op, phone_number_id, http_status, outcome = kind, latency_ms,
            cause = ?retry.cause, retry_after_ms = retry.after.map(|d| d.as_millis() as u64),
            "Kapso call"
        ),
        CallOutcome::Permanent(rejection) => tracing::warn!(
            op, phone_number_id, http_status, outcome = kind, latency_ms, rejection = ?rejection,
            "Kapso call"
        ),
        CallOutcome::Unknown(reason) => tracing::warn!(
            op, phone_number_id, http_status, outcome = kind, latency_ms, reason = %reason,
            "Kapso call"
        ),
    }
}
