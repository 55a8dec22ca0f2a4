//! Parsing of every shared fixture and of the edge cases around them.

use std::path::PathBuf;

use kapso_gateway_proto::v1::{Direction, InboundEvent, MessageStatus};

use super::*;

const RECEIVED: &str = "whatsapp.message.received";

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The headers the fixtures README lists for each file.
fn hints_for(name: &str) -> Hints<'static> {
    let event_type = match name {
        "sent.json" => Some("whatsapp.message.sent"),
        "delivered.json" => Some("whatsapp.message.delivered"),
        "read.json" => Some("whatsapp.message.read"),
        "failed.json" => Some("whatsapp.message.failed"),
        "conversation_created.json" => Some("whatsapp.conversation.created"),
        "conversation_ended.json" => Some("whatsapp.conversation.ended"),
        "conversation_inactive.json" => Some("whatsapp.conversation.inactive"),
        "meta_text.json" => None,
        _ => Some(RECEIVED),
    };
    Hints {
        event_type,
        batch: matches!(name, "batch_received.json" | "legacy_batch.json"),
    }
}

fn parse_fixture(name: &str) -> Parsed {
    parse(&fixture(name), hints_for(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn single(name: &str) -> InboundEvent {
    let parsed = parse_fixture(name);
    assert!(!parsed.batch, "{name}");
    let [event] = <[InboundEvent; 1]>::try_from(parsed.events).unwrap();
    assert_eq!(
        event.payload_json.as_bytes(),
        fixture(name),
        "{name}: payload is the whole body"
    );
    event
}

fn statuses(event: &InboundEvent) -> Vec<(MessageStatus, i64)> {
    event
        .statuses
        .iter()
        .map(|s| (s.status(), s.timestamp))
        .collect()
}

#[test]
fn every_fixture_parses() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") {
            let parsed = parse_fixture(&name);
            assert!(!parsed.events.is_empty(), "{name}");
            seen += 1;
        }
    }
    assert!(seen >= 14, "only {seen} fixtures found");
}

#[test]
fn received_text_extracts_every_field() {
    let event = single("received_text.json");
    assert_eq!(event.event_type, RECEIVED);
    assert_eq!(event.message_id, "wamid.123");
    assert_eq!(event.conversation_id, "conv_123");
    assert_eq!(event.phone_number_id, "123456789012345");
    assert_eq!(event.contact_phone, "15551234567");
    assert_eq!(event.direction(), Direction::Inbound);
    assert_eq!(event.message_type, "text");
    assert_eq!(event.text, "Hello");
    assert_eq!(event.timestamp, 1_730_092_800);
    assert!(event.statuses.is_empty());
    assert_eq!(event.reply_to_message_id, "");
}

#[test]
fn image_text_is_its_caption() {
    let event = single("received_image.json");
    assert_eq!(event.message_type, "image");
    assert_eq!(event.text, "Photo description");
    assert_eq!(event.message_id, "wamid.789");
}

#[test]
fn audio_text_falls_back_to_kapso_content() {
    let event = single("received_audio.json");
    assert_eq!(event.message_type, "audio");
    assert!(event.text.starts_with("[Audio attached]"), "{}", event.text);
    assert!(
        event
            .text
            .ends_with("Transcript: Hello, I need help with my order")
    );
}

#[test]
fn location_text_is_kapso_content() {
    let event = single("received_location.json");
    assert_eq!(event.message_type, "location");
    assert_eq!(event.text, "Location: San Francisco");
    assert_eq!(event.timestamp, 1_730_093_200);
}

#[test]
fn button_reply_text_is_its_title_and_refers_to_the_context_message() {
    let event = single("received_button_reply.json");
    assert_eq!(event.message_type, "interactive");
    assert_eq!(event.text, "Confirm");
    assert_eq!(event.reply_to_message_id, "wamid.456");
}

#[test]
fn reaction_text_is_its_emoji_and_refers_to_the_reacted_message() {
    let event = single("received_reaction.json");
    assert_eq!(event.message_type, "reaction");
    assert_eq!(event.text, "👍");
    assert_eq!(event.reply_to_message_id, "wamid.456");
}

#[test]
fn status_fixtures_carry_their_status_history() {
    let sent = single("sent.json");
    assert_eq!(sent.event_type, "whatsapp.message.sent");
    assert_eq!(sent.direction(), Direction::Outbound);
    assert_eq!(sent.message_id, "wamid.456");
    assert_eq!(sent.contact_phone, "15551234567");
    assert_eq!(sent.text, "On my way");
    assert_eq!(statuses(&sent), [(MessageStatus::Sent, 1_730_092_860)]);

    let delivered = single("delivered.json");
    assert_eq!(
        statuses(&delivered),
        [
            (MessageStatus::Sent, 1_730_092_860),
            (MessageStatus::Delivered, 1_730_092_888)
        ]
    );

    let read = single("read.json");
    assert_eq!(read.event_type, "whatsapp.message.read");
    assert_eq!(
        statuses(&read).last(),
        Some(&(MessageStatus::Read, 1_730_092_900))
    );
    assert_eq!(read.statuses.len(), 3);
}

#[test]
fn failed_status_keeps_meta_errors() {
    let event = single("failed.json");
    assert_eq!(event.event_type, "whatsapp.message.failed");
    assert_eq!(event.message_id, "wamid.789f");
    let failed = event.statuses.last().unwrap();
    assert_eq!(failed.status(), MessageStatus::Failed);
    assert_eq!(failed.timestamp, 1_730_093_200);
    assert_eq!(failed.errors.len(), 1);
    assert_eq!(failed.errors[0].code, 131_047);
    assert_eq!(failed.errors[0].title, "Re-engagement message");
    assert!(failed.errors[0].message.starts_with("More than 24 hours"));
}

#[test]
fn v2_batch_yields_each_item_with_its_exact_bytes() {
    let body = fixture("batch_received.json");
    let parsed = parse_fixture("batch_received.json");
    assert!(parsed.batch);
    assert_eq!(parsed.events.len(), 2);
    let text = std::str::from_utf8(&body).unwrap();
    for (event, (id, body_text)) in parsed.events.iter().zip([
        ("wamid.111", "First in batch"),
        ("wamid.112", "Second in batch"),
    ]) {
        assert_eq!(event.event_type, RECEIVED);
        assert_eq!(event.message_id, id);
        assert_eq!(event.text, body_text);
        assert_eq!(event.conversation_id, "conv_123");
        assert!(event.payload_json.starts_with('{') && event.payload_json.ends_with('}'));
        assert!(
            text.contains(&event.payload_json),
            "payload is a slice of the body"
        );
        assert!(!event.payload_json.contains("batch_info"));
    }
}

#[test]
fn v2_batch_is_recognised_by_body_flag_without_the_header() {
    let parsed = parse(&fixture("batch_received.json"), Hints::default()).unwrap();
    assert!(parsed.batch);
    assert_eq!(parsed.events.len(), 2);
    assert_eq!(
        parsed.events[0].event_type, RECEIVED,
        "from the body's type"
    );
}

#[test]
fn legacy_single_is_an_inbound_event_with_its_body() {
    let event = single("legacy_single.json");
    assert_eq!(event.event_type, RECEIVED);
    assert_eq!(event.conversation_id, "test-123");
    assert_eq!(event.direction(), Direction::Inbound);
    assert_eq!(event.message_id, "");
}

#[test]
fn v1_text_maps_to_the_same_event_as_v2() {
    let event = single("v1_received_text.json");
    assert_eq!(event.event_type, RECEIVED);
    assert_eq!(
        event.message_id,
        "wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBRGQUtFVjFURVhUMDAx"
    );
    assert_eq!(event.message_type, "text");
    assert_eq!(event.text, "Necesito ayuda con mi pedido");
    assert_eq!(event.direction(), Direction::Inbound);
    assert_eq!(event.phone_number_id, "123456789012345");
    assert_eq!(event.contact_phone, "15551234567");
    assert_eq!(
        event.conversation_id,
        "7c1e0c5a-3b1f-4f0e-9d7a-2a6b5c4d3e21"
    );
}

#[test]
fn v1_outbound_direction_is_read_from_the_message() {
    let body = br#"{"message":{"whatsapp_message_id":"wamid.out","message_type":"text",
        "content":"hi","direction":"outbound"},"whatsapp_config":{"phone_number_id":"42"}}"#;
    let hints = Hints {
        event_type: Some("whatsapp.message.sent"),
        batch: false,
    };
    let [event] = <[InboundEvent; 1]>::try_from(parse(body, hints).unwrap().events).unwrap();
    assert_eq!(event.message_id, "wamid.out");
    assert_eq!(event.direction(), Direction::Outbound);
    assert_eq!(event.phone_number_id, "42");
}

#[test]
fn legacy_batch_is_a_top_level_array() {
    let parsed = parse_fixture("legacy_batch.json");
    assert!(parsed.batch);
    let [first, second] = <[InboundEvent; 2]>::try_from(parsed.events).unwrap();
    assert_eq!(first.message_id, "msg-1");
    assert_eq!(first.conversation_id, "conv-1");
    assert_eq!(first.contact_phone, "56912345678");
    assert_eq!(first.text, "Hola, necesito ayuda");
    assert_eq!(first.message_type, "text");
    assert_eq!(first.direction(), Direction::Inbound);
    assert_eq!(second.message_id, "msg-2");
    assert_eq!(second.contact_phone, "56987654321");
    assert!(first.payload_json.contains("\"msg-1\"") && !first.payload_json.contains("msg-2"));
}

#[test]
fn meta_shaped_body_is_forwarded_verbatim() {
    let event = single("meta_text.json");
    assert_eq!(event.event_type, "");
    assert_eq!(event.message_id, "");
}

#[test]
fn event_type_prefers_item_then_body_then_header() {
    let hints = Hints {
        event_type: Some("from.header"),
        batch: false,
    };
    let type_of = |body: &str| {
        parse(body.as_bytes(), hints).unwrap().events[0]
            .event_type
            .clone()
    };
    assert_eq!(type_of(r#"{"event_type":"a","event":"b","type":"c"}"#), "a");
    assert_eq!(type_of(r#"{"event":"b","type":"c"}"#), "b");
    assert_eq!(type_of(r#"{"type":"c"}"#), "c");
    assert_eq!(type_of(r#"{}"#), "from.header");
}

#[test]
fn unknown_types_and_fields_are_forwarded() {
    let body = br#"{"message":{"id":"wamid.9","type":"sticker","sticker":{"id":"s"},"from":null,
        "timestamp":1730092800,"kapso":{"direction":"inbound","statuses":"weird"}},
        "conversation":{"id":"c","phone_number":null,"business_scoped_user_id":"US.42"},
        "brand_new_field":[1,2,{"x":null}]}"#;
    let hints = Hints {
        event_type: Some("whatsapp.something.new"),
        batch: false,
    };
    let event = parse(body, hints).unwrap().events.remove(0);
    assert_eq!(event.event_type, "whatsapp.something.new");
    assert_eq!(event.message_type, "sticker");
    assert_eq!(
        event.timestamp, 1_730_092_800,
        "numeric timestamps accepted"
    );
    assert_eq!(
        event.contact_phone, "US.42",
        "business-scoped id when no phone"
    );
    assert_eq!(event.text, "");
}

#[test]
fn status_event_without_its_status_in_history_gets_one() {
    let body = br#"{"message":{"id":"wamid.1","timestamp":"1730000000","kapso":{"statuses":[
        {"status":"sent","timestamp":"1729999990","recipient_id":"+15550001111"}]}}}"#;
    let hints = Hints {
        event_type: Some("whatsapp.message.delivered"),
        batch: false,
    };
    let event = parse(body, hints).unwrap().events.remove(0);
    assert_eq!(
        statuses(&event),
        [
            (MessageStatus::Sent, 1_729_999_990),
            (MessageStatus::Delivered, 1_730_000_000)
        ]
    );
    assert_eq!(event.direction(), Direction::Outbound);
    assert_eq!(
        event.contact_phone, "15550001111",
        "from the status recipient"
    );
}

#[test]
fn escaped_strings_are_decoded() {
    let body = br#"{"message":{"type":"text","text":{"body":"l\u00ednea\n\"dos\""}}}"#;
    let event = parse(body, Hints::default()).unwrap().events.remove(0);
    assert_eq!(event.text, "línea\n\"dos\"");
}

#[test]
fn empty_batches_yield_no_events() {
    let parsed = parse(b"[]", Hints::default()).unwrap();
    assert!(parsed.batch && parsed.events.is_empty());
    let parsed = parse(br#"{"type":"t","batch":true,"data":[]}"#, Hints::default()).unwrap();
    assert!(parsed.batch && parsed.events.is_empty());
}

#[test]
fn malformed_bodies_are_refused_precisely() {
    let hints = Hints::default();
    assert!(matches!(parse(b"{\"a\":", hints), Err(ParseError::Json(_))));
    assert!(matches!(parse(b"", hints), Err(ParseError::Json(_))));
    assert!(matches!(parse(b"[1,", hints), Err(ParseError::Json(_))));
    assert!(matches!(parse(b"\xff{}", hints), Err(ParseError::NotUtf8)));
    assert!(matches!(
        parse(b"\"text\"", hints),
        Err(ParseError::NotObjectOrArray)
    ));
    assert!(matches!(
        parse(b"42", hints),
        Err(ParseError::NotObjectOrArray)
    ));
    assert!(matches!(
        parse(br#"{"batch":true}"#, hints),
        Err(ParseError::BatchWithoutData)
    ));
    assert!(matches!(
        parse(br#"{"batch":true,"data":{"message":{}}}"#, hints),
        Err(ParseError::BatchWithoutData)
    ));
    let batch_header = Hints {
        event_type: None,
        batch: true,
    };
    assert!(matches!(
        parse(br#"{"message":{"id":"x"},"data":"x"}"#, batch_header),
        Err(ParseError::BatchWithoutData)
    ));
    assert!(matches!(
        parse(br#"{"message":{"id":"x"},"data":null}"#, batch_header),
        Err(ParseError::BatchWithoutData)
    ));
}

#[test]
fn a_batch_header_on_a_body_without_data_yields_no_events() {
    let batch_header = Hints {
        event_type: None,
        batch: true,
    };
    let parsed = parse(br#"{"message":{"id":"x"}}"#, batch_header).unwrap();
    assert!(parsed.events.is_empty());
    assert!(parsed.batch && parsed.without_data);
}

#[test]
fn non_object_batch_items_are_forwarded_not_refused() {
    let parsed = parse(br#"[{"message_id":"m1"}, 7]"#, Hints::default()).unwrap();
    assert_eq!(parsed.events.len(), 2);
    assert_eq!(parsed.events[1].payload_json, "7");
}

#[test]
fn a_number_beyond_f64_range_is_still_json_and_kept_byte_for_byte() {
    // Found by fuzzing: valid JSON syntax that a `serde_json::Value` refuses.
    let body = b"{\n  \"is_new_message\":22222E2222222}\n";
    let hints = Hints {
        event_type: Some("whatsapp.something.new"),
        batch: false,
    };
    let parsed = parse(body, hints).expect("syntactically valid JSON is accepted");
    assert_eq!(parsed.events.len(), 1);
    assert_eq!(parsed.events[0].payload_json.as_bytes(), body);
}

fn refusal(body: &[u8], event_type: &str) -> Option<Refusal> {
    let hints = Hints {
        event_type: Some(event_type),
        batch: false,
    };
    match parse(body, hints) {
        Ok(_) => None,
        Err(ParseError::Refused(refusal)) => Some(refusal),
        Err(other) => panic!("{event_type}: {other}"),
    }
}

#[test]
fn every_fixture_agrees_with_its_own_event_type() {
    for name in [
        "received_text.json",
        "sent.json",
        "delivered.json",
        "read.json",
        "failed.json",
    ] {
        let event_type = hints_for(name).event_type.unwrap();
        assert_eq!(refusal(&fixture(name), event_type), None, "{name}");
    }
}

#[test]
fn a_body_under_another_message_event_type_is_a_mismatch() {
    let mismatch = |name: &str, event_type: &str| {
        matches!(
            refusal(&fixture(name), event_type),
            Some(Refusal::Mismatch { .. })
        )
    };
    for forged in [
        "whatsapp.message.failed",
        "whatsapp.message.sent",
        "whatsapp.message.read",
    ] {
        assert!(mismatch("received_text.json", forged), "{forged}");
    }
    assert!(mismatch("sent.json", "whatsapp.message.received"));
    assert!(mismatch("sent.json", "whatsapp.message.failed"));
    assert!(mismatch("sent.json", "whatsapp.message.read"));
    assert!(mismatch("delivered.json", "whatsapp.message.failed"));
    assert!(mismatch("failed.json", "whatsapp.message.read"));
}

#[test]
fn a_late_status_event_may_carry_a_later_status() {
    // Kapso writes the message's status when it sends: a late `delivered` can say `read`.
    assert_eq!(
        refusal(&fixture("read.json"), "whatsapp.message.delivered"),
        None
    );
    assert_eq!(
        refusal(&fixture("read.json"), "whatsapp.message.sent"),
        None
    );
    // A status in the history agrees, whatever the current one.
    assert_eq!(
        refusal(&fixture("failed.json"), "whatsapp.message.sent"),
        None
    );
}

#[test]
fn a_message_event_without_a_message_is_not_a_kapso_event() {
    for body in [
        &br#"{"foo":1}"#[..],
        br#"{"message":{"type":"text"}}"#,
        b"{}",
    ] {
        assert!(
            matches!(
                refusal(body, RECEIVED),
                Some(Refusal::NotAnEvent {
                    carries: "message",
                    ..
                })
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let batch = br#"{"type":"whatsapp.message.received","batch":true,"data":[{"foo":1}]}"#;
    assert!(matches!(
        parse(batch, Hints::default()),
        Err(ParseError::Refused(Refusal::NotAnEvent { .. }))
    ));
    assert!(matches!(
        refusal(br#"{"foo":1}"#, "whatsapp.conversation.created"),
        Some(Refusal::NotAnEvent {
            carries: "conversation",
            ..
        })
    ));
}

#[test]
fn other_event_types_and_self_typed_items_are_not_checked() {
    assert_eq!(
        refusal(br#"{"foo":1}"#, "workflow.execution.completed"),
        None
    );
    assert_eq!(
        refusal(
            br#"{"conversation":{"id":"c"}}"#,
            "whatsapp.conversation.ended"
        ),
        None
    );
    // The original service's shape names its own type and may carry no message.
    assert_eq!(
        refusal(&fixture("legacy_single.json"), "whatsapp.message.failed"),
        None
    );
}
