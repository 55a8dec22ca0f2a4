//! Templates: name, language and the values of each component (docs/kapso-contract.md, 3.2).

use kapso_gateway_proto::v1 as pb;

use super::{Checked, header_media, location, required};
use crate::kapso_api::content::{
    ButtonType, ParameterValue, Template, TemplateComponent, TemplateParameter, TemplatePart,
};
use crate::outbound::OutboundError;
use crate::outbound::request::MAX_TEXT_CHARS;

const MAX_TEMPLATE_NAME: usize = 512;

pub(super) fn template(t: pb::TemplateContent) -> Checked<Template> {
    let deterministic_language = t.language_policy() == pb::TemplateLanguagePolicy::Deterministic;
    let name = required("template.name", t.name, MAX_TEMPLATE_NAME)?;
    let language = required("template.language", t.language, 16)?;
    if !language
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(OutboundError::invalid(
            "template.language",
            "must be a language code such as es or en_US",
        ));
    }
    let components = t
        .components
        .into_iter()
        .map(component)
        .collect::<Checked<Vec<_>>>()?;
    Ok(Template {
        name,
        language,
        deterministic_language,
        components,
    })
}

fn component(c: pb::TemplateComponent) -> Checked<TemplateComponent> {
    let part = match c.r#type() {
        pb::TemplateComponentType::Header => TemplatePart::Header,
        pb::TemplateComponentType::Body => TemplatePart::Body,
        pb::TemplateComponentType::Button => TemplatePart::Button {
            sub_type: match c.button_type() {
                pb::TemplateButtonType::QuickReply => ButtonType::QuickReply,
                pb::TemplateButtonType::Url => ButtonType::Url,
                pb::TemplateButtonType::CopyCode => ButtonType::CopyCode,
                pb::TemplateButtonType::Flow => ButtonType::Flow,
                pb::TemplateButtonType::Unspecified => {
                    return Err(OutboundError::invalid(
                        "template.components.button_type",
                        "a button component must say QUICK_REPLY, URL, COPY_CODE or FLOW",
                    ));
                }
            },
            index: c.index,
        },
        pb::TemplateComponentType::Unspecified => {
            return Err(OutboundError::invalid(
                "template.components.type",
                "must be HEADER, BODY or BUTTON",
            ));
        }
    };
    let parameters = c
        .parameters
        .into_iter()
        .map(|p| parameter(part, p))
        .collect::<Checked<Vec<_>>>()?;
    if part == TemplatePart::Header && parameters.len() > 1 {
        return Err(OutboundError::invalid(
            "template.components.parameters",
            "a header takes one parameter at most",
        ));
    }
    if matches!(part, TemplatePart::Button { .. }) && parameters.len() != 1 {
        return Err(OutboundError::invalid(
            "template.components.parameters",
            "a button takes exactly one parameter",
        ));
    }
    Ok(TemplateComponent { part, parameters })
}

fn parameter(part: TemplatePart, p: pb::TemplateParameter) -> Checked<TemplateParameter> {
    use pb::template_parameter::Value as V;
    const FIELD: &str = "template.components.parameters";
    let value = match (part, p.value) {
        (_, None) => return Err(OutboundError::invalid(FIELD, "a parameter needs a value")),
        (
            TemplatePart::Header
            | TemplatePart::Body
            | TemplatePart::Button {
                sub_type: ButtonType::Url,
                ..
            },
            Some(V::Text(text)),
        ) => ParameterValue::Text(required(FIELD, text, MAX_TEXT_CHARS)?),
        (TemplatePart::Body, Some(V::Currency(c))) => ParameterValue::Currency {
            fallback_value: required(FIELD, c.fallback_value, MAX_TEXT_CHARS)?,
            code: currency_code(c.code)?,
            amount_1000: c.amount_1000,
        },
        (TemplatePart::Body, Some(V::DateTime(d))) => ParameterValue::DateTime {
            fallback_value: required(FIELD, d.fallback_value, MAX_TEXT_CHARS)?,
        },
        (TemplatePart::Header, Some(V::Media(m))) => {
            let (kind, source) = header_media(FIELD, m)?;
            ParameterValue::Media(kind, source)
        }
        (
            TemplatePart::Button {
                sub_type: ButtonType::QuickReply,
                ..
            },
            Some(V::Payload(payload)),
        ) => ParameterValue::Payload(required(FIELD, payload, MAX_TEXT_CHARS)?),
        (TemplatePart::Header, Some(V::Location(l))) => ParameterValue::Location(location(l)?),
        (
            TemplatePart::Button {
                sub_type: ButtonType::CopyCode,
                ..
            },
            Some(V::CouponCode(code)),
        ) => ParameterValue::CouponCode(coupon_code(code)?),
        (
            TemplatePart::Button {
                sub_type: ButtonType::Flow,
                ..
            },
            Some(V::Action(action)),
        ) => flow_action(action)?,
        (part, Some(_)) => {
            return Err(OutboundError::invalid(
                FIELD,
                format!(
                    "this parameter type does not fit a {} component (header: text, media or location; body: text, currency, date_time; URL button: text; quick reply: payload; copy code: coupon_code; flow: action)",
                    match part {
                        TemplatePart::Header => "header",
                        TemplatePart::Body => "body",
                        TemplatePart::Button { .. } => "button",
                    }
                ),
            ));
        }
    };
    Ok(TemplateParameter {
        name: (!p.parameter_name.is_empty()).then_some(p.parameter_name),
        value,
    })
}

/// Longest coupon code a copy-code button takes (Meta's limit).
const MAX_COUPON_CODE: usize = 15;
/// Longest flow token taken: an opaque id, not a payload.
const MAX_FLOW_TOKEN: usize = 1024;

/// Letters and digits only, as Meta takes them.
fn coupon_code(code: String) -> Checked<String> {
    let fits = (1..=MAX_COUPON_CODE).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric());
    if fits {
        Ok(code)
    } else {
        Err(OutboundError::invalid(
            "template.components.parameters.coupon_code",
            format!("must be 1 to {MAX_COUPON_CODE} letters and digits"),
        ))
    }
}

/// A flow button's token (optional) and first-screen data (a JSON object, optional).
fn flow_action(action: pb::TemplateFlowAction) -> Checked<ParameterValue> {
    const FIELD: &str = "template.components.parameters.action";
    let token = match action.flow_token.as_str() {
        "" => None,
        token => Some(required(FIELD, token.to_owned(), MAX_FLOW_TOKEN)?),
    };
    let data = match action.flow_action_data_json.trim() {
        "" => None,
        json => match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::Object(data)) => Some(data),
            _ => {
                return Err(OutboundError::invalid(
                    FIELD,
                    "flow_action_data_json must be a JSON object",
                ));
            }
        },
    };
    Ok(ParameterValue::FlowAction { token, data })
}

fn currency_code(code: String) -> Checked<String> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(OutboundError::invalid(
            "template.components.parameters.currency.code",
            "must be an ISO 4217 code such as MXN",
        ))
    }
}
