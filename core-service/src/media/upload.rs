//! The upload flow: check the metadata the first message carries, then pump
//! the caller's chunks into Kapso's request as they come, counting them
//! against the kind's limit. The caller's stream and the upstream request run
//! side by side through a channel of a few chunks, so memory holds those few
//! chunks, never the file.

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use kapso_gateway_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

use super::limits::{Budget, Filename, Kind, MimeType};
use super::{Media, MediaError, deadline_or_default};
use crate::kapso_api::{CallOutcome, MediaUpload, UploadStopped};

/// Chunks queued between the caller and Kapso: enough to keep both busy.
const QUEUED_CHUNKS: usize = 4;

/// The filename sent when the caller gives none.
const DEFAULT_FILENAME: &str = "file";

/// An upload whose metadata passed every check.
#[derive(Debug)]
struct CheckedUpload {
    upload: MediaUpload,
    kind: Kind,
    declared: Option<u64>,
}

impl Media {
    /// Uploads the file `parts` carries (metadata first, then bytes) and
    /// returns Meta's id for it.
    pub async fn upload(
        &self,
        mut parts: impl Stream<Item = Result<pb::UploadMediaRequest, Status>> + Send + Unpin,
        deadline: Option<Instant>,
    ) -> Result<pb::UploadMediaResponse, MediaError> {
        let deadline = deadline_or_default(deadline);
        let metadata = match parts.next().await {
            Some(Ok(pb::UploadMediaRequest {
                part: Some(pb::upload_media_request::Part::Metadata(metadata)),
            })) => metadata,
            Some(Ok(_)) => {
                return Err(MediaError::invalid(
                    "metadata",
                    "the first message must carry the metadata, before any chunk",
                ));
            }
            Some(Err(status)) => return Err(MediaError::CallerGone(status.message().to_owned())),
            None => {
                return Err(MediaError::invalid(
                    "metadata",
                    "the stream ended before its metadata",
                ));
            }
        };
        let checked = self.check(metadata)?;
        let (sender, chunks) = mpsc::channel(QUEUED_CHUNKS);
        let upstream = self.api.upload_media(&checked.upload, chunks, deadline);
        let pumped = pump(parts, sender, checked.kind, checked.declared);
        let (outcome, pumped) = tokio::join!(upstream, pumped);
        // The caller's side decides first: a file that broke a rule was cut
        // off on purpose, whatever Kapso made of the aborted request.
        let size = pumped?;
        match outcome {
            CallOutcome::Done(id) => {
                tracing::info!(
                    phone_number_id = %checked.upload.phone_number_id,
                    kind = checked.kind.as_str(),
                    bytes = size,
                    "media uploaded"
                );
                Ok(pb::UploadMediaResponse {
                    id,
                    size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
                    kind: kind_to_pb(checked.kind).into(),
                })
            }
            failed => Err(MediaError::from_outcome(&failed, "the upload", None)),
        }
    }

    fn check(&self, metadata: pb::MediaUpload) -> Result<CheckedUpload, MediaError> {
        let mime = MimeType::parse(&metadata.mime_type).ok_or_else(|| {
            MediaError::invalid(
                "mime_type",
                "required: the file's MIME type, such as image/jpeg or application/pdf",
            )
        })?;
        let filename = match metadata.filename.as_str() {
            "" => Filename::parse(DEFAULT_FILENAME),
            given => Filename::parse(given),
        }
        .ok_or_else(|| {
            MediaError::invalid(
                "filename",
                format!(
                    "must be 1 to {} characters without control characters",
                    super::limits::MAX_FILENAME
                ),
            )
        })?;
        let kind = match kind_from_pb(metadata.kind()) {
            Some(kind) => kind,
            None => Kind::of_mime(&mime),
        };
        let declared = match metadata.size_bytes {
            0 => None,
            n if n < 0 => {
                return Err(MediaError::invalid(
                    "size_bytes",
                    "must be the file's size, or 0 when unknown",
                ));
            }
            n => {
                let n = n as u64;
                Budget::check_declared(kind, n)?;
                Some(n)
            }
        };
        let phone_number_id = self.phone_number_id(&metadata.phone_number_id)?;
        self.require_key()?;
        Ok(CheckedUpload {
            upload: MediaUpload {
                phone_number_id,
                mime_type: mime.as_str().to_owned(),
                filename_quoted: filename.quoted(),
                file_len: declared,
            },
            kind,
            declared,
        })
    }
}

/// Moves the caller's chunks to `sender` until the stream ends, counting them
/// against `kind`'s limit and the declared size. On any broken rule the body
/// is ended with an error (Kapso's request is aborted, nothing is stored) and
/// the rule is the answer. Returns the bytes moved.
async fn pump(
    mut parts: impl Stream<Item = Result<pb::UploadMediaRequest, Status>> + Unpin,
    sender: mpsc::Sender<Result<Bytes, UploadStopped>>,
    kind: Kind,
    declared: Option<u64>,
) -> Result<u64, MediaError> {
    let mut budget = Budget::new(kind);
    while let Some(part) = parts.next().await {
        let chunk =
            match part {
                Ok(pb::UploadMediaRequest {
                    part: Some(pb::upload_media_request::Part::Chunk(chunk)),
                }) => chunk,
                Ok(_) => {
                    return stop(&sender, MediaError::invalid(
                    "chunk",
                    "only the first message carries metadata; every later one carries bytes",
                ))
                .await;
                }
                Err(status) => {
                    return stop(&sender, MediaError::CallerGone(status.message().to_owned()))
                        .await;
                }
            };
        if let Err(over) = budget.take(chunk.len()) {
            return stop(&sender, over.into()).await;
        }
        if declared.is_some_and(|size| budget.seen() > size) {
            return stop(&sender, length_mismatch(declared, budget.seen())).await;
        }
        if chunk.is_empty() {
            continue;
        }
        if sender.send(Ok(Bytes::from(chunk))).await.is_err() {
            // Kapso answered before the body ended (a refusal): its answer decides.
            return Ok(budget.seen());
        }
    }
    if budget.seen() == 0 {
        return stop(&sender, MediaError::invalid("chunk", "the file is empty")).await;
    }
    if declared.is_some_and(|size| budget.seen() != size) {
        return stop(&sender, length_mismatch(declared, budget.seen())).await;
    }
    Ok(budget.seen())
}

/// Ends the upload's body with `error`, aborting Kapso's request.
async fn stop(
    sender: &mpsc::Sender<Result<Bytes, UploadStopped>>,
    error: MediaError,
) -> Result<u64, MediaError> {
    // Kapso may have answered already (the receiver is gone): nothing to abort then.
    let _ = sender.send(Err(UploadStopped(error.to_string()))).await;
    Err(error)
}

fn length_mismatch(declared: Option<u64>, seen: u64) -> MediaError {
    MediaError::invalid(
        "size_bytes",
        format!(
            "declared {} bytes, but the stream {} {seen}",
            declared.unwrap_or(0),
            if seen > declared.unwrap_or(0) {
                "passed it at byte"
            } else {
                "ended after"
            }
        ),
    )
}

pub(super) fn kind_from_pb(kind: pb::MediaKind) -> Option<Kind> {
    Some(match kind {
        pb::MediaKind::Unspecified => return None,
        pb::MediaKind::Image => Kind::Image,
        pb::MediaKind::Video => Kind::Video,
        pb::MediaKind::Audio => Kind::Audio,
        pb::MediaKind::Document => Kind::Document,
        pb::MediaKind::Sticker => Kind::Sticker,
    })
}

pub(super) fn kind_to_pb(kind: Kind) -> pb::MediaKind {
    match kind {
        Kind::Image => pb::MediaKind::Image,
        Kind::Video => pb::MediaKind::Video,
        Kind::Audio => pb::MediaKind::Audio,
        Kind::Document => pb::MediaKind::Document,
        Kind::Sticker => pb::MediaKind::Sticker,
    }
}
