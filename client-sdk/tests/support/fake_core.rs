//! An in-process `Messaging` server on a real socket: records what the client
//! sent and answers from a fixed script, so tests can assert both directions.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::Stream;
use kapso_client::proto::messaging_server::{Messaging, MessagingServer};
use kapso_client::proto::{self as pb, Event, Message};
use tokio::net::TcpListener;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status, Streaming};

/// Text that makes the fake's SendText fail like an unknown outcome.
pub const FAILING_TEXT: &str = "fail please";
/// Event type filter that the fake rejects as INVALID_ARGUMENT.
pub const REJECTED_EVENT_TYPE: &str = "not.a.type";
/// Number of events in the fake's log.
pub const LOG_LEN: u64 = 10;
/// Events one watch connection delivers before the fake cuts it with UNAVAILABLE.
pub const EVENTS_PER_CONNECTION: u64 = 3;
/// Messages of conversation `conv_1`; pages hold two.
pub const CONVERSATION_LEN: usize = 5;

/// What the fake received.
#[derive(Debug, Default)]
pub struct Calls {
    /// The `authorization` header of every call, in order.
    pub authorization: Vec<Option<String>>,
    pub send_text: Vec<pb::SendTextRequest>,
    pub send_message: Vec<pb::SendMessageRequest>,
    pub watch: Vec<pb::WatchEventsRequest>,
    pub ack: Vec<pb::AckEventsRequest>,
    pub seek: Vec<pb::SeekConsumerRequest>,
    pub list: Vec<pb::ListMessagesRequest>,
    pub uploads: Vec<ReceivedUpload>,
    pub downloads: Vec<pb::DownloadMediaRequest>,
}

/// An upload as the fake received it.
#[derive(Debug, Clone)]
pub struct ReceivedUpload {
    pub metadata: pb::MediaUpload,
    pub bytes: Vec<u8>,
    /// How many chunk messages carried the bytes.
    pub chunks: usize,
}

/// The file the fake serves for media id `1234` and message `wamid.img`;
/// message `wamid.broken` breaks off after its first chunk.
pub fn media_file() -> Vec<u8> {
    (0..150_000u32).map(|i| (i % 253) as u8).collect()
}

#[derive(Debug, Clone, Default)]
pub struct FakeCore {
    pub calls: Arc<Mutex<Calls>>,
}

impl FakeCore {
    fn record<T>(&self, request: &Request<T>) {
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        self.calls.lock().unwrap().authorization.push(header);
    }
}

/// The fake's log entry `sequence`.
pub fn log_event(sequence: u64) -> Event {
    Event {
        sequence,
        event_type: "whatsapp.message.received".into(),
        conversation_id: "conv_1".into(),
        message: Some(Message {
            id: format!("wamid.{sequence}"),
            text: format!("mensaje {sequence}"),
            ..Default::default()
        }),
        payload_json: format!(r#"{{"message":{{"id":"wamid.{sequence}"}}}}"#),
        ..Default::default()
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;
type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadMediaResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Messaging for FakeCore {
    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<Message>, Status> {
        self.record(&request);
        let id = request.into_inner().message_id;
        if id == "missing" {
            return Err(Status::not_found("no message with id \"missing\""));
        }
        // The image whose file the fake serves, with its typed content.
        let content = (id == "wamid.img").then(|| pb::Content {
            kind: Some(pb::content::Kind::Media(pb::MediaContent {
                kind: pb::MediaKind::Image.into(),
                id: "1234".into(),
                caption: "la foto".into(),
                mime_type: "image/jpeg".into(),
                ..Default::default()
            })),
        });
        Ok(Response::new(Message {
            id,
            conversation_id: "conv_1".into(),
            content,
            ..Default::default()
        }))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        self.record(&request);
        let request = request.into_inner();
        self.calls.lock().unwrap().list.push(request.clone());
        let start: usize = request.page_token.parse().unwrap_or(0);
        let end = (start + 2).min(CONVERSATION_LEN);
        let messages = (start..end)
            .map(|i| Message {
                id: format!("wamid.c{i}"),
                conversation_id: request.conversation_id.clone(),
                ..Default::default()
            })
            .collect();
        let next_page_token = if end < CONVERSATION_LEN {
            end.to_string()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListMessagesResponse {
            messages,
            next_page_token,
        }))
    }

    type WatchEventsStream = EventStream;

    /// Serves the log after `after_sequence`, but replays the event at
    /// `after_sequence` itself too (a sloppy server: the client must drop it),
    /// and cuts every connection after a few events while more remain.
    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        self.record(&request);
        let request = request.into_inner();
        self.calls.lock().unwrap().watch.push(request.clone());
        if request.event_types.iter().any(|t| t == REJECTED_EVENT_TYPE) {
            return Err(Status::invalid_argument("unknown event type filter"));
        }
        let first = request.after_sequence.max(1);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut sent_new = 0;
            for sequence in first..=LOG_LEN {
                if sent_new == EVENTS_PER_CONNECTION {
                    let _ = tx.send(Err(Status::unavailable("core restarting"))).await;
                    return;
                }
                if tx.send(Ok(log_event(sequence))).await.is_err() {
                    return;
                }
                if sequence > request.after_sequence {
                    sent_new += 1;
                }
            }
            // The log is exhausted: stay open like a live watch until the client leaves.
            tx.closed().await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn ack_events(
        &self,
        request: Request<pb::AckEventsRequest>,
    ) -> Result<Response<pb::AckEventsResponse>, Status> {
        self.record(&request);
        let request = request.into_inner();
        let sequence = request.sequence;
        self.calls.lock().unwrap().ack.push(request);
        Ok(Response::new(pb::AckEventsResponse { sequence }))
    }

    /// Moves anywhere within the fake's log; beyond it is OUT_OF_RANGE.
    async fn seek_consumer(
        &self,
        request: Request<pb::SeekConsumerRequest>,
    ) -> Result<Response<pb::SeekConsumerResponse>, Status> {
        self.record(&request);
        let request = request.into_inner();
        let sequence = request.sequence;
        self.calls.lock().unwrap().seek.push(request);
        if sequence > LOG_LEN {
            return Err(Status::out_of_range("beyond the log's last event"));
        }
        Ok(Response::new(pb::SeekConsumerResponse { sequence }))
    }

    /// Two consumers: `billing` caught up, `crm` four behind.
    async fn list_consumers(
        &self,
        request: Request<pb::ListConsumersRequest>,
    ) -> Result<Response<pb::ListConsumersResponse>, Status> {
        self.record(&request);
        let position = |consumer: &str, sequence| pb::ConsumerPosition {
            consumer: consumer.into(),
            sequence,
            lag: LOG_LEN - sequence,
        };
        Ok(Response::new(pb::ListConsumersResponse {
            consumers: vec![position("billing", LOG_LEN), position("crm", LOG_LEN - 4)],
            head: LOG_LEN,
        }))
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        self.record(&request);
        let request = request.into_inner();
        self.calls
            .lock()
            .unwrap()
            .send_message
            .push(request.clone());
        let mut message = Message {
            id: "wamid.sent".into(),
            conversation_id: request.conversation_id,
            contact_phone: request.to.trim_start_matches('+').into(),
            gateway_id: "gw_3".into(),
            idempotency_key: request.idempotency_key,
            reply_to_message_id: request.reply_to_message_id,
            ..Default::default()
        };
        message.set_status(pb::MessageStatus::Sent);
        message.set_direction(pb::Direction::Outbound);
        Ok(Response::new(pb::SendMessageResponse {
            message: Some(message),
        }))
    }

    async fn send_text(
        &self,
        request: Request<pb::SendTextRequest>,
    ) -> Result<Response<pb::SendTextResponse>, Status> {
        self.record(&request);
        let request = request.into_inner();
        self.calls.lock().unwrap().send_text.push(request.clone());
        if request.text == FAILING_TEXT {
            let mut trailers = MetadataMap::new();
            trailers.insert("x-message-id", "gw_1".parse().unwrap());
            trailers.insert("x-meta-error-code", "131047".parse().unwrap());
            return Err(Status::with_metadata(
                Code::Unavailable,
                "outcome unknown for message gw_1",
                trailers,
            ));
        }
        let mut message = Message {
            id: "wamid.sent".into(),
            conversation_id: request.conversation_id,
            contact_phone: request.to.trim_start_matches('+').into(),
            text: request.text,
            gateway_id: "gw_2".into(),
            idempotency_key: request.idempotency_key,
            reply_to_message_id: request.reply_to_message_id,
            ..Default::default()
        };
        message.set_status(pb::MessageStatus::Sent);
        message.set_direction(pb::Direction::Outbound);
        Ok(Response::new(pb::SendTextResponse {
            message: Some(message),
        }))
    }

    async fn mark_read(
        &self,
        request: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::MarkReadResponse>, Status> {
        self.record(&request);
        Ok(Response::new(pb::MarkReadResponse {}))
    }

    /// Takes metadata first and then bytes, as the core does; answers `media-<bytes>`.
    async fn upload_media(
        &self,
        request: Request<Streaming<pb::UploadMediaRequest>>,
    ) -> Result<Response<pb::UploadMediaResponse>, Status> {
        use pb::upload_media_request::Part;
        self.record(&request);
        let mut stream = request.into_inner();
        let mut metadata = None;
        let mut bytes = Vec::new();
        let mut chunks = 0;
        while let Some(message) = stream.message().await? {
            match message.part {
                Some(Part::Metadata(m)) if metadata.is_none() => metadata = Some(m),
                Some(Part::Chunk(chunk)) if metadata.is_some() => {
                    chunks += 1;
                    bytes.extend_from_slice(&chunk);
                }
                _ => return Err(Status::invalid_argument("metadata first, then bytes")),
            }
        }
        let metadata = metadata.ok_or_else(|| Status::invalid_argument("no metadata"))?;
        let response = pb::UploadMediaResponse {
            id: format!("media-{}", bytes.len()),
            size_bytes: bytes.len() as i64,
            kind: metadata.kind,
        };
        self.calls.lock().unwrap().uploads.push(ReceivedUpload {
            metadata,
            bytes,
            chunks,
        });
        Ok(Response::new(response))
    }

    type DownloadMediaStream = DownloadStream;

    async fn download_media(
        &self,
        request: Request<pb::DownloadMediaRequest>,
    ) -> Result<Response<DownloadStream>, Status> {
        use pb::download_media_request::Source;
        use pb::download_media_response::Part;
        self.record(&request);
        let request = request.into_inner();
        self.calls.lock().unwrap().downloads.push(request.clone());
        let broken = match &request.source {
            Some(Source::MediaId(id)) if id == "1234" => false,
            Some(Source::MessageId(id)) if id == "wamid.img" => false,
            Some(Source::MessageId(id)) if id == "wamid.broken" => true,
            _ => return Err(Status::not_found("no such message or media")),
        };
        let file = media_file();
        let info = pb::MediaInfo {
            media_id: "1234".into(),
            mime_type: "image/jpeg".into(),
            size_bytes: file.len() as i64,
            sha256: "81d3".into(),
            filename: String::new(),
            kind: pb::MediaKind::Image.into(),
        };
        let mut messages = vec![Ok(pb::DownloadMediaResponse {
            part: Some(Part::Metadata(info)),
        })];
        let chunks: Vec<_> = file.chunks(40_000).map(<[u8]>::to_vec).collect();
        let take = if broken { 1 } else { chunks.len() };
        for chunk in chunks.into_iter().take(take) {
            messages.push(Ok(pb::DownloadMediaResponse {
                part: Some(Part::Chunk(chunk)),
            }));
        }
        if broken {
            messages.push(Err(Status::unavailable(
                "the download from Kapso broke off",
            )));
        }
        Ok(Response::new(Box::pin(futures::stream::iter(messages))))
    }
}

/// Serves a fresh fake on 127.0.0.1:0; returns its URL and what it records.
pub async fn spawn_core() -> (String, Arc<Mutex<Calls>>) {
    spawn_core_on(TcpListener::bind("127.0.0.1:0").await.unwrap())
}

/// The fake serving on `listener`, e.g. on an address a client already tries.
pub fn spawn_core_on(listener: TcpListener) -> (String, Arc<Mutex<Calls>>) {
    let addr = listener.local_addr().unwrap();
    let core = FakeCore::default();
    let calls = core.calls.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MessagingServer::new(core))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), calls)
}
