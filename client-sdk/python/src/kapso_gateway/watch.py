"""The resumable WatchEvents loop: reconnect with backoff, resume after the last event yielded.

The core's log positions are strictly increasing, so "the last sequence handed to the
caller" is all the state a reconnect needs. Acknowledging is cumulative on the server
(AckEvents never moves back), so a lost ack is made good by the next one.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import grpc

from kapso.gateway.v1 import messaging_pb2, types_pb2

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

    The n-th consecutive failure waits a random time up to
    ``min(maximum, initial * multiplier ** (n - 1))`` seconds; a received event resets n.
    """

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0

    def delay(self, failures: int) -> float:
        ceiling = min(self.maximum, self.initial * self.multiplier ** max(0, failures - 1))
        return random.uniform(ceiling / 2, ceiling)


def follow(
    open_stream: Callable[[messaging_pb2.WatchEventsRequest], grpc.Call],
    ack: Callable[[str, int], int],
    *,
    after_sequence: int,
    consumer: str,
    event_types: Sequence[str],
    from_end: bool = False,
    conversation_id: str,
    phone_number_id: str,
    auto_ack: bool,
    backoff: Backoff,
    max_attempts: Optional[int],
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[types_pb2.Event]:
    """The loop behind :meth:`kapso_gateway.Client.watch` (see there)."""
    if auto_ack and not consumer:
        raise ValueError("auto_ack needs a consumer name")
    last = after_sequence
    failures = 0
    while True:
        # With a consumer and nothing yielded yet, after_sequence 0 lets the server
        # resume from the consumer's acknowledged position; later, `last` is exact.
        request = messaging_pb2.WatchEventsRequest(
            after_sequence=last,
            consumer=consumer,
            from_end=from_end,
            event_types=list(event_types),
            conversation_id=conversation_id,
            phone_number_id=phone_number_id,
        )
        call = open_stream(request)
        error: Optional[grpc.RpcError] = None
        try:
            for event in call:
                failures = 0
                if event.sequence <= last:
                    continue  # never hand the caller the same event twice
                last = event.sequence
                yield event
                # Runs when the caller asks for the next event: the previous one is done.
                if auto_ack:
                    ack(consumer, event.sequence)
        except grpc.RpcError as rpc_error:
            if rpc_error.code() not in RETRYABLE_CODES:
                raise
            error = rpc_error
        finally:
            call.cancel()
        # A stream that ended without an error (server shutdown) is reconnected too.
        failures += 1
        if max_attempts is not None and failures >= max_attempts:
            raise WatchGaveUp(failures, last) from error
        sleep(backoff.delay(failures))
