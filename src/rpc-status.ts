/** google.rpc.Status / ErrorInfo codec for the grpc-status-details-bin trailer (server encodes, client decodes). */
import { join } from 'node:path';
import type { Metadata } from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { packageRoot } from './package-root';

export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

let types: { status: protobuf.Type; errorInfo: protobuf.Type } | undefined;

function rpcTypes(): { status: protobuf.Type; errorInfo: protobuf.Type } {
  if (!types) {
    const protoDir = join(packageRoot(), 'proto');
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(protoDir, target));
    root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
    types = { status: root.lookupType('google.rpc.Status'), errorInfo: root.lookupType('google.rpc.ErrorInfo') };
  }
  return types;
}

export function encodeStatusDetails(code: number, message: string, info: ErrorInfo): Buffer {
  const { status, errorInfo } = rpcTypes();
  const value = errorInfo.encode(errorInfo.create(info)).finish();
  return Buffer.from(status.encode(status.create({ code, message, details: [{ type_url: ERROR_INFO_TYPE_URL, value }] })).finish());
}

/** The ErrorInfo in a call's trailers, if the server sent one. */
export function errorInfoOf(metadata: Metadata | undefined): ErrorInfo | undefined {
  const raw = metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!raw || typeof raw === 'string') return undefined;
  const { status, errorInfo } = rpcTypes();
  const decoded = status.toObject(status.decode(raw), { defaults: true }) as { details: Array<{ type_url: string; value: Uint8Array }> };
  const detail = decoded.details.find((d) => d.type_url === ERROR_INFO_TYPE_URL);
  return detail ? (errorInfo.toObject(errorInfo.decode(detail.value), { defaults: true }) as ErrorInfo) : undefined;
}
