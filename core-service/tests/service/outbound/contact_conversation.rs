//! A send addressed by phone number alone joins the contact's conversation
//! when the gateway knows exactly one, and goes from that conversation's
//! business number; with several, the number must come from somewhere else.

use std::sync::Arc;

use kapso_core::model::{ConversationId, Delivery, Direction, EventType, NewEvent, Wamid};
use kapso_core::outbound::SendText;
use kapso_core::store::Store;
use tonic::Code;

use super::fake_kapso::PROXY;
use super::{CONTACT, NUMBER, spawn_app_with, status_of, text, unix_now};

const OTHER_NUMBER: &str = "9876543210";

/// A fresh inbound text from `CONTACT` to `number` in `conversation`.
async fn contact_wrote(store: &Arc<dyn Store>, conversation: &str, number: &str) {
    let wamid = format!("wamid.IN-{conversation}");
    let event = NewEvent {
        event_type: EventType::MessageReceived,
        message_id: Wamid::parse(&wamid),
        conversation_id: ConversationId::parse(conversation),
        phone_number_id: number.into(),
        contact_phone: CONTACT.into(),
        direction: Direction::Inbound,
        message_type: "text".into(),
        text: "hola".into(),
        timestamp: unix_now() - 60,
        payload_json: format!(r#"{{"id":"{wamid}"}}"#),
        ..Default::default()
    };
    let delivery = Delivery {
        key: None,
        events: vec![event],
    };
    store.ingest(delivery).await.unwrap();
}

#[tokio::test]
async fn a_send_to_a_contact_of_one_conversation_joins_it_from_its_number() {
    // The configured number is another one: the conversation's wins, as it
    // does for a send that names the conversation.
    let app = spawn_app_with(|c| c.kapso_phone_number_id = Some(NUMBER.into())).await;
    contact_wrote(&app.store, "conv_other", OTHER_NUMBER).await;

    let message = app.outbound.send_text(text("hola")).await.unwrap();

    let requests = app.kapso.requests();
    assert_eq!(requests[0].path, format!("{PROXY}/{OTHER_NUMBER}/messages"));
    assert_eq!(requests[0].body["to"], CONTACT);
    assert_eq!(message.conversation_id, ConversationId::parse("conv_other"));
    assert_eq!(message.phone_number_id, OTHER_NUMBER);
    let listed = app
        .store
        .conversation_messages("conv_other", 10, None)
        .await
        .unwrap();
    let ids: Vec<_> = listed.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["wamid.IN-conv_other", message.id.as_str()]);
}

#[tokio::test]
async fn a_send_naming_a_number_joins_the_contacts_one_conversation_on_it() {
    let app = spawn_app_with(|c| c.kapso_phone_number_id = None).await;
    contact_wrote(&app.store, "conv_1", NUMBER).await;
    contact_wrote(&app.store, "conv_2", OTHER_NUMBER).await;
    let request = SendText {
        phone_number_id: OTHER_NUMBER.into(),
        ..text("hola")
    };
    let message = app.outbound.send_text(request).await.unwrap();
    assert_eq!(message.conversation_id, ConversationId::parse("conv_2"));
    assert_eq!(
        app.kapso.requests()[0].path,
        format!("{PROXY}/{OTHER_NUMBER}/messages")
    );
}

#[tokio::test]
async fn a_contact_of_several_conversations_needs_a_number() {
    let app = spawn_app_with(|c| c.kapso_phone_number_id = None).await;
    contact_wrote(&app.store, "conv_1", NUMBER).await;
    contact_wrote(&app.store, "conv_2", OTHER_NUMBER).await;

    let status = status_of(app.outbound.send_text(text("hola")).await);

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("phone_number_id")
            && status.message().contains("more than one conversation"),
        "{}",
        status.message()
    );
    assert_eq!(app.kapso.calls(), 0);
}

#[tokio::test]
async fn with_several_conversations_the_configured_number_picks_one() {
    let app = spawn_app_with(|c| c.kapso_phone_number_id = Some(NUMBER.into())).await;
    contact_wrote(&app.store, "conv_1", NUMBER).await;
    contact_wrote(&app.store, "conv_2", OTHER_NUMBER).await;
    let message = app.outbound.send_text(text("hola")).await.unwrap();
    assert_eq!(message.conversation_id, ConversationId::parse("conv_1"));
    assert_eq!(
        app.kapso.requests()[0].path,
        format!("{PROXY}/{NUMBER}/messages")
    );
}

#[tokio::test]
async fn a_contact_of_no_conversation_keeps_the_configured_number_and_none() {
    let app = spawn_app_with(|c| c.kapso_phone_number_id = Some(NUMBER.into())).await;
    let message = app.outbound.send_text(text("hola")).await.unwrap();
    assert_eq!(message.conversation_id, None);
    assert_eq!(
        app.kapso.requests()[0].path,
        format!("{PROXY}/{NUMBER}/messages")
    );
}
