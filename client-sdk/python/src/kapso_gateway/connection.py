"""Where the core is and how to authenticate: one rule for both clients.

The address comes from the argument, else ``$KAPSO_CORE_URL``, else ``127.0.0.1:50051``,
as ``host:port``, ``http://host:port`` (plaintext) or ``https://host:port`` (TLS). The
token comes from the argument, else ``$GATEWAY_API_TOKEN``; set, every call carries
``authorization: Bearer <token>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Tuple

import grpc

# Where the core listens by default (its CORE_LISTEN_ADDR default).
DEFAULT_CORE_ADDRESS = "127.0.0.1:50051"


@dataclass(frozen=True)
class Connection:
    """A resolved address: the gRPC target, TLS credentials (``None``: plaintext), metadata."""

    target: str
    credentials: Optional[grpc.ChannelCredentials]
    # The token stays out of repr(), and so out of logs.
    metadata: Tuple[Tuple[str, str], ...] = field(repr=False)

    @property
    def authenticated(self) -> bool:
        return bool(self.metadata)


def resolve(
    target: Optional[str],
    token: Optional[str],
    credentials: Optional[grpc.ChannelCredentials],
) -> Connection:
    target = target or os.environ.get("KAPSO_CORE_URL") or DEFAULT_CORE_ADDRESS
    if token is None:
        token = os.environ.get("GATEWAY_API_TOKEN")
    if target.startswith("https://"):
        target = target[len("https://") :]
        credentials = credentials or grpc.ssl_channel_credentials()
    elif target.startswith("http://"):
        target = target[len("http://") :]
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    return Connection(target, credentials, metadata)
