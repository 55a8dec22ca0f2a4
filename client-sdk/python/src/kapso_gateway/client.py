"""`Client`: the Messaging calls of the kapso-gateway core, one method each."""

from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence

import grpc

from kapso.gateway.v1 import messaging_pb2, messaging_pb2_grpc, types_pb2
from kapso_gateway import watch as watch_loop
from kapso_gateway.watch import Backoff

# Where the core listens by default (its CORE_LISTEN_ADDR default).
DEFAULT_CORE_ADDRESS = "127.0.0.1:50051"


class Client:
    """A connection to the core's ``kapso.gateway.v1.Messaging`` service.

    ``target`` is the core's address: ``host:port``, ``http://host:port`` or
    ``https://host:port`` (TLS); by default ``$KAPSO_CORE_URL``, else ``127.0.0.1:50051``.
    With ``token`` (by default ``$GATEWAY_API_TOKEN``), every call carries
    ``authorization: Bearer <token>``. The channel is plaintext unless the address is
    ``https://`` or ``credentials`` (e.g. ``grpc.ssl_channel_credentials()``) are given. ``timeout`` is the
    deadline of each unary call in seconds.

    # Examples

    >>> with Client("127.0.0.1:50051", token="dev-token") as client:  # doctest: +SKIP
    ...     client.send_text("hola", to="+15551234567").status
    3
    """

    def __init__(
        self,
        target: Optional[str] = None,
        token: Optional[str] = None,
        *,
        credentials: Optional[grpc.ChannelCredentials] = None,
        timeout: float = 30.0,
    ):
        target = target or os.environ.get("KAPSO_CORE_URL") or DEFAULT_CORE_ADDRESS
        if token is None:
            token = os.environ.get("GATEWAY_API_TOKEN")
        if target.startswith("https://"):
            target = target[len("https://") :]
            credentials = credentials or grpc.ssl_channel_credentials()
        elif target.startswith("http://"):
            target = target[len("http://") :]
        if credentials is None:
            self._channel = grpc.insecure_channel(target)
        else:
            self._channel = grpc.secure_channel(target, credentials)
        self._stub = messaging_pb2_grpc.MessagingStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout

    def __repr__(self) -> str:
        # The token stays out of logs.
        return f"Client(authenticated={bool(self._metadata)})"

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send_text(
        self,
        text: str,
        *,
        to: str = "",
        conversation_id: str = "",
        phone_number_id: str = "",
        preview_url: bool = False,
        reply_to_message_id: str = "",
        idempotency_key: str = "",
    ) -> types_pb2.Message:
        """Sends a text to ``to`` (phone digits) or into ``conversation_id``; returns the message.

        A retry with the same ``idempotency_key`` returns the first outcome without sending again.

        # Examples

        >>> msg = client.send_text("Your order shipped", conversation_id="conv-1",
        ...                        idempotency_key="order-42-shipped")  # doctest: +SKIP
        >>> msg.id  # doctest: +SKIP
        'wamid.HBgL...'
        """
        request = messaging_pb2.SendTextRequest(
            to=to,
            conversation_id=conversation_id,
            phone_number_id=phone_number_id,
            text=text,
            preview_url=preview_url,
            reply_to_message_id=reply_to_message_id,
            idempotency_key=idempotency_key,
        )
        return self._stub.SendText(request, metadata=self._metadata, timeout=self._timeout).message

    def mark_read(
        self, message_id: str, *, phone_number_id: str = "", typing_indicator: bool = False
    ) -> None:
        """Marks an inbound message read, optionally showing a typing indicator.

        # Examples

        >>> client.mark_read("wamid.HBgL...", typing_indicator=True)  # doctest: +SKIP
        """
        request = messaging_pb2.MarkReadRequest(
            message_id=message_id,
            phone_number_id=phone_number_id,
            typing_indicator=typing_indicator,
        )
        self._stub.MarkRead(request, metadata=self._metadata, timeout=self._timeout)

    def get_message(self, message_id: str) -> types_pb2.Message:
        """A message by wamid, gateway id or idempotency key; ``NOT_FOUND`` when unknown.

        # Examples

        >>> client.get_message("order-42-shipped").status  # doctest: +SKIP
        4
        """
        request = messaging_pb2.GetMessageRequest(message_id=message_id)
        return self._stub.GetMessage(request, metadata=self._metadata, timeout=self._timeout)

    def list_messages(
        self, conversation_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> messaging_pb2.ListMessagesResponse:
        """One page of a conversation's messages, oldest first.

        # Examples

        >>> page = client.list_messages("conv-1", page_size=50)  # doctest: +SKIP
        >>> more = client.list_messages("conv-1", page_token=page.next_page_token)  # doctest: +SKIP
        """
        request = messaging_pb2.ListMessagesRequest(
            conversation_id=conversation_id, page_size=page_size, page_token=page_token
        )
        return self._stub.ListMessages(request, metadata=self._metadata, timeout=self._timeout)

    def iter_messages(self, conversation_id: str, *, page_size: int = 0) -> Iterator[types_pb2.Message]:
        """Every message of a conversation, oldest first, fetching page after page."""
        token = ""
        while True:
            page = self.list_messages(conversation_id, page_size=page_size, page_token=token)
            yield from page.messages
            token = page.next_page_token
            if not token:
                return

    def ack(self, consumer: str, sequence: int) -> int:
        """Records that ``consumer`` processed everything up to ``sequence``; returns its position.

        # Examples

        >>> client.ack("billing", 1042)  # doctest: +SKIP
        1042
        """
        request = messaging_pb2.AckEventsRequest(consumer=consumer, sequence=sequence)
        response = self._stub.AckEvents(request, metadata=self._metadata, timeout=self._timeout)
        return response.sequence

    def seek_consumer(self, consumer: str, sequence: int) -> int:
        """Moves ``consumer`` to ``sequence``, backwards included (0 replays everything retained).

        Its next watch starts after it. Beyond the log's head raises ``OUT_OF_RANGE``.

        # Examples

        >>> client.seek_consumer("billing", 1200)  # doctest: +SKIP
        1200
        """
        request = messaging_pb2.SeekConsumerRequest(consumer=consumer, sequence=sequence)
        response = self._stub.SeekConsumer(request, metadata=self._metadata, timeout=self._timeout)
        return response.sequence

    def list_consumers(self) -> list:
        """Every named consumer by name: ``consumer``, ``sequence`` (position) and ``lag``.

        # Examples

        >>> [(c.consumer, c.lag) for c in client.list_consumers()]  # doctest: +SKIP
        [('billing', 0)]
        """
        request = messaging_pb2.ListConsumersRequest()
        response = self._stub.ListConsumers(request, metadata=self._metadata, timeout=self._timeout)
        return list(response.consumers)

    def watch(
        self,
        after_sequence: int = 0,
        *,
        consumer: str = "",
        from_end: bool = False,
        auto_ack: bool = False,
        event_types: Sequence[str] = (),
        conversation_id: str = "",
        phone_number_id: str = "",
        backoff: Backoff = Backoff(),
        max_attempts: Optional[int] = None,
    ) -> Iterator[types_pb2.Event]:
        """Yields log events after ``after_sequence``, then live ones, forever.

        When the stream breaks (core restart, network), it reconnects with ``backoff`` and
        resumes after the last event it yielded, so no event is yielded twice or skipped.
        With ``consumer`` and ``after_sequence`` 0 it starts after the consumer's
        acknowledged position. With ``from_end`` and no position to resume from, it starts at
        the log's head (a new bot answers what comes next, not last month's messages); a new
        named consumer is recorded there at once, so its restarts skip nothing. With ``auto_ack`` each event is acknowledged as ``consumer``
        once the caller asks for the next one, i.e. after it was processed (at-least-once:
        the event being processed when the program stops is delivered again on restart).
        ``max_attempts`` bounds consecutive failed attempts (``WatchGaveUp``); ``None``
        retries forever. Errors that a retry cannot fix (bad token, bad argument) raise.

        # Examples

        >>> for event in client.watch(consumer="billing", from_end=True, auto_ack=True,
        ...                           event_types=["whatsapp.message.received"]):  # doctest: +SKIP
        ...     handle(event.message)
        """
        if auto_ack and not consumer:
            raise ValueError("auto_ack needs a consumer name")
        return watch_loop.follow(
            lambda request: self._stub.WatchEvents(request, metadata=self._metadata),
            self.ack,
            after_sequence=after_sequence,
            consumer=consumer,
            from_end=from_end,
            event_types=event_types,
            conversation_id=conversation_id,
            phone_number_id=phone_number_id,
            auto_ack=auto_ack,
            backoff=backoff,
            max_attempts=max_attempts,
        )
