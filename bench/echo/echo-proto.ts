/** Loads bench/echo/echo.proto (from the source tree; tsc does not copy .proto files to dist/). */
import { join } from 'node:path';
import { loadSync } from '@grpc/proto-loader';
import { GrpcObject, ServiceClientConstructor, loadPackageDefinition } from '@grpc/grpc-js';
import { packageRoot } from '../../src/package-root';

export const ECHO_PROTO = join(packageRoot(), 'bench', 'echo', 'echo.proto');

export function loadEchoService(): ServiceClientConstructor {
  // The same conversions as tensormem's loader options (proto/loader-options.json).
  const definition = loadSync(ECHO_PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const root = loadPackageDefinition(definition);
  return ((root.tensormembench as GrpcObject).v1 as GrpcObject).Echo as ServiceClientConstructor;
}
