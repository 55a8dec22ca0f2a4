"""`Client`: the Messaging calls of the kapso-gateway core, one blocking method each."""

from __future__ import annotations

import os
from typing import IO, Iterator, List, Optional, Sequence, Union

import grpc

from kapso.gateway.v1 import messaging_pb2_grpc
from kapso_gateway import calls, connection, media
from kapso_gateway import watch as watch_loop
from kapso_gateway.connection import DEFAULT_CORE_ADDRESS
from kapso_gateway.content import Content
from kapso_gateway.enums import MediaKind
from kapso_gateway.media import MediaDownload, MediaInfo, UploadedMedia
from kapso_gateway.messages import ConsumerPosition, Event, Message, MessagePage
from kapso_gateway.watch import Backoff

__all__ = ["Client", "DEFAULT_CORE_ADDRESS"]


class Client:
    """A connection to the core's ``kapso.gateway.v1.Messaging`` service.

    ``target`` is the core's address: ``host:port``, ``http://host:port`` or
    ``https://host:port`` (TLS); by default ``$KAPSO_CORE_URL``, else ``127.0.0.1:50051``.
    With ``token`` (by default ``$GATEWAY_API_TOKEN``), every call carries
    ``authorization: Bearer <token>``. The channel is plaintext unless the address is
    ``https://`` or ``credentials`` (e.g. ``grpc.ssl_channel_credentials()``) are given.
    ``timeout`` is the deadline of each unary call in seconds. Failed calls raise
    :class:`grpc.RpcError`. :class:`kapso_gateway.AsyncClient` has the same methods for asyncio.

    # Examples

    >>> with Client("127.0.0.1:50051", token="dev-token") as client:  # doctest: +SKIP
    ...     print(client.send_text("hola", to="+15551234567").status)
    SENT
    """

    def __init__(
        self,
        target: Optional[str] = None,
        token: Optional[str] = None,
        *,
        credentials: Optional[grpc.ChannelCredentials] = None,
        timeout: float = 30.0,
    ):
        self._connection = connection.resolve(target, token, credentials)
        if self._connection.credentials is None:
            self._channel = grpc.insecure_channel(self._connection.target)
        else:
            self._channel = grpc.secure_channel(self._connection.target, self._connection.credentials)
        self._stub = messaging_pb2_grpc.MessagingStub(self._channel)
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"Client({self._connection.target!r}, authenticated={self._connection.authenticated})"

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _unary(self, call: calls.Call):
        method = getattr(self._stub, call.method)
        response = method(call.request, metadata=self._connection.metadata, timeout=self._timeout)
        return call.convert(response)

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
    ) -> Message:
        """Sends a text to ``to`` (phone digits) or into ``conversation_id``; returns the message.

        A retry with the same ``idempotency_key`` returns the first outcome without sending again.

        # Examples

        >>> msg = client.send_text("Your order shipped", conversation_id="conv-1",
        ...                        idempotency_key="order-42-shipped")  # doctest: +SKIP
        >>> msg.id, str(msg.status)  # doctest: +SKIP
        ('wamid.HBgL...', 'SENT')
        """
        return self._unary(
            calls.send_text(
                text,
                to=to,
                conversation_id=conversation_id,
                phone_number_id=phone_number_id,
                preview_url=preview_url,
                reply_to_message_id=reply_to_message_id,
                idempotency_key=idempotency_key,
            )
        )

    def send_message(
        self,
        content: Content,
        *,
        to: str = "",
        conversation_id: str = "",
        phone_number_id: str = "",
        reply_to_message_id: str = "",
        idempotency_key: str = "",
    ) -> Message:
        """Sends a message of any kind to ``to`` or into ``conversation_id``; returns it.

        ``content`` is a :class:`~kapso_gateway.Text` (or a ``str``), ``Template``, ``Media``,
        ``Interactive``, ``Reaction``, ``Location`` or ``Contacts``, or a generated
        content message. Outside the 24-hour window only a template goes out; anything
        else raises ``FAILED_PRECONDITION``.

        # Examples

        >>> from kapso_gateway import Interactive, Template
        >>> client.send_message(
        ...     Interactive.buttons("¿Confirmas tu hora?", [("yes", "Sí"), ("no", "No")]),
        ...     to="+15551234567", idempotency_key="confirm-1042")  # doctest: +SKIP
        >>> client.send_message(Template("appointment_reminder", "es", body=["Ana", "9:00"]),
        ...                     conversation_id="conv-1")  # doctest: +SKIP
        """
        return self._unary(
            calls.send_message(
                content,
                to=to,
                conversation_id=conversation_id,
                phone_number_id=phone_number_id,
                reply_to_message_id=reply_to_message_id,
                idempotency_key=idempotency_key,
            )
        )

    def mark_read(
        self, message_id: str, *, phone_number_id: str = "", typing_indicator: bool = False
    ) -> None:
        """Marks an inbound message read, optionally showing a typing indicator.

        # Examples

        >>> client.mark_read("wamid.HBgL...", typing_indicator=True)  # doctest: +SKIP
        """
        self._unary(
            calls.mark_read(
                message_id, phone_number_id=phone_number_id, typing_indicator=typing_indicator
            )
        )

    def upload_media(
        self,
        source: media.Source,
        mime_type: Optional[str] = None,
        *,
        filename: str = "",
        kind: MediaKind = MediaKind.UNSPECIFIED,
        phone_number_id: str = "",
        size: Optional[int] = None,
    ) -> UploadedMedia:
        """Uploads a file through the core to WhatsApp's media store; returns its media id.

        ``source`` is a path (its size, filename and, from the extension, MIME type are
        sent unless given), ``bytes``, a binary file open for reading, or an iterable of
        byte chunks. It is read and sent a chunk at a time, never whole. With ``size`` (a
        path's and bytes' are known) an oversized file is refused before any byte moves;
        otherwise the core refuses it at the first byte over its kind's limit
        (``INVALID_ARGUMENT``). An error reading the source is raised as itself, and the
        core keeps nothing. Not bounded by the client's ``timeout``: the core gives a file
        10 minutes.

        # Examples

        >>> uploaded = client.upload_media("boleta-1042.pdf")  # doctest: +SKIP
        >>> client.send_message(Media.document(id=uploaded.id, filename="boleta-1042.pdf"),
        ...                     to="+15551234567")  # doctest: +SKIP
        >>> with open("voz.bin", "rb") as voice:  # doctest: +SKIP
        ...     client.upload_media(voice, "audio/ogg", kind=MediaKind.AUDIO)
        """
        requests = media.Guarded(
            media.upload_requests(
                source,
                mime_type,
                filename=filename,
                kind=kind,
                phone_number_id=phone_number_id,
                size=size,
            )
        )
        try:
            response = self._stub.UploadMedia(iter(requests), metadata=self._connection.metadata)
        except grpc.RpcError:
            if requests.failures:
                raise requests.failures[0] from None
            raise
        return media.uploaded(response)

    def download_media(
        self, message_id: str = "", *, media_id: str = "", phone_number_id: str = ""
    ) -> MediaDownload:
        """Starts downloading the media of a stored message (wamid, gateway id or idempotency
        key) or of a ``media_id``; returns once the core sent the file's ``info``.

        Iterate the result for the bytes, chunk by chunk as they come, or ``save`` them. A
        refusal (``NOT_FOUND``, a file over its kind's limit) raises here. Not bounded by
        the client's ``timeout``.

        # Examples

        >>> download = client.download_media("wamid.HBgL...")  # doctest: +SKIP
        >>> print(download.info.mime_type, download.info.size_bytes)  # doctest: +SKIP
        image/jpeg 48213
        >>> for chunk in download:  # doctest: +SKIP
        ...     digest.update(chunk)
        """
        request = media.download_request(message_id, media_id, phone_number_id)
        return MediaDownload(
            self._stub.DownloadMedia(request, metadata=self._connection.metadata)
        )

    def download_media_to(
        self,
        destination: Union[str, "os.PathLike[str]", IO[bytes]],
        message_id: str = "",
        *,
        media_id: str = "",
        phone_number_id: str = "",
    ) -> MediaInfo:
        """Downloads into ``destination``, a path (the file appears only once complete) or a
        binary file; returns the file's info. See :meth:`download_media`.

        # Examples

        >>> info = client.download_media_to("foto.jpg", "wamid.HBgL...")  # doctest: +SKIP
        """
        return self.download_media(
            message_id, media_id=media_id, phone_number_id=phone_number_id
        ).save(destination)

    def get_message(self, message_id: str) -> Message:
        """A message by wamid, gateway id or idempotency key; ``NOT_FOUND`` when unknown.

        # Examples

        >>> print(client.get_message("order-42-shipped").status)  # doctest: +SKIP
        DELIVERED
        """
        return self._unary(calls.get_message(message_id))

    def list_messages(
        self, conversation_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> MessagePage:
        """One page of a conversation's messages, oldest first.

        # Examples

        >>> page = client.list_messages("conv-1", page_size=50)  # doctest: +SKIP
        >>> more = client.list_messages("conv-1", page_token=page.next_page_token)  # doctest: +SKIP
        """
        return self._unary(
            calls.list_messages(conversation_id, page_size=page_size, page_token=page_token)
        )

    def iter_messages(self, conversation_id: str, *, page_size: int = 0) -> Iterator[Message]:
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
        return self._unary(calls.ack(consumer, sequence))

    def seek_consumer(self, consumer: str, sequence: int) -> int:
        """Moves ``consumer`` to ``sequence``, backwards included (0 replays everything retained).

        Its next watch starts after it. Beyond the log's head raises ``OUT_OF_RANGE``.

        # Examples

        >>> client.seek_consumer("billing", 1200)  # doctest: +SKIP
        1200
        """
        return self._unary(calls.seek_consumer(consumer, sequence))

    def list_consumers(self) -> List[ConsumerPosition]:
        """Every named consumer by name, with its position (``sequence``) and ``lag``.

        # Examples

        >>> [(c.consumer, c.lag) for c in client.list_consumers()]  # doctest: +SKIP
        [('billing', 0)]
        """
        return self._unary(calls.list_consumers())

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
    ) -> Iterator[Event]:
        """Yields log events after ``after_sequence``, then live ones, forever.

        When the stream breaks (core restart, network), it reconnects with ``backoff`` and
        resumes after the last event it yielded, so no event is yielded twice or skipped.
        With ``consumer`` and ``after_sequence`` 0 it starts after the consumer's
        acknowledged position. With ``from_end`` and no position to resume from, it starts
        at the log's head (a new bot answers what comes next, not last month's messages);
        a new named consumer is recorded there at once, so its restarts skip nothing.
        With ``auto_ack`` each event is acknowledged as ``consumer`` once the caller asks
        for the next one, i.e. after it was processed (at-least-once: the event being
        processed when the program stops is delivered again on restart).
        ``max_attempts`` bounds consecutive failed attempts (``WatchGaveUp``); ``None``
        retries forever. Errors that a retry cannot fix (bad token, bad argument) raise.

        # Examples

        >>> for event in client.watch(consumer="billing", from_end=True, auto_ack=True,
        ...                           event_types=["whatsapp.message.received"]):  # doctest: +SKIP
        ...     handle(event.message)
        """
        if auto_ack and not consumer:
            raise ValueError("auto_ack needs a consumer name")
        cursor = watch_loop.Cursor(
            after_sequence,
            backoff=backoff,
            max_attempts=max_attempts,
            consumer=consumer,
            from_end=from_end,
            event_types=event_types,
            conversation_id=conversation_id,
            phone_number_id=phone_number_id,
        )
        return watch_loop.follow(
            lambda request: self._stub.WatchEvents(request, metadata=self._connection.metadata),
            self.ack,
            cursor,
            consumer=consumer,
            auto_ack=auto_ack,
        )
