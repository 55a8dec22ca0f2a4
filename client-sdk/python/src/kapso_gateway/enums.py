"""The contract's enums as Python enums that print their names (``READ``, not ``5``).

Each is an :class:`enum.IntEnum` whose values are the protobuf numbers, so a member
compares equal to the raw field of a generated message
(``proto.status == MessageStatus.READ``). A number this SDK does not know (a newer core)
reads as ``UNSPECIFIED``; the raw value stays in the ``proto`` of the SDK's types.
"""

from __future__ import annotations

import enum


class _Named(enum.IntEnum):
    """Prints as its bare name in ``str()``, f-strings and ``repr()`` of the SDK's types."""

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    @classmethod
    def _missing_(cls, value):
        return cls(0)


class Direction(_Named):
    """Which way a message travelled, seen from the business."""

    UNSPECIFIED = 0
    INBOUND = 1
    OUTBOUND = 2


class MessageStatus(_Named):
    """Lifecycle of a message; outbound ones only move forward (ACCEPTED < SENT < DELIVERED < READ)."""

    UNSPECIFIED = 0
    RECEIVED = 1
    ACCEPTED = 2
    SENT = 3
    DELIVERED = 4
    READ = 5
    FAILED = 6
    OUTCOME_UNKNOWN = 7


class MediaKind(_Named):
    """What a media message holds."""

    UNSPECIFIED = 0
    IMAGE = 1
    VIDEO = 2
    AUDIO = 3
    DOCUMENT = 4
    STICKER = 5


class ReplyKind(_Named):
    """Which interactive element an inbound ``interactive_reply`` answers."""

    UNSPECIFIED = 0
    BUTTON_REPLY = 1
    LIST_REPLY = 2
