/**
 * TypeScript client for the kapso-gateway core (`kapso.gateway.v1.Messaging`).
 *
 * A thin layer over `@grpc/grpc-js` and the types that `client-sdk/scripts/generate.sh`
 * generates from `proto/` into `src/generated/`:
 *
 * - `client`: {@link Client}, one method per Messaging call, bearer-token metadata.
 * - `content`: what {@link Client.sendMessage} sends: {@link template}, {@link media},
 *   {@link interactive}, {@link reaction}, {@link location}, {@link contacts}, {@link text}.
 * - `media`: what {@link Client.uploadMedia} streams and {@link Client.downloadMedia} returns,
 *   and {@link mimeTypeOf}.
 * - `watch`: {@link Backoff} and the resumable event loop behind {@link Client.watch}.
 * - `proto`: loads the `.proto` files at run time ({@link loadProto}) for raw stubs.
 *
 * Fields keep the proto's snake_case names, enums are their names as strings
 * (`'MESSAGE_STATUS_SENT'`) and uint64/int64 values (sequences, timestamps) are decimal
 * strings. Failed calls reject with grpc-js's `ServiceError` (`error.code` is a `grpc.status`).
 */
export { Client } from './client';
export type { ClientOptions, SendTextOptions, SendOptions, MarkReadOptions, ListMessagesOptions } from './client';
export { contact, contacts, contentKind, interactive, location, media, reaction, template, text } from './content';
export type { Content, ContentKind, ContentKinds, InteractiveOptions, MediaSource, TemplateOptions, TemplateValue } from './content';
export { CHUNK, mimeTypeOf } from './media';
export type { DownloadSource, MediaDownload, UploadOptions, UploadSource } from './media';
export type { MediaInfo__Output as MediaInfo } from './generated/kapso/gateway/v1/MediaInfo';
export type { UploadMediaResponse__Output as UploadedMedia } from './generated/kapso/gateway/v1/UploadMediaResponse';
export { Backoff, WatchGaveUp, RETRYABLE_CODES } from './watch';
export type { WatchOptions, Sequence } from './watch';
export { loadProto, LOADER_OPTIONS } from './proto';
export type { KapsoProto } from './proto';
export type { Event__Output as Event } from './generated/kapso/gateway/v1/Event';
export type { Message__Output as Message } from './generated/kapso/gateway/v1/Message';
export type { ListMessagesResponse__Output as ListMessagesResponse } from './generated/kapso/gateway/v1/ListMessagesResponse';
export type { MessageStatus__Output as MessageStatus } from './generated/kapso/gateway/v1/MessageStatus';
export type { Direction__Output as Direction } from './generated/kapso/gateway/v1/Direction';
