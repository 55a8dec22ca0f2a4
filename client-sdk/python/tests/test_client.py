"""The wrapper against an in-process fake Messaging server: metadata, resume, backoff, acks,
the requests send_message builds, and the asyncio client."""

from __future__ import annotations

import asyncio
import threading
from concurrent import futures

import grpc
import pytest

from kapso.gateway.v1 import content_pb2, messaging_pb2, messaging_pb2_grpc, types_pb2
from kapso_gateway import (
    AsyncClient,
    Backoff,
    Client,
    Contact,
    Contacts,
    Currency,
    Interactive,
    Location,
    Media,
    MessageStatus,
    Reaction,
    Row,
    Section,
    Template,
    WatchGaveUp,
)

FAST = Backoff(initial=0.01, maximum=0.02)


class FakeMessaging(messaging_pb2_grpc.MessagingServicer):
    """Serves scripted WatchEvents streams and records what clients sent."""

    def __init__(self):
        self.lock = threading.Lock()
        self.metadata = []
        self.watch_requests = []
        self.acks = []
        self.sends = []
        # One entry per WatchEvents call: (sequences to stream, status code to end with or None).
        self.streams = []

    def _record(self, context):
        with self.lock:
            self.metadata.append(dict(context.invocation_metadata()))

    def GetMessage(self, request, context):
        self._record(context)
        return types_pb2.Message(id=request.message_id, status=types_pb2.MESSAGE_STATUS_RECEIVED)

    def SendMessage(self, request, context):
        self._record(context)
        with self.lock:
            self.sends.append(request)
        message = types_pb2.Message(
            id="wamid.sent", idempotency_key=request.idempotency_key, status=types_pb2.MESSAGE_STATUS_SENT
        )
        return messaging_pb2.SendMessageResponse(message=message)

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


def test_send_message_puts_each_kind_in_its_content_case(fake):
    with Client(fake.target) as client:
        sent = client.send_message(
            Template("order_shipped", "es_MX", body=["Ana", Currency("$10", "USD", 10_000)],
                     header=Media.image("https://cdn.example/b.jpg"), url_suffixes={0: "ORD-1"}),
            to="+15551234567",
            idempotency_key="k-1",
        )
        document = Media.document("https://cdn.example/i.pdf", filename="i.pdf")
        client.send_message(document, conversation_id="conv-1")
        yes_no = Interactive.buttons("¿Sí?", [("yes", "Sí"), ("no", "No")], footer="pie")
        client.send_message(yes_no, to="1")
        hours = [Section("Horas", [Row("am", "Mañana", "9-12")])]
        client.send_message(Interactive.list("Elige", "Ver", hours), to="1")
        client.send_message(Reaction("wamid.in", "👍"), to="1")
        client.send_message(Location(-33.45, -70.66, name="Oficina"), to="1")
        client.send_message(Contacts(Contact("Ana Pérez", phones=["+56912345678"])), to="1")
        client.send_message("hola", to="1", reply_to_message_id="wamid.in")

    assert sent.id == "wamid.sent" and sent.idempotency_key == "k-1"
    assert [r.WhichOneof("content") for r in fake.sends] == [
        "template", "media", "interactive", "interactive", "reaction", "location", "contacts", "text"
    ]
    template, media, buttons, menu, reaction, location, contacts, text = fake.sends
    assert (template.to, template.idempotency_key) == ("+15551234567", "k-1")
    header, body, url = template.template.components
    assert header.type == content_pb2.TEMPLATE_COMPONENT_TYPE_HEADER
    assert header.parameters[0].media.kind == content_pb2.MEDIA_KIND_IMAGE
    assert [p.WhichOneof("value") for p in body.parameters] == ["text", "currency"]
    assert body.parameters[1].currency.amount_1000 == 10_000
    assert (url.button_type, url.index, url.parameters[0].text) == (
        content_pb2.TEMPLATE_BUTTON_TYPE_URL, 0, "ORD-1")
    assert (media.conversation_id, media.media.kind, media.media.filename) == (
        "conv-1", content_pb2.MEDIA_KIND_DOCUMENT, "i.pdf")
    assert [(b.id, b.title) for b in buttons.interactive.buttons.buttons] == [("yes", "Sí"), ("no", "No")]
    assert buttons.interactive.footer == "pie"
    assert menu.interactive.list.sections[0].rows[0].description == "9-12"
    assert (reaction.reaction.message_id, reaction.reaction.emoji) == ("wamid.in", "👍")
    assert location.location.name == "Oficina"
    assert contacts.contacts.contacts[0].name.formatted_name == "Ana Pérez"
    assert not contacts.contacts.contacts[0].HasField("org")
    assert (text.text.body, text.reply_to_message_id) == ("hola", "wamid.in")


def test_named_template_variables_carry_their_names(fake):
    with Client(fake.target) as client:
        client.send_message(Template("welcome", "en", body={"first_name": "Ana"}), to="1")
    (parameter,) = fake.sends[-1].template.components[0].parameters
    assert (parameter.parameter_name, parameter.text) == ("first_name", "Ana")


def test_send_message_refuses_what_is_not_content_before_any_call(fake):
    with Client(fake.target) as client, pytest.raises(TypeError, match="cannot send a dict"):
        client.send_message({"text": "hola"}, to="1")
    assert fake.sends == []


def test_returned_enums_print_their_names(fake):
    with Client(fake.target) as client:
        message = client.get_message("wamid.1")
    assert message.status == MessageStatus.RECEIVED == types_pb2.MESSAGE_STATUS_RECEIVED
    assert str(message.status) == "RECEIVED"
    assert f"{message.status}" == "RECEIVED"
    assert "status=MessageStatus.RECEIVED" in repr(message)
    assert str(MessageStatus(5)) == "READ"


def test_sdk_enums_match_the_contract():
    from kapso_gateway import Direction, MediaKind, ReplyKind

    contract = {
        Direction: (types_pb2.Direction, "DIRECTION_"),
        MessageStatus: (types_pb2.MessageStatus, "MESSAGE_STATUS_"),
        MediaKind: (content_pb2.MediaKind, "MEDIA_KIND_"),
        ReplyKind: (content_pb2.InteractiveReply.Kind, "KIND_"),
    }
    for sdk, (generated, prefix) in contract.items():
        expected = {name[len(prefix):]: number for name, number in generated.items()}
        assert {m.name: m.value for m in sdk} == expected, sdk.__name__


def test_async_client_sends_the_token_and_maps_results(fake):
    async def main():
        async with AsyncClient(fake.target, token="fake-token-for-tests") as client:
            message = await client.get_message("wamid.1")
            sent = await client.send_message(Reaction("wamid.1", "👍"), to="1", idempotency_key="k-2")
            return message, sent

    message, sent = asyncio.run(main())
    assert (message.id, str(message.status)) == ("wamid.1", "RECEIVED")
    assert (sent.id, sent.status) == ("wamid.sent", MessageStatus.SENT)
    assert fake.sends[-1].reaction.emoji == "👍"
    assert all(m["authorization"] == "Bearer fake-token-for-tests" for m in fake.metadata)


def test_async_watch_resumes_after_the_last_event_and_acks_once_the_next_is_requested(fake):
    fake.streams = [([1, 2], grpc.StatusCode.UNAVAILABLE), ([2, 3], None)]

    async def main():
        async with AsyncClient(fake.target) as client:
            events = client.watch(consumer="billing", auto_ack=True, backoff=FAST)
            seen = [(await events.__anext__()).sequence for _ in range(3)]
            acks_before_close = list(fake.acks)
            await events.aclose()
            return seen, acks_before_close

    seen, acks = asyncio.run(main())
    assert seen == [1, 2, 3]
    assert acks == [("billing", 1), ("billing", 2)]
    assert [r.after_sequence for r in fake.watch_requests[:2]] == [0, 2]


def test_async_watch_raises_errors_a_retry_cannot_fix(fake):
    fake.streams = [([], grpc.StatusCode.PERMISSION_DENIED)]

    async def main():
        async with AsyncClient(fake.target) as client:
            with pytest.raises(grpc.RpcError) as raised:
                await client.watch(backoff=FAST).__anext__()
            return raised.value.code()

    assert asyncio.run(main()) == grpc.StatusCode.PERMISSION_DENIED
    assert len(fake.watch_requests) == 1
