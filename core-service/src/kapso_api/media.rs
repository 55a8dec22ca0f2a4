//! Media through Kapso's proxy (docs/kapso-contract.md, 4): what an upload
//! sends, what `GET /{media_id}` answers, and the bytes of a download, as
//! streams that never hold a whole file.
//!
//! - the multipart framing of an upload, around a stream of file chunks
//! - the media endpoint's JSON answer

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::BoxStream;
use serde::Deserialize;
use tokio::sync::mpsc;

/// A file to upload: where it goes and how it is labelled. Its bytes come
/// separately, as a [`FileChunks`] stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaUpload {
    pub phone_number_id: String,
    /// Checked to fit a header (`media::limits::MimeType`).
    pub mime_type: String,
    /// Checked and quoted for `filename="..."` (`media::limits::Filename`).
    pub filename_quoted: String,
    /// The file's length when the caller declared it: sent as the request's
    /// `Content-Length` (with the framing), otherwise the body is chunked.
    pub file_len: Option<u64>,
}

/// Why the gateway stopped an upload's body before its end (too large, the
/// caller went away): the request is aborted, so Kapso stores nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upload stopped by the gateway: {0}")]
pub struct UploadStopped(pub String);

/// The file's bytes in order, as they arrive from the caller.
pub type FileChunks = mpsc::Receiver<Result<Bytes, UploadStopped>>;

/// A media id and the business number that owns it (Kapso needs both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    pub media_id: String,
    pub phone_number_id: String,
}

/// What `GET /{media_id}` says of a file. Its URLs are short-lived and, for
/// `download_url`, carry a token: they never leave the core.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct MediaMetadata {
    /// Kapso's tokenised download URL (no key needed), when it sent one.
    pub download_url: Option<String>,
    /// Meta's URL, valid for 5 minutes.
    pub url: Option<String>,
    pub mime_type: String,
    pub sha256: String,
    /// `file_size`, which Kapso sends as a string of digits.
    pub file_size: Option<u64>,
}

impl fmt::Debug for MediaMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaMetadata")
            .field(
                "download_url",
                &self.download_url.as_ref().map(|_| "[redacted]"),
            )
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("mime_type", &self.mime_type)
            .field("file_size", &self.file_size)
            .finish_non_exhaustive()
    }
}

impl MediaMetadata {
    /// Where the bytes are: Kapso's own URL first (its token is embedded),
    /// then Meta's.
    pub fn byte_url(&self) -> Option<&str> {
        self.download_url
            .as_deref()
            .or(self.url.as_deref())
            .filter(|u| !u.is_empty())
    }
}

/// Reads the media endpoint's answer; `None` when it names no URL to fetch.
pub(super) fn metadata(body: &[u8]) -> Option<MediaMetadata> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        url: Option<String>,
        #[serde(default)]
        download_url: Option<String>,
        #[serde(default)]
        mime_type: Option<String>,
        #[serde(default)]
        sha256: Option<String>,
        #[serde(default)]
        file_size: Option<serde_json::Value>,
    }
    let answer: Answer = serde_json::from_slice(body).ok()?;
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let metadata = MediaMetadata {
        download_url: non_empty(answer.download_url),
        url: non_empty(answer.url),
        mime_type: answer.mime_type.unwrap_or_default(),
        sha256: answer.sha256.unwrap_or_default(),
        file_size: match answer.file_size {
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            _ => None,
        },
    };
    metadata.byte_url().is_some().then_some(metadata)
}

/// The id of a successful upload (`{"id": "..."}`).
pub(super) fn uploaded_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Uploaded {
        #[serde(default)]
        id: serde_json::Value,
    }
    let uploaded: Uploaded = serde_json::from_slice(body).ok()?;
    let id = match uploaded.id {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!id.is_empty()).then_some(id)
}

/// A download's bytes as they come, with what the response said of them.
pub struct MediaBody {
    /// The response's `Content-Type`.
    pub content_type: Option<String>,
    /// The response's `Content-Length`; nothing guarantees it is true.
    pub content_length: Option<u64>,
    pub chunks: BoxStream<'static, Result<Bytes, String>>,
}

impl fmt::Debug for MediaBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaBody")
            .field("content_type", &self.content_type)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// The `multipart/form-data` body of an upload (RFC 7578): the fields Meta
/// requires, then the file part whose content is the caller's chunks as they
/// arrive, then the closing boundary.
pub(super) struct UploadBody {
    head: Option<Bytes>,
    chunks: FileChunks,
    tail: Option<Bytes>,
}

impl UploadBody {
    /// The body and its `Content-Type`; `boundary` must not occur in the file
    /// (a random one of 128 bits does not, in practice).
    pub(super) fn new(
        upload: &MediaUpload,
        chunks: FileChunks,
        boundary: &str,
    ) -> (UploadBody, String) {
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n{mime}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: {mime}\r\n\r\n",
            mime = upload.mime_type,
            name = upload.filename_quoted,
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let body = UploadBody {
            head: Some(Bytes::from(head)),
            chunks,
            tail: Some(Bytes::from(tail)),
        };
        (body, format!("multipart/form-data; boundary={boundary}"))
    }

    /// The whole body's length for a file of `file_len` bytes.
    pub(super) fn len_with(&self, file_len: u64) -> u64 {
        let framing =
            self.head.as_ref().map_or(0, Bytes::len) + self.tail.as_ref().map_or(0, Bytes::len);
        framing as u64 + file_len
    }
}

impl http_body::Body for UploadBody {
    type Data = Bytes;
    type Error = UploadStopped;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, UploadStopped>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(head))));
        }
        match self.chunks.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(http_body::Frame::data(chunk)))),
            Poll::Ready(Some(Err(stopped))) => Poll::Ready(Some(Err(stopped))),
            Poll::Ready(None) => {
                Poll::Ready(self.tail.take().map(|t| Ok(http_body::Frame::data(t))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[tokio::test]
    async fn the_multipart_body_frames_the_file_between_the_fields() {
        let (tx, rx) = mpsc::channel(4);
        let upload = MediaUpload {
            phone_number_id: "123".into(),
            mime_type: "image/jpeg".into(),
            filename_quoted: "foto.jpg".into(),
            file_len: Some(6),
        };
        let (body, content_type) = UploadBody::new(&upload, rx, "XyZ");
        assert_eq!(content_type, "multipart/form-data; boundary=XyZ");
        let expected_len = body.len_with(6);
        tx.send(Ok(Bytes::from_static(b"abc"))).await.unwrap();
        tx.send(Ok(Bytes::from_static(b"def"))).await.unwrap();
        drop(tx);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len() as u64, expected_len);
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert_eq!(
            text,
            "--XyZ\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nimage/jpeg\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"foto.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\nabcdef\r\n--XyZ--\r\n"
        );
    }

    #[tokio::test]
    async fn a_stopped_upload_ends_the_body_with_an_error() {
        let (tx, rx) = mpsc::channel(4);
        let upload = MediaUpload {
            phone_number_id: "123".into(),
            mime_type: "image/jpeg".into(),
            filename_quoted: "file".into(),
            file_len: None,
        };
        let (body, _) = UploadBody::new(&upload, rx, "b");
        tx.send(Err(UploadStopped("too large".into())))
            .await
            .unwrap();
        assert!(body.collect().await.is_err());
    }

    #[test]
    fn the_media_answer_prefers_kapsos_url_and_reads_the_size_as_text() {
        let answer = br#"{"messaging_product":"whatsapp","url":"https://lookaside.fbsbx.com/x",
            "mime_type":"image/jpeg","sha256":"81d3","file_size":"303833","id":"1",
            "download_url":"https://api.kapso.ai/meta/whatsapp/media_download?token=t"}"#;
        let both = metadata(answer).unwrap();
        assert_eq!(both.file_size, Some(303_833));
        assert_eq!(
            both.byte_url(),
            Some("https://api.kapso.ai/meta/whatsapp/media_download?token=t")
        );
        let debug = format!("{both:?}");
        assert!(
            !debug.contains("token") && !debug.contains("lookaside"),
            "{debug}"
        );
        let meta_only = metadata_of(r#"{"url":"https://lookaside.fbsbx.com/x","file_size":12}"#);
        assert_eq!(meta_only.byte_url(), Some("https://lookaside.fbsbx.com/x"));
        assert_eq!(meta_only.file_size, Some(12));
        assert!(metadata(br#"{"id":"1"}"#).is_none());
        assert!(metadata(b"not json").is_none());
    }

    fn metadata_of(json: &str) -> MediaMetadata {
        metadata(json.as_bytes()).unwrap()
    }

    #[test]
    fn an_upload_answer_is_its_id() {
        assert_eq!(
            uploaded_id(br#"{"id":"1037543291543636"}"#).as_deref(),
            Some("1037543291543636")
        );
        assert_eq!(uploaded_id(br#"{"id":1037}"#).as_deref(), Some("1037"));
        assert_eq!(uploaded_id(br#"{"id":""}"#), None);
        assert_eq!(uploaded_id(b"{}"), None);
    }
}
