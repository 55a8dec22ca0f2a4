// The wrapper against an in-process fake Messaging server: metadata, resume, backoff, acks.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';

import {
  Backoff,
  Client,
  WatchGaveUp,
  contact,
  contacts,
  interactive,
  loadProto,
  location,
  media,
  reaction,
  template,
  text,
} from '../src';
import type { SendMessageRequest__Output } from '../src/generated/kapso/gateway/v1/SendMessageRequest';
import type { WatchEventsRequest__Output } from '../src/generated/kapso/gateway/v1/WatchEventsRequest';
import type { MessagingHandlers } from '../src/generated/kapso/gateway/v1/Messaging';

const FAST = new Backoff(10, 20);
const TOKEN = 'fake-token-for-tests';

/** Serves scripted WatchEvents streams and records what clients sent. */
class FakeMessaging {
  metadata: grpc.Metadata[] = [];
  watchRequests: WatchEventsRequest__Output[] = [];
  acks: Array<[string, string]> = [];
  sends: SendMessageRequest__Output[] = [];
  /** One entry per WatchEvents call: sequences to stream, then the status to end with (null: clean end). */
  streams: Array<[number[], grpc.status | null]> = [];
  target = '';
  #server = new grpc.Server();

  handlers(): MessagingHandlers {
    return {
      GetMessage: (call, callback) => {
        this.metadata.push(call.metadata);
        callback(null, { id: call.request.message_id, status: 'MESSAGE_STATUS_RECEIVED' });
      },
      AckEvents: (call, callback) => {
        this.metadata.push(call.metadata);
        this.acks.push([call.request.consumer, call.request.sequence]);
        callback(null, { sequence: call.request.sequence });
      },
      WatchEvents: (call) => {
        this.metadata.push(call.metadata);
        this.watchRequests.push(call.request);
        const [sequences, end] = this.streams.shift() ?? [[], grpc.status.UNAVAILABLE];
        for (const sequence of sequences) {
          call.write({ sequence: String(sequence), event_type: 'whatsapp.message.received' });
        }
        if (end === null) call.end();
        else call.emit('error', { code: end, details: 'scripted end of stream' });
      },
      ListMessages: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED }),
      SendText: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED }),
      MarkRead: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED }),
      SendMessage: (call, callback) => {
        this.metadata.push(call.metadata);
        this.sends.push(call.request);
        const { idempotency_key } = call.request;
        callback(null, { message: { id: 'wamid.sent', idempotency_key, status: 'MESSAGE_STATUS_SENT' } });
      },
      SeekConsumer: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED }),
      ListConsumers: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED }),
      UploadMedia: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED }),
      DownloadMedia: (call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
    };
  }

  async start(): Promise<void> {
    this.#server.addService(loadProto().kapso.gateway.v1.Messaging.service, this.handlers());
    const port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    this.target = `127.0.0.1:${port}`;
  }

  stop(): void {
    this.#server.forceShutdown();
  }
}

let fake: FakeMessaging;
let client: Client;

beforeEach(async () => {
  fake = new FakeMessaging();
  await fake.start();
  client = new Client(fake.target, TOKEN);
});

afterEach(() => {
  client.close();
  fake.stop();
});

async function take<T>(events: AsyncGenerator<T, void, undefined>, count: number): Promise<T[]> {
  const seen: T[] = [];
  for await (const event of events) {
    seen.push(event);
    if (seen.length === count) break;
  }
  return seen;
}

test('the token is sent as bearer metadata', async () => {
  await client.getMessage('wamid.1');
  assert.deepEqual(fake.metadata.at(-1)?.get('authorization'), [`Bearer ${TOKEN}`]);
});

test('without a token no authorization is sent', async () => {
  const anonymous = new Client(fake.target);
  await anonymous.getMessage('wamid.1');
  anonymous.close();
  assert.deepEqual(fake.metadata.at(-1)?.get('authorization'), []);
});

test('the address and token default to the environment', async () => {
  process.env.KAPSO_CORE_URL = `http://${fake.target}`;
  process.env.GATEWAY_API_TOKEN = 'fake-token-from-env';
  try {
    const fromEnv = new Client();
    await fromEnv.getMessage('wamid.1');
    fromEnv.close();
  } finally {
    delete process.env.KAPSO_CORE_URL;
    delete process.env.GATEWAY_API_TOKEN;
  }
  assert.deepEqual(fake.metadata.at(-1)?.get('authorization'), ['Bearer fake-token-from-env']);
});

test('the token stays out of JSON', () => {
  assert.ok(!JSON.stringify(client).includes(TOKEN));
});

test('watch reconnects and resumes after the last yielded event', async () => {
  fake.streams = [[[1, 2], grpc.status.UNAVAILABLE], [[2, 3], null]];
  const seen = await take(client.watch({ backoff: FAST }), 3);
  assert.deepEqual(seen.map((e) => e.sequence), ['1', '2', '3']);
  assert.deepEqual(fake.watchRequests.slice(0, 2).map((r) => r.after_sequence), ['0', '2']);
});

test('watch reconnects when the stream ends cleanly', async () => {
  fake.streams = [[[7], null], [[8], null]];
  const seen = await take(client.watch({ afterSequence: 6, backoff: FAST }), 2);
  assert.deepEqual(seen.map((e) => e.sequence), ['7', '8']);
  assert.deepEqual(fake.watchRequests.slice(0, 2).map((r) => r.after_sequence), ['6', '7']);
});

test('watch as consumer lets the server pick the start until an event arrives', async () => {
  fake.streams = [[[], grpc.status.UNAVAILABLE], [[41, 42], null]];
  const seen = await take(client.watch({ consumer: 'billing', backoff: FAST }), 2);
  assert.deepEqual(seen.map((e) => e.sequence), ['41', '42']);
  assert.deepEqual(
    fake.watchRequests.slice(0, 2).map((r) => [r.after_sequence, r.consumer]),
    [['0', 'billing'], ['0', 'billing']],
  );
});

test('autoAck acknowledges an event once the next is requested', async () => {
  fake.streams = [[[1, 2, 3], null]];
  const events = client.watch({ consumer: 'billing', autoAck: true, backoff: FAST });
  await events.next();
  assert.deepEqual(fake.acks, []);
  await events.next();
  await events.next();
  await events.return();
  assert.deepEqual(fake.acks, [['billing', '1'], ['billing', '2']]);
});

test('autoAck needs a consumer', () => {
  assert.throws(() => client.watch({ autoAck: true }), /consumer/);
});

test('watch throws errors a retry cannot fix', async () => {
  fake.streams = [[[], grpc.status.UNAUTHENTICATED]];
  await assert.rejects(take(client.watch({ backoff: FAST }), 1), (error: grpc.ServiceError) => {
    assert.equal(error.code, grpc.status.UNAUTHENTICATED);
    return true;
  });
  assert.equal(fake.watchRequests.length, 1);
});

test('watch gives up after maxAttempts consecutive failures', async () => {
  await assert.rejects(
    take(client.watch({ afterSequence: 3, backoff: FAST, maxAttempts: 3 }), 1),
    (error: WatchGaveUp) => {
      assert.ok(error instanceof WatchGaveUp);
      assert.equal(error.attempts, 3);
      assert.equal(error.lastSequence, '3');
      return true;
    },
  );
  assert.equal(fake.watchRequests.length, 3);
});

test('an aborted signal ends the watch quietly', async () => {
  fake.streams = [[[1], null]]; // then UNAVAILABLE forever, with backoff
  const controller = new AbortController();
  const seen = [];
  for await (const event of client.watch({ backoff: new Backoff(60_000, 60_000), signal: controller.signal })) {
    seen.push(event);
    controller.abort();
  }
  assert.equal(seen.length, 1);
});

test('backoff grows to its maximum', () => {
  const backoff = new Backoff(1000, 5000, 2);
  const within = (ms: number, low: number, high: number) => assert.ok(ms >= low && ms <= high, `${ms}`);
  within(backoff.delayMs(1), 500, 1000);
  within(backoff.delayMs(3), 2000, 4000);
  within(backoff.delayMs(10), 2500, 5000);
});

test('sendMessage puts each kind in its content case', async () => {
  const sent = await client.sendMessage(
    template('order_shipped', 'es_MX', {
      header: media.image('https://cdn.example/b.jpg'),
      body: ['Ana', { currency: { fallback_value: '$10', code: 'USD', amount_1000: 10_000 } }],
      urlSuffixes: { 0: 'ORD-1' },
    }),
    { to: '+15551234567', idempotency_key: 'k-1' },
  );
  await client.sendMessage(media.document({ id: 'media-1' }, { filename: 'i.pdf' }), { conversation_id: 'conv-1' });
  await client.sendMessage(interactive.buttons('¿Sí?', [['yes', 'Sí'], { id: 'no', title: 'No' }], { footer: 'pie' }), { to: '1' });
  await client.sendMessage(interactive.list('Elige', 'Ver', [{ title: 'Horas', rows: [{ id: 'am', title: 'Mañana' }] }]), { to: '1' });
  await client.sendMessage(reaction('wamid.in', '👍'), { to: '1' });
  await client.sendMessage(location(-33.45, -70.66, { name: 'Oficina' }), { to: '1' });
  await client.sendMessage(contacts(contact('Ana Pérez', { phones: ['+56912345678'] })), { to: '1' });
  await client.sendMessage(text('hola'), { to: '1', reply_to_message_id: 'wamid.in' });

  assert.equal(sent.status, 'MESSAGE_STATUS_SENT');
  assert.equal(sent.idempotency_key, 'k-1');
  assert.deepEqual(
    fake.sends.map((r) => r.content),
    ['template', 'media', 'interactive', 'interactive', 'reaction', 'location', 'contacts', 'text'],
  );
  const [tpl, doc, buttons, list, react, pin, cards, hola] = fake.sends;
  assert.equal(tpl.to, '+15551234567');
  const [header, body, url] = tpl.template!.components;
  assert.equal(header.type, 'TEMPLATE_COMPONENT_TYPE_HEADER');
  assert.equal(header.parameters[0].media?.kind, 'MEDIA_KIND_IMAGE');
  assert.deepEqual(body.parameters.map((p) => p.value), ['text', 'currency']);
  assert.equal(body.parameters[1].currency?.amount_1000, '10000');
  assert.deepEqual([url.button_type, url.index, url.parameters[0].text], ['TEMPLATE_BUTTON_TYPE_URL', 0, 'ORD-1']);
  assert.deepEqual([doc.conversation_id, doc.media?.kind, doc.media?.id, doc.media?.link], ['conv-1', 'MEDIA_KIND_DOCUMENT', 'media-1', '']);
  assert.deepEqual(buttons.interactive?.buttons?.buttons.map((b) => [b.id, b.title]), [['yes', 'Sí'], ['no', 'No']]);
  assert.equal(buttons.interactive?.footer, 'pie');
  assert.equal(list.interactive?.list?.sections[0].rows[0].id, 'am');
  assert.deepEqual([react.reaction?.message_id, react.reaction?.emoji], ['wamid.in', '👍']);
  assert.equal(pin.location?.name, 'Oficina');
  assert.equal(cards.contacts?.contacts[0].name?.formatted_name, 'Ana Pérez');
  assert.equal(cards.contacts?.contacts[0].org, null);
  assert.deepEqual([hola.text?.body, hola.reply_to_message_id], ['hola', 'wamid.in']);
});

test('named template variables carry their names', async () => {
  await client.sendMessage(template('welcome', 'en', { body: { first_name: 'Ana' } }), { to: '1' });
  const [parameter] = fake.sends.at(-1)!.template!.components[0].parameters;
  assert.deepEqual([parameter.parameter_name, parameter.text], ['first_name', 'Ana']);
});

test('sendMessage refuses content that is not exactly one kind, before any call', async () => {
  await assert.rejects(
    // @ts-expect-error two kinds at once does not type-check either
    client.sendMessage({ text: { body: 'a' }, reaction: { message_id: 'm', emoji: '👍' } }, { to: '1' }),
    /exactly one of .*got text and reaction/,
  );
  await assert.rejects(
    // @ts-expect-error nor does an unknown kind
    client.sendMessage({ sticker: 'x' }, { to: '1' }),
    /got none/,
  );
  assert.equal(fake.sends.length, 0);
});
