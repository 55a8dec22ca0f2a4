//! The JSON rendering of a message's typed [`Content`](pb::Content), in the
//! shape of the rest of [`json`](super): the proto's snake_case names, enums
//! by their proto names, every field present.
//!
//! A oneof renders as the proto3 JSON mapping does: one key, the name of its
//! set case, so `content` is `{"media": {...}}` and a template parameter is
//! `{"parameter_name": "", "text": "Ana"}`. A oneof with no case set
//! renders no key (and `content` with no kind is `{}`).

use kapso_gateway_proto::v1 as pb;
use serde_json::{Map, Value, json};

/// `content` as a JSON object with one key, its kind.
pub(super) fn content(content: &pb::Content) -> Value {
    use pb::content::Kind;
    let (name, value) = match &content.kind {
        None => return json!({}),
        Some(Kind::Text(text)) => ("text", self::text(text)),
        Some(Kind::Template(template)) => ("template", self::template(template)),
        Some(Kind::Media(media)) => ("media", self::media(media)),
        Some(Kind::Interactive(interactive)) => ("interactive", self::interactive(interactive)),
        Some(Kind::Reaction(reaction)) => ("reaction", self::reaction(reaction)),
        Some(Kind::Location(location)) => ("location", self::location(location)),
        Some(Kind::Contacts(contacts)) => ("contacts", self::contacts(contacts)),
        Some(Kind::InteractiveReply(reply)) => ("interactive_reply", interactive_reply(reply)),
        Some(Kind::Button(button)) => ("button", template_button_reply(button)),
        Some(Kind::Order(order)) => ("order", self::order(order)),
        Some(Kind::Unsupported(unsupported)) => {
            ("unsupported", json!({ "type": unsupported.r#type }))
        }
        Some(Kind::System(system)) => ("system", self::system(system)),
    };
    json!({ name: value })
}

/// `object` with the one key of a set oneof case added.
fn with_case(mut object: Value, case: Option<(&str, Value)>) -> Value {
    if let (Value::Object(map), Some((name, value))) = (&mut object, case) {
        map.insert(name.to_owned(), value);
    }
    object
}

fn list<T>(items: &[T], render: fn(&T) -> Value) -> Value {
    Value::Array(items.iter().map(render).collect())
}

fn text(text: &pb::TextContent) -> Value {
    json!({ "body": text.body, "preview_url": text.preview_url })
}

fn media(media: &pb::MediaContent) -> Value {
    json!({
        "kind": media.kind().as_str_name(),
        "link": media.link,
        "id": media.id,
        "caption": media.caption,
        "filename": media.filename,
        "voice": media.voice,
        "mime_type": media.mime_type,
        "sha256": media.sha256,
        "media_url": media.media_url,
        "size_bytes": media.size_bytes,
        "transcript": media.transcript,
        "animated": media.animated,
    })
}

fn template(template: &pb::TemplateContent) -> Value {
    json!({
        "name": template.name,
        "language": template.language,
        "components": list(&template.components, template_component),
        "language_policy": template.language_policy().as_str_name(),
    })
}

fn template_component(component: &pb::TemplateComponent) -> Value {
    json!({
        "type": component.r#type().as_str_name(),
        "button_type": component.button_type().as_str_name(),
        "index": component.index,
        "parameters": list(&component.parameters, template_parameter),
    })
}

fn template_parameter(parameter: &pb::TemplateParameter) -> Value {
    use pb::template_parameter::Value as Param;
    let case = parameter.value.as_ref().map(|value| match value {
        Param::Text(text) => ("text", json!(text)),
        Param::Currency(currency) => (
            "currency",
            json!({
                "fallback_value": currency.fallback_value,
                "code": currency.code,
                "amount_1000": currency.amount_1000,
            }),
        ),
        Param::DateTime(date_time) => (
            "date_time",
            json!({ "fallback_value": date_time.fallback_value }),
        ),
        Param::Media(media) => ("media", self::media(media)),
        Param::Payload(payload) => ("payload", json!(payload)),
        Param::Location(location) => ("location", self::location(location)),
        Param::CouponCode(code) => ("coupon_code", json!(code)),
        Param::Action(action) => (
            "action",
            json!({
                "flow_token": action.flow_token,
                "flow_action_data_json": action.flow_action_data_json,
            }),
        ),
    });
    with_case(json!({ "parameter_name": parameter.parameter_name }), case)
}

fn interactive(interactive: &pb::InteractiveContent) -> Value {
    use pb::interactive_content::Action;
    let case = interactive.action.as_ref().map(|action| match action {
        Action::Buttons(buttons) => (
            "buttons",
            json!({ "buttons": list(&buttons.buttons, reply_button) }),
        ),
        Action::List(list_action) => (
            "list",
            json!({
                "button": list_action.button,
                "sections": list(&list_action.sections, list_section),
            }),
        ),
        Action::CtaUrl(cta) => (
            "cta_url",
            json!({ "display_text": cta.display_text, "url": cta.url }),
        ),
    });
    with_case(
        json!({
            "header": interactive.header.as_ref().map(interactive_header),
            "body": interactive.body,
            "footer": interactive.footer,
        }),
        case,
    )
}

fn interactive_header(header: &pb::InteractiveHeader) -> Value {
    use pb::interactive_header::Header;
    let case = header.header.as_ref().map(|header| match header {
        Header::Text(text) => ("text", json!(text)),
        Header::Media(media) => ("media", self::media(media)),
    });
    with_case(Value::Object(Map::new()), case)
}

fn reply_button(button: &pb::ReplyButton) -> Value {
    json!({ "id": button.id, "title": button.title })
}

fn list_section(section: &pb::ListSection) -> Value {
    json!({ "title": section.title, "rows": list(&section.rows, list_row) })
}

fn list_row(row: &pb::ListRow) -> Value {
    json!({ "id": row.id, "title": row.title, "description": row.description })
}

fn reaction(reaction: &pb::ReactionContent) -> Value {
    json!({ "message_id": reaction.message_id, "emoji": reaction.emoji })
}

fn location(location: &pb::LocationContent) -> Value {
    json!({
        "latitude": location.latitude,
        "longitude": location.longitude,
        "name": location.name,
        "address": location.address,
        "url": location.url,
    })
}

fn contacts(contacts: &pb::ContactsContent) -> Value {
    json!({ "contacts": list(&contacts.contacts, contact_card) })
}

fn contact_card(card: &pb::ContactCard) -> Value {
    json!({
        "name": card.name.as_ref().map(|name| json!({
            "formatted_name": name.formatted_name,
            "first_name": name.first_name,
            "last_name": name.last_name,
            "middle_name": name.middle_name,
            "suffix": name.suffix,
            "prefix": name.prefix,
        })),
        "org": card.org.as_ref().map(|org| json!({
            "company": org.company,
            "department": org.department,
            "title": org.title,
        })),
        "phones": list(&card.phones, |phone| json!({
            "phone": phone.phone,
            "type": phone.r#type,
            "wa_id": phone.wa_id,
        })),
        "emails": list(&card.emails, |email| json!({ "email": email.email, "type": email.r#type })),
        "urls": list(&card.urls, |url| json!({ "url": url.url, "type": url.r#type })),
        "addresses": list(&card.addresses, |address| json!({
            "street": address.street,
            "city": address.city,
            "state": address.state,
            "zip": address.zip,
            "country": address.country,
            "country_code": address.country_code,
            "type": address.r#type,
        })),
        "birthday": card.birthday,
    })
}

fn interactive_reply(reply: &pb::InteractiveReply) -> Value {
    json!({
        "kind": reply.kind().as_str_name(),
        "id": reply.id,
        "title": reply.title,
        "description": reply.description,
    })
}

fn template_button_reply(button: &pb::TemplateButtonReply) -> Value {
    json!({ "payload": button.payload, "text": button.text })
}

fn order(order: &pb::OrderContent) -> Value {
    json!({
        "catalog_id": order.catalog_id,
        "text": order.text,
        "items": list(&order.items, |item| json!({
            "product_retailer_id": item.product_retailer_id,
            "quantity": item.quantity,
            "item_price": item.item_price,
            "currency": item.currency,
        })),
    })
}

fn system(system: &pb::SystemContent) -> Value {
    json!({
        "body": system.body,
        "type": system.r#type,
        "wa_id": system.wa_id,
        "user_id": system.user_id,
    })
}

#[cfg(test)]
mod tests;
