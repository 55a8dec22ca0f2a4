//! [`Client`]: a connection to the core's `kapso.gateway.v1.Messaging` service.
//!
//! One [`tonic::transport::Channel`] is shared by every clone of a client; the
//! channel reconnects by itself, so a client can be built once and kept.

use std::fmt;
use std::time::Duration;

use futures::Stream;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::messaging_client::MessagingClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::media::{self, MediaSource, Upload};
use crate::watch::{self, EventStream, WatchOptions};
use crate::{Error, Message, SendMessage, SendText};

/// The generated client with the bearer token interceptor in front of the channel.
pub(crate) type Grpc = MessagingClient<InterceptedService<Channel, BearerToken>>;

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone)]
pub(crate) struct BearerToken(Option<MetadataValue<Ascii>>);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.0.is_some() {
            "[redacted]"
        } else {
            "none"
        };
        f.debug_tuple("BearerToken").field(&shown).finish()
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Settings for a [`Client`]; made by [`Client::builder`].
#[derive(Clone)]
pub struct ClientBuilder {
    endpoint: String,
    token: Option<String>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientBuilder {
    /// The core's gRPC token (`GATEWAY_API_TOKEN`), sent as `authorization: Bearer <token>`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How long to wait for the TCP (and TLS) connection; default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Deadline of each unary call, also sent to the core as `grpc-timeout`.
    /// Not applied to [`Client::watch`], which runs for as long as it is polled.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Connects now, failing fast when the core is unreachable.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), kapso_client::Error> {
    /// use std::time::Duration;
    /// let client = kapso_client::Client::builder("http://127.0.0.1:50051")
    ///     .token("my-gateway-token")
    ///     .timeout(Duration::from_secs(30))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<Client, Error> {
        let (endpoint, token) = self.parts()?;
        let channel = endpoint.connect().await.map_err(|source| Error::Connect {
            endpoint: self.endpoint.clone(),
            source,
        })?;
        Ok(self.client(channel, token))
    }

    /// A client that connects on its first call (and whenever the connection drops).
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let (endpoint, token) = self.parts()?;
        let channel = endpoint.connect_lazy();
        Ok(self.client(channel, token))
    }

    fn parts(&self) -> Result<(Endpoint, BearerToken), Error> {
        let endpoint = Endpoint::from_shared(with_scheme(&self.endpoint))
            .map_err(|e| Error::Config(format!("endpoint {:?}: {e}", self.endpoint)))?
            .connect_timeout(self.connect_timeout);
        let token = match &self.token {
            None => None,
            Some(token) => {
                let mut value = MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| Error::Config("the token is not a valid header value".into()))?;
                // Keeps the token out of HTTP/2 header compression tables and debug output.
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok((endpoint, BearerToken(token)))
    }

    fn client(&self, channel: Channel, token: BearerToken) -> Client {
        Client {
            grpc: MessagingClient::with_interceptor(channel, token),
            timeout: self.timeout,
        }
    }
}

/// The variable every client reads the core's address from.
pub const CORE_URL_VAR: &str = "KAPSO_CORE_URL";
/// The variable every client reads the core's token from.
pub const TOKEN_VAR: &str = "GATEWAY_API_TOKEN";
/// Where the core listens unless told otherwise (its `CORE_LISTEN_ADDR` default).
pub const DEFAULT_CORE_URL: &str = "127.0.0.1:50051";

/// The core's address as a URI: `host:port` means plain `http://host:port`,
/// as the other SDKs and the `kapso` CLI take it; `http://` and `https://`
/// are kept.
fn with_scheme(address: &str) -> String {
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

/// One page of [`Client::list_messages`].
#[derive(Debug, Clone, PartialEq)]
pub struct MessagePage {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// Pass to the next call; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// A handle on the core's Messaging API. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    grpc: Grpc,
    timeout: Option<Duration>,
}

impl Client {
    /// Settings for a client of the core at `endpoint`: `host:port`,
    /// `http://host:port` or `https://host:port` (e.g. `127.0.0.1:50051`).
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.into(),
            token: None,
            connect_timeout: Duration::from_secs(5),
            timeout: None,
        }
    }

    /// Settings from the environment, named as the `kapso` CLI and the other
    /// SDKs name them: the address from `KAPSO_CORE_URL` (`host:port`,
    /// `http://` or `https://`; default `127.0.0.1:50051`) and the token from
    /// `GATEWAY_API_TOKEN`. An empty variable counts as unset.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), kapso_client::Error> {
    /// use std::time::Duration;
    /// let client = kapso_client::Client::from_env()
    ///     .timeout(Duration::from_secs(30))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn from_env() -> ClientBuilder {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Client::from_env`] over any source of variables.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> ClientBuilder {
        let set = |name| var(name).filter(|value| !value.trim().is_empty());
        let mut builder =
            Self::builder(set(CORE_URL_VAR).unwrap_or_else(|| DEFAULT_CORE_URL.into()));
        builder.token = set(TOKEN_VAR);
        builder
    }

    /// Connects without a token or per-call timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), kapso_client::Error> {
    /// let client = kapso_client::Client::connect("http://127.0.0.1:50051").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self, Error> {
        Self::builder(endpoint).connect().await
    }

    /// Sends a text through Kapso and returns the stored outbound message.
    ///
    /// Give an idempotency key whenever the call may be retried: without one a
    /// retry after an unknown outcome can deliver the text twice.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// use kapso_client::SendText;
    /// let message = client
    ///     .send_text(SendText::to("+56912345678", "hola").idempotency_key("welcome-56912345678"))
    ///     .await?;
    /// println!("{} is {}", message.id, message.status().as_str_name());
    /// # Ok(()) }
    /// ```
    pub async fn send_text(&self, request: SendText) -> Result<Message, Error> {
        let response = self
            .grpc
            .clone()
            .send_text(self.unary(request.into_proto()))
            .await?;
        response
            .into_inner()
            .message
            .ok_or_else(|| Status::internal("SendText answered without a message").into())
    }

    /// Sends a message of any kind (text, template, media, interactive,
    /// reaction, location, contacts) and returns the stored outbound message.
    /// Outside the 24-hour window only a template goes out; anything else is
    /// refused with `FAILED_PRECONDITION`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// use kapso_client::{Media, MediaKind, SendMessage};
    /// let receipt = Media::link(MediaKind::Document, "https://cdn.example.com/inv-1042.pdf")
    ///     .filename("invoice-1042.pdf");
    /// client
    ///     .send_message(SendMessage::to("+56912345678", receipt).idempotency_key("invoice-1042"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_message(&self, request: SendMessage) -> Result<Message, Error> {
        let response = self
            .grpc
            .clone()
            .send_message(self.unary(request.into_proto()))
            .await?;
        response
            .into_inner()
            .message
            .ok_or_else(|| Status::internal("SendMessage answered without a message").into())
    }

    /// Marks an inbound message read (blue ticks), optionally showing "typing…".
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// client.mark_read("wamid.HBgL", true).await?;
    /// # Ok(()) }
    /// ```
    pub async fn mark_read(&self, message_id: &str, typing_indicator: bool) -> Result<(), Error> {
        let request = pb::MarkReadRequest {
            message_id: message_id.to_owned(),
            phone_number_id: String::new(),
            typing_indicator,
        };
        self.grpc.clone().mark_read(self.unary(request)).await?;
        Ok(())
    }

    /// Uploads a file read from `reader` and returns Meta's id for it, to
    /// send with [`Media::id`](crate::Media::id). The file streams through the
    /// core to Kapso as it is read. Not bounded by the client's timeout: the
    /// core gives a file 10 minutes unless the call says otherwise.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// use kapso_client::{Media, MediaKind, SendMessage, Upload};
    /// let pdf = tokio::io::BufReader::new(&b"%PDF-1.7 ..."[..]);
    /// let uploaded = client
    ///     .upload_media(Upload::new("application/pdf").filename("boleta.pdf"), pdf)
    ///     .await?;
    /// let document = Media::id(MediaKind::Document, uploaded.id).filename("boleta.pdf");
    /// client.send_message(SendMessage::to("+56912345678", document)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upload_media<R>(
        &self,
        upload: Upload,
        reader: R,
    ) -> Result<crate::UploadMediaResponse, Error>
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
    {
        media::upload(self.grpc.clone(), upload, reader).await
    }

    /// Uploads the file at `path`: as [`upload_media`](Self::upload_media),
    /// with its size declared and, unless `upload` names them, its filename
    /// and the MIME type its extension implies.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// let uploaded = client.upload_media_file("boleta.pdf", None).await?;
    /// println!("media id {}", uploaded.id);
    /// # Ok(()) }
    /// ```
    pub async fn upload_media_file(
        &self,
        path: impl AsRef<std::path::Path>,
        upload: Option<Upload>,
    ) -> Result<crate::UploadMediaResponse, Error> {
        let path = path.as_ref();
        let io = |what: &str| {
            let what = format!("{what} {}", path.display());
            move |source| Error::Io { what, source }
        };
        let file = tokio::fs::File::open(path).await.map_err(io("opening"))?;
        let size = file
            .metadata()
            .await
            .map_err(io("reading the size of"))?
            .len();
        let mut upload = match upload {
            Some(upload) => upload,
            None => Upload::new(media::mime_type_of(path).ok_or_else(|| {
                Error::Config(format!(
                    "no MIME type known for {}; name one (e.g. application/pdf)",
                    path.display()
                ))
            })?),
        };
        if upload.filename.is_none() {
            upload.filename = path.file_name().and_then(|n| n.to_str()).map(str::to_owned);
        }
        upload.size = Some(size);
        self.upload_media(upload, file).await
    }

    /// Writes the bytes of a message's media (or a media id's) to `writer`
    /// as they come and returns the metadata the core sent before them. On
    /// an error `writer` holds only part of the file. Not bounded by the
    /// client's timeout, as [`upload_media`](Self::upload_media).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// use kapso_client::MediaSource;
    /// let mut file = tokio::fs::File::create("received.jpg").await.unwrap();
    /// let info = client
    ///     .download_media(MediaSource::Message("wamid.HBgL".into()), &mut file)
    ///     .await?;
    /// println!("{} bytes of {}", info.size_bytes, info.mime_type);
    /// # Ok(()) }
    /// ```
    pub async fn download_media<W>(
        &self,
        source: MediaSource,
        writer: &mut W,
    ) -> Result<crate::MediaInfo, Error>
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        media::download(self.grpc.clone(), source, writer).await
    }

    /// A message by its wamid, gateway id, or the idempotency key it was sent with.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// let message = client.get_message("order-42-confirmation").await?;
    /// println!("{:?}", message.status());
    /// # Ok(()) }
    /// ```
    pub async fn get_message(&self, id: &str) -> Result<Message, Error> {
        let request = pb::GetMessageRequest {
            message_id: id.to_owned(),
        };
        Ok(self
            .grpc
            .clone()
            .get_message(self.unary(request))
            .await?
            .into_inner())
    }

    /// One page of a conversation's messages, oldest first. `page_size` 0 means
    /// the core's default (100); it caps pages at 1000.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// let mut token = None;
    /// loop {
    ///     let page = client.list_messages("conv_123", 50, token.as_deref()).await?;
    ///     for message in &page.messages {
    ///         println!("{}", message.text);
    ///     }
    ///     match page.next_page_token {
    ///         Some(next) => token = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_messages(
        &self,
        conversation_id: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<MessagePage, Error> {
        let request = pb::ListMessagesRequest {
            conversation_id: conversation_id.to_owned(),
            page_size: i32::try_from(page_size).unwrap_or(i32::MAX),
            page_token: page_token.unwrap_or_default().to_owned(),
        };
        let response = self
            .grpc
            .clone()
            .list_messages(self.unary(request))
            .await?
            .into_inner();
        Ok(MessagePage {
            messages: response.messages,
            next_page_token: Some(response.next_page_token).filter(|t| !t.is_empty()),
        })
    }

    /// Every message of a conversation, oldest first, fetching pages as the stream is polled.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// use futures::TryStreamExt;
    /// let all: Vec<_> = client.all_messages("conv_123").try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn all_messages(
        &self,
        conversation_id: &str,
    ) -> impl Stream<Item = Result<Message, Error>> + Send + 'static {
        use futures::{StreamExt, TryStreamExt};
        let client = self.clone();
        let conversation_id = conversation_id.to_owned();
        // State: the token of the next page, `None` once the last page was fetched.
        futures::stream::try_unfold(Some(String::new()), move |token| {
            let client = client.clone();
            let conversation_id = conversation_id.clone();
            async move {
                let Some(token) = token else { return Ok(None) };
                let page = client
                    .list_messages(&conversation_id, 0, Some(&token))
                    .await?;
                let messages = futures::stream::iter(page.messages.into_iter().map(Ok));
                Ok::<_, Error>(Some((messages, page.next_page_token)))
            }
        })
        .try_flatten()
        .boxed()
    }

    /// Records that `consumer` processed every event up to and including
    /// `sequence`; returns its position afterwards (it never moves back).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// let position = client.ack("billing", 42).await?;
    /// assert!(position >= 42);
    /// # Ok(()) }
    /// ```
    pub async fn ack(&self, consumer: &str, sequence: u64) -> Result<u64, Error> {
        let request = pb::AckEventsRequest {
            consumer: consumer.to_owned(),
            sequence,
        };
        Ok(self
            .grpc
            .clone()
            .ack_events(self.unary(request))
            .await?
            .into_inner()
            .sequence)
    }

    /// Moves `consumer`'s position to `sequence`, backwards included: its next
    /// watch starts after it (0 replays everything retained). Returns the new
    /// position; beyond the log's head is refused with `OUT_OF_RANGE`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// // Replay everything after 1200 once the bug is fixed.
    /// assert_eq!(client.seek_consumer("billing", 1200).await?, 1200);
    /// # Ok(()) }
    /// ```
    pub async fn seek_consumer(&self, consumer: &str, sequence: u64) -> Result<u64, Error> {
        let request = pb::SeekConsumerRequest {
            consumer: consumer.to_owned(),
            sequence,
        };
        Ok(self
            .grpc
            .clone()
            .seek_consumer(self.unary(request))
            .await?
            .into_inner()
            .sequence)
    }

    /// Every named consumer by name, with its position and lag behind the log's head.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// for consumer in client.list_consumers().await? {
    ///     println!("{} at {} ({} behind)", consumer.consumer, consumer.sequence, consumer.lag);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_consumers(&self) -> Result<Vec<pb::ConsumerPosition>, Error> {
        Ok(self
            .grpc
            .clone()
            .list_consumers(self.unary(pb::ListConsumersRequest {}))
            .await?
            .into_inner()
            .consumers)
    }

    /// Follows the event log: replays what is after the start position, then
    /// streams live, reconnecting on its own. See [`WatchOptions`] and [`EventStream`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(client: kapso_client::Client) -> Result<(), kapso_client::Error> {
    /// use futures::StreamExt;
    /// use kapso_client::WatchOptions;
    ///
    /// let options = WatchOptions::new().event_type("whatsapp.message.received");
    /// let mut events = client.watch(options);
    /// while let Some(event) = events.next().await {
    ///     let event = event?;
    ///     println!("{}: {}", event.sequence, event.event_type);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn watch(&self, options: WatchOptions) -> EventStream {
        watch::start(self.grpc.clone(), options)
    }

    fn unary<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(timeout) = self.timeout {
            request.set_timeout(timeout);
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> ClientBuilder {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Client::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_environment_gives_the_address_with_or_without_scheme_and_the_token() {
        let builder = from(&[
            (CORE_URL_VAR, "core.internal:50051"),
            (TOKEN_VAR, "t-not-real"),
        ]);
        assert_eq!(with_scheme(&builder.endpoint), "http://core.internal:50051");
        assert_eq!(builder.token.as_deref(), Some("t-not-real"));

        let builder = from(&[(CORE_URL_VAR, "https://core.example:443")]);
        assert_eq!(with_scheme(&builder.endpoint), "https://core.example:443");
        assert_eq!(builder.token, None);
    }

    #[test]
    fn unset_or_empty_variables_mean_the_local_core_without_a_token() {
        for vars in [&[][..], &[(CORE_URL_VAR, ""), (TOKEN_VAR, " ")][..]] {
            let builder = from(vars);
            assert_eq!(builder.endpoint, DEFAULT_CORE_URL);
            assert_eq!(builder.token, None);
        }
    }
}
