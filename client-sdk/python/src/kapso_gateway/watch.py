"""The resumable WatchEvents loop: reconnect with backoff, resume after the last event yielded.

The core's log positions are strictly increasing, so "the last sequence handed to the
caller" is all the state a reconnect needs. Acknowledging is cumulative on the server
(AckEvents never moves back), so a lost ack is made good by the next one.

:class:`Cursor` holds that state and the retry rules; :func:`follow` (threads) and
:func:`follow_async` (asyncio) are the same loop over it.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Iterator, Optional

import grpc

from kapso_gateway import calls
from kapso_gateway.messages import Event

# Codes after which the same request can succeed later. Everything else (bad
# arguments, bad token, an unimplemented call) would fail again the same way.
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


class WatchGaveUp(Exception):
    """``max_attempts`` consecutive connection attempts failed; ``__cause__`` is the last error."""

    def __init__(self, attempts: int, last_sequence: int):
        super().__init__(
            f"watch gave up after {attempts} failed attempts (last sequence {last_sequence})"
        )
        self.attempts = attempts
        self.last_sequence = last_sequence


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter between reconnects.

    The n-th consecutive failure waits a random time between half and all of
    ``min(maximum, initial * multiplier ** (n - 1))`` seconds; a received event resets n.
    """

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0

    def delay(self, failures: int) -> float:
        ceiling = min(self.maximum, self.initial * self.multiplier ** max(0, failures - 1))
        return random.uniform(ceiling / 2, ceiling)


class Cursor:
    """Where a watch is in the log, and whether (and when) to reconnect after a failure."""

    def __init__(self, after_sequence: int, *, backoff: Backoff, max_attempts: Optional[int], **filters):
        self.last = after_sequence
        self.failures = 0
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._filters = filters

    def request(self):
        # With a consumer and nothing yielded yet, after_sequence 0 lets the server
        # resume from the consumer's acknowledged position; later, `last` is exact.
        return calls.watch_request(self.last, **self._filters)

    def advance(self, sequence: int) -> bool:
        """Records a received event; false for one the caller already had."""
        self.failures = 0
        if sequence <= self.last:
            return False
        self.last = sequence
        return True

    def retry_delay(self, error: Optional[grpc.RpcError]) -> float:
        """Seconds to wait before reconnecting after the stream ended with ``error``
        (``None``: it ended cleanly, e.g. a server shutdown). Raises an error a retry
        cannot fix, and :class:`WatchGaveUp` after ``max_attempts`` failures in a row."""
        if error is not None and error.code() not in RETRYABLE_CODES:
            raise error
        self.failures += 1
        if self._max_attempts is not None and self.failures >= self._max_attempts:
            raise WatchGaveUp(self.failures, self.last) from error
        return self._backoff.delay(self.failures)


def follow(
    open_stream: Callable[[object], grpc.Call],
    ack: Callable[[str, int], int],
    cursor: Cursor,
    *,
    consumer: str,
    auto_ack: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Event]:
    """The loop behind :meth:`kapso_gateway.Client.watch` (see there)."""
    while True:
        call = open_stream(cursor.request())
        error: Optional[grpc.RpcError] = None
        try:
            for event in call:
                if not cursor.advance(event.sequence):
                    continue  # never hand the caller the same event twice
                yield Event.from_proto(event)
                # Runs when the caller asks for the next event: the previous one is done.
                if auto_ack:
                    ack(consumer, event.sequence)
        except grpc.RpcError as rpc_error:
            error = rpc_error
        finally:
            call.cancel()
        sleep(cursor.retry_delay(error))


async def follow_async(
    open_stream: Callable[[object], grpc.aio.UnaryStreamCall],
    ack: Callable[[str, int], Awaitable[int]],
    cursor: Cursor,
    *,
    consumer: str,
    auto_ack: bool,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[Event]:
    """The loop behind :meth:`kapso_gateway.AsyncClient.watch`: :func:`follow` for asyncio."""
    while True:
        call = open_stream(cursor.request())
        error: Optional[grpc.RpcError] = None
        try:
            async for event in call:
                if not cursor.advance(event.sequence):
                    continue
                yield Event.from_proto(event)
                if auto_ack:
                    await ack(consumer, event.sequence)
        except grpc.RpcError as rpc_error:  # grpc.aio.AioRpcError included
            error = rpc_error
        finally:
            call.cancel()
        await sleep(cursor.retry_delay(error))
