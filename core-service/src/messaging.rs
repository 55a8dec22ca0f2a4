//! `kapso.gateway.v1.Messaging`: what internal services call to read messages,
//! follow the event log and send.

use std::sync::Arc;
use std::time::Duration;

use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::messaging_server::Messaging;
use tonic::{Request, Response, Status, Streaming};

use crate::convert;
use crate::error::CoreError;
use crate::media::{DownloadStream, Media};
use crate::model::{EventFilter, EventType, MessageLookup};
use crate::outbound::{MarkRead, Outbound, SendMessage, SendText, content};
use crate::store::Store;
use crate::watch::{self, EventStream};

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;
/// Longest consumer name: a name is a row key and a metric label.
const MAX_CONSUMER_NAME: usize = 64;

#[derive(Debug, Clone)]
pub struct MessagingService {
    store: Arc<dyn Store>,
    outbound: Arc<Outbound>,
    media: Media,
    closing: watch::Closing,
}

impl MessagingService {
    pub fn new(store: Arc<dyn Store>, outbound: Arc<Outbound>, closing: watch::Closing) -> Self {
        Self {
            media: outbound.media(),
            store,
            outbound,
            closing,
        }
    }
}

/// The longest a call waits whatever `grpc-timeout` says: a timeout the clock
/// cannot even represent (up to 2^64 s) means "as long as it takes", not a panic.
const MAX_CALLER_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The caller's deadline from its `grpc-timeout` header, so retries and waits
/// for Kapso stop when the caller stops waiting. `None`: the default applies.
fn caller_deadline<T>(request: &Request<T>) -> Option<tokio::time::Instant> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (amount, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = amount.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Some(tokio::time::Instant::now() + timeout.min(MAX_CALLER_TIMEOUT))
}

fn page_size(requested: i32) -> Result<usize, CoreError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(CoreError::InvalidArgument(format!(
            "page_size must be 0 to {MAX_PAGE_SIZE}, got {n}"
        ))),
        n => Ok((n as usize).min(MAX_PAGE_SIZE)),
    }
}

/// A consumer name as given: 1 to [`MAX_CONSUMER_NAME`] characters of
/// `A-Z a-z 0-9 . _ -`, so names stay fit for keys, logs and metric labels.
fn consumer_name(name: &str) -> Result<&str, CoreError> {
    if name.is_empty() {
        return Err(CoreError::InvalidArgument("consumer is required".into()));
    }
    let fits = (1..=MAX_CONSUMER_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if fits {
        Ok(name)
    } else {
        Err(CoreError::InvalidArgument(format!(
            "consumer must be 1 to {MAX_CONSUMER_NAME} characters of A-Z, a-z, 0-9, '.', '_' or '-'"
        )))
    }
}

impl MessagingService {
    /// Where a stream starts: a non-zero `after_sequence` wins, then a named
    /// consumer's acknowledged position, then the log's head with `from_end`,
    /// else the beginning.
    async fn start(
        &self,
        after_sequence: u64,
        consumer: Option<&str>,
        from_end: bool,
    ) -> Result<u64, CoreError> {
        if after_sequence != 0 {
            return Ok(after_sequence);
        }
        if let Some(consumer) = consumer
            && let Some(position) = self.store.consumer_position(consumer).await?
        {
            return Ok(position);
        }
        if !from_end {
            return Ok(0);
        }
        let head = *self.store.committed().borrow();
        match consumer {
            // Recorded at once: a consumer restarted before its first ack
            // resumes here instead of at a later head, skipping what came
            // between. An ack never moves back, so a concurrent one wins.
            Some(consumer) => Ok(self.store.ack(consumer, head).await?),
            None => Ok(head),
        }
    }
}

#[tonic::async_trait]
impl Messaging for MessagingService {
    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let id = request.into_inner().message_id;
        let Some(lookup) = MessageLookup::any(&id) else {
            return Err(CoreError::InvalidArgument("message_id is required".into()).into());
        };
        match self.store.message(&lookup).await.map_err(CoreError::from)? {
            Some(message) => Ok(Response::new(convert::message_to_pb(message))),
            None => Err(CoreError::NotFound(format!(
                "no message with id, wamid or idempotency key {id:?}"
            ))
            .into()),
        }
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let request = request.into_inner();
        if request.conversation_id.is_empty() {
            return Err(CoreError::InvalidArgument("conversation_id is required".into()).into());
        }
        let size = page_size(request.page_size)?;
        let cursor = (!request.page_token.is_empty()).then_some(request.page_token.as_str());
        let page = self
            .store
            .conversation_messages(&request.conversation_id, size, cursor)
            .await
            .map_err(CoreError::from)?;
        Ok(Response::new(pb::ListMessagesResponse {
            messages: page
                .messages
                .into_iter()
                .map(convert::message_to_pb)
                .collect(),
            next_page_token: page.next_cursor.unwrap_or_default(),
        }))
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let request = request.into_inner();
        let consumer = match request.consumer.as_str() {
            "" => None,
            name => Some(consumer_name(name)?),
        };
        let after = self
            .start(request.after_sequence, consumer, request.from_end)
            .await?;
        let filter = EventFilter {
            event_types: request
                .event_types
                .iter()
                .map(|t| EventType::parse(t))
                .collect(),
            conversation_id: request.conversation_id,
            phone_number_id: request.phone_number_id,
        };
        tracing::info!(after, consumer = %request.consumer, "watch started");
        Ok(Response::new(watch::follow(
            self.store.clone(),
            after,
            filter,
            self.closing.clone(),
        )))
    }

    async fn ack_events(
        &self,
        request: Request<pb::AckEventsRequest>,
    ) -> Result<Response<pb::AckEventsResponse>, Status> {
        let request = request.into_inner();
        let consumer = consumer_name(&request.consumer)?;
        let sequence = self
            .store
            .ack(consumer, request.sequence)
            .await
            .map_err(CoreError::from)?;
        Ok(Response::new(pb::AckEventsResponse { sequence }))
    }

    async fn seek_consumer(
        &self,
        request: Request<pb::SeekConsumerRequest>,
    ) -> Result<Response<pb::SeekConsumerResponse>, Status> {
        let request = request.into_inner();
        let consumer = consumer_name(&request.consumer)?;
        let sequence = self
            .store
            .seek(consumer, request.sequence)
            .await
            .map_err(CoreError::from)?;
        tracing::info!(consumer, sequence, "consumer moved");
        Ok(Response::new(pb::SeekConsumerResponse { sequence }))
    }

    async fn list_consumers(
        &self,
        _request: Request<pb::ListConsumersRequest>,
    ) -> Result<Response<pb::ListConsumersResponse>, Status> {
        // The head first: a position read after it may be beyond it (a commit
        // and an ack in between), which shows as no lag rather than a negative one.
        let head = *self.store.committed().borrow();
        let positions = self
            .store
            .consumer_positions()
            .await
            .map_err(CoreError::from)?;
        let consumers = positions
            .into_iter()
            .map(|(consumer, sequence)| pb::ConsumerPosition {
                consumer,
                sequence,
                lag: head.saturating_sub(sequence),
            })
            .collect();
        Ok(Response::new(pb::ListConsumersResponse { consumers, head }))
    }

    async fn send_text(
        &self,
        request: Request<pb::SendTextRequest>,
    ) -> Result<Response<pb::SendTextResponse>, Status> {
        let deadline = caller_deadline(&request);
        let r = request.into_inner();
        let send = SendText {
            to: r.to,
            phone_number_id: r.phone_number_id,
            conversation_id: r.conversation_id,
            text: r.text,
            preview_url: r.preview_url,
            reply_to_message_id: r.reply_to_message_id,
            idempotency_key: r.idempotency_key,
            deadline,
        };
        let message = self.outbound.send_text(send).await?;
        Ok(Response::new(pb::SendTextResponse {
            message: Some(convert::message_to_pb(message)),
        }))
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let deadline = caller_deadline(&request);
        let r = request.into_inner();
        let stored_content = r
            .content
            .clone()
            .map(|c| convert::encode_content(&convert::send_content_to_pb(c)));
        let send = SendMessage {
            to: r.to,
            phone_number_id: r.phone_number_id,
            conversation_id: r.conversation_id,
            reply_to_message_id: r.reply_to_message_id,
            idempotency_key: r.idempotency_key,
            content: content::parse(r.content)?,
            stored_content,
            deadline,
        };
        let message = self.outbound.send_message(send).await?;
        Ok(Response::new(pb::SendMessageResponse {
            message: Some(convert::message_to_pb(message)),
        }))
    }

    async fn mark_read(
        &self,
        request: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::MarkReadResponse>, Status> {
        let deadline = caller_deadline(&request);
        let r = request.into_inner();
        let read = MarkRead {
            message_id: r.message_id,
            phone_number_id: r.phone_number_id,
            typing_indicator: r.typing_indicator,
            deadline,
        };
        self.outbound.mark_read(read).await?;
        Ok(Response::new(pb::MarkReadResponse {}))
    }

    async fn upload_media(
        &self,
        request: Request<Streaming<pb::UploadMediaRequest>>,
    ) -> Result<Response<pb::UploadMediaResponse>, Status> {
        let deadline = caller_deadline(&request);
        let uploaded = self.media.upload(request.into_inner(), deadline).await?;
        Ok(Response::new(uploaded))
    }

    type DownloadMediaStream = DownloadStream;

    async fn download_media(
        &self,
        request: Request<pb::DownloadMediaRequest>,
    ) -> Result<Response<Self::DownloadMediaStream>, Status> {
        let deadline = caller_deadline(&request);
        let stream = self.media.download(request.into_inner(), deadline).await?;
        Ok(Response::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_deadline_follows_grpc_timeout_units() {
        let mut request = Request::new(());
        assert!(caller_deadline(&request).is_none());
        request
            .metadata_mut()
            .insert("grpc-timeout", "1500m".parse().unwrap());
        let left = caller_deadline(&request).unwrap() - tokio::time::Instant::now();
        assert!(left <= Duration::from_millis(1500) && left > Duration::from_millis(1000));
        request
            .metadata_mut()
            .insert("grpc-timeout", "bogus".parse().unwrap());
        assert!(caller_deadline(&request).is_none());
        for huge in ["18446744073709551615S", "18446744073709551615H"] {
            request
                .metadata_mut()
                .insert("grpc-timeout", huge.parse().unwrap());
            let left = caller_deadline(&request).unwrap() - tokio::time::Instant::now();
            assert!(left <= MAX_CALLER_TIMEOUT, "{huge}");
        }
    }

    #[test]
    fn consumer_names_are_short_and_plain() {
        for good in ["crm", "billing-v2", "a.b_c", &"x".repeat(MAX_CONSUMER_NAME)] {
            assert!(consumer_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "has space",
            "ünï",
            "a/b",
            "a\nb",
            &"x".repeat(MAX_CONSUMER_NAME + 1),
        ] {
            assert!(consumer_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn page_size_defaults_clamps_and_rejects_negative() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(5).unwrap(), 5);
        assert_eq!(page_size(5000).unwrap(), MAX_PAGE_SIZE);
        assert!(page_size(-1).is_err());
    }
}
