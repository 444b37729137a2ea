/** Loads tensormem.v1 (and the google.rpc messages used in error details) with the committed loader options. */
import { join } from 'node:path';
import { loadSync, PackageDefinition, Options } from '@grpc/proto-loader';
import { loadPackageDefinition } from '@grpc/grpc-js';
import type { ProtoGrpcType as LeaseProto } from '../generated/lease';
import type { ProtoGrpcType as ArrayProto } from '../generated/array';
import type { ProtoGrpcType as MemoryProto } from '../generated/memory';
import type { ProtoGrpcType as WorkspaceProto } from '../generated/workspace';
import { packageRoot } from '../package-root';
import { installPlainMessageCodecs, plainMessageCodecs, type MessageCodec } from './plain-message-codecs';

export const PROTO_DIR = join(packageRoot(), 'proto');
export const PROTO_FILES = ['tensormem/v1/lease.proto', 'tensormem/v1/array.proto', 'tensormem/v1/memory.proto', 'tensormem/v1/workspace.proto'];

/** proto/loader-options.json (shared with scripts/gen-proto.mjs) names the conversion types as text. */
function loaderOptions(): Options {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const text = require(join(PROTO_DIR, 'loader-options.json')) as { keepCase: boolean; longs: string; enums: string; defaults: boolean; oneofs: boolean };
  const types: Record<string, StringConstructor | NumberConstructor> = { String, Number };
  return { ...text, longs: types[text.longs], enums: types[text.enums], includeDirs: [PROTO_DIR] };
}

export const LOADER_OPTIONS: Options = loaderOptions();

export type TensormemProto = LeaseProto & ArrayProto & MemoryProto & WorkspaceProto;

/** The definition (its plain messages' codecs installed), the services made from it, and those codecs by full type name. */
interface LoadedProto {
  definition: PackageDefinition;
  proto: TensormemProto;
  codecs: ReadonlyMap<string, MessageCodec>;
}

let cached: LoadedProto | undefined;

export function loadTensormemProto(): LoadedProto {
  if (!cached) {
    const definition = loadSync(PROTO_FILES, LOADER_OPTIONS);
    const codecs = plainMessageCodecs(definition);
    installPlainMessageCodecs(definition, codecs);
    cached = { definition, proto: loadPackageDefinition(definition) as unknown as TensormemProto, codecs };
  }
  return cached;
}
