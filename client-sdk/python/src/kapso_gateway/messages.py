"""What the clients return: messages, events, pages and consumer positions.

Frozen dataclasses over the generated protobuf messages, with the enums as
:mod:`kapso_gateway.enums` members (a status prints ``READ``). Fields the SDK does not
model keep their protobuf types (``Message.content``, ``Event.conversation``), and
``proto`` holds the message as received, for anything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from kapso.gateway.v1 import content_pb2, messaging_pb2, types_pb2
from kapso_gateway.enums import Direction, MessageStatus

# Messages backfilled by a history import: store them, never answer them.
HISTORY_SYNC = "history_sync"


@dataclass(frozen=True)
class MetaError:
    """One of Meta's error objects, as carried by a failed message."""

    code: int
    title: str
    message: str
    details: str


@dataclass(frozen=True)
class StatusRecord:
    """A status the message reached, with the unix time WhatsApp reported it."""

    status: MessageStatus
    timestamp: int


@dataclass(frozen=True)
class Message:
    """A WhatsApp message as the gateway knows it."""

    id: str
    direction: Direction
    conversation_id: str
    phone_number_id: str
    contact_phone: str
    #: WhatsApp's type: text, image, audio, interactive, ... (unknown ones verbatim).
    type: str
    #: The text body, caption or Kapso's textual rendering of the content.
    text: str
    status: MessageStatus
    errors: Tuple[MetaError, ...]
    status_history: Tuple[StatusRecord, ...]
    gateway_id: str
    idempotency_key: str
    timestamp: int
    reply_to_message_id: str
    #: The content, typed (``content.WhichOneof("kind")``); ``None`` when unknown.
    content: Optional[content_pb2.Content]
    #: kapso.origin: cloud_api, business_app or history_sync; empty when unknown.
    origin: str
    #: A failed send Kapso never took: why. Empty otherwise (refusals are in ``errors``).
    not_taken_reason: str
    proto: types_pb2.Message = field(repr=False, compare=False)

    @property
    def is_history_sync(self) -> bool:
        """Backfilled by a history import: a bot must not answer it."""
        return self.origin == HISTORY_SYNC

    @classmethod
    def from_proto(cls, message: types_pb2.Message) -> "Message":
        return cls(
            id=message.id,
            direction=Direction(message.direction),
            conversation_id=message.conversation_id,
            phone_number_id=message.phone_number_id,
            contact_phone=message.contact_phone,
            type=message.type,
            text=message.text,
            status=MessageStatus(message.status),
            errors=tuple(
                MetaError(e.code, e.title, e.message, e.details) for e in message.errors
            ),
            status_history=tuple(
                StatusRecord(MessageStatus(r.status), r.timestamp) for r in message.status_history
            ),
            gateway_id=message.gateway_id,
            idempotency_key=message.idempotency_key,
            timestamp=message.timestamp,
            reply_to_message_id=message.reply_to_message_id,
            content=message.content if message.HasField("content") else None,
            origin=message.origin,
            not_taken_reason=message.not_taken_reason,
            proto=message,
        )


@dataclass(frozen=True)
class Event:
    """An entry of the core's durable event log."""

    #: Position in the log: strictly increasing, never reused.
    sequence: int
    #: Kapso's event type, e.g. ``whatsapp.message.received``.
    event_type: str
    conversation_id: str
    #: The message as this event describes it (its current state: ``get_message``).
    message: Optional[Message]
    #: The event exactly as Kapso sent it.
    payload_json: str
    phone_number_id: str
    received_at_ms: int
    #: ``whatsapp.conversation.*`` events only.
    conversation: Optional[types_pb2.ConversationFacts]
    proto: types_pb2.Event = field(repr=False, compare=False)

    def payload(self) -> Any:
        """``payload_json`` parsed."""
        return json.loads(self.payload_json)

    @classmethod
    def from_proto(cls, event: types_pb2.Event) -> "Event":
        return cls(
            sequence=event.sequence,
            event_type=event.event_type,
            conversation_id=event.conversation_id,
            message=Message.from_proto(event.message) if event.HasField("message") else None,
            payload_json=event.payload_json,
            phone_number_id=event.phone_number_id,
            received_at_ms=event.received_at_ms,
            conversation=event.conversation if event.HasField("conversation") else None,
            proto=event,
        )


@dataclass(frozen=True)
class MessagePage:
    """One page of ``list_messages``, oldest first."""

    messages: Tuple[Message, ...]
    #: Pass as ``page_token`` for the next page; empty on the last one.
    next_page_token: str

    @classmethod
    def from_proto(cls, page: messaging_pb2.ListMessagesResponse) -> "MessagePage":
        return cls(tuple(map(Message.from_proto, page.messages)), page.next_page_token)


@dataclass(frozen=True)
class ConsumerPosition:
    """A named consumer: its acknowledged (or sought) position and how far it lags the head."""

    consumer: str
    sequence: int
    lag: int
