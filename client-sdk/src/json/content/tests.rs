use kapso_gateway_proto::v1 as pb;
use pb::content::Kind;
use serde_json::json;

use super::content;

fn render(kind: Kind) -> serde_json::Value {
    content(&pb::Content { kind: Some(kind) })
}

fn image() -> pb::MediaContent {
    pb::MediaContent {
        kind: pb::MediaKind::Image.into(),
        id: "1037543291543636".into(),
        caption: "Menú".into(),
        mime_type: "image/jpeg".into(),
        size_bytes: 48_213,
        ..Default::default()
    }
}

#[test]
fn every_kind_renders_under_its_proto_name() {
    let kinds = [
        (Kind::Text(pb::TextContent::default()), "text"),
        (Kind::Template(pb::TemplateContent::default()), "template"),
        (Kind::Media(pb::MediaContent::default()), "media"),
        (
            Kind::Interactive(pb::InteractiveContent::default()),
            "interactive",
        ),
        (Kind::Reaction(pb::ReactionContent::default()), "reaction"),
        (Kind::Location(pb::LocationContent::default()), "location"),
        (Kind::Contacts(pb::ContactsContent::default()), "contacts"),
        (
            Kind::InteractiveReply(pb::InteractiveReply::default()),
            "interactive_reply",
        ),
        (Kind::Button(pb::TemplateButtonReply::default()), "button"),
        (Kind::Order(pb::OrderContent::default()), "order"),
        (
            Kind::Unsupported(pb::UnsupportedContent::default()),
            "unsupported",
        ),
        (Kind::System(pb::SystemContent::default()), "system"),
    ];
    for (kind, name) in kinds {
        let value = render(kind);
        let object = value.as_object().unwrap();
        assert_eq!(object.keys().collect::<Vec<_>>(), [name], "{value}");
        assert!(object[name].is_object(), "{value}");
    }
    assert_eq!(content(&pb::Content { kind: None }), json!({}));
}

#[test]
fn media_has_every_field_and_its_kind_by_name() {
    assert_eq!(
        render(Kind::Media(image())),
        json!({ "media": {
            "kind": "MEDIA_KIND_IMAGE",
            "link": "",
            "id": "1037543291543636",
            "caption": "Menú",
            "filename": "",
            "voice": false,
            "mime_type": "image/jpeg",
            "sha256": "",
            "media_url": "",
            "size_bytes": 48_213,
            "transcript": "",
            "animated": false,
        }})
    );
}

#[test]
fn template_parameters_name_their_one_value() {
    use pb::template_parameter::Value as Param;
    let parameter = |value| pb::TemplateParameter {
        parameter_name: String::new(),
        value: Some(value),
    };
    let mut body = pb::TemplateComponent {
        parameters: vec![
            parameter(Param::Text("Ana".into())),
            parameter(Param::Currency(pb::TemplateCurrency {
                fallback_value: "$10".into(),
                code: "USD".into(),
                amount_1000: 10_000,
            })),
        ],
        ..Default::default()
    };
    body.set_type(pb::TemplateComponentType::Body);
    let mut button = pb::TemplateComponent {
        index: 1,
        parameters: vec![pb::TemplateParameter {
            parameter_name: "code".into(),
            value: Some(Param::CouponCode("ABC123".into())),
        }],
        ..Default::default()
    };
    button.set_type(pb::TemplateComponentType::Button);
    button.set_button_type(pb::TemplateButtonType::CopyCode);
    let mut template = pb::TemplateContent {
        name: "order_shipped".into(),
        language: "es".into(),
        components: vec![body, button],
        ..Default::default()
    };
    template.set_language_policy(pb::TemplateLanguagePolicy::Deterministic);

    let value = render(Kind::Template(template));
    assert_eq!(
        value["template"]["language_policy"],
        "TEMPLATE_LANGUAGE_POLICY_DETERMINISTIC"
    );
    let [body, button] = value["template"]["components"]
        .as_array()
        .unwrap()
        .as_slice()
    else {
        panic!("{value}");
    };
    assert_eq!(body["type"], "TEMPLATE_COMPONENT_TYPE_BODY");
    assert_eq!(body["button_type"], "TEMPLATE_BUTTON_TYPE_UNSPECIFIED");
    assert_eq!(
        body["parameters"],
        json!([
            { "parameter_name": "", "text": "Ana" },
            { "parameter_name": "", "currency": { "fallback_value": "$10", "code": "USD", "amount_1000": 10_000 } },
        ])
    );
    assert_eq!(button["button_type"], "TEMPLATE_BUTTON_TYPE_COPY_CODE");
    assert_eq!(button["index"], 1);
    assert_eq!(
        button["parameters"],
        json!([{ "parameter_name": "code", "coupon_code": "ABC123" }])
    );
}

#[test]
fn interactive_names_its_action_and_header() {
    let list = pb::InteractiveContent {
        header: Some(pb::InteractiveHeader {
            header: Some(pb::interactive_header::Header::Text("Clínica".into())),
        }),
        body: "Elige".into(),
        footer: String::new(),
        action: Some(pb::interactive_content::Action::List(pb::ListAction {
            button: "Ver".into(),
            sections: vec![pb::ListSection {
                title: "Mañana".into(),
                rows: vec![pb::ListRow {
                    id: "am-9".into(),
                    title: "9:00".into(),
                    description: String::new(),
                }],
            }],
        })),
    };
    assert_eq!(
        render(Kind::Interactive(list)),
        json!({ "interactive": {
            "header": { "text": "Clínica" },
            "body": "Elige",
            "footer": "",
            "list": { "button": "Ver", "sections": [
                { "title": "Mañana", "rows": [{ "id": "am-9", "title": "9:00", "description": "" }] },
            ]},
        }})
    );

    let buttons = pb::InteractiveContent {
        header: Some(pb::InteractiveHeader {
            header: Some(pb::interactive_header::Header::Media(image())),
        }),
        action: Some(pb::interactive_content::Action::Buttons(pb::ReplyButtons {
            buttons: vec![pb::ReplyButton {
                id: "yes".into(),
                title: "Sí".into(),
            }],
        })),
        ..Default::default()
    };
    let value = render(Kind::Interactive(buttons));
    assert_eq!(
        value["interactive"]["header"]["media"]["kind"],
        "MEDIA_KIND_IMAGE"
    );
    assert_eq!(
        value["interactive"]["buttons"],
        json!({ "buttons": [{ "id": "yes", "title": "Sí" }] })
    );
    assert!(value["interactive"].get("list").is_none());

    let bare = render(Kind::Interactive(pb::InteractiveContent::default()));
    assert_eq!(
        bare,
        json!({ "interactive": { "header": null, "body": "", "footer": "" } })
    );
}

#[test]
fn received_kinds_keep_their_fields() {
    let mut reply = pb::InteractiveReply {
        id: "am-9".into(),
        title: "9:00".into(),
        ..Default::default()
    };
    reply.set_kind(pb::interactive_reply::Kind::ListReply);
    assert_eq!(
        render(Kind::InteractiveReply(reply)),
        json!({ "interactive_reply": {
            "kind": "KIND_LIST_REPLY", "id": "am-9", "title": "9:00", "description": "",
        }})
    );

    let order = pb::OrderContent {
        catalog_id: "cat-1".into(),
        text: String::new(),
        items: vec![pb::OrderItem {
            product_retailer_id: "sku-1".into(),
            quantity: 2,
            item_price: 9.5,
            currency: "CLP".into(),
        }],
    };
    assert_eq!(
        render(Kind::Order(order))["order"]["items"],
        json!([{ "product_retailer_id": "sku-1", "quantity": 2, "item_price": 9.5, "currency": "CLP" }])
    );

    let location = pb::LocationContent {
        latitude: -33.4489,
        longitude: -70.6693,
        name: "Oficina".into(),
        ..Default::default()
    };
    assert_eq!(
        render(Kind::Location(location)),
        json!({ "location": {
            "latitude": -33.4489, "longitude": -70.6693, "name": "Oficina", "address": "", "url": "",
        }})
    );

    let card = pb::ContactCard {
        name: Some(pb::ContactName {
            formatted_name: "Ana Pérez".into(),
            ..Default::default()
        }),
        phones: vec![pb::ContactPhone {
            phone: "+56912345678".into(),
            r#type: "CELL".into(),
            wa_id: "56912345678".into(),
        }],
        ..Default::default()
    };
    let value = render(Kind::Contacts(pb::ContactsContent {
        contacts: vec![card],
    }));
    let card = &value["contacts"]["contacts"][0];
    assert_eq!(card["name"]["formatted_name"], "Ana Pérez");
    assert_eq!(card["name"]["prefix"], "");
    assert!(card["org"].is_null());
    assert_eq!(
        card["phones"],
        json!([{ "phone": "+56912345678", "type": "CELL", "wa_id": "56912345678" }])
    );
    assert_eq!(card["emails"], json!([]));

    assert_eq!(
        render(Kind::Reaction(pb::ReactionContent {
            message_id: "wamid.1".into(),
            emoji: "👍".into(),
        })),
        json!({ "reaction": { "message_id": "wamid.1", "emoji": "👍" } })
    );
    assert_eq!(
        render(Kind::Button(pb::TemplateButtonReply {
            payload: "CONFIRM".into(),
            text: "Confirmar".into(),
        })),
        json!({ "button": { "payload": "CONFIRM", "text": "Confirmar" } })
    );
    assert_eq!(
        render(Kind::Unsupported(pb::UnsupportedContent {
            r#type: "poll".into()
        })),
        json!({ "unsupported": { "type": "poll" } })
    );
    assert_eq!(
        render(Kind::System(pb::SystemContent {
            body: "changed".into(),
            r#type: "user_changed_number".into(),
            wa_id: "569".into(),
            user_id: String::new(),
        })),
        json!({ "system": {
            "body": "changed", "type": "user_changed_number", "wa_id": "569", "user_id": "",
        }})
    );
}
