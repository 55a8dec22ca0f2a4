"""`AsyncClient`: the methods of :class:`kapso_gateway.Client` for asyncio (``grpc.aio``).

Each method sends the same request as its blocking twin (both come from
:mod:`kapso_gateway.calls`) and returns the same types; see :class:`~kapso_gateway.Client`
for what each does. Create it inside a running event loop.

# Examples

>>> async def main():  # doctest: +SKIP
...     async with AsyncClient() as client:  # KAPSO_CORE_URL, GATEWAY_API_TOKEN
...         sent = await client.send_text("hola", to="+15551234567")
...         async for event in client.watch(consumer="bot", from_end=True, auto_ack=True):
...             print(event.sequence, event.event_type)
"""

from __future__ import annotations

import asyncio
import os
from typing import IO, AsyncIterable, AsyncIterator, List, Optional, Sequence, Union

import grpc

from kapso.gateway.v1 import messaging_pb2_grpc
from kapso_gateway import calls, connection, media
from kapso_gateway import watch as watch_loop
from kapso_gateway.content import Content
from kapso_gateway.enums import MediaKind
from kapso_gateway.media import AsyncMediaDownload, MediaInfo, UploadedMedia
from kapso_gateway.messages import ConsumerPosition, Event, Message, MessagePage
from kapso_gateway.watch import Backoff


class AsyncClient:
    """A ``grpc.aio`` connection to the core's Messaging service; arguments as :class:`Client`."""

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
            self._channel = grpc.aio.insecure_channel(self._connection.target)
        else:
            self._channel = grpc.aio.secure_channel(
                self._connection.target, self._connection.credentials
            )
        self._stub = messaging_pb2_grpc.MessagingStub(self._channel)
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"AsyncClient({self._connection.target!r}, authenticated={self._connection.authenticated})"

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def _unary(self, call: calls.Call):
        method = getattr(self._stub, call.method)
        response = await method(
            call.request, metadata=self._connection.metadata, timeout=self._timeout
        )
        return call.convert(response)

    async def send_text(
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
        """See :meth:`Client.send_text`."""
        return await self._unary(
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

    async def send_message(
        self,
        content: Content,
        *,
        to: str = "",
        conversation_id: str = "",
        phone_number_id: str = "",
        reply_to_message_id: str = "",
        idempotency_key: str = "",
    ) -> Message:
        """See :meth:`Client.send_message`."""
        return await self._unary(
            calls.send_message(
                content,
                to=to,
                conversation_id=conversation_id,
                phone_number_id=phone_number_id,
                reply_to_message_id=reply_to_message_id,
                idempotency_key=idempotency_key,
            )
        )

    async def mark_read(
        self, message_id: str, *, phone_number_id: str = "", typing_indicator: bool = False
    ) -> None:
        """See :meth:`Client.mark_read`."""
        await self._unary(
            calls.mark_read(
                message_id, phone_number_id=phone_number_id, typing_indicator=typing_indicator
            )
        )

    async def upload_media(
        self,
        source: Union[media.Source, AsyncIterable[bytes]],
        mime_type: Optional[str] = None,
        *,
        filename: str = "",
        kind: MediaKind = MediaKind.UNSPECIFIED,
        phone_number_id: str = "",
        size: Optional[int] = None,
    ) -> UploadedMedia:
        """See :meth:`Client.upload_media`; ``source`` may also be an async iterable of
        byte chunks, and files are read off the event loop."""
        requests = media.Guarded(
            media.upload_requests_async(
                source,
                mime_type,
                filename=filename,
                kind=kind,
                phone_number_id=phone_number_id,
                size=size,
            )
        )
        try:
            response = await self._stub.UploadMedia(requests, metadata=self._connection.metadata)
        except (grpc.RpcError, asyncio.CancelledError):
            # grpc.aio cancels the call when the source fails; that cancel is not the caller's.
            if requests.failures:
                raise requests.failures[0] from None
            raise
        return media.uploaded(response)

    async def download_media(
        self, message_id: str = "", *, media_id: str = "", phone_number_id: str = ""
    ) -> AsyncMediaDownload:
        """See :meth:`Client.download_media`; iterate the result with ``async for``."""
        request = media.download_request(message_id, media_id, phone_number_id)
        return await AsyncMediaDownload.start(
            self._stub.DownloadMedia(request, metadata=self._connection.metadata)
        )

    async def download_media_to(
        self,
        destination: Union[str, "os.PathLike[str]", IO[bytes]],
        message_id: str = "",
        *,
        media_id: str = "",
        phone_number_id: str = "",
    ) -> MediaInfo:
        """See :meth:`Client.download_media_to`."""
        download = await self.download_media(
            message_id, media_id=media_id, phone_number_id=phone_number_id
        )
        return await download.save(destination)

    async def get_message(self, message_id: str) -> Message:
        """See :meth:`Client.get_message`."""
        return await self._unary(calls.get_message(message_id))

    async def list_messages(
        self, conversation_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> MessagePage:
        """See :meth:`Client.list_messages`."""
        return await self._unary(
            calls.list_messages(conversation_id, page_size=page_size, page_token=page_token)
        )

    async def iter_messages(
        self, conversation_id: str, *, page_size: int = 0
    ) -> AsyncIterator[Message]:
        """See :meth:`Client.iter_messages`."""
        token = ""
        while True:
            page = await self.list_messages(conversation_id, page_size=page_size, page_token=token)
            for message in page.messages:
                yield message
            token = page.next_page_token
            if not token:
                return

    async def ack(self, consumer: str, sequence: int) -> int:
        """See :meth:`Client.ack`."""
        return await self._unary(calls.ack(consumer, sequence))

    async def seek_consumer(self, consumer: str, sequence: int) -> int:
        """See :meth:`Client.seek_consumer`."""
        return await self._unary(calls.seek_consumer(consumer, sequence))

    async def list_consumers(self) -> List[ConsumerPosition]:
        """See :meth:`Client.list_consumers`."""
        return await self._unary(calls.list_consumers())

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
    ) -> AsyncIterator[Event]:
        """See :meth:`Client.watch`; iterate with ``async for``."""
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
        return watch_loop.follow_async(
            lambda request: self._stub.WatchEvents(request, metadata=self._connection.metadata),
            self.ack,
            cursor,
            consumer=consumer,
            auto_ack=auto_ack,
        )
