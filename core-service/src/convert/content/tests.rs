use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../adapter/tests/fixtures/",
            $name,
            ".json"
        ))
    };
}

fn kind(payload: &str) -> Kind {
    message(payload)
        .content
        .and_then(|c| c.kind)
        .expect("typed content")
}

fn media_of(payload: &str) -> pb::MediaContent {
    match kind(payload) {
        Kind::Media(m) => m,
        other => panic!("not media: {other:?}"),
    }
}

#[test]
fn text_and_its_origin() {
    let typed = message(fixture!("received_text"));
    assert!(
        matches!(typed.content.and_then(|c| c.kind), Some(Kind::Text(t)) if !t.body.is_empty())
    );
    assert_eq!(typed.origin, "cloud_api");
    let history = message(fixture!("received_history_sync"));
    assert_eq!(history.origin, "history_sync");
    assert!(matches!(
        kind(fixture!("received_reply_context")),
        Kind::Text(_)
    ));
}

#[test]
fn image_takes_kapso_media_data_where_meta_says_nothing() {
    let m = media_of(fixture!("received_image"));
    assert_eq!(m.kind(), pb::MediaKind::Image);
    assert_eq!(m.id, "media_id_123");
    assert_eq!(m.caption, "Photo description");
    assert_eq!(m.filename, "photo.jpg");
    assert_eq!(m.mime_type, "image/jpeg");
    assert_eq!(m.size_bytes, 204800);
    assert_eq!(m.media_url, "https://api.kapso.ai/media/...");
}

#[test]
fn every_media_kind_is_typed() {
    let cases = [
        (fixture!("received_video"), pb::MediaKind::Video),
        (fixture!("received_audio"), pb::MediaKind::Audio),
        (fixture!("received_document"), pb::MediaKind::Document),
        (fixture!("received_sticker"), pb::MediaKind::Sticker),
    ];
    for (payload, expected) in cases {
        let m = media_of(payload);
        assert_eq!(m.kind(), expected);
        assert!(!m.id.is_empty(), "{expected:?}");
    }
    let document = media_of(fixture!("received_document"));
    assert_eq!(document.filename, "factura-1042.pdf");
    assert_eq!(document.caption, "Invoice for order 1042");
    assert_eq!(document.mime_type, "application/pdf");
    let sticker = media_of(fixture!("received_sticker"));
    assert_eq!(sticker.mime_type, "image/webp");
    assert!(!sticker.animated);
}

#[test]
fn a_voice_note_carries_its_transcript() {
    let m = media_of(fixture!("received_voice_transcript"));
    assert!(m.voice);
    assert_eq!(m.transcript, "Hola, quería saber si mi pedido ya salió");
    assert_eq!(m.mime_type, "audio/ogg; codecs=opus");
    assert_eq!(m.size_bytes, 18432);
}

#[test]
fn location_contacts_and_reaction() {
    let Kind::Location(l) = kind(fixture!("received_location")) else {
        panic!("not a location")
    };
    assert_eq!((l.latitude, l.longitude), (37.7749, -122.4194));
    assert_eq!(l.name, "San Francisco");
    let Kind::Contacts(c) = kind(fixture!("received_contacts")) else {
        panic!("not contacts")
    };
    let card = &c.contacts[0];
    assert_eq!(card.name.as_ref().unwrap().formatted_name, "Carlos Méndez");
    assert_eq!(card.phones[0].wa_id, "15559876543");
    assert_eq!(card.phones.len(), 2);
    assert_eq!(card.emails[0].email, "carlos.mendez@example.com");
    assert_eq!(card.org.as_ref().unwrap().company, "Transportes Norte");
    let Kind::Reaction(r) = kind(fixture!("received_reaction")) else {
        panic!("not a reaction")
    };
    assert_eq!(r.message_id, "wamid.456");
    assert_eq!(r.emoji, "\u{1F44D}");
}

#[test]
fn replies_to_buttons_lists_and_templates() {
    let Kind::InteractiveReply(b) = kind(fixture!("received_button_reply")) else {
        panic!("not an interactive reply")
    };
    assert_eq!(b.kind(), pb::interactive_reply::Kind::ButtonReply);
    assert!(!b.id.is_empty() && !b.title.is_empty());
    let Kind::InteractiveReply(l) = kind(fixture!("received_list_reply")) else {
        panic!("not an interactive reply")
    };
    assert_eq!(l.kind(), pb::interactive_reply::Kind::ListReply);
    assert_eq!(
        (l.id.as_str(), l.title.as_str(), l.description.as_str()),
        ("t18", "18:00-20:00", "Evening, free")
    );
    let Kind::Button(t) = kind(fixture!("received_template_button")) else {
        panic!("not a template button")
    };
    assert_eq!(
        (t.payload.as_str(), t.text.as_str()),
        ("STOP_PROMOS", "Stop promotions")
    );
}

#[test]
fn orders_keep_their_items() {
    let Kind::Order(o) = kind(fixture!("received_order")) else {
        panic!("not an order")
    };
    assert_eq!(o.catalog_id, "194836987003835");
    assert_eq!(o.items.len(), 2);
    assert_eq!(o.items[0].quantity, 2);
    assert_eq!(o.items[0].item_price, 12.5);
    assert_eq!(o.items[1].item_price, 8.0);
}

#[test]
fn unsupported_messages_carry_their_errors() {
    let typed = message(fixture!("received_unsupported"));
    assert!(
        matches!(typed.content.and_then(|c| c.kind), Some(Kind::Unsupported(u)) if u.r#type == "poll")
    );
    assert_eq!(typed.errors[0].code, 131051);
    assert_eq!(
        typed.errors[0].details,
        "Message type is currently not supported."
    );
}

#[test]
fn system_messages_are_typed() {
    let payload = r#"{"message":{"id":"wamid.S","type":"system","system":
        {"body":"User A changed from 1 to 2","type":"user_changed_number","wa_id":"15550001111"}}}"#;
    let Kind::System(s) = kind(payload) else {
        panic!("not a system message")
    };
    assert_eq!(s.r#type, "user_changed_number");
    assert_eq!(s.wa_id, "15550001111");
}

#[test]
fn statuses_and_non_message_payloads_are_lenient() {
    for payload in [
        fixture!("sent"),
        fixture!("delivered"),
        fixture!("read"),
        fixture!("failed"),
    ] {
        let _ = message(payload);
    }
    assert_eq!(message("not json"), Typed::default());
    assert_eq!(message(fixture!("conversation_created")), Typed::default());
    assert!(
        message(r#"{"message":{"type":"poll_v9"}}"#)
            .content
            .is_none()
    );
}

#[test]
fn conversation_events_carry_their_facts() {
    let inactive = conversation_facts(
        &EventType::ConversationInactive,
        fixture!("conversation_inactive"),
    )
    .unwrap();
    assert_eq!(inactive.status, "active");
    assert_eq!(inactive.inactivity_minutes, 60);
    let since = inactive.since_message.unwrap();
    assert_eq!(since.id, "b6d4f0a2-1c3e-4a57-9e8b-0f2d4c6a8e10");
    assert_eq!(
        since.whatsapp_message_id,
        "wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBRGQUtFUkVQTFlDVFgx"
    );
    assert_eq!(since.direction, "inbound");
    let ended = conversation_facts(
        &EventType::ConversationEnded,
        fixture!("conversation_ended"),
    )
    .unwrap();
    assert_eq!(ended.status, "ended");
    assert_eq!(ended.since_message, None);
    let created = conversation_facts(
        &EventType::ConversationCreated,
        fixture!("conversation_created"),
    )
    .unwrap();
    assert_eq!(created.status, "active");
    assert_eq!(
        conversation_facts(&EventType::MessageReceived, fixture!("received_text")),
        None
    );
}
