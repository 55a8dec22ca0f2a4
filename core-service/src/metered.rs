//! The core's services with their metrics: thin wrappers that time and count
//! each call, so the handlers themselves stay free of instrumentation.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::ingest_server::Ingest;
use kapso_gateway_proto::v1::messaging_server::Messaging;
use tokio::time::Instant;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::ingest::IngestService;
use crate::messaging::MessagingService;
use crate::metrics::{CoreMetrics, WatchGuard};

/// `Ingest` counting calls and events by disposition, timing each call
/// (durable commit included) and noting which business numbers are alive.
#[derive(Debug, Clone)]
pub struct MeteredIngest {
    inner: IngestService,
    metrics: Arc<CoreMetrics>,
}

impl MeteredIngest {
    pub fn new(inner: IngestService, metrics: Arc<CoreMetrics>) -> Self {
        Self { inner, metrics }
    }
}

#[tonic::async_trait]
impl Ingest for MeteredIngest {
    async fn ingest_events(
        &self,
        request: Request<pb::IngestEventsRequest>,
    ) -> Result<Response<pb::IngestEventsResponse>, Status> {
        let started = Instant::now();
        let mut numbers: Vec<String> = request
            .get_ref()
            .events
            .iter()
            .map(|e| e.phone_number_id.clone())
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        let response = self.inner.ingest_events(request).await?;
        let new = response
            .get_ref()
            .outcomes
            .iter()
            .filter(|o| o.disposition() == pb::Disposition::New)
            .count() as u64;
        let total = response.get_ref().outcomes.len() as u64;
        self.metrics.ingested(new, total - new, started.elapsed());
        self.metrics.events_seen(numbers.iter().map(String::as_str));
        Ok(response)
    }
}

/// `Messaging` counting open WatchEvents streams; every other call passes through.
#[derive(Debug, Clone)]
pub struct MeteredMessaging {
    inner: MessagingService,
    metrics: Arc<CoreMetrics>,
}

impl MeteredMessaging {
    pub fn new(inner: MessagingService, metrics: Arc<CoreMetrics>) -> Self {
        Self { inner, metrics }
    }
}

/// A stream that holds a [`WatchGuard`] for as long as the client keeps it.
#[derive(Debug)]
pub struct CountedStream<S> {
    inner: S,
    _open: WatchGuard,
}

impl<S: Stream + Unpin> Stream for CountedStream<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[tonic::async_trait]
impl Messaging for MeteredMessaging {
    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        self.inner.get_message(request).await
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        self.inner.list_messages(request).await
    }

    type WatchEventsStream = CountedStream<<MessagingService as Messaging>::WatchEventsStream>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let stream = self.inner.watch_events(request).await?;
        let open = self.metrics.watch_opened();
        Ok(stream.map(|inner| CountedStream { inner, _open: open }))
    }

    async fn ack_events(
        &self,
        request: Request<pb::AckEventsRequest>,
    ) -> Result<Response<pb::AckEventsResponse>, Status> {
        self.inner.ack_events(request).await
    }

    async fn seek_consumer(
        &self,
        request: Request<pb::SeekConsumerRequest>,
    ) -> Result<Response<pb::SeekConsumerResponse>, Status> {
        self.inner.seek_consumer(request).await
    }

    async fn list_consumers(
        &self,
        request: Request<pb::ListConsumersRequest>,
    ) -> Result<Response<pb::ListConsumersResponse>, Status> {
        self.inner.list_consumers(request).await
    }

    async fn send_text(
        &self,
        request: Request<pb::SendTextRequest>,
    ) -> Result<Response<pb::SendTextResponse>, Status> {
        self.inner.send_text(request).await
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        self.inner.send_message(request).await
    }

    async fn mark_read(
        &self,
        request: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::MarkReadResponse>, Status> {
        self.inner.mark_read(request).await
    }

    async fn upload_media(
        &self,
        request: Request<Streaming<pb::UploadMediaRequest>>,
    ) -> Result<Response<pb::UploadMediaResponse>, Status> {
        self.inner.upload_media(request).await
    }

    type DownloadMediaStream = <MessagingService as Messaging>::DownloadMediaStream;

    async fn download_media(
        &self,
        request: Request<pb::DownloadMediaRequest>,
    ) -> Result<Response<Self::DownloadMediaStream>, Status> {
        self.inner.download_media(request).await
    }
}
