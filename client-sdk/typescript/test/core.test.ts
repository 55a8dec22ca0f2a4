// The SDK against a running kapso-core whose Kapso API is a fake (client-sdk/scripts/test-sdks.sh).
//
// Needs KAPSO_CORE_ADDR (host:port of the core, on a fresh database) and FAKE_KAPSO_LOG (the
// JSON-lines file where the fake Kapso server records each request it answered).
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';

import { Client, interactive, loadProto, location, media, template, type Content, type Event, type WatchOptions } from '../src';
import type { IngestEventsResponse__Output } from '../src/generated/kapso/gateway/v1/IngestEventsResponse';

const CORE = process.env.KAPSO_CORE_ADDR ?? '';
const PHONE_NUMBER_ID = '123456789012345';
const CONTACT = '15551234567';
const CONVERSATION = 'conv-sdk';
const FAKE_KAPSO_KEY = 'test-token-not-real';
const WAIT_MS = 15_000;

/** Stores one inbound text through the adapter's Ingest call; resolves to its log position. */
function ingestText(messageId: string, text: string): Promise<string> {
  return ingestMessage(messageId, 'text', { body: text }, text);
}

/** Stores one inbound message through the adapter's Ingest call; resolves to its log position. */
async function ingestMessage(messageId: string, type: string, body: object, text = ''): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    message: { id: messageId, type, from: CONTACT, timestamp: String(now), [type]: body },
    conversation: { id: CONVERSATION, phone_number: CONTACT },
    phone_number_id: PHONE_NUMBER_ID,
  };
  const ingest = new (loadProto().kapso.gateway.v1.Ingest)(CORE, grpc.credentials.createInsecure());
  try {
    const response = await new Promise<IngestEventsResponse__Output>((resolve, reject) =>
      ingest.IngestEvents(
        {
          delivery_key: `sdk-test-${randomUUID()}`,
          payload_version: 'v2',
          events: [
            {
              event_type: 'whatsapp.message.received',
              message_id: messageId,
              conversation_id: CONVERSATION,
              phone_number_id: PHONE_NUMBER_ID,
              contact_phone: CONTACT,
              direction: 'DIRECTION_INBOUND',
              message_type: type,
              text,
              timestamp: now,
              payload_json: JSON.stringify(payload),
            },
          ],
        },
        { deadline: Date.now() + WAIT_MS },
        (error, value) => (error ? reject(error) : resolve(value!)),
      ),
    );
    assert.deepEqual(response.outcomes.map((o) => o.disposition), ['DISPOSITION_NEW']);
    assert.ok(BigInt(response.outcomes[0].sequence) > 0n);
    return response.outcomes[0].sequence;
  } finally {
    ingest.close();
  }
}

/** Events from a fresh client's watch until `stop(event)` is true; fails after WAIT_MS. */
async function watchUntil(stop: (event: Event) => boolean, options: WatchOptions = {}): Promise<Event[]> {
  const watcher = new Client(CORE);
  const seen: Event[] = [];
  try {
    for await (const event of watcher.watch({ ...options, signal: AbortSignal.timeout(WAIT_MS) })) {
      seen.push(event);
      if (stop(event)) return seen;
    }
  } finally {
    watcher.close();
  }
  assert.fail(`watch(${JSON.stringify(options)}) timed out, saw ${seen.map((e) => e.sequence)}`);
}

interface KapsoRequest {
  path: string;
  api_key: string;
  body: Record<string, any>;
  /** Uploads only: what the fake received. */
  upload?: { id?: string; type?: string; filename?: string; content_type?: string; size?: number; sha256?: string; aborted?: boolean };
}

function kapsoUploads() {
  return fakeKapsoRequests().flatMap((r) => (r.upload ? [r.upload] : []));
}

/** Bytes that differ at every offset and between seeds, so a lost or moved chunk shows. */
function fileBytes(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + seed + Math.floor(i / 251)) % 256;
  return bytes;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function fakeKapsoRequests(): KapsoRequest[] {
  const log = readFileSync(process.env.FAKE_KAPSO_LOG!, 'utf8');
  return log.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
}

describe('against kapso-core', { skip: CORE ? false : 'KAPSO_CORE_ADDR is not set (see test-sdks.sh)' }, () => {
  let client: Client;
  let inboundSequence: string;

  before(async () => {
    client = new Client(CORE, 'sdk-test-token-not-real');
    inboundSequence = await ingestText('wamid.sdk-test-1', 'hola');
  });

  after(() => client?.close());

  test('watch from zero yields the ingested event', async () => {
    const events = await watchUntil((e) => e.message?.id === 'wamid.sdk-test-1');
    const event = events.at(-1)!;
    assert.equal(event.sequence, inboundSequence);
    assert.equal(event.event_type, 'whatsapp.message.received');
    assert.equal(event.conversation_id, CONVERSATION);
    assert.equal(event.phone_number_id, PHONE_NUMBER_ID);
    assert.equal(event.message?.text, 'hola');
    assert.equal(JSON.parse(event.payload_json).message.id, 'wamid.sdk-test-1');
  });

  test('get and list find the inbound message', async () => {
    const message = await client.getMessage('wamid.sdk-test-1');
    assert.equal(message.direction, 'DIRECTION_INBOUND');
    assert.equal(message.conversation_id, CONVERSATION);
    assert.equal(message.contact_phone, CONTACT);
    assert.equal(message.text, 'hola');
    assert.equal(message.status, 'MESSAGE_STATUS_RECEIVED');
    const ids = [];
    for await (const m of client.iterMessages(CONVERSATION)) ids.push(m.id);
    assert.ok(ids.includes('wamid.sdk-test-1'), `${ids}`);
  });

  test('get message of an unknown id is not found', async () => {
    await assert.rejects(client.getMessage('wamid.sdk-test-never-stored'), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.NOT_FOUND);
      return true;
    });
  });

  test('send text to the conversation goes through Kapso', async () => {
    const message = await client.sendText('gracias', {
      conversation_id: CONVERSATION,
      idempotency_key: `sdk-test-${randomUUID()}`,
    });
    assert.equal(message.status, 'MESSAGE_STATUS_SENT');
    assert.match(message.id, /^wamid\.fake-/);
    assert.equal(message.direction, 'DIRECTION_OUTBOUND');
    assert.equal((await client.getMessage(message.id)).text, 'gracias');

    const sends = fakeKapsoRequests().filter((r) => r.body.type === 'text');
    assert.ok(sends.length > 0, 'the fake Kapso API received no send');
    const last = sends.at(-1)!;
    assert.equal(last.path, `/meta/whatsapp/v24.0/${PHONE_NUMBER_ID}/messages`);
    assert.equal(last.api_key, FAKE_KAPSO_KEY);
    assert.equal(String(last.body.to).replace(/^\+/, ''), CONTACT);
    assert.equal(last.body.text.body, 'gracias');
  });

  test('sendMessage of each kind reaches Kapso in Meta\'s shape', async () => {
    const lastSend = (type: string) => {
      const sends = fakeKapsoRequests().filter((r) => r.body.type === type);
      assert.ok(sends.length > 0, `the fake Kapso API received no ${type} send`);
      const last = sends.at(-1)!;
      assert.equal(last.path, `/meta/whatsapp/v24.0/${PHONE_NUMBER_ID}/messages`);
      assert.equal(last.api_key, FAKE_KAPSO_KEY);
      return last.body;
    };
    const send = async (content: Content) => {
      const message = await client.sendMessage(content, {
        conversation_id: CONVERSATION,
        idempotency_key: `sdk-test-${randomUUID()}`,
      });
      assert.equal(message.status, 'MESSAGE_STATUS_SENT');
      assert.equal(message.direction, 'DIRECTION_OUTBOUND');
      return message;
    };

    const sent = await send(template('appointment_reminder', 'es', { body: ['Ana', '9:00'], quickReplies: { 0: 'CONFIRM' } }));
    assert.equal((await client.getMessage(sent.id)).status, 'MESSAGE_STATUS_SENT');
    assert.deepEqual(lastSend('template').template, {
      name: 'appointment_reminder',
      language: { code: 'es' },
      components: [
        { type: 'body', parameters: [{ type: 'text', text: 'Ana' }, { type: 'text', text: '9:00' }] },
        { type: 'button', sub_type: 'quick_reply', index: '0', parameters: [{ type: 'payload', payload: 'CONFIRM' }] },
      ],
    });

    await send(media.image('https://cdn.example.com/menu.jpg', { caption: 'Menú' }));
    assert.deepEqual(lastSend('image').image, { link: 'https://cdn.example.com/menu.jpg', caption: 'Menú' });

    await send(interactive.list('Elige un horario', 'Ver horarios', [
      { title: 'Mañana', rows: [{ id: 'am-9', title: '9:00', description: 'Dra. Soto' }] },
    ], { header: 'Clínica Norte' }));
    assert.deepEqual(lastSend('interactive').interactive, {
      type: 'list',
      header: { type: 'text', text: 'Clínica Norte' },
      body: { text: 'Elige un horario' },
      action: {
        button: 'Ver horarios',
        sections: [{ title: 'Mañana', rows: [{ id: 'am-9', title: '9:00', description: 'Dra. Soto' }] }],
      },
    });

    await send(location(-33.4489, -70.6693, { address: 'Av. Siempre Viva 742' }));
    assert.deepEqual(lastSend('location').location, {
      latitude: -33.4489, longitude: -70.6693, address: 'Av. Siempre Viva 742',
    });
  });

  test('mark read reaches Kapso', async () => {
    await client.markRead('wamid.sdk-test-1');
    const reads = fakeKapsoRequests().filter((r) => r.body.status === 'read');
    assert.ok(reads.length > 0, 'the fake Kapso API received no read receipt');
    assert.equal(reads.at(-1)!.body.message_id, 'wamid.sdk-test-1');
    assert.equal(reads.at(-1)!.path, `/meta/whatsapp/v24.0/${PHONE_NUMBER_ID}/messages`);
  });

  test('an acked consumer resumes after its position', async () => {
    const consumer = `sdk-test-${randomUUID().slice(0, 8)}`;
    assert.equal(await client.ack(consumer, inboundSequence), inboundSequence);
    const later = await ingestText('wamid.sdk-test-2', 'otra');
    assert.ok(BigInt(later) > BigInt(inboundSequence));

    const events = await watchUntil((e) => e.sequence === later, { consumer });
    assert.ok(BigInt(events[0].sequence) > BigInt(inboundSequence), `first was ${events[0].sequence}`);
    assert.equal(events.at(-1)!.message?.id, 'wamid.sdk-test-2');
  });

  test('a new consumer from the end skips the backlog', async () => {
    const consumer = `sdk-test-${randomUUID().slice(0, 8)}`;
    const watching = watchUntil(() => true, { consumer, fromEnd: true });
    // The core records a new fromEnd consumer at the head as its watch starts.
    const deadline = Date.now() + WAIT_MS;
    while (!(await client.listConsumers()).some((c) => c.consumer === consumer)) {
      assert.ok(Date.now() < deadline, 'the watch never registered its consumer');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const fresh = await ingestText(`wamid.sdk-test-${randomUUID().slice(0, 8)}`, 'nueva');
    const [first] = await watching;
    assert.equal(first.sequence, fresh, 'only what came after the watch started');
  });

  test('seek moves a consumer back and the listing shows its lag', async () => {
    const consumer = `sdk-test-${randomUUID().slice(0, 8)}`;
    const head = await ingestText(`wamid.sdk-test-${randomUUID().slice(0, 8)}`, 'cabeza');
    assert.equal(await client.ack(consumer, head), head);
    assert.equal(await client.seekConsumer(consumer, inboundSequence), inboundSequence);
    const listed = (await client.listConsumers()).find((c) => c.consumer === consumer);
    assert.equal(listed?.sequence, inboundSequence);
    assert.ok(BigInt(listed!.lag) >= BigInt(head) - BigInt(inboundSequence));
    await assert.rejects(client.seekConsumer(consumer, (BigInt(head) + 1_000_000n).toString()), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.OUT_OF_RANGE);
      return true;
    });
  });
  test('an upload from a Buffer, a stream and a file reaches Kapso byte for byte', async () => {
    const photo = fileBytes(150_000, 1);
    const fromBuffer = await client.uploadMedia(photo, { mime_type: 'image/jpeg', filename: 'foto.jpg' });
    assert.match(fromBuffer.id, /^fake-media-/);
    assert.equal(fromBuffer.size_bytes, String(photo.length));
    assert.equal(fromBuffer.kind, 'MEDIA_KIND_IMAGE');
    let received = kapsoUploads().at(-1)!;
    assert.deepEqual(
      [received.id, received.type, received.content_type, received.filename, received.size, received.sha256],
      [fromBuffer.id, 'image/jpeg', 'image/jpeg', 'foto.jpg', photo.length, sha256(photo)],
    );

    // Uneven pieces, one larger than a gRPC message should carry, and no declared size.
    const voice = fileBytes(300_000, 2);
    const pieces = Readable.from([voice.subarray(0, 10), voice.subarray(10, 250_000), voice.subarray(250_000)]);
    const fromStream = await client.uploadMedia(pieces, { mime_type: 'audio/ogg', filename: 'voz.ogg' });
    assert.equal(fromStream.kind, 'MEDIA_KIND_AUDIO');
    received = kapsoUploads().at(-1)!;
    assert.deepEqual([received.id, received.size, received.sha256], [fromStream.id, voice.length, sha256(voice)]);

    const dir = mkdtempSync(path.join(tmpdir(), 'kapso-sdk-media-'));
    const pdf = fileBytes(200_000, 3);
    writeFileSync(path.join(dir, 'boleta-1042.pdf'), pdf);
    const fromFile = await client.uploadMediaFile(path.join(dir, 'boleta-1042.pdf'));
    assert.equal(fromFile.kind, 'MEDIA_KIND_DOCUMENT');
    received = kapsoUploads().at(-1)!;
    assert.deepEqual(
      [received.id, received.type, received.filename, received.size, received.sha256],
      [fromFile.id, 'application/pdf', 'boleta-1042.pdf', pdf.length, sha256(pdf)],
    );
  });

  test('a download by media id and by message gives the uploaded bytes', async () => {
    const photo = fileBytes(150_000, 4);
    const { id } = await client.uploadMedia(photo, { mime_type: 'image/jpeg' });

    const { info, data } = await client.downloadMedia({ media_id: id });
    assert.deepEqual([info.media_id, info.mime_type, info.size_bytes, info.kind], [id, 'image/jpeg', String(photo.length), 'MEDIA_KIND_IMAGE']);
    const chunks: Buffer[] = [];
    for await (const chunk of data) chunks.push(chunk);
    assert.ok(chunks.length > 1, 'the bytes came in one piece, not streamed');
    assert.ok(Buffer.concat(chunks).equals(photo));

    const messageId = `wamid.sdk-media-${randomUUID().slice(0, 8)}`;
    await ingestMessage(messageId, 'image', { id, mime_type: 'image/jpeg' });
    const dir = mkdtempSync(path.join(tmpdir(), 'kapso-sdk-media-'));
    const saved = await client.downloadMediaFile({ message_id: messageId }, path.join(dir, 'recibida.jpg'));
    assert.equal(saved.media_id, id);
    assert.ok(readFileSync(path.join(dir, 'recibida.jpg')).equals(photo));
    assert.deepEqual(readdirSync(dir), ['recibida.jpg'], 'no partial file left');

    await assert.rejects(client.downloadMedia({ media_id: 'fake-media-never-uploaded' }), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.NOT_FOUND);
      return true;
    });
  });

  test('a file over its kind\'s limit is refused', async () => {
    // Stickers may have 500 KiB.
    const sticker = fileBytes(600 * 1024, 5);
    const before = kapsoUploads().length;
    await assert.rejects(client.uploadMedia(sticker, { mime_type: 'image/webp' }), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      return true;
    });
    assert.equal(kapsoUploads().length, before, 'a declared oversize file reached Kapso');

    // Undeclared: refused at the first byte over the limit, Kapso's request aborted.
    async function* pieces() {
      for (let start = 0; start < sticker.length; start += 50_000) yield sticker.subarray(start, start + 50_000);
    }
    await assert.rejects(client.uploadMedia(pieces(), { mime_type: 'image/webp' }), (error: grpc.ServiceError) => {
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      return true;
    });
    assert.ok(kapsoUploads().every((u) => u.sha256 !== sha256(sticker)), 'Kapso kept the file');
  });

  test('a failing source rejects with its own error and Kapso keeps nothing', async () => {
    const before = kapsoUploads().filter((u) => u.id).length;
    async function* broken() {
      yield fileBytes(100_000, 6);
      throw new Error('disk gone');
    }
    await assert.rejects(client.uploadMedia(broken(), { mime_type: 'application/pdf' }), /disk gone/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(kapsoUploads().filter((u) => u.id).length, before);
  });
});
