//! Cases for the typed content a message row keeps: from the payload of a
//! received message, from the request of a send, untouched by statuses.

use std::sync::Arc;

use kapso_core::convert::encode_content;
use kapso_core::model::{EncodedContent, SendClaim, SendResult};
use kapso_core::store::Store;
use kapso_gateway_proto::v1 as pb;

use super::fixtures::*;

/// An image as a received message carries it.
fn image_content() -> EncodedContent {
    encode_content(&pb::Content {
        kind: Some(pb::content::Kind::Media(pb::MediaContent {
            kind: pb::MediaKind::Image.into(),
            id: "1037543291543636".into(),
            caption: "la boleta".into(),
            mime_type: "image/jpeg".into(),
            ..Default::default()
        })),
    })
}

pub async fn a_received_message_keeps_its_content(store: Arc<dyn Store>) {
    let mut image = received("wamid.img", "conv-1", "la boleta", 100);
    image.message_type = "image".into();
    image.content = Some(image_content());
    let unknown = received("wamid.bare", "conv-1", "", 101);
    ingest_each(&store, [image.clone(), unknown]).await;

    let stored = store.message(&any_id("wamid.img")).await.unwrap().unwrap();
    assert_eq!(stored.content, Some(image_content()));
    let bare = store.message(&any_id("wamid.bare")).await.unwrap().unwrap();
    assert_eq!(bare.content, None, "no content is stored as none");
    let page = store
        .conversation_messages("conv-1", 10, None)
        .await
        .unwrap();
    let listed: Vec<_> = page.messages.iter().map(|m| m.content.clone()).collect();
    assert_eq!(listed, [Some(image_content()), None]);

    // A redelivery and a later read status change nothing of it.
    ingest_each(&store, [image, status("wamid.img", "read", 130)]).await;
    let again = store.message(&any_id("wamid.img")).await.unwrap().unwrap();
    assert_eq!(again.content, Some(image_content()));
}

pub async fn a_received_message_fills_the_content_of_a_row_a_status_created(store: Arc<dyn Store>) {
    ingest_each(&store, [status("wamid.early", "delivered", 120)]).await;
    assert_eq!(
        store
            .message(&any_id("wamid.early"))
            .await
            .unwrap()
            .unwrap()
            .content,
        None
    );
    let mut hola = received("wamid.early", "conv-1", "hola", 100);
    hola.content = Some(text_content("hola"));
    ingest_each(&store, [hola]).await;
    let message = store
        .message(&any_id("wamid.early"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.content, Some(text_content("hola")));
}

pub async fn a_send_keeps_the_content_it_began_with(store: Arc<dyn Store>) {
    let mut sent = intent("gw-img", "idem-img", "fp-img");
    sent.message_type = "image".into();
    sent.content = Some(image_content());
    let SendClaim::Started(started) = store.begin_send(sent.clone()).await.unwrap() else {
        panic!("a new key starts a send");
    };
    assert_eq!(started.content, Some(image_content()));
    let replay = store.begin_send(sent).await.unwrap();
    assert!(matches!(replay, SendClaim::Existing(ref m) if m.content == Some(image_content())));

    let finished = store
        .finish_send(
            &gateway("gw-img"),
            SendResult::Sent {
                wamid: "wamid.out-img".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(finished.content, Some(image_content()));
    ingest_each(&store, [status("wamid.out-img", "delivered", 150)]).await;
    for lookup in ["wamid.out-img", "gw-img", "idem-img"] {
        let message = store.message(&any_id(lookup)).await.unwrap().unwrap();
        assert_eq!(message.content, Some(image_content()), "{lookup}");
    }

    // A send whose row a status webhook created first keeps the send's content.
    let mut raced = intent("gw-raced", "idem-raced", "fp-raced");
    raced.content = Some(text_content("¿llegó?"));
    store.begin_send(raced).await.unwrap();
    ingest_each(&store, [status("wamid.raced", "sent", 160)]).await;
    let merged = store
        .finish_send(
            &gateway("gw-raced"),
            SendResult::Sent {
                wamid: "wamid.raced".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(merged.content, Some(text_content("¿llegó?")));
}

pub async fn a_status_of_a_message_never_seen_has_no_content(store: Arc<dyn Store>) {
    ingest_each(&store, [status("wamid.elsewhere", "delivered", 140)]).await;
    let message = store
        .message(&any_id("wamid.elsewhere"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.content, None);
}
