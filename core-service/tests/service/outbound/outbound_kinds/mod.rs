//! `SendMessage` per kind: the exact body each kind puts on the wire
//! (docs/kapso-contract.md section 3), the window rule, and the guarantees
//! text sends have, held for the other kinds too.

use kapso_core::model::Wamid;
use kapso_core::outbound::{SendMessage, content};
use kapso_gateway_proto::v1 as pb;
use pb::send_message_request::Content as C;
use serde_json::{Value, json};
use tonic::Code;

use super::fake_kapso::PROXY;
use super::{CONTACT, NUMBER, customer_wrote, spawn_app, spawn_core, status_of};
use crate::store_suite::any_id;

fn send(content: C) -> SendMessage {
    SendMessage {
        to: format!("+{CONTACT}"),
        phone_number_id: String::new(),
        conversation_id: String::new(),
        reply_to_message_id: String::new(),
        idempotency_key: String::new(),
        stored_content: Some(kapso_core::convert::encode_content(
            &kapso_core::convert::send_content_to_pb(content.clone()),
        )),
        content: content::parse(Some(content)).expect("valid content"),
        deadline: None,
    }
}

/// Sends `content` and returns the one body Kapso received, checking the envelope.
async fn body_of(content: C, kind: &str) -> Value {
    let app = spawn_app().await;
    let message = app.outbound.send_message(send(content)).await.unwrap();
    assert_eq!(message.message_type, kind);
    let requests = app.kapso.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, format!("{PROXY}/{NUMBER}/messages"));
    requests[0].body.clone()
}

fn envelope(kind: &str, object: Value) -> Value {
    let mut body = json!({"messaging_product":"whatsapp","recipient_type":"individual",
                          "to":CONTACT,"type":kind});
    body[kind] = object;
    body
}

fn media(kind: pb::MediaKind, link: &str, id: &str) -> pb::MediaContent {
    pb::MediaContent {
        kind: kind.into(),
        link: link.into(),
        id: id.into(),
        ..Default::default()
    }
}

/// 3.2, the full example.
#[tokio::test]
async fn template_body_is_exact() {
    use pb::TemplateButtonType as B;
    use pb::TemplateComponentType as T;
    use pb::template_parameter::Value as V;
    let param = |name: &str, value| pb::TemplateParameter {
        parameter_name: name.into(),
        value: Some(value),
    };
    let component = |kind: T, button: B, index, parameters| pb::TemplateComponent {
        r#type: kind.into(),
        button_type: button.into(),
        index,
        parameters,
    };
    let template = pb::TemplateContent {
        name: "order_shipped".into(),
        language: "es_MX".into(),
        components: vec![
            component(
                T::Header,
                B::Unspecified,
                0,
                vec![param(
                    "",
                    V::Media(media(
                        pb::MediaKind::Image,
                        "https://cdn.example.com/box.jpg",
                        "",
                    )),
                )],
            ),
            component(
                T::Body,
                B::Unspecified,
                0,
                vec![
                    param("customer_name", V::Text("Ana".into())),
                    param(
                        "total",
                        V::Currency(pb::TemplateCurrency {
                            fallback_value: "$1,250.00".into(),
                            code: "MXN".into(),
                            amount_1000: 1_250_000,
                        }),
                    ),
                    param(
                        "eta",
                        V::DateTime(pb::TemplateDateTime {
                            fallback_value: "12 de diciembre".into(),
                        }),
                    ),
                ],
            ),
            component(
                T::Button,
                B::Url,
                0,
                vec![param("", V::Text("ORD-1042".into()))],
            ),
            component(
                T::Button,
                B::QuickReply,
                1,
                vec![param("", V::Payload("STOP_PROMOS".into()))],
            ),
        ],
        ..Default::default()
    };
    let body = body_of(C::Template(template), "template").await;
    assert_eq!(
        body,
        envelope(
            "template",
            json!({
   "name":"order_shipped","language":{"code":"es_MX"},
   "components":[
     {"type":"header","parameters":[{"type":"image","image":{"link":"https://cdn.example.com/box.jpg"}}]},
     {"type":"body","parameters":[
        {"type":"text","parameter_name":"customer_name","text":"Ana"},
        {"type":"currency","parameter_name":"total",
         "currency":{"fallback_value":"$1,250.00","code":"MXN","amount_1000":1250000}},
        {"type":"date_time","parameter_name":"eta","date_time":{"fallback_value":"12 de diciembre"}}]},
     {"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"ORD-1042"}]},
     {"type":"button","sub_type":"quick_reply","index":"1","parameters":[{"type":"payload","payload":"STOP_PROMOS"}]}]})
        )
    );
}

/// 3.2's extras: a deterministic language, a location header, a copy-code
/// button and a flow button, each as Meta documents it.
#[tokio::test]
async fn template_extras_body_is_exact() {
    use pb::TemplateButtonType as B;
    use pb::TemplateComponentType as T;
    use pb::template_parameter::Value as V;
    let component = |kind: T, button: B, index, value| pb::TemplateComponent {
        r#type: kind.into(),
        button_type: button.into(),
        index,
        parameters: vec![pb::TemplateParameter {
            parameter_name: String::new(),
            value: Some(value),
        }],
    };
    let template = pb::TemplateContent {
        name: "store_offer".into(),
        language: "es".into(),
        language_policy: pb::TemplateLanguagePolicy::Deterministic.into(),
        components: vec![
            component(
                T::Header,
                B::Unspecified,
                0,
                V::Location(pb::LocationContent {
                    latitude: 19.4326,
                    longitude: -99.1332,
                    name: "Tienda Centro".into(),
                    address: "Av. Juárez 10, CDMX".into(),
                    url: String::new(),
                }),
            ),
            component(T::Button, B::CopyCode, 0, V::CouponCode("SAVE20".into())),
            component(
                T::Button,
                B::Flow,
                1,
                V::Action(pb::TemplateFlowAction {
                    flow_token: "order-1042".into(),
                    flow_action_data_json: r#"{"screen_data":{"order":1042}}"#.into(),
                }),
            ),
        ],
    };
    let body = body_of(C::Template(template), "template").await;
    assert_eq!(
        body,
        envelope(
            "template",
            json!({
   "name":"store_offer","language":{"code":"es","policy":"deterministic"},
   "components":[
     {"type":"header","parameters":[{"type":"location","location":{
        "latitude":"19.4326","longitude":"-99.1332","name":"Tienda Centro","address":"Av. Juárez 10, CDMX"}}]},
     {"type":"button","sub_type":"copy_code","index":"0","parameters":[{"type":"coupon_code","coupon_code":"SAVE20"}]},
     {"type":"button","sub_type":"flow","index":"1","parameters":[{"type":"action","action":{
        "flow_token":"order-1042","flow_action_data":{"screen_data":{"order":1042}}}}]}]})
        )
    );
}

/// 3.2, the minimal example: no components at all.
#[tokio::test]
async fn template_without_variables_has_no_components() {
    let template = pb::TemplateContent {
        name: "hello_world".into(),
        language: "en_US".into(),
        components: Vec::new(),
        ..Default::default()
    };
    let body = body_of(C::Template(template), "template").await;
    assert_eq!(
        body,
        envelope(
            "template",
            json!({"name":"hello_world","language":{"code":"en_US"}})
        )
    );
}

/// 3.3, one body per kind.
#[tokio::test]
async fn media_bodies_are_exact_per_kind() {
    let mut image = media(pb::MediaKind::Image, "https://cdn.example.com/p.jpg", "");
    image.caption = "Your receipt".into();
    let mut video = media(pb::MediaKind::Video, "", "1203957402158307");
    video.caption = "Unboxing".into();
    let mut audio = media(pb::MediaKind::Audio, "", "2245913389195021");
    audio.voice = true;
    let mut document = media(
        pb::MediaKind::Document,
        "https://cdn.example.com/inv-1042.pdf",
        "",
    );
    document.filename = "invoice-1042.pdf".into();
    document.caption = "Invoice".into();
    let sticker = media(pb::MediaKind::Sticker, "", "1908647269898587");
    let cases = [
        (
            image,
            "image",
            json!({"link":"https://cdn.example.com/p.jpg","caption":"Your receipt"}),
        ),
        (
            video,
            "video",
            json!({"id":"1203957402158307","caption":"Unboxing"}),
        ),
        (
            audio,
            "audio",
            json!({"id":"2245913389195021","voice":true}),
        ),
        (
            document,
            "document",
            json!({"link":"https://cdn.example.com/inv-1042.pdf","filename":"invoice-1042.pdf","caption":"Invoice"}),
        ),
        (sticker, "sticker", json!({"id":"1908647269898587"})),
    ];
    for (content, kind, object) in cases {
        assert_eq!(
            body_of(C::Media(content), kind).await,
            envelope(kind, object)
        );
    }
}

/// 3.4, the full example.
#[tokio::test]
async fn reply_buttons_body_is_exact() {
    let button = |id: &str, title: &str| pb::ReplyButton {
        id: id.into(),
        title: title.into(),
    };
    let interactive = pb::InteractiveContent {
        header: Some(pb::InteractiveHeader {
            header: Some(pb::interactive_header::Header::Media(media(
                pb::MediaKind::Image,
                "",
                "2762702990552401",
            ))),
        }),
        body: "Your workshop is tomorrow at 9am.".into(),
        footer: "Reply to change it".into(),
        action: Some(pb::interactive_content::Action::Buttons(pb::ReplyButtons {
            buttons: vec![
                button("keep", "Keep"),
                button("change", "Change"),
                button("cancel", "Cancel"),
            ],
        })),
    };
    let body = body_of(C::Interactive(interactive), "interactive").await;
    assert_eq!(
        body,
        envelope(
            "interactive",
            json!({"type":"button",
   "header":{"type":"image","image":{"id":"2762702990552401"}},
   "body":{"text":"Your workshop is tomorrow at 9am."},
   "footer":{"text":"Reply to change it"},
   "action":{"buttons":[
     {"type":"reply","reply":{"id":"keep","title":"Keep"}},
     {"type":"reply","reply":{"id":"change","title":"Change"}},
     {"type":"reply","reply":{"id":"cancel","title":"Cancel"}}]}})
        )
    );
}

/// 3.5, the full example.
#[tokio::test]
async fn list_body_is_exact() {
    let row = |id: &str, title: &str, description: &str| pb::ListRow {
        id: id.into(),
        title: title.into(),
        description: description.into(),
    };
    let interactive = pb::InteractiveContent {
        header: Some(pb::InteractiveHeader {
            header: Some(pb::interactive_header::Header::Text("Delivery".into())),
        }),
        body: "Pick a delivery slot".into(),
        footer: "Times are local".into(),
        action: Some(pb::interactive_content::Action::List(pb::ListAction {
            button: "Slots".into(),
            sections: vec![
                pb::ListSection {
                    title: "Today".into(),
                    rows: vec![
                        row("t18", "18:00-20:00", "Evening, free"),
                        row("t20", "20:00-22:00", "Late, +$2"),
                    ],
                },
                pb::ListSection {
                    title: "Tomorrow".into(),
                    rows: vec![row("m09", "09:00-11:00", "Morning")],
                },
            ],
        })),
    };
    let body = body_of(C::Interactive(interactive), "interactive").await;
    assert_eq!(
        body,
        envelope(
            "interactive",
            json!({"type":"list",
   "header":{"type":"text","text":"Delivery"},
   "body":{"text":"Pick a delivery slot"},
   "footer":{"text":"Times are local"},
   "action":{"button":"Slots","sections":[
     {"title":"Today","rows":[
        {"id":"t18","title":"18:00-20:00","description":"Evening, free"},
        {"id":"t20","title":"20:00-22:00","description":"Late, +$2"}]},
     {"title":"Tomorrow","rows":[
        {"id":"m09","title":"09:00-11:00","description":"Morning"}]}]}})
        )
    );
}

/// 3.6, the full example.
#[tokio::test]
async fn cta_url_body_is_exact() {
    let interactive = pb::InteractiveContent {
        header: Some(pb::InteractiveHeader {
            header: Some(pb::interactive_header::Header::Text(
                "Order 1042 shipped".into(),
            )),
        }),
        body: "Tap below to follow it.".into(),
        footer: "Link valid for 7 days".into(),
        action: Some(pb::interactive_content::Action::CtaUrl(
            pb::CallToActionUrl {
                display_text: "Track parcel".into(),
                url: "https://shop.example/t/1042?k=8f2c".into(),
            },
        )),
    };
    let body = body_of(C::Interactive(interactive), "interactive").await;
    assert_eq!(
        body,
        envelope(
            "interactive",
            json!({"type":"cta_url",
   "header":{"type":"text","text":"Order 1042 shipped"},
   "body":{"text":"Tap below to follow it."},
   "footer":{"text":"Link valid for 7 days"},
   "action":{"name":"cta_url","parameters":{"display_text":"Track parcel","url":"https://shop.example/t/1042?k=8f2c"}}})
        )
    );
}

/// 3.7, a reaction and its removal.
#[tokio::test]
async fn reaction_bodies_are_exact() {
    for emoji in ["\u{1F44D}", ""] {
        let reaction = pb::ReactionContent {
            message_id: "wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBRGQUtFSU4wMDAwMDAwMDAwMDEA".into(),
            emoji: emoji.into(),
        };
        let body = body_of(C::Reaction(reaction), "reaction").await;
        assert_eq!(
            body,
            envelope(
                "reaction",
                json!({"message_id":"wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBRGQUtFSU4wMDAwMDAwMDAwMDEA","emoji":emoji})
            )
        );
    }
}

/// 3.8, the full example: coordinates as JSON numbers.
#[tokio::test]
async fn location_body_is_exact() {
    let location = pb::LocationContent {
        latitude: 19.432608,
        longitude: -99.133209,
        name: "Store Centro".into(),
        address: "Av. Juárez 10, CDMX".into(),
        url: String::new(),
    };
    let body = body_of(C::Location(location), "location").await;
    assert_eq!(
        body,
        envelope(
            "location",
            json!({"latitude":19.432608,"longitude":-99.133209,"name":"Store Centro","address":"Av. Juárez 10, CDMX"})
        )
    );
}

/// 3.9, the full example: `contacts` is an array.
#[tokio::test]
async fn contacts_body_is_exact() {
    let card = pb::ContactCard {
        name: Some(pb::ContactName {
            formatted_name: "Ana María López".into(),
            first_name: "Ana María".into(),
            last_name: "López".into(),
            prefix: "Dr.".into(),
            ..Default::default()
        }),
        org: Some(pb::ContactOrg {
            company: "Clínica Norte".into(),
            department: "Cardiology".into(),
            title: "Head".into(),
        }),
        phones: vec![pb::ContactPhone {
            phone: "+52 55 1234 5678".into(),
            r#type: "WORK".into(),
            wa_id: "5215512345678".into(),
        }],
        emails: vec![pb::ContactEmail {
            email: "ana@clinica.example".into(),
            r#type: "WORK".into(),
        }],
        urls: vec![pb::ContactUrl {
            url: "https://clinica.example".into(),
            r#type: "WORK".into(),
        }],
        addresses: vec![pb::ContactAddress {
            street: "Insurgentes 100".into(),
            city: "CDMX".into(),
            zip: "06700".into(),
            country: "Mexico".into(),
            country_code: "MX".into(),
            r#type: "WORK".into(),
            ..Default::default()
        }],
        birthday: "1980-04-02".into(),
    };
    let body = body_of(
        C::Contacts(pb::ContactsContent {
            contacts: vec![card],
        }),
        "contacts",
    )
    .await;
    assert_eq!(
        body,
        envelope(
            "contacts",
            json!([{
  "name":{"formatted_name":"Ana María López","first_name":"Ana María","last_name":"López","prefix":"Dr."},
  "org":{"company":"Clínica Norte","department":"Cardiology","title":"Head"},
  "phones":[{"phone":"+52 55 1234 5678","type":"WORK","wa_id":"5215512345678"}],
  "emails":[{"email":"ana@clinica.example","type":"WORK"}],
  "urls":[{"url":"https://clinica.example","type":"WORK"}],
  "addresses":[{"street":"Insurgentes 100","city":"CDMX","zip":"06700","country":"Mexico","country_code":"MX","type":"WORK"}],
  "birthday":"1980-04-02"}])
        )
    );
}

/// 2: `context` quotes the message replied to, for any kind.
#[tokio::test]
async fn a_reply_of_any_kind_carries_the_context() {
    let app = spawn_app().await;
    let mut request = send(C::Media(media(
        pb::MediaKind::Sticker,
        "",
        "1908647269898587",
    )));
    request.reply_to_message_id = "wamid.ORIGINAL".into();
    let message = app.outbound.send_message(request).await.unwrap();
    assert_eq!(
        app.kapso.requests()[0].body["context"],
        json!({"message_id": "wamid.ORIGINAL"})
    );
    assert_eq!(message.reply_to_message_id, Wamid::parse("wamid.ORIGINAL"));
}

#[tokio::test]
async fn outside_the_window_only_templates_go_out() {
    let app = spawn_app().await;
    customer_wrote(&app.store, "wamid.OLD", 25 * 60 * 60).await;
    let image = C::Media(media(pb::MediaKind::Image, "", "1479537139650973"));
    let status = status_of(app.outbound.send_message(send(image)).await);
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("template"),
        "{}",
        status.message()
    );
    assert_eq!(app.kapso.calls(), 0);

    let template = C::Template(pb::TemplateContent {
        name: "hello_world".into(),
        language: "en_US".into(),
        ..Default::default()
    });
    let message = app.outbound.send_message(send(template)).await.unwrap();
    assert_eq!(message.message_type, "template");
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn a_keyed_send_of_any_kind_calls_once_and_its_key_covers_the_content() {
    let app = spawn_app().await;
    let location = |latitude| {
        let mut request = send(C::Location(pb::LocationContent {
            latitude,
            longitude: -99.13,
            ..Default::default()
        }));
        request.idempotency_key = "k-location".into();
        request
    };
    let first = app.outbound.send_message(location(19.43)).await.unwrap();
    let again = app.outbound.send_message(location(19.43)).await.unwrap();
    assert_eq!(first.gateway_id, again.gateway_id);
    assert_eq!(app.kapso.calls(), 1);
    let found = app.store.message(&any_id("k-location")).await.unwrap();
    assert_eq!(found.map(|m| m.gateway_id), Some(first.gateway_id.clone()));

    let status = status_of(app.outbound.send_message(location(20.0)).await);
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(app.kapso.calls(), 1);
}

#[tokio::test]
async fn grpc_send_message_returns_the_stored_message_with_its_content() {
    let kapso = super::fake_kapso::FakeKapso::start().await;
    let core = spawn_core(&kapso).await;
    let mut client = core.messaging().await;
    let reaction = pb::ReactionContent {
        message_id: "wamid.A".into(),
        emoji: "\u{1F44D}".into(),
    };
    let response = client
        .send_message(pb::SendMessageRequest {
            to: CONTACT.into(),
            content: Some(C::Reaction(reaction.clone())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let message = response.message.unwrap();
    assert_eq!(message.r#type, "reaction");
    assert_eq!(message.status(), pb::MessageStatus::Sent);
    assert_eq!(
        message.content.and_then(|c| c.kind),
        Some(pb::content::Kind::Reaction(reaction))
    );

    let refused = client
        .send_message(pb::SendMessageRequest {
            to: CONTACT.into(),
            content: Some(C::Interactive(pb::InteractiveContent {
                body: "Pick".into(),
                action: Some(pb::interactive_content::Action::Buttons(
                    pb::ReplyButtons::default(),
                )),
                ..Default::default()
            })),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let missing = client
        .send_message(pb::SendMessageRequest {
            to: CONTACT.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(kapso.calls(), 1);
}
