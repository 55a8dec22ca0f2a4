// The wrapper against an in-process fake Messaging server: metadata, resume, backoff, acks.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';

import { Backoff, Client, WatchGaveUp, loadProto } from '../src';
import type { WatchEventsRequest__Output } from '../src/generated/kapso/gateway/v1/WatchEventsRequest';
import type { MessagingHandlers } from '../src/generated/kapso/gateway/v1/Messaging';

const FAST = new Backoff(10, 20);
const TOKEN = 'fake-token-for-tests';

/** Serves scripted WatchEvents streams and records what clients sent. */
class FakeMessaging {
  metadata: grpc.Metadata[] = [];
  watchRequests: WatchEventsRequest__Output[] = [];
  acks: Array<[string, string]> = [];
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
      SendMessage: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED }),
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
