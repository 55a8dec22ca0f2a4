//! Reply buttons, lists and call-to-action URLs (docs/kapso-contract.md, 3.4 to 3.6).

use std::collections::HashSet;

use kapso_gateway_proto::v1 as pb;

use super::{Checked, MAX_BUTTON_ID, header_media, http_url, optional, required};
use crate::kapso_api::content::{Action, Header, Interactive, Row, Section};
use crate::outbound::OutboundError;
use crate::outbound::request::MAX_TEXT_CHARS;

const MAX_HEADER_TEXT: usize = 60;
const MAX_FOOTER: usize = 60;
const MAX_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;
/// Body of reply-button and call-to-action messages; a list's body takes [`MAX_TEXT_CHARS`].
const MAX_INTERACTIVE_BODY: usize = 1024;
const MAX_SECTIONS: usize = 10;
/// Rows across all sections together.
const MAX_ROWS: usize = 10;
const MAX_SECTION_TITLE: usize = 24;
const MAX_ROW_ID: usize = 200;
const MAX_ROW_TITLE: usize = 24;
const MAX_ROW_DESCRIPTION: usize = 72;
const MAX_LIST_BUTTON: usize = 20;
const MAX_CTA_TEXT: usize = 20;

pub(super) fn interactive(i: pb::InteractiveContent) -> Checked<Interactive> {
    use pb::interactive_content::Action as A;
    use pb::interactive_header::Header as H;
    let is_list = matches!(i.action, Some(A::List(_)));
    let header = match i.header.and_then(|h| h.header) {
        None => None,
        Some(H::Text(text)) => Some(Header::Text(required(
            "interactive.header.text",
            text,
            MAX_HEADER_TEXT,
        )?)),
        Some(H::Media(_)) if is_list => {
            return Err(OutboundError::invalid(
                "interactive.header",
                "a list takes a text header only",
            ));
        }
        Some(H::Media(m)) => {
            let (kind, source) = header_media("interactive.header.media", m)?;
            Some(Header::Media(kind, source))
        }
    };
    let max_body = if is_list {
        MAX_TEXT_CHARS
    } else {
        MAX_INTERACTIVE_BODY
    };
    let body = required("interactive.body", i.body, max_body)?;
    let footer = optional("interactive.footer", i.footer, MAX_FOOTER)?;
    let action = match i.action {
        None => {
            return Err(OutboundError::invalid(
                "interactive",
                "one of buttons, list or cta_url is required",
            ));
        }
        Some(A::Buttons(b)) => reply_buttons(b)?,
        Some(A::List(l)) => list(l)?,
        Some(A::CtaUrl(c)) => Action::CtaUrl {
            display_text: required(
                "interactive.cta_url.display_text",
                c.display_text,
                MAX_CTA_TEXT,
            )?,
            url: http_url("interactive.cta_url.url", c.url)?,
        },
    };
    Ok(Interactive {
        header,
        body,
        footer,
        action,
    })
}

fn reply_buttons(b: pb::ReplyButtons) -> Checked<Action> {
    if b.buttons.is_empty() || b.buttons.len() > MAX_BUTTONS {
        return Err(OutboundError::invalid(
            "interactive.buttons",
            format!(
                "{} buttons; WhatsApp takes 1 to {MAX_BUTTONS}",
                b.buttons.len()
            ),
        ));
    }
    let mut ids = HashSet::new();
    let mut titles = HashSet::new();
    let mut buttons = Vec::with_capacity(b.buttons.len());
    for button in b.buttons {
        let id = required("interactive.buttons.id", button.id, MAX_BUTTON_ID)?;
        let title = required("interactive.buttons.title", button.title, MAX_BUTTON_TITLE)?;
        if !ids.insert(id.clone()) || !titles.insert(title.clone()) {
            return Err(OutboundError::invalid(
                "interactive.buttons",
                "button ids and titles must be unique",
            ));
        }
        buttons.push((id, title));
    }
    Ok(Action::Buttons(buttons))
}

fn list(l: pb::ListAction) -> Checked<Action> {
    let button = required("interactive.list.button", l.button, MAX_LIST_BUTTON)?;
    if l.sections.is_empty() || l.sections.len() > MAX_SECTIONS {
        return Err(OutboundError::invalid(
            "interactive.list.sections",
            format!(
                "{} sections; WhatsApp takes 1 to {MAX_SECTIONS}",
                l.sections.len()
            ),
        ));
    }
    let rows: usize = l.sections.iter().map(|s| s.rows.len()).sum();
    if !(1..=MAX_ROWS).contains(&rows) {
        return Err(OutboundError::invalid(
            "interactive.list.sections.rows",
            format!("{rows} rows; WhatsApp takes 1 to {MAX_ROWS} across all sections"),
        ));
    }
    let several = l.sections.len() > 1;
    let mut ids = HashSet::new();
    let mut sections = Vec::with_capacity(l.sections.len());
    for s in l.sections {
        let title = if several {
            Some(required(
                "interactive.list.sections.title",
                s.title,
                MAX_SECTION_TITLE,
            )?)
        } else {
            optional(
                "interactive.list.sections.title",
                s.title,
                MAX_SECTION_TITLE,
            )?
        };
        let mut rows = Vec::with_capacity(s.rows.len());
        for r in s.rows {
            let id = required("interactive.list.sections.rows.id", r.id, MAX_ROW_ID)?;
            if !ids.insert(id.clone()) {
                return Err(OutboundError::invalid(
                    "interactive.list.sections.rows.id",
                    "row ids must be unique",
                ));
            }
            rows.push(Row {
                id,
                title: required(
                    "interactive.list.sections.rows.title",
                    r.title,
                    MAX_ROW_TITLE,
                )?,
                description: optional(
                    "interactive.list.sections.rows.description",
                    r.description,
                    MAX_ROW_DESCRIPTION,
                )?,
            });
        }
        sections.push(Section { title, rows });
    }
    Ok(Action::List { button, sections })
}
