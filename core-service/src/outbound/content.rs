//! Turns the content of a `SendMessageRequest` into a [`Content`] that Meta
//! would take: every limit of docs/kapso-contract.md section 3 is checked here,
//! once, so that what reaches the wire is known to be well-formed. A request
//! Meta would refuse is refused with INVALID_ARGUMENT before any call.
//!
//! - `template`: templates and their components
//! - `interactive`: reply buttons, lists, call-to-action URLs

use kapso_gateway_proto::v1 as pb;
use pb::send_message_request::Content as PbContent;

use super::OutboundError;
use super::request::MAX_TEXT_CHARS;
use crate::kapso_api::content::{
    ContactAddress, ContactCard, ContactName, ContactOrg, ContactPhone, Content, Email, Location,
    Media, MediaKind, MediaSource, Reaction, Text, Typed, Url,
};

const MAX_CAPTION: usize = 1024;
const MAX_FILENAME: usize = 240;
const MAX_BUTTON_ID: usize = 256;
const MAX_LOCATION_NAME: usize = 100;
const MAX_LOCATION_ADDRESS: usize = 300;
/// Code points in one emoji: a family joined with zero-width joiners has 7.
const MAX_EMOJI_CODE_POINTS: usize = 10;
const MAX_URL: usize = 2000;

type Checked<T> = Result<T, OutboundError>;

/// The content of a send request, checked; `None` when the request has none.
pub fn parse(content: Option<PbContent>) -> Checked<Content> {
    match content {
        None => Err(OutboundError::invalid(
            "content",
            "one of text, template, media, interactive, reaction, location or contacts is required",
        )),
        Some(PbContent::Text(t)) => text(t.body, t.preview_url).map(Content::Text),
        Some(PbContent::Template(t)) => template::template(t).map(Content::Template),
        Some(PbContent::Media(m)) => media(m).map(Content::Media),
        Some(PbContent::Interactive(i)) => interactive::interactive(i).map(Content::Interactive),
        Some(PbContent::Reaction(r)) => reaction(r).map(Content::Reaction),
        Some(PbContent::Location(l)) => location(l).map(Content::Location),
        Some(PbContent::Contacts(c)) => contacts(c).map(Content::Contacts),
    }
}

/// A text body: 1 to 4096 characters, not only blanks.
pub fn text(body: String, preview_url: bool) -> Checked<Text> {
    if body.trim().is_empty() {
        return Err(OutboundError::invalid("text", "must not be empty"));
    }
    at_most("text", &body, MAX_TEXT_CHARS)?;
    Ok(Text { body, preview_url })
}

fn chars(value: &str) -> usize {
    value.chars().count()
}

fn at_most(field: &'static str, value: &str, max: usize) -> Checked<()> {
    let n = chars(value);
    if n > max {
        return Err(OutboundError::invalid(
            field,
            format!("{n} characters is over WhatsApp's limit of {max}"),
        ));
    }
    Ok(())
}

fn required(field: &'static str, value: String, max: usize) -> Checked<String> {
    if value.trim().is_empty() {
        return Err(OutboundError::invalid(field, "must not be empty"));
    }
    at_most(field, &value, max)?;
    Ok(value)
}

fn optional(field: &'static str, value: String, max: usize) -> Checked<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    at_most(field, &value, max)?;
    Ok(Some(value))
}

fn http_url(field: &'static str, url: String) -> Checked<String> {
    let url = required(field, url, MAX_URL)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(OutboundError::invalid(
            field,
            "must be an http:// or https:// URL",
        ));
    }
    Ok(url)
}

fn media_kind(field: &'static str, kind: pb::MediaKind) -> Checked<MediaKind> {
    Ok(match kind {
        pb::MediaKind::Image => MediaKind::Image,
        pb::MediaKind::Video => MediaKind::Video,
        pb::MediaKind::Audio => MediaKind::Audio,
        pb::MediaKind::Document => MediaKind::Document,
        pb::MediaKind::Sticker => MediaKind::Sticker,
        pb::MediaKind::Unspecified => {
            return Err(OutboundError::invalid(
                field,
                "must be image, video, audio, document or sticker",
            ));
        }
    })
}

/// Exactly one of a public link or an uploaded media id.
fn source(field: &'static str, link: String, id: String) -> Checked<MediaSource> {
    match (link.trim().is_empty(), id.trim().is_empty()) {
        (false, true) => http_url(field, link).map(MediaSource::Link),
        (true, false) => Ok(MediaSource::Id(id)),
        _ => Err(OutboundError::invalid(
            field,
            "give exactly one of link and id",
        )),
    }
}

/// Media for a header: an image, video or document, by link or id, nothing else.
fn header_media(field: &'static str, m: pb::MediaContent) -> Checked<(MediaKind, MediaSource)> {
    let kind = media_kind(field, m.kind())?;
    if !matches!(
        kind,
        MediaKind::Image | MediaKind::Video | MediaKind::Document
    ) {
        return Err(OutboundError::invalid(
            field,
            "a header takes an image, a video or a document",
        ));
    }
    Ok((kind, source(field, m.link, m.id)?))
}

fn media(m: pb::MediaContent) -> Checked<Media> {
    let kind = media_kind("media.kind", m.kind())?;
    if !m.caption.is_empty() && !kind.takes_caption() {
        return Err(OutboundError::invalid(
            "media.caption",
            "only an image, a video or a document takes a caption",
        ));
    }
    if !m.filename.is_empty() && kind != MediaKind::Document {
        return Err(OutboundError::invalid(
            "media.filename",
            "only a document takes a filename",
        ));
    }
    if m.voice && kind != MediaKind::Audio {
        return Err(OutboundError::invalid(
            "media.voice",
            "only audio can be a voice note",
        ));
    }
    Ok(Media {
        kind,
        source: source("media", m.link, m.id)?,
        caption: optional("media.caption", m.caption, MAX_CAPTION)?,
        filename: optional("media.filename", m.filename, MAX_FILENAME)?,
        voice: m.voice,
    })
}

fn reaction(r: pb::ReactionContent) -> Checked<Reaction> {
    let message_id = required("reaction.message_id", r.message_id, MAX_BUTTON_ID)?;
    let emoji = r.emoji;
    let one_emoji = emoji.chars().count() <= MAX_EMOJI_CODE_POINTS
        && !emoji
            .chars()
            .any(|c| c.is_ascii() || c.is_alphanumeric() || c.is_whitespace());
    if !one_emoji {
        return Err(OutboundError::invalid(
            "reaction.emoji",
            "must be one emoji, or empty to remove the reaction",
        ));
    }
    Ok(Reaction { message_id, emoji })
}

fn location(l: pb::LocationContent) -> Checked<Location> {
    if !(l.latitude.is_finite() && (-90.0..=90.0).contains(&l.latitude)) {
        return Err(OutboundError::invalid(
            "location.latitude",
            "must be between -90 and 90",
        ));
    }
    if !(l.longitude.is_finite() && (-180.0..=180.0).contains(&l.longitude)) {
        return Err(OutboundError::invalid(
            "location.longitude",
            "must be between -180 and 180",
        ));
    }
    Ok(Location {
        latitude: l.latitude,
        longitude: l.longitude,
        name: optional("location.name", l.name, MAX_LOCATION_NAME)?,
        address: optional("location.address", l.address, MAX_LOCATION_ADDRESS)?,
    })
}

fn contacts(c: pb::ContactsContent) -> Checked<Vec<ContactCard>> {
    if c.contacts.is_empty() {
        return Err(OutboundError::invalid(
            "contacts",
            "at least one contact card is required",
        ));
    }
    c.contacts.into_iter().map(card).collect()
}

fn some(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

fn card(c: pb::ContactCard) -> Checked<ContactCard> {
    let name = c.name.unwrap_or_default();
    let formatted_name = required(
        "contacts.name.formatted_name",
        name.formatted_name,
        MAX_TEXT_CHARS,
    )?;
    if !c.birthday.is_empty() && !is_date(&c.birthday) {
        return Err(OutboundError::invalid(
            "contacts.birthday",
            "must be YYYY-MM-DD",
        ));
    }
    let phones = c
        .phones
        .into_iter()
        .map(|p| {
            if !p.wa_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(OutboundError::invalid(
                    "contacts.phones.wa_id",
                    "must be digits only",
                ));
            }
            Ok(ContactPhone {
                phone: required("contacts.phones.phone", p.phone, 64)?,
                kind: some(p.r#type),
                wa_id: some(p.wa_id),
            })
        })
        .collect::<Checked<Vec<_>>>()?;
    Ok(ContactCard {
        name: ContactName {
            formatted_name,
            first_name: some(name.first_name),
            last_name: some(name.last_name),
            middle_name: some(name.middle_name),
            suffix: some(name.suffix),
            prefix: some(name.prefix),
        },
        org: c.org.map(|o| ContactOrg {
            company: some(o.company),
            department: some(o.department),
            title: some(o.title),
        }),
        phones,
        emails: c
            .emails
            .into_iter()
            .map(|e| Typed {
                value: Email { email: e.email },
                kind: some(e.r#type),
            })
            .collect(),
        urls: c
            .urls
            .into_iter()
            .map(|u| Typed {
                value: Url { url: u.url },
                kind: some(u.r#type),
            })
            .collect(),
        addresses: c
            .addresses
            .into_iter()
            .map(|a| ContactAddress {
                street: some(a.street),
                city: some(a.city),
                state: some(a.state),
                zip: some(a.zip),
                country: some(a.country),
                country_code: some(a.country_code),
                kind: some(a.r#type),
            })
            .collect(),
        birthday: some(c.birthday),
    })
}

fn is_date(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

mod interactive;
mod template;
#[cfg(test)]
mod tests;
