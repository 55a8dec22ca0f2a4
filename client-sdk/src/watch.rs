//! The event log as a stream that survives core restarts and network drops.
//!
//! `WatchEvents` is a long-lived server stream; connections to it break. The
//! stream here remembers the sequence of the last event it yielded and, after a
//! retryable failure, waits per [`Backoff`] and asks again with
//! `after_sequence = last`, so the caller sees every event exactly once and in
//! order across reconnects. Events at or below that sequence are dropped should
//! a server replay them. [`EventStream::connection`] tells how the stream stands
//! with the core, for callers that report it while it waits.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kapso_gateway_proto::v1 as pb;
use tokio::sync::watch;
use tonic::{Code, Status, Streaming};

use crate::client::Grpc;
use crate::{Backoff, Error, Event};

/// Where to start and what to receive. Every filter is optional.
///
/// # Examples
///
/// ```
/// use kapso_client::WatchOptions;
///
/// let options = WatchOptions::new()
///     .consumer("ayuda-bot")
///     .event_type("whatsapp.message.received");
/// assert_eq!(options.after_sequence, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Start after this log position; 0 starts at the beginning, or at the
    /// consumer's acknowledged position when [`consumer`](Self::consumer) is set.
    pub after_sequence: u64,
    /// Only these event types (empty: all).
    pub event_types: Vec<String>,
    /// Only this conversation.
    pub conversation_id: Option<String>,
    /// Only this business phone number.
    pub phone_number_id: Option<String>,
    /// A named consumer, resuming from its last [`Client::ack`](crate::Client::ack).
    pub consumer: Option<String>,
    /// Without a position to resume from (`after_sequence` 0 and no
    /// acknowledged position), start at the log's head instead of its oldest
    /// event: a new bot answers what comes next, not last month's messages.
    pub from_end: bool,
    /// Reconnect schedule.
    pub backoff: Backoff,
}

impl WatchOptions {
    /// Everything from the beginning of the log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start after this sequence.
    pub fn after(mut self, sequence: u64) -> Self {
        self.after_sequence = sequence;
        self
    }

    /// Add an event type to receive (e.g. `whatsapp.message.received`).
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_types.push(event_type.into());
        self
    }

    /// Only events of this conversation.
    pub fn conversation(mut self, conversation_id: impl Into<String>) -> Self {
        self.conversation_id = Some(conversation_id.into());
        self
    }

    /// Only events of this business phone number.
    pub fn phone_number_id(mut self, phone_number_id: impl Into<String>) -> Self {
        self.phone_number_id = Some(phone_number_id.into());
        self
    }

    /// Watch as this named consumer.
    pub fn consumer(mut self, consumer: impl Into<String>) -> Self {
        self.consumer = Some(consumer.into());
        self
    }

    /// Start at the log's head when there is no position to resume from
    /// (see [`from_end`](Self::from_end)). A named consumer is recorded at
    /// that head on the first call, so its restarts skip nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use kapso_client::WatchOptions;
    ///
    /// let options = WatchOptions::new().consumer("ayuda-bot").from_end();
    /// assert!(options.from_end);
    /// ```
    pub fn from_end(mut self) -> Self {
        self.from_end = true;
        self
    }

    /// Use this reconnect schedule instead of the default.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// Events of the log in order, each once. Ends after a non-retryable error
/// (yielded as its last item); otherwise runs until dropped.
pub struct EventStream {
    inner: BoxStream<'static, Result<Event, Error>>,
    last: Arc<AtomicU64>,
    connection: watch::Receiver<Connection>,
}

/// How a watch stands with the core. Changes only while the stream is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// No attempt has answered yet.
    Connecting,
    /// The core accepted the watch; events flow as they come.
    Connected,
    /// The last attempt failed or the stream broke (why); the next attempt
    /// comes after a backoff.
    Reconnecting(String),
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("last_sequence", &self.last_sequence())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// The sequence of the last event yielded, if any: where a new watch
    /// should resume (`WatchOptions::new().after(last)`).
    pub fn last_sequence(&self) -> Option<u64> {
        Some(self.last.load(Ordering::Relaxed)).filter(|s| *s != 0)
    }

    /// Follows how the stream stands with the core, e.g. to say when it is
    /// reconnecting and when it is back.
    pub fn connection(&self) -> watch::Receiver<Connection> {
        self.connection.clone()
    }
}

impl Stream for EventStream {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

pub(crate) fn start(grpc: Grpc, options: WatchOptions) -> EventStream {
    let last = Arc::new(AtomicU64::new(0));
    let (connection_tx, connection) = watch::channel(Connection::Connecting);
    let state = Watcher {
        grpc,
        options,
        last: last.clone(),
        connection: connection_tx,
        stream: None,
        attempt: 0,
        done: false,
    };
    let inner = futures::stream::unfold(state, |mut watcher| async move {
        let item = watcher.next().await?;
        Some((item, watcher))
    })
    .boxed();
    EventStream {
        inner,
        last,
        connection,
    }
}

/// Whether a watch that failed with `code` should reconnect. Transport failures
/// surface as UNAVAILABLE, UNKNOWN (stream cut without a status), INTERNAL (h2
/// resets) or CANCELLED, so all of those reconnect; errors about the request
/// itself (bad filter, no permission) would fail the same way again.
pub(crate) fn should_reconnect(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Unknown
            | Code::Internal
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
    )
}

struct Watcher {
    grpc: Grpc,
    options: WatchOptions,
    /// Sequence of the last yielded event; 0 before the first.
    last: Arc<AtomicU64>,
    connection: watch::Sender<Connection>,
    stream: Option<Streaming<pb::Event>>,
    /// Failed attempts since the last yielded event: the backoff exponent.
    attempt: u32,
    done: bool,
}

impl Watcher {
    async fn next(&mut self) -> Option<Result<Event, Error>> {
        loop {
            if self.done {
                return None;
            }
            let Some(stream) = self.stream.as_mut() else {
                match self.grpc.watch_events(self.request()).await {
                    Ok(response) => {
                        self.stream = Some(response.into_inner());
                        self.report(Connection::Connected);
                    }
                    Err(status) => {
                        if let Some(error) = self.failed(status).await {
                            return Some(Err(error));
                        }
                    }
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(event)) => {
                    if event.sequence <= self.resume_after() && self.resume_after() != 0 {
                        continue;
                    }
                    self.last.store(event.sequence, Ordering::Relaxed);
                    self.attempt = 0;
                    return Some(Ok(event));
                }
                // The core never ends a watch by itself; a clean end is a shutdown.
                Ok(None) => {
                    self.stream = None;
                    self.report(Connection::Reconnecting(
                        "the core closed the stream".into(),
                    ));
                    self.pause().await;
                }
                Err(status) => {
                    self.stream = None;
                    if let Some(error) = self.failed(status).await {
                        return Some(Err(error));
                    }
                }
            }
        }
    }

    /// Sleeps before the next attempt when `status` is retryable; otherwise ends the stream.
    async fn failed(&mut self, status: Status) -> Option<Error> {
        if should_reconnect(status.code()) {
            self.report(Connection::Reconnecting(status.message().to_owned()));
            self.pause().await;
            None
        } else {
            self.done = true;
            Some(status.into())
        }
    }

    /// Publishes a change only, so watchers wake once per transition.
    fn report(&self, now: Connection) {
        self.connection.send_if_modified(|was| {
            let changed = *was != now;
            *was = now;
            changed
        });
    }

    async fn pause(&mut self) {
        let delay = self.options.backoff.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
    }

    /// The last yielded sequence, or the caller's start before the first event.
    fn resume_after(&self) -> u64 {
        match self.last.load(Ordering::Relaxed) {
            0 => self.options.after_sequence,
            last => last,
        }
    }

    fn request(&self) -> pb::WatchEventsRequest {
        let options = &self.options;
        pb::WatchEventsRequest {
            // Nonzero after the first event, so the core ignores the consumer's
            // acknowledged position, which may lag behind what was yielded.
            after_sequence: self.resume_after(),
            event_types: options.event_types.clone(),
            conversation_id: options.conversation_id.clone().unwrap_or_default(),
            phone_number_id: options.phone_number_id.clone().unwrap_or_default(),
            consumer: options.consumer.clone().unwrap_or_default(),
            from_end: options.from_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_reconnect_and_request_errors_stop() {
        for code in [
            Code::Unavailable,
            Code::Unknown,
            Code::Internal,
            Code::Cancelled,
        ] {
            assert!(should_reconnect(code), "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Unimplemented,
            Code::FailedPrecondition,
        ] {
            assert!(!should_reconnect(code), "{code:?}");
        }
    }
}
