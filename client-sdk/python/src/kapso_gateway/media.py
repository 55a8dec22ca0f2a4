"""Media files through the core: what ``upload_media`` streams and ``download_media`` returns.

Both clients stream: an upload sends its source a chunk (:data:`CHUNK` bytes) at a time
while the core passes each on to Kapso, and a download hands over each chunk as it comes.
Given a path or a file, neither reads the whole file into memory.

- :func:`upload_requests` (and :func:`upload_requests_async`): the ``UploadMedia`` messages
  for a source, the metadata first; :class:`UploadedMedia` is the answer.
- :func:`download_request`: the ``DownloadMedia`` request naming a message or a media id;
  :class:`MediaInfo` is the metadata its first answer carries.
- :class:`MediaDownload` (and :class:`AsyncMediaDownload`): a download under way, its
  ``info`` read, its bytes an iterator of chunks, ``save`` writing them to a path or file.
- :func:`mime_type_of`: the MIME type a file's extension names.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import (
    IO,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    Union,
)

import grpc

from kapso.gateway.v1 import messaging_pb2
from kapso_gateway.enums import MediaKind

#: Bytes per upload message: small enough to stream smoothly, far under the core's
#: 4 MiB message limit.
CHUNK = 64 * 1024

#: What ``upload_media`` reads: a path, bytes, a binary file open for reading, or an
#: iterable of byte chunks (``AsyncClient`` also takes an async iterable).
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Iterable[bytes]]

# The kinds WhatsApp takes (docs/kapso-contract.md, 4.4), as the Rust client names them.
_MIME_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "3gp": "video/3gpp",
    "aac": "audio/aac",
    "amr": "audio/amr",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def mime_type_of(path: Union[str, "os.PathLike[str]"]) -> Optional[str]:
    """The MIME type the file's extension names, for the kinds WhatsApp takes; else ``None``.

    # Examples

    >>> mime_type_of("boleta.PDF")
    'application/pdf'
    >>> mime_type_of("notes") is None
    True
    """
    _, extension = os.path.splitext(os.fspath(path))
    return _MIME_TYPES.get(extension[1:].lower())


@dataclass(frozen=True)
class UploadedMedia:
    """An upload's answer: the media id to send with ``Media.document(id=...)`` and the like."""

    id: str
    #: The bytes the core counted.
    size_bytes: int
    #: The kind whose size limit applied.
    kind: MediaKind


@dataclass(frozen=True)
class MediaInfo:
    """What the core says of a file before its bytes."""

    media_id: str
    mime_type: str
    #: 0 when unknown.
    size_bytes: int
    #: As Meta reports it.
    sha256: str
    #: The message's filename, when it has one.
    filename: str
    kind: MediaKind
    proto: messaging_pb2.MediaInfo = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, info: messaging_pb2.MediaInfo) -> "MediaInfo":
        return cls(
            media_id=info.media_id,
            mime_type=info.mime_type,
            size_bytes=info.size_bytes,
            sha256=info.sha256,
            filename=info.filename,
            kind=MediaKind(info.kind),
            proto=info,
        )


def uploaded(response: messaging_pb2.UploadMediaResponse) -> UploadedMedia:
    return UploadedMedia(response.id, response.size_bytes, MediaKind(response.kind))


def _is_path(source) -> bool:
    return isinstance(source, (str, os.PathLike))


def _metadata(
    source,
    mime_type: Optional[str],
    filename: str,
    kind: MediaKind,
    phone_number_id: str,
    size: Optional[int],
) -> messaging_pb2.UploadMediaRequest:
    """The first message; a path gives the filename, size and MIME type it implies."""
    if _is_path(source):
        filename = filename or os.path.basename(os.fspath(source))
        size = os.stat(source).st_size if size is None else size
        mime_type = mime_type or mime_type_of(source)
        if not mime_type:
            raise ValueError(f"no MIME type known for {os.fspath(source)!r}; name one (mime_type=...)")
    elif isinstance(source, (bytes, bytearray, memoryview)) and size is None:
        size = len(source)
    if not mime_type:
        raise ValueError("mime_type is required unless the source is a path with a known extension")
    return messaging_pb2.UploadMediaRequest(
        metadata=messaging_pb2.MediaUpload(
            mime_type=mime_type,
            filename=filename,
            phone_number_id=phone_number_id,
            kind=int(kind),
            size_bytes=size or 0,
        )
    )


def _chunk(data) -> messaging_pb2.UploadMediaRequest:
    return messaging_pb2.UploadMediaRequest(chunk=bytes(data))


def _split(data) -> Iterator[messaging_pb2.UploadMediaRequest]:
    """Pieces of at most CHUNK bytes: a caller's large chunk must not pass the message limit."""
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield _chunk(view[start : start + CHUNK])


def _read_file(file: IO[bytes]) -> Iterator[messaging_pb2.UploadMediaRequest]:
    while True:
        data = file.read(CHUNK)
        if not data:
            return
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("the file must be opened in binary mode ('rb')")
        yield from _split(data)


def upload_requests(
    source: Source,
    mime_type: Optional[str] = None,
    *,
    filename: str = "",
    kind: MediaKind = MediaKind.UNSPECIFIED,
    phone_number_id: str = "",
    size: Optional[int] = None,
) -> Iterator[messaging_pb2.UploadMediaRequest]:
    """The ``UploadMedia`` messages for ``source``, read lazily: metadata, then chunks.

    The metadata is built before the first ``next()``, so a bad argument raises at once.
    """
    first = _metadata(source, mime_type, filename, kind, phone_number_id, size)

    def messages() -> Iterator[messaging_pb2.UploadMediaRequest]:
        yield first
        if _is_path(source):
            with open(source, "rb") as file:
                yield from _read_file(file)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            yield from _split(source)
        elif hasattr(source, "read"):
            yield from _read_file(source)
        else:
            for data in source:
                yield from _split(data)

    return messages()


def upload_requests_async(
    source: Union[Source, AsyncIterable[bytes]],
    mime_type: Optional[str] = None,
    *,
    filename: str = "",
    kind: MediaKind = MediaKind.UNSPECIFIED,
    phone_number_id: str = "",
    size: Optional[int] = None,
) -> AsyncIterator[messaging_pb2.UploadMediaRequest]:
    """As :func:`upload_requests`, for ``grpc.aio``: files are read off the event loop,
    and an async iterable of byte chunks is taken too."""
    first = _metadata(source, mime_type, filename, kind, phone_number_id, size)

    async def from_file(file: IO[bytes]) -> AsyncIterator[messaging_pb2.UploadMediaRequest]:
        while True:
            data = await asyncio.to_thread(file.read, CHUNK)
            if not data:
                return
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("the file must be opened in binary mode ('rb')")
            for message in _split(data):
                yield message

    async def messages() -> AsyncIterator[messaging_pb2.UploadMediaRequest]:
        yield first
        if _is_path(source):
            file = await asyncio.to_thread(open, source, "rb")
            try:
                async for message in from_file(file):
                    yield message
            finally:
                file.close()
        elif isinstance(source, (bytes, bytearray, memoryview)):
            for message in _split(source):
                yield message
        elif hasattr(source, "read"):
            async for message in from_file(source):
                yield message
        elif hasattr(source, "__aiter__"):
            async for data in source:
                for message in _split(data):
                    yield message
        else:
            for data in source:
                for message in _split(data):
                    yield message

    return messages()


def download_request(
    message_id: str, media_id: str, phone_number_id: str
) -> messaging_pb2.DownloadMediaRequest:
    """Names the media of a stored message or a media id: exactly one of them."""
    if bool(message_id) == bool(media_id):
        raise ValueError("give exactly one of message_id and media_id")
    if message_id:
        return messaging_pb2.DownloadMediaRequest(
            message_id=message_id, phone_number_id=phone_number_id
        )
    return messaging_pb2.DownloadMediaRequest(media_id=media_id, phone_number_id=phone_number_id)


def first_info(response: Optional[messaging_pb2.DownloadMediaResponse]) -> MediaInfo:
    if response is None or response.WhichOneof("part") != "metadata":
        raise RuntimeError("DownloadMedia answered without its metadata first")
    return MediaInfo.from_proto(response.metadata)


def chunk_of(response: messaging_pb2.DownloadMediaResponse) -> bytes:
    if response.WhichOneof("part") != "chunk":
        raise RuntimeError("DownloadMedia sent its metadata twice")
    return response.chunk



def _partial(path: Union[str, "os.PathLike[str]"]) -> Tuple[str, str]:
    """The final path and the one written first: the file appears only once complete."""
    final = os.fspath(path)
    directory, name = os.path.split(final)
    return final, os.path.join(directory, f".{name}.part-{os.getpid()}")


class Guarded:
    """Wraps an upload's messages and keeps the error its source raised: gRPC cancels the
    call on it (so the core aborts Kapso's request) and reports only ``CANCELLED`` or
    ``UNKNOWN``; the caller gets the source's own error instead."""

    def __init__(self, messages):
        self._messages = messages
        self.failures: List[BaseException] = []

    def __iter__(self):
        try:
            yield from self._messages
        except Exception as error:
            self.failures.append(error)
            raise

    async def __aiter__(self):
        try:
            async for message in self._messages:
                yield message
        except Exception as error:
            self.failures.append(error)
            raise


class MediaDownload:
    """A download under way: ``info`` came first; iterate for the bytes, chunk by chunk.

    A stream that fails part way raises after the chunks already yielded: keep the bytes
    only once iteration ended cleanly (``save`` does).
    """

    def __init__(self, call):
        self._call = call
        self.info = first_info(next(call, None))

    def __repr__(self) -> str:
        return f"MediaDownload({self.info!r})"

    def __iter__(self) -> Iterator[bytes]:
        for response in self._call:
            yield chunk_of(response)

    def cancel(self) -> None:
        """Stops the download; the core stops reading from Kapso."""
        self._call.cancel()

    def __enter__(self) -> "MediaDownload":
        return self

    def __exit__(self, *exc_info) -> None:
        self.cancel()

    def save(self, destination: Union[str, "os.PathLike[str]", IO[bytes]]) -> MediaInfo:
        """Writes the bytes to a binary file, or to a path where the file appears only once
        complete (nothing is left behind on an error); returns ``info``."""
        if hasattr(destination, "write"):
            for data in self:
                destination.write(data)
            return self.info
        final, partial = _partial(destination)
        try:
            with open(partial, "wb") as out:
                for data in self:
                    out.write(data)
            os.replace(partial, final)
        except BaseException:
            self.cancel()
            _remove(partial)
            raise
        return self.info


class AsyncMediaDownload:
    """:class:`MediaDownload` for ``grpc.aio``: ``async for`` the chunks, ``await save(...)``."""

    def __init__(self, call, info: MediaInfo):
        self._call = call
        self.info = info

    @classmethod
    async def start(cls, call) -> "AsyncMediaDownload":
        first = await call.read()
        return cls(call, first_info(None if first is grpc.aio.EOF else first))

    def __repr__(self) -> str:
        return f"AsyncMediaDownload({self.info!r})"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            response = await self._call.read()
            if response is grpc.aio.EOF:
                return
            yield chunk_of(response)

    def cancel(self) -> None:
        self._call.cancel()

    async def save(self, destination: Union[str, "os.PathLike[str]", IO[bytes]]) -> MediaInfo:
        """As :meth:`MediaDownload.save`; files are written off the event loop."""
        if hasattr(destination, "write"):
            async for data in self:
                await asyncio.to_thread(destination.write, data)
            return self.info
        final, partial = _partial(destination)
        try:
            out = await asyncio.to_thread(open, partial, "wb")
            try:
                async for data in self:
                    await asyncio.to_thread(out.write, data)
            finally:
                out.close()
            os.replace(partial, final)
        except BaseException:
            self.cancel()
            _remove(partial)
            raise
        return self.info


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
