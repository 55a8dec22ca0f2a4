//! Media files through the core: [`Upload`] describes a file for
//! [`Client::upload_media`](crate::Client::upload_media), [`MediaSource`]
//! names one for [`Client::download_media`](crate::Client::download_media).
//!
//! Both stream: an upload reads its source a chunk at a time while the core
//! passes each chunk on to Kapso, a download writes each chunk as it comes.
//! Neither holds a whole file in memory.

use std::path::Path;

use futures::StreamExt as _;
use kapso_gateway_proto::v1 as pb;
use pb::download_media_response::Part as DownloadPart;
use pb::upload_media_request::Part as UploadPart;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::oneshot;
use tonic::Status;

use crate::client::Grpc;
use crate::{Error, MediaKind};

/// Bytes per upload message: small enough to stream smoothly, far under the
/// core's 4 MiB message limit.
pub const CHUNK: usize = 64 * 1024;

/// What a file is, for [`Client::upload_media`](crate::Client::upload_media).
///
/// # Examples
///
/// ```
/// use kapso_client::{MediaKind, Upload};
///
/// let upload = Upload::new("application/pdf").filename("boleta-1042.pdf").size(48_213);
/// let sticker = Upload::new("image/webp").kind(MediaKind::Sticker);
/// # let _ = (upload, sticker);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The file's MIME type, e.g. `image/jpeg`; required.
    pub mime_type: String,
    /// The name Kapso receives; the core sends `file` when there is none.
    pub filename: Option<String>,
    /// The business number the media belongs to; default: the core's.
    pub phone_number_id: Option<String>,
    /// The kind it will be sent as (its size limit applies); default: from the MIME type.
    pub kind: Option<MediaKind>,
    /// The file's size when known: the core then refuses an oversized file
    /// before any byte moves, and a source of another length fails the upload.
    pub size: Option<u64>,
}

impl Upload {
    pub fn new(mime_type: impl Into<String>) -> Upload {
        Upload {
            mime_type: mime_type.into(),
            filename: None,
            phone_number_id: None,
            kind: None,
            size: None,
        }
    }

    pub fn filename(mut self, filename: impl Into<String>) -> Upload {
        self.filename = Some(filename.into());
        self
    }

    pub fn phone_number_id(mut self, id: impl Into<String>) -> Upload {
        self.phone_number_id = Some(id.into());
        self
    }

    pub fn kind(mut self, kind: MediaKind) -> Upload {
        self.kind = Some(kind);
        self
    }

    pub fn size(mut self, size: u64) -> Upload {
        self.size = Some(size);
        self
    }

    fn into_proto(self) -> pb::MediaUpload {
        pb::MediaUpload {
            mime_type: self.mime_type,
            filename: self.filename.unwrap_or_default(),
            phone_number_id: self.phone_number_id.unwrap_or_default(),
            kind: self.kind.unwrap_or(MediaKind::Unspecified).into(),
            size_bytes: self
                .size
                .map_or(0, |size| i64::try_from(size).unwrap_or(i64::MAX)),
        }
    }
}

/// Which file [`Client::download_media`](crate::Client::download_media) fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// The media of a stored message: its wamid, gateway id or idempotency key.
    Message(String),
    /// A media id (a received message's `media.id`, or an upload's id), owned
    /// by the core's default business number.
    MediaId(String),
}

impl MediaSource {
    fn into_proto(self) -> pb::DownloadMediaRequest {
        use pb::download_media_request::Source;
        pb::DownloadMediaRequest {
            source: Some(match self {
                MediaSource::Message(id) => Source::MessageId(id),
                MediaSource::MediaId(id) => Source::MediaId(id),
            }),
            phone_number_id: String::new(),
        }
    }
}

/// The MIME type a file's extension names, for the kinds WhatsApp takes
/// (docs/kapso-contract.md, 4.4); `None` for any other extension.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// assert_eq!(kapso_client::media::mime_type_of(Path::new("boleta.PDF")), Some("application/pdf"));
/// assert_eq!(kapso_client::media::mime_type_of(Path::new("notes")), None);
/// ```
pub fn mime_type_of(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "3gp" => "video/3gpp",
        "aac" => "audio/aac",
        "amr" => "audio/amr",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "opus" => "audio/ogg",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => return None,
    })
}

/// Streams `reader` to the core behind `upload`'s metadata. A read error
/// cancels the call, so the core aborts Kapso's request and nothing is kept.
pub(crate) async fn upload<R>(
    mut grpc: Grpc,
    upload: Upload,
    reader: R,
) -> Result<pb::UploadMediaResponse, Error>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let (failed, read_error) = oneshot::channel::<std::io::Error>();
    let first = pb::UploadMediaRequest {
        part: Some(UploadPart::Metadata(upload.into_proto())),
    };
    // State: the reader and where to report its failure; `None` once it ended.
    let chunks = futures::stream::unfold(Some((reader, failed)), |state| async move {
        let (mut reader, failed) = state?;
        let mut buffer = vec![0; CHUNK];
        match reader.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                let part = pb::UploadMediaRequest {
                    part: Some(UploadPart::Chunk(buffer)),
                };
                Some((part, Some((reader, failed))))
            }
            Err(error) => {
                let _ = failed.send(error);
                // Never ends: an end would tell the core the file is complete.
                std::future::pending().await
            }
        }
    });
    let parts = futures::stream::iter([first]).chain(chunks);
    tokio::select! {
        answer = grpc.upload_media(parts) => Ok(answer?.into_inner()),
        Ok(error) = read_error => Err(Error::Io {
            what: "reading the file to upload".into(),
            source: error,
        }),
    }
}

/// Writes the bytes of `source` to `writer` as they come; returns the
/// metadata the core sent first. On an error the writer holds the bytes
/// written so far, which are not the whole file.
pub(crate) async fn download<W>(
    mut grpc: Grpc,
    source: MediaSource,
    writer: &mut W,
) -> Result<pb::MediaInfo, Error>
where
    W: AsyncWrite + Unpin,
{
    let mut stream = grpc.download_media(source.into_proto()).await?.into_inner();
    let info = match stream.message().await? {
        Some(pb::DownloadMediaResponse {
            part: Some(DownloadPart::Metadata(info)),
        }) => info,
        _ => {
            return Err(
                Status::internal("DownloadMedia answered without its metadata first").into(),
            );
        }
    };
    while let Some(message) = stream.message().await? {
        match message.part {
            Some(DownloadPart::Chunk(chunk)) => {
                writer.write_all(&chunk).await.map_err(|source| Error::Io {
                    what: "writing the downloaded file".into(),
                    source,
                })?;
            }
            _ => return Err(Status::internal("DownloadMedia sent metadata twice").into()),
        }
    }
    writer.flush().await.map_err(|source| Error::Io {
        what: "writing the downloaded file".into(),
        source,
    })?;
    Ok(info)
}
