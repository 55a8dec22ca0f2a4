//! Mark-read for received messages of every kind: the receipt names the
//! message whatever it held, goes from the number it was received on, and
//! carries the typing indicator when asked.

use kapso_core::model::{ConversationId, Delivery, Direction, EventType, NewEvent, Wamid};
use kapso_core::outbound::MarkRead;
use serde_json::json;

use super::fake_kapso::PROXY;
use super::{CONTACT, spawn_app_with, unix_now};

#[tokio::test]
async fn every_received_kind_is_marked_read_from_its_own_number_with_typing() {
    // No default number: each receipt must take its message's.
    let app = spawn_app_with(|c| c.kapso_phone_number_id = None).await;
    let kinds = [
        ("image", "111"),
        ("audio", "222"),
        ("document", "333"),
        ("sticker", "444"),
        ("interactive", "555"),
        ("button", "666"),
        ("location", "777"),
        ("reaction", "888"),
        ("unsupported", "999"),
    ];
    let events = kinds
        .iter()
        .map(|(kind, number)| NewEvent {
            event_type: EventType::MessageReceived,
            message_id: Wamid::parse(&format!("wamid.{kind}")),
            conversation_id: ConversationId::parse(&format!("conv-{kind}")),
            phone_number_id: (*number).into(),
            contact_phone: CONTACT.into(),
            direction: Direction::Inbound,
            message_type: (*kind).into(),
            timestamp: unix_now(),
            payload_json: json!({"message": {"id": format!("wamid.{kind}"), "type": kind}})
                .to_string(),
            ..Default::default()
        })
        .collect();
    app.store
        .ingest(Delivery { key: None, events })
        .await
        .unwrap();

    for (kind, _) in kinds {
        let read = MarkRead {
            message_id: format!("wamid.{kind}"),
            typing_indicator: true,
            ..Default::default()
        };
        app.outbound.mark_read(read).await.unwrap();
    }
    let requests = app.kapso.requests();
    assert_eq!(requests.len(), kinds.len());
    for ((kind, number), request) in kinds.iter().zip(&requests) {
        assert_eq!(request.path, format!("{PROXY}/{number}/messages"), "{kind}");
        assert_eq!(
            request.body,
            json!({"messaging_product": "whatsapp", "status": "read",
                   "message_id": format!("wamid.{kind}"), "typing_indicator": {"type": "text"}}),
            "{kind}"
        );
    }
}
