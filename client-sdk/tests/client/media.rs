//! `Client::upload_media` / `download_media` and `kapso media`, against the
//! fake core: metadata first, bytes in chunks, a failing source cancelling
//! the upload, and a downloaded file that appears only once complete.

use std::io::Cursor;
use std::pin::Pin;
use std::task::{Context, Poll};

use kapso_client::{Code, MediaKind, MediaSource, Upload, proto as pb};
use tokio::io::{AsyncRead, AsyncReadExt as _, ReadBuf};

use super::fake_core::{media_file, spawn_core};
use super::{TOKEN, client_with_token, kapso};

fn file_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 241) as u8).collect()
}

#[tokio::test]
async fn an_upload_streams_the_reader_in_chunks_behind_its_metadata() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;
    let file = file_of(200_000);
    let upload = Upload::new("image/png")
        .filename("plano.png")
        .kind(MediaKind::Image)
        .phone_number_id("1234567890");
    let uploaded = client
        .upload_media(upload, Cursor::new(file.clone()))
        .await
        .unwrap();
    assert_eq!(uploaded.id, "media-200000");

    let calls = calls.lock().unwrap();
    let received = &calls.uploads[0];
    assert_eq!(received.metadata.mime_type, "image/png");
    assert_eq!(received.metadata.filename, "plano.png");
    assert_eq!(received.metadata.phone_number_id, "1234567890");
    assert_eq!(received.metadata.kind(), pb::MediaKind::Image);
    assert_eq!(
        received.metadata.size_bytes, 0,
        "a reader's size is unknown"
    );
    assert!(received.bytes == file);
    assert_eq!(received.chunks, 4, "64 KiB at a time");
    assert_eq!(calls.authorization, [Some(format!("Bearer {TOKEN}"))]);
}

/// Reads `ok` bytes, then fails.
struct Failing {
    ok: Cursor<Vec<u8>>,
}

impl AsyncRead for Failing {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.ok).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                Poll::Ready(Err(std::io::Error::other("disk gone")))
            }
            other => other,
        }
    }
}

#[tokio::test]
async fn a_source_that_fails_cancels_the_upload_instead_of_ending_it() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;
    let reader = Failing {
        ok: Cursor::new(file_of(100_000)),
    };
    let error = client
        .upload_media(Upload::new("application/pdf"), reader)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unknown);
    assert!(error.to_string().contains("disk gone"), "{error}");
    assert!(
        calls.lock().unwrap().uploads.is_empty(),
        "the core took a truncated file as complete"
    );
}

#[tokio::test]
async fn a_file_upload_declares_its_size_name_and_type() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boleta-1042.pdf");
    std::fs::write(&path, file_of(70_000)).unwrap();
    let uploaded = client.upload_media_file(&path, None).await.unwrap();
    assert_eq!(uploaded.id, "media-70000");
    let metadata = calls.lock().unwrap().uploads[0].metadata.clone();
    assert_eq!(metadata.mime_type, "application/pdf");
    assert_eq!(metadata.filename, "boleta-1042.pdf");
    assert_eq!(metadata.size_bytes, 70_000);

    let unknown = dir.path().join("notes.xyz");
    std::fs::write(&unknown, b"x").unwrap();
    let error = client.upload_media_file(&unknown, None).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_download_writes_the_bytes_and_returns_the_metadata() {
    let (url, calls) = spawn_core().await;
    let client = client_with_token(&url).await;
    let mut written = Vec::new();
    let info = client
        .download_media(MediaSource::Message("wamid.img".into()), &mut written)
        .await
        .unwrap();
    assert_eq!(info.mime_type, "image/jpeg");
    assert_eq!(info.size_bytes, media_file().len() as i64);
    assert!(written == media_file());
    assert_eq!(
        calls.lock().unwrap().downloads[0].source,
        Some(pb::download_media_request::Source::MessageId(
            "wamid.img".into()
        ))
    );

    let missing = client
        .download_media(MediaSource::MediaId("999".into()), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn cli_media_upload_prints_the_id() {
    let (url, calls) = spawn_core().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foto.jpg");
    std::fs::write(&path, file_of(1_000)).unwrap();
    let output = kapso(
        &[
            "media",
            "upload",
            path.to_str().unwrap(),
            "--phone-number-id",
            "555",
        ],
        &[("KAPSO_CORE_URL", &url)],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "media-1000\n");
    let metadata = calls.lock().unwrap().uploads[0].metadata.clone();
    assert_eq!(metadata.mime_type, "image/jpeg");
    assert_eq!(metadata.phone_number_id, "555");

    let unknown = dir.path().join("notes.xyz");
    std::fs::write(&unknown, b"x").unwrap();
    let output = kapso(
        &["media", "upload", unknown.to_str().unwrap()],
        &[("KAPSO_CORE_URL", &url)],
    )
    .await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--mime-type"));
}

#[tokio::test]
async fn cli_media_download_writes_stdout_or_a_file_that_appears_only_complete() {
    let (url, _calls) = spawn_core().await;
    let env = [("KAPSO_CORE_URL", url.as_str())];
    let output = kapso(&["media", "download", "wamid.img"], &env).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout == media_file(), "stdout holds other bytes");

    // Not a message: then a media id.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("saved.jpg");
    let output = kapso(
        &["media", "download", "1234", "-o", saved.to_str().unwrap()],
        &env,
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut bytes = Vec::new();
    tokio::fs::File::open(&saved)
        .await
        .unwrap()
        .read_to_end(&mut bytes)
        .await
        .unwrap();
    assert!(bytes == media_file());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["media_id"], "1234");
    assert_eq!(printed["kind"], "MEDIA_KIND_IMAGE");

    let broken = dir.path().join("broken.jpg");
    let output = kapso(
        &[
            "media",
            "download",
            "wamid.broken",
            "-o",
            broken.to_str().unwrap(),
        ],
        &env,
    )
    .await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("UNAVAILABLE"));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["saved.jpg"], "a broken download left a file");
}
