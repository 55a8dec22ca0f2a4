//! One parsed item ([`Body`]) to one [`InboundEvent`]: which field wins when
//! several shapes could carry the same fact.

use kapso_gateway_proto::v1::{Direction, InboundEvent, MessageStatus, MetaError, StatusUpdate};

use super::lenient::{Obj, Text};
use super::shape::{self, Body, Message};

/// What the delivery around an item says, for facts the item itself leaves out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Surroundings<'s> {
    /// `type` of the batch envelope (or of the single body).
    pub body_type: Option<&'s str>,
    /// `X-Webhook-Event`.
    pub header_type: Option<&'s str>,
    /// `batch_info.conversation_id`.
    pub batch_conversation_id: Option<&'s str>,
}

/// Builds the event; `payload_json` is the item's exact text.
pub fn event(item: &Body<'_>, payload_json: &str, around: Surroundings<'_>) -> InboundEvent {
    let message = item.message.get();
    let kapso = message.and_then(|m| m.kapso.get());
    let conversation = item.conversation.get();
    let legacy = item.payload.get();

    let event_type = event_type(item, around);
    let stated_direction = kapso
        .and_then(|k| k.direction.get())
        .or_else(|| message.and_then(|m| m.direction.get()));
    let direction = match stated_direction {
        Some("inbound") => Direction::Inbound,
        Some("outbound") => Direction::Outbound,
        _ => implied_direction(event_type),
    };
    let timestamp = unix_seconds(message.map(|m| &m.timestamp));
    let mut statuses: Vec<StatusUpdate> = kapso
        .map(|k| k.statuses.0.iter().filter_map(status_update).collect())
        .unwrap_or_default();
    // A status webhook is about its own status even when Kapso's history omits it.
    if let Some(reported) = reported_status(event_type)
        && !statuses.iter().any(|s| s.status == reported as i32)
    {
        statuses.push(StatusUpdate {
            status: reported.into(),
            timestamp,
            errors: Vec::new(),
        });
    }

    InboundEvent {
        event_type: owned(event_type),
        message_id: owned(first([
            message.and_then(|m| m.whatsapp_message_id.get()),
            message.and_then(|m| m.id.get()),
            item.message_id.get(),
        ])),
        conversation_id: owned(first([
            conversation.and_then(|c| c.id.get()),
            item.conversation_id.get(),
            around.batch_conversation_id,
        ])),
        phone_number_id: owned(first([
            item.whatsapp_config
                .get()
                .and_then(|w| w.phone_number_id.get()),
            item.phone_number_id.get(),
            conversation.and_then(|c| c.phone_number_id.get()),
            kapso.and_then(|k| k.phone_number_id.get()),
        ])),
        contact_phone: contact(item, direction)
            .map(normalise_contact)
            .unwrap_or_default()
            .to_owned(),
        direction: direction.into(),
        message_type: owned(first([
            message.and_then(|m| m.kind.get()),
            message.and_then(|m| m.message_type.get()),
            legacy.and_then(|p| p.message_type.get()),
        ])),
        text: owned(
            message
                .and_then(message_text)
                .or_else(|| kapso.and_then(|k| k.content.get()))
                .or_else(|| message.and_then(|m| m.content.get()))
                .or_else(|| legacy.and_then(|p| p.content.get())),
        ),
        statuses,
        timestamp,
        payload_json: payload_json.to_owned(),
        reply_to_message_id: owned(message.and_then(|m| {
            let context = m.context.get();
            first([
                context.and_then(|c| c.id.get()),
                context.and_then(|c| c.message_id.get()),
                m.reaction.get().and_then(|r| r.message_id.get()),
            ])
        })),
    }
}

/// The item's event type: its own `event_type`/`event`, then the body's `type`, then the header.
pub fn event_type<'s>(item: &'s Body<'_>, around: Surroundings<'s>) -> Option<&'s str> {
    first([
        item.event_type.get(),
        item.event.get(),
        around.body_type,
        around.header_type,
    ])
}

/// Whether the item states its own type (the original service's shape does).
pub fn names_own_type(item: &Body<'_>) -> bool {
    item.event_type.get().is_some() || item.event.get().is_some()
}

fn first<const N: usize>(candidates: [Option<&str>; N]) -> Option<&str> {
    candidates.into_iter().flatten().next()
}

fn owned(value: Option<&str>) -> String {
    value.map(str::to_owned).unwrap_or_default()
}

/// Kapso leaves `direction` out of some shapes (the legacy one always): a received
/// message is inbound by definition, a status is only ever reported for outbound ones.
fn implied_direction(event_type: Option<&str>) -> Direction {
    match event_type {
        Some(t) if t.ends_with(".received") => Direction::Inbound,
        _ if reported_status(event_type).is_some() => Direction::Outbound,
        _ => Direction::Unspecified,
    }
}

/// The status a `whatsapp.message.<status>` event reports.
fn reported_status(event_type: Option<&str>) -> Option<MessageStatus> {
    match event_type?.strip_prefix("whatsapp.message.")? {
        "sent" => Some(MessageStatus::Sent),
        "delivered" => Some(MessageStatus::Delivered),
        "read" => Some(MessageStatus::Read),
        "failed" => Some(MessageStatus::Failed),
        _ => None,
    }
}

/// Meta status names; others (`deleted`, `warning`, future ones) are left to `payload_json`.
fn status_from_name(name: &str) -> Option<MessageStatus> {
    match name {
        "sent" => Some(MessageStatus::Sent),
        "delivered" => Some(MessageStatus::Delivered),
        "read" => Some(MessageStatus::Read),
        "failed" => Some(MessageStatus::Failed),
        _ => None,
    }
}

fn status_update(status: &shape::Status<'_>) -> Option<StatusUpdate> {
    Some(StatusUpdate {
        status: status_from_name(status.status.get()?)?.into(),
        timestamp: unix_seconds(Some(&status.timestamp)),
        errors: status.errors.0.iter().map(meta_error).collect(),
    })
}

fn meta_error(error: &shape::MetaError<'_>) -> MetaError {
    MetaError {
        code: error
            .code
            .get()
            .and_then(|c| c.parse().ok())
            .unwrap_or_default(),
        title: owned(error.title.get()),
        message: owned(error.message.get()),
        details: owned(error.error_data.get().and_then(|d| d.details.get())),
    }
}

/// Unix seconds from a string (or number) field; 0 when absent or not a number.
fn unix_seconds(field: Option<&Text<'_>>) -> i64 {
    field
        .and_then(Text::get)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_default()
}

/// The customer: the sender of an inbound message, the recipient of an outbound
/// one, then whatever identity the conversation or the statuses carry. Users who
/// hide their number only have a business-scoped id or username.
fn contact<'s>(item: &'s Body<'_>, direction: Direction) -> Option<&'s str> {
    let message = item.message.get();
    let conversation = item.conversation.get();
    let own_side = message.and_then(|m| match direction {
        Direction::Outbound => m.to.get(),
        _ => m.from.get(),
    });
    own_side
        .or_else(|| message.and_then(|m| m.phone_number.get()))
        .or_else(|| conversation.and_then(|c| c.phone_number.get()))
        .or_else(|| {
            message
                .and_then(|m| m.kapso.get())
                .and_then(|k| k.statuses.0.iter().find_map(|s| s.recipient_id.get()))
        })
        .or_else(|| {
            first([
                message.and_then(|m| m.business_scoped_user_id.get()),
                message.and_then(|m| m.from_user_id.get()),
                message.and_then(|m| m.username.get()),
                conversation.and_then(|c| c.business_scoped_user_id.get()),
                conversation.and_then(|c| c.username.get()),
            ])
        })
        .or_else(|| item.payload.get().and_then(|p| p.from.get()))
}

/// Phone numbers are stored as digits: `+15551234567` and `15551234567` are one contact.
fn normalise_contact(contact: &str) -> &str {
    let contact = contact.trim();
    contact.strip_prefix('+').unwrap_or(contact)
}

/// The human-readable part of a message, by type.
fn message_text<'s>(message: &'s Message<'_>) -> Option<&'s str> {
    let caption = |media: &'s Obj<shape::Media<'_>>| media.get().and_then(|m| m.caption.get());
    let interactive = message.interactive.get();
    message
        .text
        .get()
        .and_then(|t| t.body.get())
        .or_else(|| caption(&message.image))
        .or_else(|| caption(&message.video))
        .or_else(|| caption(&message.document))
        .or_else(|| {
            interactive
                .and_then(|i| i.button_reply.get())
                .and_then(|r| r.title.get())
        })
        .or_else(|| {
            interactive
                .and_then(|i| i.list_reply.get())
                .and_then(|r| r.title.get())
        })
        .or_else(|| message.button.get().and_then(|b| b.text.get()))
        .or_else(|| message.reaction.get().and_then(|r| r.emoji.get()))
}
