"""Each Messaging call once: the request it sends and how its answer becomes SDK types.

Shared by :class:`kapso_gateway.Client` and :class:`kapso_gateway.AsyncClient`, which
differ only in how they wait for the answer, so both send exactly the same requests.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

from kapso.gateway.v1 import messaging_pb2
from kapso_gateway.content import Content, to_request_fields
from kapso_gateway.messages import ConsumerPosition, Message, MessagePage


class Call(NamedTuple):
    """The stub method to invoke, its request, and the conversion of its response."""

    method: str
    request: Any
    convert: Callable[[Any], Any]


def _sent_message(rpc: str) -> Callable[[Any], Message]:
    def convert(response) -> Message:
        if not response.HasField("message"):
            raise RuntimeError(f"{rpc} answered without a message")
        return Message.from_proto(response.message)

    return convert


def send_text(
    text: str,
    *,
    to: str,
    conversation_id: str,
    phone_number_id: str,
    preview_url: bool,
    reply_to_message_id: str,
    idempotency_key: str,
) -> Call:
    request = messaging_pb2.SendTextRequest(
        to=to,
        conversation_id=conversation_id,
        phone_number_id=phone_number_id,
        text=text,
        preview_url=preview_url,
        reply_to_message_id=reply_to_message_id,
        idempotency_key=idempotency_key,
    )
    return Call("SendText", request, _sent_message("SendText"))


def send_message(
    content: Content,
    *,
    to: str,
    conversation_id: str,
    phone_number_id: str,
    reply_to_message_id: str,
    idempotency_key: str,
) -> Call:
    request = messaging_pb2.SendMessageRequest(
        to=to,
        conversation_id=conversation_id,
        phone_number_id=phone_number_id,
        reply_to_message_id=reply_to_message_id,
        idempotency_key=idempotency_key,
        **to_request_fields(content),
    )
    return Call("SendMessage", request, _sent_message("SendMessage"))


def mark_read(message_id: str, *, phone_number_id: str, typing_indicator: bool) -> Call:
    request = messaging_pb2.MarkReadRequest(
        message_id=message_id, phone_number_id=phone_number_id, typing_indicator=typing_indicator
    )
    return Call("MarkRead", request, lambda _: None)


def get_message(message_id: str) -> Call:
    request = messaging_pb2.GetMessageRequest(message_id=message_id)
    return Call("GetMessage", request, Message.from_proto)


def list_messages(conversation_id: str, *, page_size: int, page_token: str) -> Call:
    request = messaging_pb2.ListMessagesRequest(
        conversation_id=conversation_id, page_size=page_size, page_token=page_token
    )
    return Call("ListMessages", request, MessagePage.from_proto)


def ack(consumer: str, sequence: int) -> Call:
    request = messaging_pb2.AckEventsRequest(consumer=consumer, sequence=sequence)
    return Call("AckEvents", request, lambda response: response.sequence)


def seek_consumer(consumer: str, sequence: int) -> Call:
    request = messaging_pb2.SeekConsumerRequest(consumer=consumer, sequence=sequence)
    return Call("SeekConsumer", request, lambda response: response.sequence)


def list_consumers() -> Call:
    def convert(response) -> list:
        return [ConsumerPosition(c.consumer, c.sequence, c.lag) for c in response.consumers]

    return Call("ListConsumers", messaging_pb2.ListConsumersRequest(), convert)


def watch_request(
    after_sequence: int,
    *,
    consumer: str,
    from_end: bool,
    event_types: Sequence[str],
    conversation_id: str,
    phone_number_id: str,
) -> messaging_pb2.WatchEventsRequest:
    return messaging_pb2.WatchEventsRequest(
        after_sequence=after_sequence,
        consumer=consumer,
        from_end=from_end,
        event_types=list(event_types),
        conversation_id=conversation_id,
        phone_number_id=phone_number_id,
    )
