"""Python client for the kapso-gateway core (`kapso.gateway.v1.Messaging`).

A thin layer over the code that ``client-sdk/scripts/generate.sh`` generates from
``proto/`` into the ``kapso.gateway.v1`` package:

- ``client``: :class:`Client`, one method per Messaging call, bearer-token metadata.
- ``watch``: :class:`Backoff` and the resumable event loop behind :meth:`Client.watch`.

Messages and events are the generated protobuf types (``kapso.gateway.v1.types_pb2``);
failed calls raise :class:`grpc.RpcError`.
"""

from kapso_gateway.client import Client
from kapso_gateway.watch import Backoff, WatchGaveUp

__all__ = ["Backoff", "Client", "WatchGaveUp"]
