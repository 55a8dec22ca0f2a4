"""The SDK against a running kapso-core whose Kapso API is a fake (client-sdk/scripts/test-sdks.sh).

Needs KAPSO_CORE_ADDR (host:port of the core, on a fresh database) and FAKE_KAPSO_LOG (the
JSON-lines file where the fake Kapso server records each request it answered).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import queue
import socket
import subprocess
import threading
import time
import uuid

import grpc
import pytest

from kapso.gateway.v1 import ingest_pb2, ingest_pb2_grpc, types_pb2
from kapso_gateway import (
    AsyncClient,
    Backoff,
    Client,
    Contact,
    Contacts,
    Interactive,
    Location,
    Media,
    MediaKind,
    MessageStatus,
    Reaction,
    Template,
)

PHONE_NUMBER_ID = "123456789012345"
CONTACT = "15551234567"
CONVERSATION = "conv-sdk"
FAKE_KAPSO_KEY = "test-token-not-real"
WAIT = 15.0

CORE = os.environ.get("KAPSO_CORE_ADDR", "")
pytestmark = pytest.mark.skipif(not CORE, reason="KAPSO_CORE_ADDR is not set (see test-sdks.sh)")


def ingest_message(message_id: str, message_type: str, body: dict, text: str = "", target: str = CORE) -> int:
    """Stores one inbound message through the adapter's Ingest call; returns its log position."""
    payload = {
        "message": {
            "id": message_id,
            "type": message_type,
            "from": CONTACT,
            "timestamp": str(int(time.time())),
            message_type: body,
        },
        "conversation": {"id": CONVERSATION, "phone_number": CONTACT},
        "phone_number_id": PHONE_NUMBER_ID,
    }
    event = ingest_pb2.InboundEvent(
        event_type="whatsapp.message.received",
        message_id=message_id,
        conversation_id=CONVERSATION,
        phone_number_id=PHONE_NUMBER_ID,
        contact_phone=CONTACT,
        direction=types_pb2.DIRECTION_INBOUND,
        message_type=message_type,
        text=text,
        timestamp=int(time.time()),
        payload_json=json.dumps(payload),
    )
    request = ingest_pb2.IngestEventsRequest(
        delivery_key=f"sdk-test-{uuid.uuid4()}", events=[event], payload_version="v2"
    )
    with grpc.insecure_channel(target) as channel:
        response = ingest_pb2_grpc.IngestStub(channel).IngestEvents(request, timeout=WAIT)
    assert [o.disposition for o in response.outcomes] == [ingest_pb2.DISPOSITION_NEW]
    assert response.outcomes[0].sequence > 0
    return response.outcomes[0].sequence


def ingest_text(message_id: str, text: str, target: str = CORE) -> int:
    """Stores one inbound text through the adapter's Ingest call; returns its log position."""
    return ingest_message(message_id, "text", {"body": text}, text, target)


def watch_until(stop, **watch_args) -> list:
    """Events from a fresh client's watch until `stop(event)` is true; fails after WAIT seconds."""
    client = Client(CORE)
    seen, errors = [], []

    def run():
        try:
            for event in client.watch(**watch_args):
                seen.append(event)
                if stop(event):
                    return
        except grpc.RpcError as error:
            errors.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(WAIT)
    client.close()  # ends a watch still waiting
    worker.join(WAIT)
    timed_out = not seen or not stop(seen[-1])
    assert not timed_out, f"watch({watch_args}) saw {[e.sequence for e in seen]}, errors {errors}"
    return seen


def fake_kapso_requests() -> list:
    with open(os.environ["FAKE_KAPSO_LOG"], encoding="utf-8") as log:
        return [json.loads(line) for line in log if line.strip()]


@pytest.fixture(scope="module")
def client():
    with Client(CORE, token="sdk-test-token-not-real") as client:
        yield client


@pytest.fixture(scope="module")
def inbound_sequence():
    return ingest_text("wamid.sdk-test-1", "hola")


def test_watch_from_zero_yields_the_ingested_event(inbound_sequence):
    events = watch_until(lambda e: e.message.id == "wamid.sdk-test-1")
    event = events[-1]
    assert event.sequence == inbound_sequence
    assert event.event_type == "whatsapp.message.received"
    assert event.conversation_id == CONVERSATION
    assert event.phone_number_id == PHONE_NUMBER_ID
    assert event.message.text == "hola"
    assert json.loads(event.payload_json)["message"]["id"] == "wamid.sdk-test-1"


def test_get_and_list_find_the_inbound_message(client, inbound_sequence):
    message = client.get_message("wamid.sdk-test-1")
    assert message.direction == types_pb2.DIRECTION_INBOUND
    assert message.conversation_id == CONVERSATION
    assert message.contact_phone == CONTACT
    assert message.text == "hola"
    assert message.status == types_pb2.MESSAGE_STATUS_RECEIVED
    assert "wamid.sdk-test-1" in [m.id for m in client.iter_messages(CONVERSATION)]


def test_get_message_of_an_unknown_id_is_not_found(client):
    with pytest.raises(grpc.RpcError) as raised:
        client.get_message("wamid.sdk-test-never-stored")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_send_text_to_the_conversation_goes_through_kapso(client, inbound_sequence):
    message = client.send_text(
        "gracias", conversation_id=CONVERSATION, idempotency_key=f"sdk-test-{uuid.uuid4()}"
    )
    assert message.status == types_pb2.MESSAGE_STATUS_SENT
    assert message.id.startswith("wamid.fake-")
    assert message.direction == types_pb2.DIRECTION_OUTBOUND
    assert client.get_message(message.id).text == "gracias"

    sends = [r for r in fake_kapso_requests() if r["body"].get("type") == "text"]
    assert sends, "the fake Kapso API received no send"
    assert sends[-1]["path"] == f"/meta/whatsapp/v24.0/{PHONE_NUMBER_ID}/messages"
    assert sends[-1]["api_key"] == FAKE_KAPSO_KEY
    assert sends[-1]["body"]["to"].lstrip("+") == CONTACT
    assert sends[-1]["body"]["text"]["body"] == "gracias"


def last_kapso_send(message_type: str) -> dict:
    sends = [r for r in fake_kapso_requests() if r["body"].get("type") == message_type]
    assert sends, f"the fake Kapso API received no {message_type} send"
    assert sends[-1]["path"] == f"/meta/whatsapp/v24.0/{PHONE_NUMBER_ID}/messages"
    assert sends[-1]["api_key"] == FAKE_KAPSO_KEY
    return sends[-1]["body"]


def test_send_message_of_each_kind_reaches_kapso_in_metas_shape(client, inbound_sequence):
    def send(content) -> None:
        message = client.send_message(
            content, conversation_id=CONVERSATION, idempotency_key=f"sdk-test-{uuid.uuid4()}"
        )
        assert message.status == MessageStatus.SENT and message.id.startswith("wamid.fake-")

    send(Template("order_shipped", "es_MX", body=["Ana"], url_suffixes={0: "ORD-1042"}))
    template = last_kapso_send("template")
    assert template["to"].lstrip("+") == CONTACT
    assert template["template"] == {
        "name": "order_shipped",
        "language": {"code": "es_MX"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
            {"type": "button", "sub_type": "url", "index": "0",
             "parameters": [{"type": "text", "text": "ORD-1042"}]},
        ],
    }

    send(Interactive.buttons("¿Confirmas?", [("yes", "Sí"), ("no", "No")], footer="Clínica"))
    assert last_kapso_send("interactive")["interactive"] == {
        "type": "button",
        "body": {"text": "¿Confirmas?"},
        "footer": {"text": "Clínica"},
        "action": {"buttons": [
            {"type": "reply", "reply": {"id": "yes", "title": "Sí"}},
            {"type": "reply", "reply": {"id": "no", "title": "No"}},
        ]},
    }

    send(Media.document("https://cdn.example.com/inv-1042.pdf", filename="inv-1042.pdf"))
    assert last_kapso_send("document")["document"] == {
        "link": "https://cdn.example.com/inv-1042.pdf", "filename": "inv-1042.pdf"
    }

    send(Location(-33.4489, -70.6693, name="Oficina"))
    assert last_kapso_send("location")["location"] == {
        "latitude": -33.4489, "longitude": -70.6693, "name": "Oficina"
    }

    send(Contacts(Contact("Ana Pérez", phones=["+56912345678"])))
    (card,) = last_kapso_send("contacts")["contacts"]
    assert card["name"]["formatted_name"] == "Ana Pérez"
    assert card["phones"][0]["phone"] == "+56912345678"

    send(Reaction("wamid.sdk-test-1", "👍"))
    assert last_kapso_send("reaction")["reaction"] == {"message_id": "wamid.sdk-test-1", "emoji": "👍"}


def test_statuses_read_back_print_their_names(client, inbound_sequence):
    message = client.get_message("wamid.sdk-test-1")
    assert str(message.status) == "RECEIVED"
    assert str(message.direction) == "INBOUND"


def test_async_client_does_what_the_blocking_one_does(inbound_sequence):
    async def main():
        async with AsyncClient(CORE, token="sdk-test-token-not-real") as client:
            consumer = f"sdk-async-{uuid.uuid4().hex[:8]}"
            events = client.watch(consumer=consumer, from_end=True, auto_ack=True)
            first = asyncio.ensure_future(events.__anext__())
            # The core records a new from_end consumer at the head as its watch starts.
            deadline = time.monotonic() + WAIT
            while consumer not in [c.consumer for c in await client.list_consumers()]:
                assert time.monotonic() < deadline, "the watch never registered its consumer"
                await asyncio.sleep(0.05)

            fresh = await asyncio.to_thread(ingest_text, "wamid.sdk-async-1", "hola async")
            event = await asyncio.wait_for(first, WAIT)
            assert (event.sequence, event.message.text) == (fresh, "hola async")

            sent = await client.send_message(
                Interactive.cta_url("Tu pedido", "Seguir", "https://shop.example/o/1"),
                conversation_id=CONVERSATION,
                reply_to_message_id="wamid.sdk-async-1",
                idempotency_key=f"sdk-test-{uuid.uuid4()}",
            )
            assert str(sent.status) == "SENT"
            text = await client.send_text("gracias async", conversation_id=CONVERSATION)
            assert (await client.get_message(text.id)).text == "gracias async"
            page = await client.list_messages(CONVERSATION, page_size=1000)
            assert {sent.id, text.id} <= {m.id for m in page.messages}
            assert text.id in [m.id async for m in client.iter_messages(CONVERSATION, page_size=2)]
            await client.mark_read("wamid.sdk-async-1", typing_indicator=True)

            assert await client.seek_consumer(consumer, inbound_sequence) == inbound_sequence
            listed = {c.consumer: c for c in await client.list_consumers()}
            assert listed[consumer].sequence == inbound_sequence
            with pytest.raises(grpc.RpcError) as unknown:
                await client.get_message("wamid.sdk-test-never-stored")
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
            await events.aclose()

    asyncio.run(main())
    interactive = last_kapso_send("interactive")
    assert interactive["interactive"]["action"] == {
        "name": "cta_url", "parameters": {"display_text": "Seguir", "url": "https://shop.example/o/1"}
    }
    assert interactive["context"] == {"message_id": "wamid.sdk-async-1"}
    reads = [r for r in fake_kapso_requests() if r["body"].get("status") == "read"]
    assert reads[-1]["body"]["message_id"] == "wamid.sdk-async-1"
    assert reads[-1]["body"]["typing_indicator"] == {"type": "text"}


def test_mark_read_reaches_kapso(client, inbound_sequence):
    client.mark_read("wamid.sdk-test-1")
    reads = [r for r in fake_kapso_requests() if r["body"].get("status") == "read"]
    assert reads and reads[-1]["body"]["message_id"] == "wamid.sdk-test-1"
    assert reads[-1]["path"] == f"/meta/whatsapp/v24.0/{PHONE_NUMBER_ID}/messages"


def test_acked_consumer_resumes_after_its_position(client, inbound_sequence):
    consumer = f"sdk-test-{uuid.uuid4().hex[:8]}"
    assert client.ack(consumer, inbound_sequence) == inbound_sequence
    later = ingest_text("wamid.sdk-test-2", "otra")
    assert later > inbound_sequence

    events = watch_until(lambda e: e.sequence == later, consumer=consumer)
    assert events[0].sequence > inbound_sequence
    assert events[-1].message.id == "wamid.sdk-test-2"


def test_a_new_consumer_from_end_skips_the_backlog(client, inbound_sequence):
    consumer = f"sdk-test-{uuid.uuid4().hex[:8]}"
    seen = queue.Queue()

    def run():
        try:
            for event in Client(CORE).watch(consumer=consumer, from_end=True):
                seen.put(event)
        except grpc.RpcError:
            pass

    threading.Thread(target=run, daemon=True).start()
    # The core records a new from_end consumer at the head as its watch starts.
    deadline = time.monotonic() + WAIT
    while consumer not in [c.consumer for c in client.list_consumers()]:
        assert time.monotonic() < deadline, "the watch never registered its consumer"
        time.sleep(0.05)
    fresh = ingest_text(f"wamid.sdk-test-{uuid.uuid4().hex[:8]}", "nueva")
    first = seen.get(timeout=WAIT)
    assert first.sequence == fresh, "only what came after the watch started"


def test_seek_moves_a_consumer_back_and_list_shows_its_lag(client, inbound_sequence):
    consumer = f"sdk-test-{uuid.uuid4().hex[:8]}"
    head = ingest_text(f"wamid.sdk-test-{uuid.uuid4().hex[:8]}", "cabeza")
    assert client.ack(consumer, head) == head
    assert client.seek_consumer(consumer, inbound_sequence) == inbound_sequence
    listed = {c.consumer: c for c in client.list_consumers()}
    assert listed[consumer].sequence == inbound_sequence
    assert listed[consumer].lag >= head - inbound_sequence
    with pytest.raises(grpc.RpcError) as beyond:
        client.seek_consumer(consumer, head + 1_000_000)
    assert beyond.value.code() == grpc.StatusCode.OUT_OF_RANGE


def file_bytes(size: int, seed: int) -> bytes:
    """Bytes that differ at every offset and between seeds, so a lost or moved chunk shows."""
    return bytes((i * 7 + seed + i // 251) % 256 for i in range(size))


def kapso_uploads() -> list:
    return [r["upload"] for r in fake_kapso_requests() if "upload" in r]


def test_upload_from_a_path_and_from_chunks_reaches_kapso_byte_for_byte(client, tmp_path):
    pdf = file_bytes(200_000, 1)
    path = tmp_path / "boleta-1042.pdf"
    path.write_bytes(pdf)
    uploaded = client.upload_media(path)
    assert uploaded.id.startswith("fake-media-")
    assert (uploaded.size_bytes, uploaded.kind) == (len(pdf), MediaKind.DOCUMENT)
    received = kapso_uploads()[-1]
    assert received["id"] == uploaded.id
    assert received["type"] == received["content_type"] == "application/pdf"
    assert received["filename"] == "boleta-1042.pdf"
    assert (received["size"], received["sha256"]) == (len(pdf), hashlib.sha256(pdf).hexdigest())

    # Uneven pieces, one larger than a gRPC message should carry, and no declared size.
    voice = file_bytes(300_000, 2)
    pieces = (voice[:10], voice[10:250_000], voice[250_000:])
    uploaded = client.upload_media(iter(pieces), "audio/ogg", filename="voz.ogg")
    assert (uploaded.size_bytes, uploaded.kind) == (len(voice), MediaKind.AUDIO)
    received = kapso_uploads()[-1]
    assert (received["id"], received["filename"]) == (uploaded.id, "voz.ogg")
    assert (received["size"], received["sha256"]) == (len(voice), hashlib.sha256(voice).hexdigest())


def test_download_by_media_id_and_by_message_gives_the_uploaded_bytes(client, tmp_path):
    photo = file_bytes(150_000, 3)
    uploaded = client.upload_media(photo, "image/jpeg", filename="foto.jpg")

    download = client.download_media(media_id=uploaded.id)
    assert (download.info.media_id, download.info.mime_type) == (uploaded.id, "image/jpeg")
    assert (download.info.size_bytes, download.info.kind) == (len(photo), MediaKind.IMAGE)
    chunks = list(download)
    assert len(chunks) > 1, "the bytes came in one piece, not streamed"
    assert b"".join(chunks) == photo

    message_id = f"wamid.sdk-media-{uuid.uuid4().hex[:8]}"
    ingest_message(message_id, "image", {"id": uploaded.id, "mime_type": "image/jpeg"})
    target = tmp_path / "recibida.jpg"
    info = client.download_media_to(target, message_id)
    assert info.media_id == uploaded.id
    assert target.read_bytes() == photo
    assert [p.name for p in tmp_path.iterdir()] == ["recibida.jpg"], "no partial file left"

    with pytest.raises(grpc.RpcError) as unknown:
        client.download_media(media_id="fake-media-never-uploaded")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_file_over_its_kinds_limit_is_refused(client, tmp_path):
    # Stickers may have 500 KiB.
    sticker = file_bytes(600 * 1024, 4)
    path = tmp_path / "sticker.webp"
    path.write_bytes(sticker)
    before = len(kapso_uploads())
    with pytest.raises(grpc.RpcError) as declared:
        client.upload_media(path)
    assert declared.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(kapso_uploads()) == before, "a declared oversize file reached Kapso"

    # Undeclared: refused at the first byte over the limit, Kapso's request aborted.
    chunks = (sticker[i : i + 50_000] for i in range(0, len(sticker), 50_000))
    with pytest.raises(grpc.RpcError) as counted:
        client.upload_media(chunks, "image/webp")
    assert counted.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "500" in counted.value.details() or "limit" in counted.value.details()
    digest = hashlib.sha256(sticker).hexdigest()
    assert all(u.get("sha256") != digest for u in kapso_uploads()), "Kapso kept the file"


def test_a_failing_source_raises_its_own_error_and_kapso_keeps_nothing(client):
    def broken():
        yield file_bytes(100_000, 5)
        raise OSError("disk gone")

    before = [u.get("id") for u in kapso_uploads()]
    with pytest.raises(OSError, match="disk gone"):
        client.upload_media(broken(), "application/pdf")
    time.sleep(0.2)
    assert [u.get("id") for u in kapso_uploads() if u.get("id")] == [i for i in before if i]


def test_async_client_uploads_from_an_async_iterable_and_streams_the_download():
    data = file_bytes(130_000, 6)

    async def chunks():
        for start in range(0, len(data), 40_000):
            yield data[start : start + 40_000]

    async def main():
        async with AsyncClient(CORE) as client:
            uploaded = await client.upload_media(chunks(), "video/mp4", filename="clip.mp4")
            assert uploaded.kind == MediaKind.VIDEO
            download = await client.download_media(media_id=uploaded.id)
            assert download.info.size_bytes == len(data)
            return b"".join([chunk async for chunk in download])

    assert asyncio.run(main()) == data
    assert kapso_uploads()[-1]["sha256"] == hashlib.sha256(data).hexdigest()


def start_core(port: int, database: str, log) -> subprocess.Popen:
    """Starts the kapso-core binary (KAPSO_CORE_BIN) and waits until it answers."""
    env = {
        **os.environ,
        "CORE_LISTEN_ADDR": f"127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite://{database}",
    }
    core = subprocess.Popen([os.environ["KAPSO_CORE_BIN"]], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert core.poll() is None, f"kapso-core exited with {core.returncode}"
        with Client(f"127.0.0.1:{port}", timeout=1) as probe:
            try:
                probe.get_message("readiness-probe")
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    return core
        time.sleep(0.1)
    core.kill()
    raise AssertionError("kapso-core did not become ready")


@pytest.mark.skipif(not os.environ.get("KAPSO_CORE_BIN"), reason="KAPSO_CORE_BIN is not set")
def test_watch_resumes_across_a_core_restart(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = f"127.0.0.1:{port}"
    database = str(tmp_path / "restart.db")
    log = open(tmp_path / "core.log", "ab")
    core = start_core(port, database, log)
    client = Client(target)
    received: "queue.Queue" = queue.Queue()

    def run():
        try:
            for event in client.watch(backoff=Backoff(initial=0.1, maximum=0.5)):
                received.put(event.sequence)
        except grpc.RpcError as error:  # CANCELLED when the test closes the client
            received.put(error)

    try:
        first = ingest_text("wamid.sdk-restart-1", "antes", target)
        threading.Thread(target=run, daemon=True).start()
        assert received.get(timeout=WAIT) == first

        core.terminate()
        core.wait(WAIT)
        core = start_core(port, database, log)
        second = ingest_text("wamid.sdk-restart-2", "después", target)

        assert received.get(timeout=WAIT) == second
        time.sleep(0.5)
        assert received.empty(), "an event was yielded twice after the reconnect"
    finally:
        client.close()
        core.terminate()
        core.wait(WAIT)
        log.close()
