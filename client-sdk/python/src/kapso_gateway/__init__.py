"""Python client for the kapso-gateway core (`kapso.gateway.v1.Messaging`).

A layer over the code generated from ``proto/`` into the ``kapso.gateway.v1`` package
(generated when the package is built; see setup.py):

- ``client``: :class:`Client`, one blocking method per Messaging call.
- ``aio``: :class:`AsyncClient`, the same methods for asyncio.
- ``content``: what ``send_message`` sends: :class:`Text`, :class:`Template`,
  :class:`Media`, :class:`Interactive`, :class:`Reaction`, :class:`Location`, :class:`Contacts`.
- ``messages``: what the calls return: :class:`Message`, :class:`Event`, ...
- ``media``: what ``upload_media`` and ``download_media`` stream and return:
  :class:`UploadedMedia`, :class:`MediaInfo`, :class:`MediaDownload`.
- ``enums``: :class:`MessageStatus`, :class:`Direction`, ... printing their names.
- ``watch``: :class:`Backoff` and the resumable event loop behind ``watch``.
- ``calls`` and ``connection``: the requests and the address rules both clients share.

Failed calls raise :class:`grpc.RpcError` (``error.code()`` is a ``grpc.StatusCode``).
"""

from kapso_gateway.aio import AsyncClient
from kapso_gateway.client import Client
from kapso_gateway.content import (
    Button,
    Contact,
    Contacts,
    Currency,
    DateTime,
    Interactive,
    Location,
    Media,
    Reaction,
    Row,
    Section,
    Template,
    Text,
)
from kapso_gateway.enums import Direction, MediaKind, MessageStatus, ReplyKind
from kapso_gateway.media import AsyncMediaDownload, MediaDownload, MediaInfo, UploadedMedia
from kapso_gateway.messages import ConsumerPosition, Event, Message, MessagePage, MetaError, StatusRecord
from kapso_gateway.watch import Backoff, WatchGaveUp

__all__ = [
    "AsyncClient",
    "AsyncMediaDownload",
    "Backoff",
    "Button",
    "Client",
    "ConsumerPosition",
    "Contact",
    "Contacts",
    "Currency",
    "DateTime",
    "Direction",
    "Event",
    "Interactive",
    "Location",
    "Media",
    "MediaDownload",
    "MediaInfo",
    "MediaKind",
    "Message",
    "MessagePage",
    "MessageStatus",
    "MetaError",
    "Reaction",
    "ReplyKind",
    "Row",
    "Section",
    "StatusRecord",
    "Template",
    "Text",
    "UploadedMedia",
    "WatchGaveUp",
]
