//! The JSON object each kind of content becomes, exactly as Kapso's proxy takes it.

use serde_json::{Map, Value, json};

use super::{
    Action, ButtonType, Content, Header, Interactive, Media, MediaSource, ParameterValue, Section,
    Template, TemplateComponent, TemplateParameter, TemplatePart,
};

impl Content {
    /// The object (an array for contacts) named after the `type`, exactly as sent.
    pub fn wire_object(&self) -> Value {
        match self {
            Content::Text(t) => json!({"body": t.body, "preview_url": t.preview_url}),
            Content::Template(t) => template_json(t),
            Content::Media(m) => media_json(m),
            Content::Interactive(i) => interactive_json(i),
            Content::Reaction(r) => json!({"message_id": r.message_id, "emoji": r.emoji}),
            Content::Location(l) => {
                let mut o = json!({"latitude": l.latitude, "longitude": l.longitude});
                insert_some(&mut o, "name", &l.name);
                insert_some(&mut o, "address", &l.address);
                o
            }
            Content::Contacts(cards) => serde_json::to_value(cards).unwrap_or(Value::Null),
        }
    }
}

fn insert_some(object: &mut Value, key: &str, value: &Option<String>) {
    if let (Some(map), Some(value)) = (object.as_object_mut(), value) {
        map.insert(key.to_owned(), Value::String(value.clone()));
    }
}

fn source_json(source: &MediaSource) -> Value {
    match source {
        MediaSource::Link(link) => json!({"link": link}),
        MediaSource::Id(id) => json!({"id": id}),
    }
}

fn media_json(m: &Media) -> Value {
    let mut o = source_json(&m.source);
    insert_some(&mut o, "caption", &m.caption);
    insert_some(&mut o, "filename", &m.filename);
    if m.voice {
        o["voice"] = Value::Bool(true);
    }
    o
}

fn template_json(t: &Template) -> Value {
    let mut o = json!({"name": t.name, "language": {"code": t.language}});
    if t.deterministic_language {
        o["language"]["policy"] = "deterministic".into();
    }
    if !t.components.is_empty() {
        let components: Vec<Value> = t.components.iter().map(component_json).collect();
        o["components"] = Value::Array(components);
    }
    o
}

fn component_json(c: &TemplateComponent) -> Value {
    let mut o = Map::new();
    match c.part {
        TemplatePart::Header => {
            o.insert("type".into(), "header".into());
        }
        TemplatePart::Body => {
            o.insert("type".into(), "body".into());
        }
        TemplatePart::Button { sub_type, index } => {
            o.insert("type".into(), "button".into());
            let sub_type = match sub_type {
                ButtonType::QuickReply => "quick_reply",
                ButtonType::Url => "url",
                ButtonType::CopyCode => "copy_code",
                ButtonType::Flow => "flow",
            };
            o.insert("sub_type".into(), sub_type.into());
            // Meta takes the index as a string or a number; its own examples use strings.
            o.insert("index".into(), index.to_string().into());
        }
    }
    let parameters: Vec<Value> = c.parameters.iter().map(parameter_json).collect();
    o.insert("parameters".into(), Value::Array(parameters));
    Value::Object(o)
}

fn parameter_json(p: &TemplateParameter) -> Value {
    let mut o = match &p.value {
        ParameterValue::Text(text) => json!({"type": "text", "text": text}),
        ParameterValue::Currency {
            fallback_value,
            code,
            amount_1000,
        } => json!({"type": "currency", "currency": {
            "fallback_value": fallback_value, "code": code, "amount_1000": amount_1000}}),
        ParameterValue::DateTime { fallback_value } => {
            json!({"type": "date_time", "date_time": {"fallback_value": fallback_value}})
        }
        ParameterValue::Media(kind, source) => {
            json!({"type": kind.as_str(), kind.as_str(): source_json(source)})
        }
        ParameterValue::Payload(payload) => json!({"type": "payload", "payload": payload}),
        // Meta's template examples write the coordinates as strings.
        ParameterValue::Location(l) => {
            let mut location = json!({
                "latitude": l.latitude.to_string(),
                "longitude": l.longitude.to_string(),
            });
            insert_some(&mut location, "name", &l.name);
            insert_some(&mut location, "address", &l.address);
            json!({"type": "location", "location": location})
        }
        ParameterValue::CouponCode(code) => json!({"type": "coupon_code", "coupon_code": code}),
        ParameterValue::FlowAction { token, data } => {
            let mut action = json!({});
            insert_some(&mut action, "flow_token", token);
            if let Some(data) = data {
                action["flow_action_data"] = Value::Object(data.clone());
            }
            json!({"type": "action", "action": action})
        }
    };
    insert_some(&mut o, "parameter_name", &p.name);
    o
}

fn interactive_json(i: &Interactive) -> Value {
    let (kind, action) = match &i.action {
        Action::Buttons(buttons) => {
            let buttons: Vec<Value> = buttons
                .iter()
                .map(|(id, title)| json!({"type": "reply", "reply": {"id": id, "title": title}}))
                .collect();
            ("button", json!({"buttons": buttons}))
        }
        Action::List { button, sections } => {
            let sections: Vec<Value> = sections.iter().map(section_json).collect();
            ("list", json!({"button": button, "sections": sections}))
        }
        Action::CtaUrl { display_text, url } => (
            "cta_url",
            json!({"name": "cta_url", "parameters": {"display_text": display_text, "url": url}}),
        ),
    };
    let mut o = json!({"type": kind, "body": {"text": i.body}, "action": action});
    match &i.header {
        Some(Header::Text(text)) => o["header"] = json!({"type": "text", "text": text}),
        Some(Header::Media(kind, source)) => {
            o["header"] = json!({"type": kind.as_str(), kind.as_str(): source_json(source)});
        }
        None => {}
    }
    if let Some(footer) = &i.footer {
        o["footer"] = json!({"text": footer});
    }
    o
}

fn section_json(s: &Section) -> Value {
    let rows: Vec<Value> = s
        .rows
        .iter()
        .map(|r| {
            let mut row = json!({"id": r.id, "title": r.title});
            insert_some(&mut row, "description", &r.description);
            row
        })
        .collect();
    let mut o = json!({"rows": rows});
    insert_some(&mut o, "title", &s.title);
    o
}
