//! What a message holds comes back typed from GetMessage, ListMessages and
//! SendMessage: a send's from its request, a received message's from the
//! payload ingest stored.

use kapso_gateway_proto::v1 as pb;
use kapso_gateway_proto::v1::ingest_client::IngestClient;
use pb::content::Kind;
use pb::send_message_request::Content as C;

use super::fake_kapso::FakeKapso;
use super::{CONTACT, NUMBER, spawn_core};

#[tokio::test]
async fn sent_and_received_messages_come_back_with_their_typed_content() {
    let kapso = FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let mut client = core.messaging().await;

    let image = pb::MediaContent {
        kind: pb::MediaKind::Image.into(),
        id: "1037543291543636".into(),
        caption: "la boleta".into(),
        ..Default::default()
    };
    let sent = client
        .send_message(pb::SendMessageRequest {
            to: CONTACT.into(),
            idempotency_key: "k-image".into(),
            content: Some(C::Media(image.clone())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    let typed = Some(Kind::Media(image));
    assert_eq!(sent.content.and_then(|c| c.kind), typed);
    for lookup in [sent.id.as_str(), sent.gateway_id.as_str(), "k-image"] {
        let got = client
            .get_message(pb::GetMessageRequest {
                message_id: lookup.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.content.and_then(|c| c.kind), typed, "{lookup}");
    }

    let text = client
        .send_text(pb::SendTextRequest {
            to: CONTACT.into(),
            text: "¿Llegó?".into(),
            preview_url: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    let got = client
        .get_message(pb::GetMessageRequest {
            message_id: text.id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.content.and_then(|c| c.kind),
        Some(Kind::Text(pb::TextContent {
            body: "¿Llegó?".into(),
            preview_url: true,
        }))
    );

    let payload = serde_json::json!({
        "message": {"id": "wamid.LOC", "type": "location", "timestamp": "1700000000",
                    "location": {"latitude": -33.45, "longitude": -70.66, "name": "Oficina"}},
        "conversation": {"id": "conv-loc"},
        "phone_number_id": NUMBER,
    });
    IngestClient::connect(core.url.clone())
        .await
        .unwrap()
        .ingest_events(pb::IngestEventsRequest {
            events: vec![pb::InboundEvent {
                event_type: "whatsapp.message.received".into(),
                message_id: "wamid.LOC".into(),
                conversation_id: "conv-loc".into(),
                phone_number_id: NUMBER.into(),
                contact_phone: CONTACT.into(),
                direction: pb::Direction::Inbound.into(),
                message_type: "location".into(),
                timestamp: 1_700_000_000,
                payload_json: payload.to_string(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let listed = client
        .list_messages(pb::ListMessagesRequest {
            conversation_id: "conv-loc".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert_eq!(listed.len(), 1);
    let Some(Kind::Location(location)) = listed[0].content.clone().and_then(|c| c.kind) else {
        panic!(
            "a received location lists with its content: {:?}",
            listed[0].content
        );
    };
    assert_eq!(
        (
            location.latitude,
            location.longitude,
            location.name.as_str()
        ),
        (-33.45, -70.66, "Oficina")
    );
}
