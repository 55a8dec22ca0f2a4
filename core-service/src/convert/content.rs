//! Typed content read from a stored event's raw JSON (docs/kapso-contract.md,
//! sections 5 and 7). Pure and lenient: Kapso and Meta leave most fields out
//! at times, so a missing field is empty, and a kind this does not know gives
//! no content (the raw JSON is always kept beside it).

use kapso_gateway_proto::v1 as pb;
use pb::content::Kind;
use serde_json::Value;

use crate::model::EventType;

/// What an event's payload says about its message, beyond the stored columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Typed {
    pub content: Option<pb::Content>,
    /// `kapso.origin`: `cloud_api`, `business_app` or `history_sync`.
    pub origin: String,
    /// Meta's errors on the message itself (`unsupported`).
    pub errors: Vec<pb::MetaError>,
}

/// The typed content of a v2 message event; empty for anything else.
pub fn message(payload_json: &str) -> Typed {
    let Ok(payload) = serde_json::from_str::<Value>(payload_json) else {
        return Typed::default();
    };
    let message = &payload["message"];
    Typed {
        content: content(message).map(|kind| pb::Content { kind: Some(kind) }),
        origin: string(&message["kapso"]["origin"]),
        errors: each(&message["errors"], meta_error),
    }
}

/// The facts of a `whatsapp.conversation.*` event; `None` for other events.
pub fn conversation_facts(
    event_type: &EventType,
    payload_json: &str,
) -> Option<pb::ConversationFacts> {
    if !event_type.is_conversation() {
        return None;
    }
    let payload: Value = serde_json::from_str(payload_json).ok()?;
    let since = &payload["since_message"];
    Some(pb::ConversationFacts {
        status: string(&payload["conversation"]["status"]),
        inactivity_minutes: payload["inactivity"]["minutes"]
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0),
        since_message: since.is_object().then(|| pb::SinceMessage {
            id: string(&since["id"]),
            whatsapp_message_id: string(&since["whatsapp_message_id"]),
            direction: string(&since["direction"]),
            created_at: string(&since["created_at"]),
        }),
        reason: string(&payload["reason"]),
    })
}

fn string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn meta_error(e: &Value) -> pb::MetaError {
    pb::MetaError {
        code: e["code"].as_i64().unwrap_or(0),
        title: string(&e["title"]),
        message: string(&e["message"]),
        details: string(&e["error_data"]["details"]),
    }
}

fn content(message: &Value) -> Option<Kind> {
    let kind = message["type"].as_str()?;
    let object = &message[kind];
    Some(match kind {
        "text" => Kind::Text(pb::TextContent {
            body: string(&object["body"]),
            preview_url: false,
        }),
        "image" | "video" | "audio" | "document" | "sticker" => {
            Kind::Media(media(kind, object, &message["kapso"]))
        }
        "location" => Kind::Location(pb::LocationContent {
            latitude: object["latitude"].as_f64().unwrap_or(0.0),
            longitude: object["longitude"].as_f64().unwrap_or(0.0),
            name: string(&object["name"]),
            address: string(&object["address"]),
            url: string(&object["url"]),
        }),
        "contacts" => Kind::Contacts(pb::ContactsContent {
            contacts: each(&message["contacts"], contact_card),
        }),
        "reaction" => Kind::Reaction(pb::ReactionContent {
            message_id: string(&object["message_id"]),
            // Missing or empty: the user removed the reaction.
            emoji: string(&object["emoji"]),
        }),
        "interactive" => Kind::InteractiveReply(interactive_reply(object)),
        "button" => Kind::Button(pb::TemplateButtonReply {
            payload: string(&object["payload"]),
            text: string(&object["text"]),
        }),
        "order" => Kind::Order(pb::OrderContent {
            catalog_id: string(&object["catalog_id"]),
            text: string(&object["text"]),
            items: each(&object["product_items"], order_item),
        }),
        "unsupported" => Kind::Unsupported(pb::UnsupportedContent {
            r#type: string(&object["type"]),
        }),
        "system" => Kind::System(pb::SystemContent {
            body: string(&object["body"]),
            r#type: string(&object["type"]),
            wa_id: string(&object["wa_id"]),
            user_id: string(&object["user_id"]),
        }),
        "template" => Kind::Template(pb::TemplateContent {
            name: string(&object["name"]),
            language: string(&object["language"]["code"]),
            // Echoed components are kept in the raw JSON only.
            components: Vec::new(),
            language_policy: match object["language"]["policy"].as_str() {
                Some("deterministic") => pb::TemplateLanguagePolicy::Deterministic.into(),
                _ => pb::TemplateLanguagePolicy::Unspecified.into(),
            },
        }),
        _ => return None,
    })
}

fn media(kind: &str, object: &Value, kapso: &Value) -> pb::MediaContent {
    let kind = match kind {
        "image" => pb::MediaKind::Image,
        "video" => pb::MediaKind::Video,
        "audio" => pb::MediaKind::Audio,
        "document" => pb::MediaKind::Document,
        _ => pb::MediaKind::Sticker,
    };
    let data = &kapso["media_data"];
    let or = |first: String, second: &Value| {
        if first.is_empty() {
            string(second)
        } else {
            first
        }
    };
    pb::MediaContent {
        kind: kind.into(),
        link: string(&object["link"]),
        id: string(&object["id"]),
        caption: or(
            string(&object["caption"]),
            &kapso["message_type_data"]["caption"],
        ),
        filename: or(string(&object["filename"]), &data["filename"]),
        voice: object["voice"].as_bool().unwrap_or(false),
        mime_type: or(string(&object["mime_type"]), &data["content_type"]),
        sha256: string(&object["sha256"]),
        media_url: or(string(&kapso["media_url"]), &data["url"]),
        size_bytes: data["byte_size"].as_i64().unwrap_or(0),
        transcript: string(&kapso["transcript"]["text"]),
        animated: object["animated"].as_bool().unwrap_or(false),
    }
}

fn interactive_reply(object: &Value) -> pb::InteractiveReply {
    use pb::interactive_reply::Kind as K;
    let (kind, reply) = match object["type"].as_str() {
        Some("button_reply") => (K::ButtonReply, &object["button_reply"]),
        Some("list_reply") => (K::ListReply, &object["list_reply"]),
        _ => (K::Unspecified, &Value::Null),
    };
    pb::InteractiveReply {
        kind: kind.into(),
        id: string(&reply["id"]),
        title: string(&reply["title"]),
        description: string(&reply["description"]),
    }
}

fn order_item(item: &Value) -> pb::OrderItem {
    pb::OrderItem {
        product_retailer_id: string(&item["product_retailer_id"]),
        quantity: item["quantity"].as_i64().unwrap_or(0),
        item_price: item["item_price"].as_f64().unwrap_or(0.0),
        currency: string(&item["currency"]),
    }
}

fn each<T>(value: &Value, f: impl Fn(&Value) -> T) -> Vec<T> {
    value
        .as_array()
        .map(|items| items.iter().map(f).collect())
        .unwrap_or_default()
}

fn contact_card(c: &Value) -> pb::ContactCard {
    let name = &c["name"];
    let org = &c["org"];
    pb::ContactCard {
        name: Some(pb::ContactName {
            formatted_name: string(&name["formatted_name"]),
            first_name: string(&name["first_name"]),
            last_name: string(&name["last_name"]),
            middle_name: string(&name["middle_name"]),
            suffix: string(&name["suffix"]),
            prefix: string(&name["prefix"]),
        }),
        org: org.is_object().then(|| pb::ContactOrg {
            company: string(&org["company"]),
            department: string(&org["department"]),
            title: string(&org["title"]),
        }),
        phones: each(&c["phones"], |p| pb::ContactPhone {
            phone: string(&p["phone"]),
            r#type: string(&p["type"]),
            wa_id: string(&p["wa_id"]),
        }),
        emails: each(&c["emails"], |e| pb::ContactEmail {
            email: string(&e["email"]),
            r#type: string(&e["type"]),
        }),
        urls: each(&c["urls"], |u| pb::ContactUrl {
            url: string(&u["url"]),
            r#type: string(&u["type"]),
        }),
        addresses: each(&c["addresses"], |a| pb::ContactAddress {
            street: string(&a["street"]),
            city: string(&a["city"]),
            state: string(&a["state"]),
            zip: string(&a["zip"]),
            country: string(&a["country"]),
            country_code: string(&a["country_code"]),
            r#type: string(&a["type"]),
        }),
        birthday: string(&c["birthday"]),
    }
}

#[cfg(test)]
mod tests;
