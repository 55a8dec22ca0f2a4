//! The fake's media side: uploads (multipart, read as it streams in), the
//! media endpoint `GET /{media_id}`, and the download URLs it hands out, with
//! knobs to make the sizes it declares lie or go missing and to hold a
//! download halfway until the test lets it go on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{FakeKapso, Inner, Recorded, Reply, answer};

/// A file the fake serves, and how it declares it.
#[derive(Debug, Clone)]
pub struct Served {
    pub bytes: Vec<u8>,
    pub mime_type: String,
    pub sha256: String,
    /// `file_size` in the media endpoint's answer; `None` leaves it out.
    pub file_size: Option<u64>,
    /// Whether the download answers with a `Content-Length`.
    pub content_length: bool,
    /// Whether the answer names Kapso's `download_url` (else only Meta's `url`).
    pub download_url: bool,
    /// The origin the byte URLs point at (another fake's); `None`: this one.
    pub bytes_at: Option<String>,
    /// Serve this many bytes, then wait for [`FakeKapso::release_download`].
    pub hold_after: Option<usize>,
}

impl Served {
    /// A file declared truthfully, offered through `download_url`.
    pub fn new(bytes: Vec<u8>, mime_type: &str) -> Served {
        Served {
            file_size: Some(bytes.len() as u64),
            bytes,
            mime_type: mime_type.into(),
            sha256: "81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3".into(),
            content_length: true,
            download_url: true,
            bytes_at: None,
            hold_after: None,
        }
    }
}

/// One part of an upload's multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// An upload request as the fake received it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub path: String,
    pub headers: HeaderMap,
    /// `None` when the body broke off before its end (the core aborted it).
    pub fields: Option<Vec<Field>>,
}

impl Upload {
    pub fn field(&self, name: &str) -> &Field {
        self.fields
            .as_ref()
            .expect("a complete upload")
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field {name}"))
    }
}

#[derive(Default)]
pub(super) struct MediaState {
    files: Mutex<HashMap<String, Served>>,
    uploads: Mutex<Vec<Upload>>,
    /// Upload bytes received so far, over every request.
    upload_bytes: AtomicUsize,
    /// Requests for bytes (download URLs), with their headers.
    downloads: Mutex<Vec<Recorded>>,
    released: Notify,
    ids: AtomicU64,
}

pub(super) fn routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/meta/whatsapp/v24.0/{phone_number_id}/media", post(upload))
        .route("/meta/whatsapp/v24.0/{media_id}", get(metadata))
        .route("/meta/whatsapp/media_download", get(download_url))
        .route("/lookaside/{media_id}", get(meta_url))
}

impl FakeKapso {
    /// Serves `file` under `media_id`.
    pub fn serve_media(&self, media_id: &str, file: Served) {
        self.inner
            .media
            .files
            .lock()
            .unwrap()
            .insert(media_id.into(), file);
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.inner.media.uploads.lock().unwrap().clone()
    }

    /// Requests for bytes (download URLs), oldest first.
    pub fn downloads(&self) -> Vec<Recorded> {
        self.inner.media.downloads.lock().unwrap().clone()
    }

    /// Waits (bounded) until uploads brought at least `bytes` bytes so far.
    pub async fn wait_for_upload_bytes(&self, bytes: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.inner.media.upload_bytes.load(Ordering::SeqCst) < bytes {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Kapso never saw {bytes} upload bytes before the upload ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets a held download ([`Served::hold_after`]) go on.
    pub fn release_download(&self) {
        self.inner.media.released.notify_one();
    }
}

async fn upload(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut stream = body.into_data_stream();
    let mut received = Vec::new();
    let mut complete = true;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                inner
                    .media
                    .upload_bytes
                    .fetch_add(chunk.len(), Ordering::SeqCst);
                received.extend_from_slice(&chunk);
            }
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    let fields = complete.then(|| multipart(&headers, &received)).flatten();
    inner.media.uploads.lock().unwrap().push(Upload {
        path: uri.path().to_owned(),
        headers,
        fields: fields.clone(),
    });
    let Some(fields) = fields else {
        return (StatusCode::BAD_REQUEST, "incomplete body").into_response();
    };
    match scripted(&inner) {
        Some(reply) => answer(&inner, reply, Value::Null).await,
        None => {
            let id = format!(
                "fake-media-{}",
                inner.media.ids.fetch_add(1, Ordering::SeqCst) + 1
            );
            let file = fields.iter().find(|f| f.name == "file");
            let mime = fields.iter().find(|f| f.name == "type");
            if let (Some(file), Some(mime)) = (file, mime) {
                let mime = String::from_utf8_lossy(&mime.bytes).into_owned();
                inner
                    .media
                    .files
                    .lock()
                    .unwrap()
                    .insert(id.clone(), Served::new(file.bytes.clone(), &mime));
            }
            axum::Json(json!({ "id": id })).into_response()
        }
    }
}

async fn metadata(
    State(inner): State<Arc<Inner>>,
    Path(media_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    inner.requests.lock().unwrap().push(Recorded {
        path: uri.to_string(),
        headers,
        body: Value::Null,
    });
    if let Some(reply) = scripted(&inner) {
        return answer(&inner, reply, Value::Null).await;
    }
    let file = inner.media.files.lock().unwrap().get(&media_id).cloned();
    let Some(file) = file else {
        return unknown_object(&media_id);
    };
    let origin = file
        .bytes_at
        .clone()
        .unwrap_or_else(|| format!("http://{}", inner.host.lock().unwrap()));
    let mut answer = json!({
        "messaging_product": "whatsapp",
        "id": media_id,
        "url": format!("{origin}/lookaside/{media_id}?hash=meta-signed-{media_id}"),
        "mime_type": file.mime_type,
        "sha256": file.sha256,
    });
    if let Some(size) = file.file_size {
        answer["file_size"] = json!(size.to_string());
    }
    if file.download_url {
        answer["download_url"] = json!(format!(
            "{origin}/meta/whatsapp/media_download?token=tok-{media_id}"
        ));
    }
    axum::Json(answer).into_response()
}

async fn download_url(
    State(inner): State<Arc<Inner>>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let id = query
        .get("token")
        .and_then(|t| t.strip_prefix("tok-"))
        .unwrap_or_default()
        .to_owned();
    serve_bytes(&inner, &id, uri, headers)
}

async fn meta_url(
    State(inner): State<Arc<Inner>>,
    Path(media_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    serve_bytes(&inner, &media_id, uri, headers)
}

fn serve_bytes(inner: &Arc<Inner>, media_id: &str, uri: Uri, headers: HeaderMap) -> Response {
    inner.media.downloads.lock().unwrap().push(Recorded {
        path: uri.to_string(),
        headers,
        body: Value::Null,
    });
    let file = inner.media.files.lock().unwrap().get(media_id).cloned();
    let Some(file) = file else {
        return (StatusCode::NOT_FOUND, "URL signature expired").into_response();
    };
    let (sender, receiver) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let inner = inner.clone();
    let length = file.bytes.len();
    let (content_length, mime) = (file.content_length, file_mime(&file));
    tokio::spawn(async move {
        let mut file = file;
        let hold = file.hold_after.unwrap_or(usize::MAX);
        for (at, piece) in file.bytes.chunks(16 * 1024).enumerate() {
            if at * 16 * 1024 >= hold && file.hold_after.take().is_some() {
                inner.media.released.notified().await;
            }
            if sender.send(Ok(piece.to_vec())).await.is_err() {
                return;
            }
        }
    });
    let mut response = Body::from_stream(ReceiverStream::new(receiver)).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", mime);
    if content_length {
        headers.insert("content-length", length.to_string().parse().unwrap());
    }
    response
}

fn file_mime(file: &Served) -> axum::http::HeaderValue {
    file.mime_type.parse().unwrap()
}

/// Meta's answer for an id it does not know.
fn unknown_object(media_id: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": {
            "message": format!("Unsupported get request. Object with ID '{media_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
            "type": "GraphMethodException", "code": 100, "error_subcode": 33,
            "fbtrace_id": "AbCdEf"}})),
    )
        .into_response()
}

fn scripted(inner: &Arc<Inner>) -> Option<Reply> {
    inner.script.lock().unwrap().pop_front()
}

/// A `multipart/form-data` body's parts; `None` when it is not one.
fn multipart(headers: &HeaderMap, body: &[u8]) -> Option<Vec<Field>> {
    let content_type = headers.get("content-type")?.to_str().ok()?;
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let delimiter = format!("--{boundary}").into_bytes();
    let mut fields = Vec::new();
    let mut rest = body.strip_prefix(delimiter.as_slice())?;
    loop {
        if rest.starts_with(b"--") {
            return Some(fields);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let head = String::from_utf8(rest[..header_end].to_vec()).ok()?;
        rest = &rest[header_end + 4..];
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(&delimiter);
        let content_end = find(rest, &closing)?;
        let bytes = rest[..content_end].to_vec();
        rest = &rest[content_end + closing.len()..];
        let param = |key: &str| {
            head.split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(&format!("{key}=\"")))
                .and_then(|v| v.split('"').next())
                .map(str::to_owned)
        };
        let content_type = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .map(str::to_owned);
        fields.push(Field {
            name: param("name")?,
            filename: param("filename"),
            content_type,
            bytes,
        });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
