/**
 * Media files through the core: what {@link Client.uploadMedia} streams and
 * {@link Client.downloadMedia} returns.
 *
 * Both stream: an upload sends its source a chunk ({@link CHUNK} bytes at most) at a time,
 * waiting whenever gRPC's buffer is full, while the core passes each chunk on to Kapso; a
 * download is a `Readable` that pulls each chunk from the core as it is read. Neither
 * holds a whole file in memory unless given one as a Buffer.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as grpc from '@grpc/grpc-js';

import type { DownloadMediaRequest } from './generated/kapso/gateway/v1/DownloadMediaRequest';
import type { DownloadMediaResponse__Output } from './generated/kapso/gateway/v1/DownloadMediaResponse';
import type { MediaInfo__Output } from './generated/kapso/gateway/v1/MediaInfo';
import type { MediaKind } from './generated/kapso/gateway/v1/MediaKind';
import type { UploadMediaRequest } from './generated/kapso/gateway/v1/UploadMediaRequest';
import type { UploadMediaResponse__Output } from './generated/kapso/gateway/v1/UploadMediaResponse';

/** Bytes per upload message: small enough to stream smoothly, far under the core's 4 MiB limit. */
export const CHUNK = 64 * 1024;

/** What {@link Client.uploadMedia} reads: bytes, a Node stream, or any (async) iterable of byte chunks. */
export type UploadSource = Uint8Array | NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** What a file is. Only `mime_type` is required. */
export interface UploadOptions {
  /** e.g. `image/jpeg`; {@link Client.uploadMediaFile} takes it from the extension when left out. */
  mime_type: string;
  /** The name Kapso receives; the core sends `file` when there is none. */
  filename?: string;
  /** The business number the media belongs to; default: the core's. */
  phone_number_id?: string;
  /** The kind it will be sent as (its size limit applies); default: from the MIME type. */
  kind?: MediaKind;
  /**
   * The file's size when known: the core then refuses an oversized file before any byte
   * moves, and a source of another length fails the upload. A Buffer's is sent by itself.
   */
  size_bytes?: number;
}

/** Which file {@link Client.downloadMedia} fetches: a stored message's media, or a media id. */
export type DownloadSource =
  | { message_id: string; phone_number_id?: string }
  | { media_id: string; phone_number_id?: string };

/** A download under way: `info` came first, `data` streams the bytes as they are read. */
export interface MediaDownload {
  info: MediaInfo__Output;
  /**
   * The bytes, chunk by chunk (a `Readable` of Buffers, so also an async iterable). A
   * download that fails part way errors after the bytes sent so far: keep them only once
   * the stream ended cleanly. Destroying it cancels the call.
   */
  data: Readable;
}

const MIME_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  mp4: 'video/mp4',
  '3gp': 'video/3gpp',
  aac: 'audio/aac',
  amr: 'audio/amr',
  mp3: 'audio/mpeg',
  m4a: 'audio/mp4',
  ogg: 'audio/ogg',
  opus: 'audio/ogg',
  pdf: 'application/pdf',
  txt: 'text/plain',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ppt: 'application/vnd.ms-powerpoint',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
};

/**
 * The MIME type a file's extension names, for the kinds WhatsApp takes
 * (docs/kapso-contract.md, 4.4); `undefined` for any other.
 *
 * @example
 * mimeTypeOf('boleta.PDF'); // 'application/pdf'
 */
export function mimeTypeOf(file: string): string | undefined {
  return MIME_TYPES[path.extname(file).slice(1).toLowerCase()];
}

/** The source's bytes in pieces of at most CHUNK bytes (views, not copies). */
async function* chunksOf(source: UploadSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    for (let start = 0; start < source.length; start += CHUNK) yield source.subarray(start, start + CHUNK);
    return;
  }
  const iterable = source as AsyncIterable<unknown> | Iterable<unknown>;
  if (!(Symbol.asyncIterator in iterable) && !(Symbol.iterator in iterable)) {
    throw new TypeError('uploadMedia takes a Buffer, a stream or an iterable of byte chunks');
  }
  for await (const piece of iterable) {
    if (!(piece instanceof Uint8Array)) {
      throw new TypeError('the upload source must yield Buffers or Uint8Arrays (a stream without an encoding)');
    }
    for (let start = 0; start < piece.length; start += CHUNK) yield piece.subarray(start, start + CHUNK);
  }
}

/** The metadata message; a Buffer declares its own size. */
function metadataOf(source: UploadSource, options: UploadOptions): UploadMediaRequest {
  if (!options.mime_type) throw new TypeError('uploadMedia needs a mime_type');
  const size = options.size_bytes ?? (source instanceof Uint8Array ? source.length : undefined);
  return {
    metadata: {
      mime_type: options.mime_type,
      filename: options.filename ?? '',
      phone_number_id: options.phone_number_id ?? '',
      kind: options.kind ?? 'MEDIA_KIND_UNSPECIFIED',
      size_bytes: size ?? 0,
    },
  };
}

type UploadCall = (
  callback: (error: grpc.ServiceError | null, value?: UploadMediaResponse__Output) => void,
) => grpc.ClientWritableStream<UploadMediaRequest>;

/**
 * Streams `source` behind its metadata on a call `open` starts. A source that fails
 * cancels the call (the core then aborts Kapso's request, nothing is kept) and the
 * promise rejects with the source's own error.
 */
export function upload(open: UploadCall, source: UploadSource, options: UploadOptions): Promise<UploadMediaResponse__Output> {
  const first = metadataOf(source, options);
  return new Promise((resolve, reject) => {
    let sourceError: unknown;
    let answered = false;
    let wake = () => {};
    const call = open((error, value) => {
      answered = true;
      wake();
      if (sourceError !== undefined) reject(sourceError);
      else if (error) reject(error);
      else resolve(value!);
    });
    const pump = async () => {
      call.write(first);
      for await (const chunk of chunksOf(source)) {
        // The core answered early (a refusal): stop reading; leaving the loop closes a stream source.
        if (answered) return;
        if (!call.write({ chunk })) {
          await new Promise<void>((resume) => {
            wake = resume;
            once(call, 'drain').then(() => resume(), () => resume());
          });
        }
      }
      if (!answered) call.end();
    };
    pump().catch((error) => {
      sourceError = error ?? new Error('the upload source failed');
      call.cancel();
    });
  });
}

/** The request naming `source`. */
export function downloadRequest(source: DownloadSource): DownloadMediaRequest {
  const given = source as { message_id?: string; media_id?: string; phone_number_id?: string };
  if (Boolean(given.message_id) === Boolean(given.media_id)) {
    throw new TypeError('downloadMedia needs exactly one of message_id and media_id');
  }
  return given.message_id
    ? { message_id: given.message_id, phone_number_id: given.phone_number_id ?? '' }
    : { media_id: given.media_id, phone_number_id: given.phone_number_id ?? '' };
}

/** Waits for the call's metadata, then hands over the rest as a Readable of Buffers. */
export async function download(call: grpc.ClientReadableStream<DownloadMediaResponse__Output>): Promise<MediaDownload> {
  const responses = call[Symbol.asyncIterator]() as AsyncIterator<DownloadMediaResponse__Output>;
  const first = await responses.next();
  if (first.done || first.value.part !== 'metadata' || !first.value.metadata) {
    call.cancel();
    throw new Error('DownloadMedia answered without its metadata first');
  }
  async function* bytes(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const next = await responses.next();
        if (next.done) return;
        if (next.value.part !== 'chunk' || !next.value.chunk) throw new Error('DownloadMedia sent its metadata twice');
        yield next.value.chunk;
      }
    } finally {
      // Ended early (destroyed, or an error above): the core stops reading from Kapso.
      call.cancel();
    }
  }
  return { info: first.value.metadata, data: Readable.from(bytes(), { objectMode: false }) };
}

/** Writes a download to `file`, which appears only once complete; nothing is left on an error. */
export async function saveTo(download: MediaDownload, file: string): Promise<MediaInfo__Output> {
  const partial = path.join(path.dirname(file), `.${path.basename(file)}.part-${process.pid}`);
  try {
    await pipeline(download.data, createWriteStream(partial));
    await rename(partial, file);
  } catch (error) {
    download.data.destroy();
    await rm(partial, { force: true });
    throw error;
  }
  return download.info;
}

/** A file's stream, size and the options its name implies. */
export async function fileSource(file: string, options: Partial<UploadOptions>): Promise<[Readable, UploadOptions]> {
  const mime_type = options.mime_type ?? mimeTypeOf(file);
  if (!mime_type) throw new TypeError(`no MIME type known for ${file}; name one (mime_type)`);
  const { size } = await stat(file);
  const stream = createReadStream(file, { highWaterMark: CHUNK });
  return [stream, { filename: path.basename(file), ...options, mime_type, size_bytes: options.size_bytes ?? size }];
}
