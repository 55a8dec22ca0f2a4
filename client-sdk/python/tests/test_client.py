"""The wrapper against an in-process fake Messaging server: metadata, resume, backoff, acks."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest

from kapso.gateway.v1 import messaging_pb2, messaging_pb2_grpc, types_pb2
from kapso_gateway import Backoff, Client, WatchGaveUp

FAST = Backoff(initial=0.01, maximum=0.02)


class FakeMessaging(messaging_pb2_grpc.MessagingServicer):
    """Serves scripted WatchEvents streams and records what clients sent."""

    def __init__(self):
        self.lock = threading.Lock()
        self.metadata = []
        self.watch_requests = []
        self.acks = []
        # One entry per WatchEvents call: (sequences to stream, status code to end with or None).
        self.streams = []

    def _record(self, context):
        with self.lock:
            self.metadata.append(dict(context.invocation_metadata()))

    def GetMessage(self, request, context):
        self._record(context)
        return types_pb2.Message(id=request.message_id, status=types_pb2.MESSAGE_STATUS_RECEIVED)

    def AckEvents(self, request, context):
        self._record(context)
        with self.lock:
            self.acks.append((request.consumer, request.sequence))
        return messaging_pb2.AckEventsResponse(sequence=request.sequence)

    def WatchEvents(self, request, context):
        self._record(context)
        with self.lock:
            self.watch_requests.append(request)
            script = self.streams.pop(0) if self.streams else ([], grpc.StatusCode.UNAVAILABLE)
        sequences, end = script
        for sequence in sequences:
            yield types_pb2.Event(sequence=sequence, event_type="whatsapp.message.received")
        if end is not None:
            context.abort(end, "scripted end of stream")


@pytest.fixture
def fake():
    servicer = FakeMessaging()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    messaging_pb2_grpc.add_MessagingServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.target = f"127.0.0.1:{port}"
    yield servicer
    server.stop(grace=None)


def test_token_is_sent_as_bearer_metadata(fake):
    with Client(fake.target, token="fake-token-for-tests") as client:
        client.get_message("wamid.1")
    assert fake.metadata[-1]["authorization"] == "Bearer fake-token-for-tests"


def test_address_and_token_default_to_the_environment(fake, monkeypatch):
    monkeypatch.setenv("KAPSO_CORE_URL", f"http://{fake.target}")
    monkeypatch.setenv("GATEWAY_API_TOKEN", "fake-token-from-env")
    with Client() as client:
        client.get_message("wamid.1")
    assert fake.metadata[-1]["authorization"] == "Bearer fake-token-from-env"


def test_without_token_no_authorization_is_sent(fake):
    with Client(fake.target) as client:
        client.get_message("wamid.1")
    assert "authorization" not in fake.metadata[-1]


def test_repr_hides_the_token():
    client = Client("127.0.0.1:1", token="fake-token-for-tests")
    assert "fake-token-for-tests" not in repr(client)
    client.close()


def test_watch_reconnects_and_resumes_after_the_last_yielded_event(fake):
    fake.streams = [([1, 2], grpc.StatusCode.UNAVAILABLE), ([2, 3], None)]
    with Client(fake.target) as client:
        events = client.watch(backoff=FAST)
        seen = [next(events).sequence for _ in range(3)]
        events.close()
    assert seen == [1, 2, 3]
    assert [r.after_sequence for r in fake.watch_requests[:2]] == [0, 2]


def test_watch_reconnects_when_the_stream_ends_cleanly(fake):
    fake.streams = [([7], None), ([8], None)]
    with Client(fake.target) as client:
        events = client.watch(6, backoff=FAST)
        assert [next(events).sequence, next(events).sequence] == [7, 8]
        events.close()
    assert [r.after_sequence for r in fake.watch_requests[:2]] == [6, 7]


def test_watch_as_consumer_lets_the_server_pick_the_start_until_an_event_arrives(fake):
    fake.streams = [([], grpc.StatusCode.UNAVAILABLE), ([41, 42], None)]
    with Client(fake.target) as client:
        events = client.watch(consumer="billing", backoff=FAST)
        assert next(events).sequence == 41
        assert next(events).sequence == 42
        events.close()
    assert [(r.after_sequence, r.consumer) for r in fake.watch_requests[:2]] == [
        (0, "billing"),
        (0, "billing"),
    ]


def test_auto_ack_acknowledges_an_event_once_the_next_is_requested(fake):
    fake.streams = [([1, 2, 3], None)]
    with Client(fake.target) as client:
        events = client.watch(consumer="billing", auto_ack=True, backoff=FAST)
        next(events)
        assert fake.acks == []
        next(events)
        next(events)
        events.close()
    assert fake.acks == [("billing", 1), ("billing", 2)]


def test_auto_ack_needs_a_consumer(fake):
    with Client(fake.target) as client, pytest.raises(ValueError):
        client.watch(auto_ack=True)


def test_watch_raises_errors_a_retry_cannot_fix(fake):
    fake.streams = [([], grpc.StatusCode.UNAUTHENTICATED)]
    with Client(fake.target) as client:
        with pytest.raises(grpc.RpcError) as raised:
            next(client.watch(backoff=FAST))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(fake.watch_requests) == 1


def test_watch_gives_up_after_max_attempts_consecutive_failures(fake):
    fake.streams = []  # every call fails with UNAVAILABLE
    with Client(fake.target) as client:
        with pytest.raises(WatchGaveUp) as raised:
            next(client.watch(3, backoff=FAST, max_attempts=3))
    assert raised.value.attempts == 3
    assert raised.value.last_sequence == 3
    assert len(fake.watch_requests) == 3


def test_backoff_grows_to_its_maximum():
    backoff = Backoff(initial=1.0, maximum=5.0, multiplier=2.0)
    assert 0.5 <= backoff.delay(1) <= 1.0
    assert 2.0 <= backoff.delay(3) <= 4.0
    assert 2.5 <= backoff.delay(10) <= 5.0
