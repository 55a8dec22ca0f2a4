/**
 * `Client`: the Messaging calls of the kapso-gateway core, one method each.
 */
import * as grpc from '@grpc/grpc-js';

import type { Event__Output } from './generated/kapso/gateway/v1/Event';
import type { ListMessagesResponse__Output } from './generated/kapso/gateway/v1/ListMessagesResponse';
import type { Message__Output } from './generated/kapso/gateway/v1/Message';
import type { MessagingClient } from './generated/kapso/gateway/v1/Messaging';
import type { SendMessageRequest } from './generated/kapso/gateway/v1/SendMessageRequest';
import type { SendTextRequest } from './generated/kapso/gateway/v1/SendTextRequest';
import type { MediaInfo__Output } from './generated/kapso/gateway/v1/MediaInfo';
import type { UploadMediaResponse__Output } from './generated/kapso/gateway/v1/UploadMediaResponse';
import { contentKind, type Content, type ContentKind } from './content';
import * as media from './media';
import type { DownloadSource, MediaDownload, UploadOptions, UploadSource } from './media';
import { loadProto } from './proto';
import { follow, type Sequence, type WatchOptions } from './watch';

export interface ClientOptions {
  /** Channel credentials; plaintext (`grpc.credentials.createInsecure()`) by default. */
  credentials?: grpc.ChannelCredentials;
  /** Deadline of each unary call; default 30 s. */
  timeoutMs?: number;
  /** Where the kapso/gateway/v1/*.proto files are; default: the package's proto/ copy. */
  protoDir?: string;
  channelOptions?: grpc.ChannelOptions;
}

/** Everything of SendTextRequest but the text; give `to` or `conversation_id`. */
export type SendTextOptions = Omit<SendTextRequest, 'text'>;

/** Addressing and idempotency of a send: give `to` or `conversation_id`. */
export type SendOptions = Omit<SendMessageRequest, ContentKind | 'content'>;

export interface MarkReadOptions {
  phone_number_id?: string;
  typing_indicator?: boolean;
}

export interface ListMessagesOptions {
  page_size?: number;
  page_token?: string;
}

type Callback<T> = (error: grpc.ServiceError | null, value?: T) => void;

/** Where the core listens by default (its CORE_LISTEN_ADDR default). */
export const DEFAULT_CORE_ADDRESS = '127.0.0.1:50051';

/** A gRPC target from `host:port`, `http://host:port` or `https://host:port` (TLS). */
function coreAddress(address: string): { target: string; tls: boolean } {
  if (address.startsWith('https://')) return { target: address.slice('https://'.length), tls: true };
  if (address.startsWith('http://')) return { target: address.slice('http://'.length), tls: false };
  return { target: address, tls: false };
}

/**
 * A connection to the core's `kapso.gateway.v1.Messaging` service.
 *
 * `target` is the core's address: `host:port`, `http://host:port` or `https://host:port`
 * (TLS); by default `$KAPSO_CORE_URL`, else `127.0.0.1:50051`. With `token` (by default
 * `$GATEWAY_API_TOKEN`), every call carries `authorization: Bearer <token>`.
 *
 * @example
 * const client = new Client('127.0.0.1:50051', process.env.GATEWAY_API_TOKEN);
 * const sent = await client.sendText('hola', { to: '+15551234567' });
 * console.log(sent.id, sent.status); // wamid.HBgL... MESSAGE_STATUS_SENT
 * client.close();
 */
export class Client {
  readonly #stub: MessagingClient;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;

  constructor(target?: string | null, token?: string | null, options: ClientOptions = {}) {
    const proto = loadProto(options.protoDir);
    const address = coreAddress(target || process.env.KAPSO_CORE_URL || DEFAULT_CORE_ADDRESS);
    this.#stub = new proto.kapso.gateway.v1.Messaging(
      address.target,
      options.credentials ??
        (address.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure()),
      options.channelOptions,
    );
    this.#token = (token === undefined ? process.env.GATEWAY_API_TOKEN : token) || undefined;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** The token stays out of logs. */
  toJSON(): object {
    return { authenticated: this.#token !== undefined };
  }

  close(): void {
    this.#stub.close();
  }

  #metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.#token) metadata.set('authorization', `Bearer ${this.#token}`);
    return metadata;
  }

  #unary<T>(invoke: (metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<T>) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      invoke(this.#metadata(), { deadline: Date.now() + this.#timeoutMs }, (error, value) =>
        error ? reject(error) : resolve(value as T),
      );
    });
  }

  /**
   * Sends a text to `to` (phone digits) or into `conversation_id`; resolves to the message.
   * A retry with the same `idempotency_key` returns the first outcome without sending again.
   *
   * @example
   * const msg = await client.sendText('Your order shipped', {
   *   conversation_id: 'conv-1', idempotency_key: 'order-42-shipped' });
   */
  async sendText(text: string, options: SendTextOptions): Promise<Message__Output> {
    const response = await this.#unary<{ message: Message__Output | null }>((md, opts, cb) =>
      this.#stub.SendText({ ...options, text }, md, opts, cb),
    );
    if (!response.message) throw new Error('SendText answered without a message');
    return response.message;
  }

  /**
   * Sends a message of any kind (text, template, media, interactive, reaction, location,
   * contacts) to `to` or into `conversation_id`; resolves to the message. Outside the
   * 24-hour window only a template goes out; anything else rejects with FAILED_PRECONDITION.
   * Content that is not exactly one kind rejects with a TypeError before any call.
   *
   * @example
   * import { interactive, template } from '@kapso-gateway/client';
   * await client.sendMessage(interactive.buttons('¿Confirmas tu hora?', [['yes', 'Sí'], ['no', 'No']]), {
   *   to: '+15551234567', idempotency_key: 'confirm-1042' });
   * await client.sendMessage(template('appointment_reminder', 'es', { body: ['Ana', '9:00'] }), {
   *   conversation_id: 'conv-1' });
   */
  async sendMessage(content: Content, options: SendOptions): Promise<Message__Output> {
    const kind = contentKind(content);
    const request: SendMessageRequest = { ...options, [kind]: content[kind as keyof typeof content] };
    const response = await this.#unary<{ message: Message__Output | null }>((md, opts, cb) =>
      this.#stub.SendMessage(request, md, opts, cb),
    );
    if (!response.message) throw new Error('SendMessage answered without a message');
    return response.message;
  }

  /**
   * Marks an inbound message read, optionally showing a typing indicator.
   *
   * @example
   * await client.markRead('wamid.HBgL...', { typing_indicator: true });
   */
  async markRead(messageId: string, options: MarkReadOptions = {}): Promise<void> {
    await this.#unary((md, opts, cb) =>
      this.#stub.MarkRead({ ...options, message_id: messageId }, md, opts, cb),
    );
  }

  /**
   * Uploads a file through the core to WhatsApp's media store; resolves to its media `id`
   * (for `media.document({ id })` and the like), `size_bytes` and `kind`.
   *
   * `source` is a Buffer, a Node stream (without an encoding) or any async iterable of
   * byte chunks, read and sent a chunk at a time as gRPC takes them. With `size_bytes`
   * (a Buffer's is known) an oversized file is refused before any byte moves; otherwise
   * the core refuses it at the first byte over its kind's limit (INVALID_ARGUMENT). A
   * source that fails rejects with its own error, and the core keeps nothing. Not bounded
   * by the client's timeout: the core gives a file 10 minutes.
   *
   * @example
   * const { id } = await client.uploadMedia(fs.createReadStream('voz.ogg'), { mime_type: 'audio/ogg' });
   * await client.sendMessage(media.audio({ id }, { voice: true }), { to: '+15551234567' });
   */
  uploadMedia(source: UploadSource, options: UploadOptions): Promise<UploadMediaResponse__Output> {
    try {
      return media.upload((callback) => this.#stub.UploadMedia(this.#metadata(), {}, callback), source, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Uploads the file at `file`, streamed from disk, its size declared and, unless
   * `options` names them, its filename and the MIME type its extension implies.
   *
   * @example
   * const { id } = await client.uploadMediaFile('boleta-1042.pdf');
   */
  async uploadMediaFile(file: string, options: Partial<UploadOptions> = {}): Promise<UploadMediaResponse__Output> {
    const [stream, upload] = await media.fileSource(file, options);
    try {
      return await this.uploadMedia(stream, upload);
    } finally {
      stream.destroy();
    }
  }

  /**
   * Starts downloading the media of a stored message (wamid, gateway id or idempotency
   * key) or of a media id; resolves once the core sent the file's `info`, with the bytes
   * as `data`, a Readable (and async iterable) of Buffers pulled from the core as it is
   * read. A refusal (NOT_FOUND, a file over its kind's limit) rejects here. Not bounded
   * by the client's timeout.
   *
   * @example
   * const { info, data } = await client.downloadMedia({ message_id: 'wamid.HBgL...' });
   * await pipeline(data, fs.createWriteStream(`foto.${info.mime_type.split('/')[1]}`));
   */
  async downloadMedia(source: DownloadSource): Promise<MediaDownload> {
    const request = media.downloadRequest(source);
    return media.download(this.#stub.DownloadMedia(request, this.#metadata()));
  }

  /**
   * Downloads into `file`, which appears only once complete (nothing is left behind on an
   * error); resolves to the file's info.
   *
   * @example
   * const info = await client.downloadMediaFile({ media_id: '1037543291543636' }, 'foto.jpg');
   */
  async downloadMediaFile(source: DownloadSource, file: string): Promise<MediaInfo__Output> {
    return media.saveTo(await this.downloadMedia(source), file);
  }

  /**
   * A message by wamid, gateway id or idempotency key; rejects with NOT_FOUND when unknown.
   *
   * @example
   * const { status } = await client.getMessage('order-42-shipped');
   */
  getMessage(messageId: string): Promise<Message__Output> {
    return this.#unary((md, opts, cb) =>
      this.#stub.GetMessage({ message_id: messageId }, md, opts, cb),
    );
  }

  /**
   * One page of a conversation's messages, oldest first.
   *
   * @example
   * const page = await client.listMessages('conv-1', { page_size: 50 });
   * const next = await client.listMessages('conv-1', { page_token: page.next_page_token });
   */
  listMessages(conversationId: string, options: ListMessagesOptions = {}): Promise<ListMessagesResponse__Output> {
    return this.#unary((md, opts, cb) =>
      this.#stub.ListMessages({ ...options, conversation_id: conversationId }, md, opts, cb),
    );
  }

  /** Every message of a conversation, oldest first, fetching page after page. */
  async *iterMessages(conversationId: string, pageSize = 0): AsyncGenerator<Message__Output> {
    let pageToken = '';
    do {
      const page = await this.listMessages(conversationId, { page_size: pageSize, page_token: pageToken });
      yield* page.messages;
      pageToken = page.next_page_token;
    } while (pageToken);
  }

  /**
   * Records that `consumer` processed everything up to `sequence`; resolves to its position.
   *
   * @example
   * await client.ack('billing', event.sequence);
   */
  async ack(consumer: string, sequence: Sequence): Promise<string> {
    const response = await this.#unary<{ sequence: string }>((md, opts, cb) =>
      this.#stub.AckEvents({ consumer, sequence: sequence.toString() }, md, opts, cb),
    );
    return response.sequence;
  }

  /**
   * Moves `consumer` to `sequence`, backwards included (0 replays everything retained); its
   * next watch starts after it. Beyond the log's head rejects with OUT_OF_RANGE.
   *
   * @example
   * await client.seekConsumer('billing', '1200');
   */
  async seekConsumer(consumer: string, sequence: Sequence): Promise<string> {
    const response = await this.#unary<{ sequence: string }>((md, opts, cb) =>
      this.#stub.SeekConsumer({ consumer, sequence: sequence.toString() }, md, opts, cb),
    );
    return response.sequence;
  }

  /**
   * Every named consumer by name, with its position (`sequence`) and `lag` behind the head.
   *
   * @example
   * for (const c of await client.listConsumers()) console.log(c.consumer, c.lag);
   */
  async listConsumers(): Promise<{ consumer: string; sequence: string; lag: string }[]> {
    const response = await this.#unary<{ consumers: { consumer: string; sequence: string; lag: string }[] }>(
      (md, opts, cb) => this.#stub.ListConsumers({}, md, opts, cb),
    );
    return response.consumers;
  }

  /**
   * Yields log events after `afterSequence`, then live ones, until `signal` aborts.
   *
   * When the stream breaks (core restart, network), it reconnects with `backoff` and resumes
   * after the last event it yielded, so no event is yielded twice or skipped. With
   * `consumer` and no `afterSequence` it starts after the consumer's acknowledged position;
   * with `fromEnd` and no position to resume from, at the log's head.
   * With `autoAck` each event is acknowledged as `consumer` once the caller asks for the
   * next one, i.e. after it was processed (at-least-once: the event being processed when
   * the program stops is delivered again on restart). Errors a retry cannot fix (bad
   * token, bad argument) are thrown.
   *
   * @example
   * for await (const event of client.watch({ consumer: 'billing', fromEnd: true, autoAck: true })) {
   *   await handle(event.message);
   * }
   */
  watch(options: WatchOptions = {}): AsyncGenerator<Event__Output, void, undefined> {
    if (options.autoAck && !options.consumer) throw new Error('autoAck needs a consumer name');
    return follow(
      (request) => this.#stub.WatchEvents(request, this.#metadata()),
      (consumer, sequence) => this.ack(consumer, sequence),
      options,
    );
  }
}
