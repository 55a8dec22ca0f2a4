/**
 * The resumable WatchEvents loop: reconnect with backoff, resume after the last event yielded.
 *
 * The core's log positions are strictly increasing, so "the last sequence handed to the
 * caller" is all the state a reconnect needs. Acknowledging is cumulative on the server
 * (AckEvents never moves back), so a lost ack is made good by the next one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';

import type { Event__Output } from './generated/kapso/gateway/v1/Event';
import type { WatchEventsRequest } from './generated/kapso/gateway/v1/WatchEventsRequest';

/** A log position: uint64, returned by the SDK as a decimal string. */
export type Sequence = string | number | bigint;

/**
 * Codes after which the same request can succeed later. Everything else (bad arguments,
 * bad token, an unimplemented call) would fail again the same way.
 */
export const RETRYABLE_CODES: ReadonlySet<grpc.status> = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
]);

/**
 * Exponential backoff with full jitter: the n-th consecutive failure waits a random time
 * between half and all of `min(maximumMs, initialMs * multiplier ** (n - 1))`.
 */
export class Backoff {
  constructor(
    readonly initialMs = 500,
    readonly maximumMs = 30_000,
    readonly multiplier = 2,
  ) {}

  delayMs(failures: number): number {
    const ceiling = Math.min(
      this.maximumMs,
      this.initialMs * this.multiplier ** Math.max(0, failures - 1),
    );
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}

/** `maxAttempts` consecutive connection attempts failed; `cause` is the last error. */
export class WatchGaveUp extends Error {
  constructor(
    readonly attempts: number,
    readonly lastSequence: string,
    cause?: unknown,
  ) {
    super(`watch gave up after ${attempts} failed attempts (last sequence ${lastSequence})`, {
      cause,
    });
    this.name = 'WatchGaveUp';
  }
}

export interface WatchOptions {
  /** Start after this position; 0 (default) with `consumer` starts after its acked position. */
  afterSequence?: Sequence;
  /** A named consumer: resumes from its AckEvents position. */
  consumer?: string;
  /**
   * With no position to resume from, start at the log's head (a new bot answers what comes
   * next, not last month's messages). A new named consumer is recorded there at once.
   */
  fromEnd?: boolean;
  /** Acknowledge each event as `consumer` once the caller asks for the next one. */
  autoAck?: boolean;
  /** Only these event types (empty: all). */
  eventTypes?: string[];
  /** Only this conversation. */
  conversationId?: string;
  /** Only this business phone number. */
  phoneNumberId?: string;
  backoff?: Backoff;
  /** Consecutive failed attempts before giving up with {@link WatchGaveUp}; default: never. */
  maxAttempts?: number;
  /** Ends the loop (quietly) when aborted. */
  signal?: AbortSignal;
}

type OpenStream = (request: WatchEventsRequest) => grpc.ClientReadableStream<Event__Output>;
type Ack = (consumer: string, sequence: string) => Promise<unknown>;

function isServiceError(error: unknown): error is grpc.ServiceError {
  return typeof error === 'object' && error !== null && typeof (error as grpc.ServiceError).code === 'number';
}

/** The loop behind {@link Client.watch} (see there). */
export async function* follow(
  openStream: OpenStream,
  ack: Ack,
  options: WatchOptions,
): AsyncGenerator<Event__Output, void, undefined> {
  const { consumer = '', autoAck = false, backoff = new Backoff(), signal } = options;
  let last = BigInt(options.afterSequence ?? 0);
  let failures = 0;
  while (!signal?.aborted) {
    // With a consumer and nothing yielded yet, after_sequence 0 lets the server resume
    // from the consumer's acknowledged position; later, `last` is exact.
    const call = openStream({
      after_sequence: last.toString(),
      consumer,
      from_end: options.fromEnd ?? false,
      event_types: options.eventTypes ?? [],
      conversation_id: options.conversationId ?? '',
      phone_number_id: options.phoneNumberId ?? '',
    });
    // cancel() makes the stream emit CANCELLED; keep it from becoming an unhandled error.
    call.on('error', () => {});
    const cancel = () => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    let lastError: unknown;
    try {
      for await (const event of call as AsyncIterable<Event__Output>) {
        failures = 0;
        const sequence = BigInt(event.sequence);
        if (sequence <= last) continue; // never hand the caller the same event twice
        last = sequence;
        yield event;
        // Runs when the caller asks for the next event: the previous one is done.
        if (autoAck) await ack(consumer, event.sequence);
      }
    } catch (error) {
      if (signal?.aborted) return;
      if (!isServiceError(error) || !RETRYABLE_CODES.has(error.code)) throw error;
      lastError = error;
    } finally {
      signal?.removeEventListener('abort', cancel);
      call.cancel();
    }
    // A stream that ended without an error (server shutdown) is reconnected too.
    failures += 1;
    if (options.maxAttempts !== undefined && failures >= options.maxAttempts) {
      throw new WatchGaveUp(failures, last.toString(), lastError);
    }
    try {
      await sleep(backoff.delayMs(failures), undefined, { signal });
    } catch {
      return; // aborted while waiting
    }
  }
}
