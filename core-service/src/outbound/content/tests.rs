use pb::interactive_content::Action as A;
use pb::send_message_request::Content as C;

use super::*;

fn invalid(content: C) -> String {
    let err = parse(Some(content)).expect_err("must be refused");
    assert!(matches!(err, OutboundError::Invalid { .. }), "{err}");
    err.to_string()
}

fn image(link: &str, id: &str) -> pb::MediaContent {
    pb::MediaContent {
        kind: pb::MediaKind::Image.into(),
        link: link.into(),
        id: id.into(),
        ..Default::default()
    }
}

fn buttons(n: usize) -> pb::InteractiveContent {
    pb::InteractiveContent {
        body: "Confirm?".into(),
        action: Some(A::Buttons(pb::ReplyButtons {
            buttons: (0..n)
                .map(|i| pb::ReplyButton {
                    id: format!("b{i}"),
                    title: format!("Option {i}"),
                })
                .collect(),
        })),
        ..Default::default()
    }
}

fn list(rows_per_section: &[usize]) -> pb::InteractiveContent {
    let mut n = 0;
    let sections = rows_per_section
        .iter()
        .map(|&rows| pb::ListSection {
            title: "Today".into(),
            rows: (0..rows)
                .map(|_| {
                    n += 1;
                    pb::ListRow {
                        id: format!("r{n}"),
                        title: format!("Row {n}"),
                        ..Default::default()
                    }
                })
                .collect(),
        })
        .collect();
    pb::InteractiveContent {
        body: "Pick one".into(),
        action: Some(A::List(pb::ListAction {
            button: "Slots".into(),
            sections,
        })),
        ..Default::default()
    }
}

#[test]
fn content_is_required() {
    assert!(parse(None).is_err());
}

#[test]
fn media_takes_exactly_one_of_link_and_id() {
    assert!(parse(Some(C::Media(image("https://cdn.example/p.jpg", "")))).is_ok());
    assert!(parse(Some(C::Media(image("", "1479537139650973")))).is_ok());
    assert!(invalid(C::Media(image("https://cdn.example/p.jpg", "147"))).contains("exactly one"));
    assert!(invalid(C::Media(image("", ""))).contains("exactly one"));
    assert!(invalid(C::Media(image("ftp://x/p.jpg", ""))).contains("http"));
}

#[test]
fn media_needs_a_kind() {
    let mut m = image("", "1");
    m.kind = pb::MediaKind::Unspecified.into();
    invalid(C::Media(m));
}

#[test]
fn audio_and_stickers_take_no_caption() {
    for kind in [pb::MediaKind::Audio, pb::MediaKind::Sticker] {
        let m = pb::MediaContent {
            kind: kind.into(),
            id: "1".into(),
            caption: "hi".into(),
            ..Default::default()
        };
        assert!(invalid(C::Media(m)).contains("caption"));
    }
    let mut m = image("", "1");
    m.caption = "x".repeat(1025);
    invalid(C::Media(m));
    let mut m = image("", "1");
    m.filename = "a.jpg".into();
    assert!(invalid(C::Media(m)).contains("filename"));
}

#[test]
fn reply_buttons_are_one_to_three_with_short_unique_titles() {
    assert!(parse(Some(C::Interactive(buttons(3)))).is_ok());
    invalid(C::Interactive(buttons(0)));
    assert!(invalid(C::Interactive(buttons(4))).contains("1 to 3"));
    let mut long = buttons(1);
    if let Some(A::Buttons(b)) = &mut long.action {
        b.buttons[0].title = "x".repeat(21);
    }
    assert!(invalid(C::Interactive(long)).contains("20"));
    let mut twins = buttons(2);
    if let Some(A::Buttons(b)) = &mut twins.action {
        b.buttons[1].title = b.buttons[0].title.clone();
    }
    assert!(invalid(C::Interactive(twins)).contains("unique"));
}

#[test]
fn interactive_needs_a_body_and_an_action() {
    let mut no_body = buttons(1);
    no_body.body.clear();
    invalid(C::Interactive(no_body));
    let mut no_action = buttons(1);
    no_action.action = None;
    invalid(C::Interactive(no_action));
    let mut footer = buttons(1);
    footer.footer = "x".repeat(61);
    invalid(C::Interactive(footer));
}

#[test]
fn lists_hold_ten_rows_across_sections_and_a_text_header_only() {
    assert!(parse(Some(C::Interactive(list(&[5, 5])))).is_ok());
    assert!(invalid(C::Interactive(list(&[6, 5]))).contains("10"));
    invalid(C::Interactive(list(&[0])));
    invalid(C::Interactive(list(&[1; 11])));
    let mut untitled = list(&[1, 1]);
    if let Some(A::List(l)) = &mut untitled.action {
        l.sections[1].title.clear();
    }
    invalid(C::Interactive(untitled));
    let mut media_header = list(&[1]);
    media_header.header = Some(pb::InteractiveHeader {
        header: Some(pb::interactive_header::Header::Media(image("", "1"))),
    });
    assert!(invalid(C::Interactive(media_header)).contains("text header"));
}

#[test]
fn cta_url_needs_short_text_and_an_http_url() {
    let cta = |text: &str, url: &str| pb::InteractiveContent {
        body: "Track".into(),
        action: Some(A::CtaUrl(pb::CallToActionUrl {
            display_text: text.into(),
            url: url.into(),
        })),
        ..Default::default()
    };
    assert!(
        parse(Some(C::Interactive(cta(
            "Track",
            "https://shop.example/t/1"
        ))))
        .is_ok()
    );
    invalid(C::Interactive(cta(&"x".repeat(21), "https://shop.example")));
    invalid(C::Interactive(cta("Track", "shop.example")));
}

#[test]
fn a_reaction_is_one_emoji_or_empty() {
    let reaction = |emoji: &str| {
        C::Reaction(pb::ReactionContent {
            message_id: "wamid.A".into(),
            emoji: emoji.into(),
        })
    };
    for ok in ["👍", "", "👍🏽", "❤️"] {
        assert!(parse(Some(reaction(ok))).is_ok(), "{ok}");
    }
    for bad in ["ok", "👍 ", "a👍"] {
        invalid(reaction(bad));
    }
    invalid(C::Reaction(pb::ReactionContent::default()));
}

#[test]
fn coordinates_stay_in_range() {
    let at = |latitude, longitude| {
        C::Location(pb::LocationContent {
            latitude,
            longitude,
            ..Default::default()
        })
    };
    assert!(parse(Some(at(19.43, -99.13))).is_ok());
    assert!(invalid(at(90.5, 0.0)).contains("latitude"));
    assert!(invalid(at(0.0, -180.5)).contains("longitude"));
    invalid(at(f64::NAN, 0.0));
}

#[test]
fn contact_cards_need_a_formatted_name() {
    invalid(C::Contacts(pb::ContactsContent::default()));
    invalid(C::Contacts(pb::ContactsContent {
        contacts: vec![pb::ContactCard::default()],
    }));
    let card = pb::ContactCard {
        name: Some(pb::ContactName {
            formatted_name: "Support".into(),
            ..Default::default()
        }),
        birthday: "02/04/1980".into(),
        ..Default::default()
    };
    assert!(
        invalid(C::Contacts(pb::ContactsContent {
            contacts: vec![card]
        }))
        .contains("YYYY-MM-DD")
    );
}

#[test]
fn template_parameters_fit_their_component() {
    use pb::template_parameter::Value as V;
    let component = |kind: pb::TemplateComponentType, button: pb::TemplateButtonType, value| {
        C::Template(pb::TemplateContent {
            name: "order_shipped".into(),
            language: "es_MX".into(),
            language_policy: 0,
            components: vec![pb::TemplateComponent {
                r#type: kind.into(),
                button_type: button.into(),
                index: 0,
                parameters: vec![pb::TemplateParameter {
                    parameter_name: String::new(),
                    value: Some(value),
                }],
            }],
        })
    };
    use pb::TemplateButtonType as B;
    use pb::TemplateComponentType as T;
    assert!(
        parse(Some(component(
            T::Body,
            B::Unspecified,
            V::Text("Ana".into())
        )))
        .is_ok()
    );
    assert!(parse(Some(component(T::Button, B::Url, V::Text("ORD-1".into())))).is_ok());
    assert!(
        parse(Some(component(
            T::Button,
            B::QuickReply,
            V::Payload("STOP".into())
        )))
        .is_ok()
    );
    invalid(component(T::Button, B::QuickReply, V::Text("STOP".into())));
    invalid(component(
        T::Button,
        B::Unspecified,
        V::Payload("STOP".into()),
    ));
    invalid(component(T::Body, B::Unspecified, V::Media(image("", "1"))));
    invalid(component(
        T::Unspecified,
        B::Unspecified,
        V::Text("x".into()),
    ));
    let mut bad_language = component(T::Body, B::Unspecified, V::Text("Ana".into()));
    if let C::Template(t) = &mut bad_language {
        t.language = "es MX".into();
    }
    invalid(bad_language);
}

#[test]
fn template_extras_fit_only_their_component() {
    use pb::TemplateButtonType as B;
    use pb::TemplateComponentType as T;
    use pb::template_parameter::Value as V;
    let component = |kind: T, button: B, value| {
        C::Template(pb::TemplateContent {
            name: "store_offer".into(),
            language: "es".into(),
            language_policy: pb::TemplateLanguagePolicy::Deterministic.into(),
            components: vec![pb::TemplateComponent {
                r#type: kind.into(),
                button_type: button.into(),
                index: 0,
                parameters: vec![pb::TemplateParameter {
                    parameter_name: String::new(),
                    value: Some(value),
                }],
            }],
        })
    };
    let pin = |latitude| {
        V::Location(pb::LocationContent {
            latitude,
            longitude: -70.66,
            ..Default::default()
        })
    };
    let flow = |data: &str| {
        V::Action(pb::TemplateFlowAction {
            flow_token: String::new(),
            flow_action_data_json: data.into(),
        })
    };
    assert!(parse(Some(component(T::Header, B::Unspecified, pin(-33.45)))).is_ok());
    assert!(
        parse(Some(component(
            T::Button,
            B::CopyCode,
            V::CouponCode("SAVE20".into())
        )))
        .is_ok()
    );
    assert!(parse(Some(component(T::Button, B::Flow, flow("")))).is_ok());
    assert!(parse(Some(component(T::Button, B::Flow, flow(r#"{"a":1}"#)))).is_ok());

    invalid(component(T::Body, B::Unspecified, pin(-33.45)));
    invalid(component(T::Header, B::Unspecified, pin(91.0)));
    for code in ["SAVE-20", "", "SIXTEENCHARSLONG"] {
        invalid(component(
            T::Button,
            B::CopyCode,
            V::CouponCode(code.into()),
        ));
    }
    invalid(component(T::Button, B::Url, V::CouponCode("SAVE20".into())));
    invalid(component(T::Button, B::CopyCode, V::Text("SAVE20".into())));
    invalid(component(T::Button, B::Flow, flow("[1]")));
    invalid(component(T::Button, B::Flow, flow("{not json")));
    invalid(component(T::Button, B::QuickReply, flow("")));
}
