//! The download flow: find the media (a stored message's content, or an id),
//! ask Kapso where its bytes are, then stream them to the caller behind one
//! message of metadata, counting them against the kind's limit. Kapso's URLs
//! and the key stay in the core; the caller sees metadata and bytes.

use bytes::Bytes;
use futures::StreamExt as _;
use kapso_gateway_proto::v1 as pb;
use pb::download_media_request::Source;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::limits::{Budget, Kind, MimeType};
use super::upload::{kind_from_pb, kind_to_pb};
use super::{Media, MediaError, deadline_or_default};
use crate::convert;
use crate::kapso_api::{CallOutcome, MediaBody, MediaMetadata, MediaRef};
use crate::model::MessageLookup;
use crate::outbound::request::non_empty;
use crate::outbound::retry::Idempotent;

/// The stream a `DownloadMedia` call answers with.
pub type DownloadStream = ReceiverStream<Result<pb::DownloadMediaResponse, Status>>;

/// Largest chunk sent to the caller: well under any client's message limit.
const CHUNK: usize = 64 * 1024;

/// Messages queued for a slow caller before reading from Kapso pauses.
const QUEUED: usize = 4;

/// Longest media id taken: Meta's are a few dozen digits.
const MAX_MEDIA_ID: usize = 128;

/// What is known of a file before Kapso is asked: from the request, and from
/// a stored message's content when the request names one.
#[derive(Debug, Default)]
struct Known {
    media_id: String,
    phone_number_id: String,
    /// Kapso's copy (`kapso.media_url`): used when the id no longer resolves.
    media_url: String,
    kind: Option<Kind>,
    mime_type: String,
    sha256: String,
    filename: String,
    size: i64,
}

/// Where the bytes are, and what to tell the caller first.
struct Located {
    info: pb::MediaInfo,
    kind: Kind,
    body: MediaBody,
}

impl Media {
    /// Streams the media a request names: its metadata, then its bytes.
    /// Everything that can be refused before a byte moves is the call's error.
    pub async fn download(
        &self,
        request: pb::DownloadMediaRequest,
        deadline: Option<Instant>,
    ) -> Result<DownloadStream, MediaError> {
        let deadline = deadline_or_default(deadline);
        let known = match request.source {
            Some(Source::MessageId(id)) => {
                self.known_from_message(&id, &request.phone_number_id)
                    .await?
            }
            Some(Source::MediaId(id)) => Known {
                media_id: media_id(&id)?,
                phone_number_id: self.phone_number_id(&request.phone_number_id)?,
                ..Known::default()
            },
            None => {
                return Err(MediaError::invalid(
                    "source",
                    "give a message_id or a media_id",
                ));
            }
        };
        self.require_key()?;
        let located = self.locate(known, deadline).await?;
        Ok(stream(located))
    }

    /// What a stored message's content says of its media.
    async fn known_from_message(
        &self,
        id: &str,
        phone_number_id: &str,
    ) -> Result<Known, MediaError> {
        let id = id.trim();
        let Some(lookup) = MessageLookup::any(id) else {
            return Err(MediaError::invalid("message_id", "must not be empty"));
        };
        let message = self.store.message(&lookup).await?.ok_or_else(|| {
            MediaError::NotFound(format!(
                "no message with id, wamid or idempotency key {id:?}"
            ))
        })?;
        let media = message
            .content
            .as_ref()
            .and_then(convert::decode_content)
            .and_then(|content| match content.kind {
                Some(pb::content::Kind::Media(media)) => Some(media),
                _ => None,
            })
            .filter(|media| !media.id.is_empty() || !media.media_url.is_empty())
            .ok_or_else(|| {
                MediaError::invalid(
                    "message_id",
                    format!(
                        "message {id} holds no media WhatsApp or Kapso keeps (media sent by link stays at its link)"
                    ),
                )
            })?;
        let number =
            non_empty(&message.phone_number_id).unwrap_or_else(|| phone_number_id.to_owned());
        Ok(Known {
            media_id: match media.id.as_str() {
                "" => String::new(),
                given => media_id(given)?,
            },
            phone_number_id: self.phone_number_id(&number)?,
            media_url: media.media_url.clone(),
            kind: kind_from_pb(media.kind()),
            mime_type: media.mime_type,
            sha256: media.sha256,
            filename: media.filename,
            size: media.size_bytes,
        })
    }

    /// Asks Kapso where the bytes are and opens them; the file is refused here
    /// when what is declared already passes its kind's limit.
    async fn locate(&self, known: Known, deadline: Instant) -> Result<Located, MediaError> {
        let api = &self.api;
        let mut metadata = MediaMetadata::default();
        if !known.media_id.is_empty() {
            let media = MediaRef {
                media_id: known.media_id.clone(),
                phone_number_id: known.phone_number_id.clone(),
            };
            let outcome = self
                .retry
                .run(deadline, Idempotent::Yes, |_| {
                    api.media_metadata(&media, deadline)
                })
                .await;
            match outcome {
                CallOutcome::Done(found) => metadata = found,
                // Inbound ids last 7 days; Kapso's own copy may outlive them.
                _ if !known.media_url.is_empty() => {
                    tracing::debug!("media id did not resolve; using Kapso's copy");
                }
                failed => {
                    let unknown = || {
                        MediaError::NotFound(format!(
                            "media {} is unknown to WhatsApp, or expired (received media lasts 7 days, uploads 30)",
                            known.media_id
                        ))
                    };
                    return Err(MediaError::from_outcome(
                        &failed,
                        "the media lookup",
                        Some(&unknown),
                    ));
                }
            }
        }
        let url = metadata
            .byte_url()
            .map(str::to_owned)
            .unwrap_or_else(|| known.media_url.clone());
        let mime = first_of([&metadata.mime_type, &known.mime_type]);
        let kind = known
            .kind
            .or_else(|| MimeType::parse(&mime).map(|m| Kind::of_mime(&m)))
            .unwrap_or(Kind::Document);
        if let Some(size) = metadata.file_size {
            Budget::check_declared(kind, size)?;
        }
        let outcome = self
            .retry
            .run(deadline, Idempotent::Yes, |_| {
                api.open_media(&url, &known.phone_number_id, deadline)
            })
            .await;
        let body = match outcome {
            CallOutcome::Done(body) => body,
            failed => return Err(MediaError::from_outcome(&failed, "the download", None)),
        };
        if let Some(length) = body.content_length {
            Budget::check_declared(kind, length)?;
        }
        let size = metadata
            .file_size
            .or(body.content_length)
            .map_or(known.size, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let info = pb::MediaInfo {
            media_id: known.media_id,
            mime_type: first_of([&mime, body.content_type.as_deref().unwrap_or_default()]),
            size_bytes: size,
            sha256: first_of([&metadata.sha256, &known.sha256]),
            filename: known.filename,
            kind: kind_to_pb(kind).into(),
        };
        Ok(Located { info, kind, body })
    }
}

/// The caller's stream: the metadata, then the bytes in chunks of at most
/// [`CHUNK`], ended by an error when the file passes its limit or breaks off.
fn stream(located: Located) -> DownloadStream {
    let (sender, receiver) = mpsc::channel(QUEUED);
    let Located { info, kind, body } = located;
    tokio::spawn(async move {
        let first = pb::DownloadMediaResponse {
            part: Some(pb::download_media_response::Part::Metadata(info)),
        };
        if sender.send(Ok(first)).await.is_err() {
            return;
        }
        let mut budget = Budget::new(kind);
        let mut chunks = body.chunks;
        while let Some(chunk) = chunks.next().await {
            let failure = match chunk {
                Err(reason) => Some(MediaError::Unavailable(format!(
                    "the download from Kapso broke off after {} bytes ({reason})",
                    budget.seen()
                ))),
                Ok(chunk) => match budget.take(chunk.len()) {
                    Err(over) => Some(over.into()),
                    Ok(()) => {
                        if !forward(&sender, chunk).await {
                            // The caller went away: stop reading from Kapso.
                            return;
                        }
                        None
                    }
                },
            };
            if let Some(error) = failure {
                tracing::warn!(%error, kind = kind.as_str(), "media download stopped");
                let _ = sender.send(Err(error.into())).await;
                return;
            }
        }
        tracing::info!(
            kind = kind.as_str(),
            bytes = budget.seen(),
            "media downloaded"
        );
    });
    ReceiverStream::new(receiver)
}

/// Sends `chunk` in pieces of at most [`CHUNK`]; `false` once the caller is gone.
async fn forward(
    sender: &mpsc::Sender<Result<pb::DownloadMediaResponse, Status>>,
    mut chunk: Bytes,
) -> bool {
    while !chunk.is_empty() {
        let piece = chunk.split_to(chunk.len().min(CHUNK));
        let message = pb::DownloadMediaResponse {
            part: Some(pb::download_media_response::Part::Chunk(piece.to_vec())),
        };
        if sender.send(Ok(message)).await.is_err() {
            return false;
        }
    }
    true
}

/// A media id as it goes into Kapso's URL path: letters, digits, `_` and `-`.
fn media_id(raw: &str) -> Result<String, MediaError> {
    let id = raw.trim();
    let plain = (1..=MAX_MEDIA_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        Ok(id.to_owned())
    } else {
        Err(MediaError::invalid(
            "media_id",
            "must be a media id (letters, digits, _ or -)",
        ))
    }
}

/// The first non-empty value, or empty.
fn first_of<const N: usize>(values: [&str; N]) -> String {
    values
        .into_iter()
        .find(|v| !v.is_empty())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids_cannot_escape_the_path() {
        assert_eq!(media_id(" 1037543291543636 ").unwrap(), "1037543291543636");
        for bad in [
            "",
            "..",
            "../1",
            "1/2",
            "1?x=2",
            "1 2",
            &"9".repeat(MAX_MEDIA_ID + 1),
        ] {
            assert!(media_id(bad).is_err(), "{bad:?}");
        }
    }
}
