/**
 * Loads the kapso.gateway.v1 `.proto` files at run time, typed by the generated declarations.
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import type { ProtoGrpcType as IngestProto } from './generated/ingest';
import type { ProtoGrpcType as MessagingProto } from './generated/messaging';

/** Both services and every message type of kapso.gateway.v1. */
export type KapsoProto = MessagingProto & IngestProto;

/** Must match the flags generate.sh passes to proto-loader-gen-types, or the types lie. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** generate.sh copies proto/ here; from dist/src/ that is ../../proto. */
const DEFAULT_PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');

/**
 * The loaded package, for raw stubs such as the adapter's `Ingest`.
 *
 * @example
 * const proto = loadProto();
 * const ingest = new proto.kapso.gateway.v1.Ingest('127.0.0.1:50051', grpc.credentials.createInsecure());
 */
export function loadProto(protoDir: string = DEFAULT_PROTO_DIR): KapsoProto {
  const definition = protoLoader.loadSync(
    ['kapso/gateway/v1/messaging.proto', 'kapso/gateway/v1/ingest.proto'],
    { ...LOADER_OPTIONS, includeDirs: [protoDir] },
  );
  return grpc.loadPackageDefinition(definition) as unknown as KapsoProto;
}
