//! `DownloadMedia`: by a stored message or a media id, streamed, bounded by
//! the kind's limit whatever Kapso declares, the key kept to Kapso's hosts.

use std::time::Duration;

use futures::StreamExt as _;
use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::ingest_client::IngestClient;
use pb::download_media_request::Source;
use pb::download_media_response::Part;
use tonic::{Code, Status, Streaming};

use super::{KIB, file_of};
use crate::fake_kapso::{FakeKapso, PROXY, Served};
use crate::outbound::{GrpcCore, KEY, NUMBER, spawn_core};

pub(crate) fn by_media_id(id: &str) -> pb::DownloadMediaRequest {
    pb::DownloadMediaRequest {
        source: Some(Source::MediaId(id.into())),
        phone_number_id: String::new(),
    }
}

fn by_message(id: &str) -> pb::DownloadMediaRequest {
    pb::DownloadMediaRequest {
        source: Some(Source::MessageId(id.into())),
        phone_number_id: String::new(),
    }
}

async fn open(
    core: &GrpcCore,
    request: pb::DownloadMediaRequest,
) -> Result<Streaming<pb::DownloadMediaResponse>, Status> {
    let mut client = core.messaging().await;
    client
        .download_media(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The metadata, then every byte; the stream's error if it ends in one.
pub(crate) async fn media(
    core: &GrpcCore,
    request: pb::DownloadMediaRequest,
) -> Result<(pb::MediaInfo, Vec<u8>), Status> {
    let mut stream = open(core, request).await?;
    let info = first(&mut stream).await?;
    let mut bytes = Vec::new();
    read_to_end(&mut stream, &mut bytes).await?;
    Ok((info, bytes))
}

async fn first(stream: &mut Streaming<pb::DownloadMediaResponse>) -> Result<pb::MediaInfo, Status> {
    match next(stream).await? {
        Some(Part::Metadata(info)) => Ok(info),
        other => panic!("the first message must be the metadata, got {other:?}"),
    }
}

async fn next(stream: &mut Streaming<pb::DownloadMediaResponse>) -> Result<Option<Part>, Status> {
    let item = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the download moves on");
    match item {
        None => Ok(None),
        Some(Err(status)) => Err(status),
        Some(Ok(message)) => Ok(message.part),
    }
}

/// Appends chunks to `bytes` until the stream ends (`Ok`) or fails.
async fn read_to_end(
    stream: &mut Streaming<pb::DownloadMediaResponse>,
    bytes: &mut Vec<u8>,
) -> Result<(), Status> {
    loop {
        match next(stream).await? {
            None => return Ok(()),
            Some(Part::Chunk(chunk)) => {
                assert!(chunk.len() <= 64 * KIB, "a chunk of {} bytes", chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            Some(Part::Metadata(_)) => panic!("metadata after the first message"),
        }
    }
}

/// Stores an inbound image (or any `kind` with `object`) from the contact, as the adapter hands it over.
async fn received(core: &GrpcCore, wamid: &str, kind: &str, object: serde_json::Value) {
    let payload = serde_json::json!({
        "message": {"id": wamid, "type": kind, kind: object, "timestamp": "1700000000",
                    "kapso": {"direction": "inbound"}},
        "conversation": {"id": "conv-media"},
        "phone_number_id": NUMBER,
    });
    let event = pb::InboundEvent {
        event_type: "whatsapp.message.received".into(),
        message_id: wamid.into(),
        conversation_id: "conv-media".into(),
        phone_number_id: NUMBER.into(),
        contact_phone: "15551234567".into(),
        direction: pb::Direction::Inbound.into(),
        message_type: kind.into(),
        timestamp: 1_700_000_000,
        payload_json: payload.to_string(),
        ..Default::default()
    };
    let mut ingest = IngestClient::connect(core.url.clone()).await.unwrap();
    ingest
        .ingest_events(pb::IngestEventsRequest {
            events: vec![event],
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_received_document_downloads_by_wamid_streamed_behind_its_metadata() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let file = file_of(300 * KIB);
    kapso.serve_media(
        "1037543291543636",
        Served {
            hold_after: Some(64 * KIB),
            ..Served::new(file.clone(), "application/pdf")
        },
    );
    let document = serde_json::json!({"id": "1037543291543636", "filename": "boleta-1042.pdf",
                                      "mime_type": "application/pdf"});
    received(&core, "wamid.DOC", "document", document).await;

    let mut stream = open(&core, by_message("wamid.DOC")).await.unwrap();
    let info = first(&mut stream).await.unwrap();
    assert_eq!(info.media_id, "1037543291543636");
    assert_eq!(info.mime_type, "application/pdf");
    assert_eq!(info.size_bytes, file.len() as i64);
    assert_eq!(info.filename, "boleta-1042.pdf");
    assert_eq!(info.kind(), pb::MediaKind::Document);
    assert_eq!(info.sha256.len(), 64);

    // The first bytes arrive while Kapso still holds the rest back: the core
    // passes them on as they come instead of gathering the file first.
    let mut bytes = Vec::new();
    while bytes.len() < 64 * KIB {
        match next(&mut stream).await.unwrap() {
            Some(Part::Chunk(chunk)) => bytes.extend_from_slice(&chunk),
            other => panic!("expected bytes, got {other:?}"),
        }
    }
    kapso.release_download();
    read_to_end(&mut stream, &mut bytes).await.unwrap();
    assert!(bytes == file, "the bytes downloaded differ from Kapso's");

    let lookup = &kapso.requests()[0];
    assert_eq!(
        lookup.path,
        format!("{PROXY}/1037543291543636?phone_number_id={NUMBER}")
    );
    assert_eq!(lookup.headers["x-api-key"], KEY);
    let fetched = &kapso.downloads()[0];
    assert!(
        fetched
            .path
            .starts_with("/meta/whatsapp/media_download?token="),
        "Kapso's download_url comes first: {}",
        fetched.path
    );
}

#[tokio::test]
async fn the_key_goes_only_to_kapso_never_to_a_download_url_elsewhere() {
    let kapso = FakeKapso::start().await;
    let elsewhere = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let file = file_of(10 * KIB);
    let served = Served {
        download_url: false,
        bytes_at: Some(elsewhere.host_url()),
        ..Served::new(file.clone(), "image/jpeg")
    };
    kapso.serve_media("55", served.clone());
    elsewhere.serve_media("55", served);

    let (info, bytes) = media(&core, by_media_id("55")).await.unwrap();
    assert_eq!(info.kind(), pb::MediaKind::Image);
    assert!(bytes == file);
    assert_eq!(kapso.requests()[0].headers["x-api-key"], KEY);
    let fetched = &elsewhere.downloads()[0];
    assert!(
        fetched.path.starts_with("/lookaside/55"),
        "{}",
        fetched.path
    );
    assert!(
        fetched.headers.get("x-api-key").is_none(),
        "the API key went to a host that is not Kapso's"
    );
}

#[tokio::test]
async fn a_file_declared_over_its_limit_is_not_fetched() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    kapso.serve_media(
        "66",
        Served {
            file_size: Some(6 * 1024 * KIB as u64),
            ..Served::new(file_of(KIB), "image/jpeg")
        },
    );
    let status = media(&core, by_media_id("66")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("5 MiB"), "{}", status.message());
    assert!(kapso.downloads().is_empty(), "bytes were fetched");
}

#[tokio::test]
async fn a_download_over_its_limit_stops_at_the_limit_whatever_kapso_declared() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let sticker = file_of(640 * KIB);
    // No size anywhere, then a size that lies: the bytes are counted either way.
    for (id, file_size) in [("77", None), ("78", Some(1_000))] {
        kapso.serve_media(
            id,
            Served {
                file_size,
                content_length: false,
                ..Served::new(sticker.clone(), "image/webp")
            },
        );
        let mut stream = open(&core, by_media_id(id)).await.unwrap();
        let info = first(&mut stream).await.unwrap();
        assert_eq!(info.kind(), pb::MediaKind::Sticker);
        let mut bytes = Vec::new();
        let status = read_to_end(&mut stream, &mut bytes).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{id}");
        assert!(status.message().contains("500 KiB"), "{}", status.message());
        assert!(
            bytes.len() <= 500 * KIB,
            "{} bytes passed the limit",
            bytes.len()
        );
        assert!(bytes[..] == sticker[..bytes.len()]);
    }
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_media_less_messages_invalid() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let status = media(&core, by_media_id("404404")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("404404"), "{}", status.message());

    let status = media(&core, by_message("wamid.NOPE")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    received(
        &core,
        "wamid.TXT",
        "text",
        serde_json::json!({"body": "hola"}),
    )
    .await;
    let status = media(&core, by_message("wamid.TXT")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("no media"),
        "{}",
        status.message()
    );

    for bad in [
        by_media_id("../../admin"),
        pb::DownloadMediaRequest::default(),
    ] {
        let status = media(&core, bad).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    assert_eq!(kapso.downloads().len(), 0);
}
