import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { csiProtoPath } from '../package-info.js';
import type { CsiProto } from './csi-types.js';

/**
 * Loader options: these must match the flags `npm run gen:proto` passes to the type generator
 * (--longs=String --enums=String --defaults --oneofs), or the generated types would lie.
 */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: CsiProto | undefined;

/** The CSI v1 package (`csi.v1`) from our own proto file, loaded once. */
export function loadCsiProto(): CsiProto {
  if (!cached) {
    const definition = protoLoader.loadSync(csiProtoPath, LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(definition) as unknown as CsiProto;
  }
  return cached;
}
