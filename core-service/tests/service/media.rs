//! `UploadMedia` and `DownloadMedia` through a whole core serving gRPC,
//! against the fake Kapso: the multipart form and the bytes Kapso receives,
//! streaming both ways, each kind's limit whatever the sizes declared, and
//! what an unknown id, a refusal and the API key come to.

mod download;
mod secrets;

use kapso_gateway_proto::v1 as pb;
use pb::upload_media_request::Part;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};

use crate::fake_kapso::{FakeKapso, PROXY, Reply};
use crate::outbound::{GrpcCore, KEY, NUMBER, spawn_core};

const KIB: usize = 1024;

/// `len` bytes that are not all alike, so a lost or repeated chunk shows.
pub(crate) fn file_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn metadata(mime_type: &str, filename: &str, size: usize) -> pb::UploadMediaRequest {
    pb::UploadMediaRequest {
        part: Some(Part::Metadata(pb::MediaUpload {
            mime_type: mime_type.into(),
            filename: filename.into(),
            size_bytes: size as i64,
            ..Default::default()
        })),
    }
}

fn chunk(bytes: &[u8]) -> pb::UploadMediaRequest {
    pb::UploadMediaRequest {
        part: Some(Part::Chunk(bytes.to_vec())),
    }
}

/// An upload whose parts the test feeds as it goes.
struct Uploading {
    parts: mpsc::Sender<pb::UploadMediaRequest>,
    answer: tokio::task::JoinHandle<Result<pb::UploadMediaResponse, Status>>,
}

impl Uploading {
    async fn start(core: &GrpcCore) -> Uploading {
        let mut client = core.messaging().await;
        let (parts, receiver) = mpsc::channel(16);
        let answer = tokio::spawn(async move {
            client
                .upload_media(ReceiverStream::new(receiver))
                .await
                .map(tonic::Response::into_inner)
        });
        Uploading { parts, answer }
    }

    async fn send(&self, part: pb::UploadMediaRequest) {
        // The core may have answered (and stopped reading) already: that answer tells.
        let _ = self.parts.send(part).await;
    }

    async fn finish(self) -> Result<pb::UploadMediaResponse, Status> {
        drop(self.parts);
        tokio::time::timeout(std::time::Duration::from_secs(30), self.answer)
            .await
            .expect("the upload is answered")
            .unwrap()
    }
}

/// Uploads `parts` whole and returns the answer.
async fn upload(
    core: &GrpcCore,
    parts: Vec<pb::UploadMediaRequest>,
) -> Result<pb::UploadMediaResponse, Status> {
    let uploading = Uploading::start(core).await;
    for part in parts {
        uploading.send(part).await;
    }
    uploading.finish().await
}

fn chunks_of(file: &[u8], size: usize) -> Vec<pb::UploadMediaRequest> {
    file.chunks(size).map(chunk).collect()
}

#[tokio::test]
async fn an_upload_streams_the_file_as_metas_multipart_form_and_answers_its_id() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let file = file_of(200 * KIB);

    let uploading = Uploading::start(&core).await;
    uploading
        .send(metadata("image/jpeg", "la \"boleta\".jpg", file.len()))
        .await;
    uploading.send(chunk(&file[..64 * KIB])).await;
    // Kapso has the first chunk while the rest is still with the caller: the
    // core passes bytes on as they come instead of gathering the file first.
    kapso.wait_for_upload_bytes(64 * KIB).await;
    for part in chunks_of(&file[64 * KIB..], 64 * KIB) {
        uploading.send(part).await;
    }
    let answer = uploading.finish().await.unwrap();

    assert_eq!(answer.id, "fake-media-1");
    assert_eq!(answer.size_bytes, file.len() as i64);
    assert_eq!(answer.kind(), pb::MediaKind::Image);
    let uploads = kapso.uploads();
    assert_eq!(uploads.len(), 1);
    let sent = &uploads[0];
    assert_eq!(sent.path, format!("{PROXY}/{NUMBER}/media"));
    assert_eq!(sent.headers["x-api-key"], KEY);
    let length: usize = sent.headers["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        length > file.len(),
        "the declared size gives the request its length"
    );
    assert_eq!(sent.field("messaging_product").bytes, b"whatsapp");
    assert_eq!(sent.field("type").bytes, b"image/jpeg");
    let part = sent.field("file");
    assert_eq!(part.filename.as_deref(), Some("la %22boleta%22.jpg"));
    assert_eq!(part.content_type.as_deref(), Some("image/jpeg"));
    assert!(
        part.bytes == file,
        "Kapso received other bytes than the file"
    );
}

#[tokio::test]
async fn an_upload_of_unknown_length_goes_chunked_and_downloads_back_the_same() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let file = file_of(300 * KIB + 17);
    let mut parts = vec![metadata("application/pdf", "", 0)];
    parts.extend(chunks_of(&file, 40 * KIB));
    let answer = upload(&core, parts).await.unwrap();
    assert_eq!(answer.kind(), pb::MediaKind::Document);

    let sent = &kapso.uploads()[0];
    assert!(sent.headers.get("content-length").is_none());
    assert_eq!(sent.field("file").filename.as_deref(), Some("file"));
    let (info, bytes) = download::media(&core, download::by_media_id(&answer.id))
        .await
        .unwrap();
    assert_eq!(info.mime_type, "application/pdf");
    assert!(
        bytes == file,
        "the bytes downloaded differ from those uploaded"
    );
}

#[tokio::test]
async fn a_file_declared_over_its_limit_is_refused_before_kapso_is_called() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let status = upload(
        &core,
        vec![
            metadata("image/png", "big.png", 6 * 1024 * KIB),
            chunk(b"x"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("5 MiB"), "{}", status.message());
    assert!(kapso.uploads().is_empty());
}

#[tokio::test]
async fn a_stream_that_passes_its_limit_is_cut_off_and_kapso_keeps_nothing() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    // A sticker (image/webp) of unknown length: refused at its 500 KiB.
    let mut parts = vec![metadata("image/webp", "big.webp", 0)];
    parts.extend(chunks_of(&file_of(640 * KIB), 64 * KIB));
    let status = upload(&core, parts).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("500 KiB"), "{}", status.message());

    // A stream longer than its declared size is cut off at its first extra byte.
    let mut parts = vec![metadata("image/jpeg", "a.jpg", 100 * KIB)];
    parts.extend(chunks_of(&file_of(200 * KIB), 64 * KIB));
    let status = upload(&core, parts).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("size_bytes"),
        "{}",
        status.message()
    );

    // And one shorter than declared never completes either.
    let status = upload(
        &core,
        vec![
            metadata("image/jpeg", "a.jpg", 100 * KIB),
            chunk(&file_of(KIB)),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    assert!(
        kapso.uploads().iter().all(|u| u.fields.is_none()),
        "Kapso received a complete form for a refused file"
    );
}

#[tokio::test]
async fn an_upload_needs_its_metadata_first_and_a_mime_type() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let cases = [
        (vec![chunk(b"abc")], "metadata"),
        (vec![metadata("", "a.bin", 3), chunk(b"abc")], "mime_type"),
        (
            vec![
                metadata("image/jpeg\r\nX-Evil: 1", "a.jpg", 3),
                chunk(b"abc"),
            ],
            "mime_type",
        ),
        (
            vec![metadata("image/jpeg", "a\nb.jpg", 3), chunk(b"abc")],
            "filename",
        ),
        (vec![metadata("image/jpeg", "a.jpg", 0)], "empty"),
        (
            vec![
                metadata("image/jpeg", "a.jpg", 0),
                chunk(b"abc"),
                metadata("image/jpeg", "b.jpg", 0),
            ],
            "metadata",
        ),
    ];
    for (parts, named) in cases {
        let status = upload(&core, parts).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{named}: {status:?}");
        assert!(
            status.message().contains(named),
            "{named}: {}",
            status.message()
        );
    }
    assert!(kapso.uploads().iter().all(|u| u.fields.is_none()));
}

#[tokio::test]
async fn kapso_refusing_an_upload_is_classed_as_a_send_refusal_with_metas_code() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let parts = || vec![metadata("image/jpeg", "a.jpg", 3), chunk(b"abc")];

    kapso.script([Reply::meta_error(400, 131053, "Media upload error")]);
    let status = upload(&core, parts()).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.metadata().get("x-meta-error-code").unwrap(),
        "131053"
    );

    kapso.script([Reply::Text(401, "unauthorized")]);
    let status = upload(&core, parts()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    kapso.script([Reply::Text(502, "bad gateway")]);
    let status = upload(&core, parts()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        kapso.uploads().len(),
        3,
        "an upload is never repeated by the core"
    );
}
