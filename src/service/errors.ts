/**
 * The one mapping from domain errors to gRPC: status code, message, and a google.rpc.Status with a
 * google.rpc.ErrorInfo{reason, domain "tensormem.dev", metadata} in the grpc-status-details-bin
 * trailer. Anything that is not a TensormemError is INTERNAL and logged.
 */
import { Metadata, status as Status, ServerErrorResponse } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ErrorKind, TensormemError, headOf } from '../errors';
import { STATUS_DETAILS_KEY, encodeStatusDetails } from '../rpc-status';

export const ERROR_DOMAIN = 'tensormem.dev';

export const STATUS_BY_KIND: Record<ErrorKind, Status> = {
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  OUT_OF_RANGE: Status.OUT_OF_RANGE,
  NOT_FOUND: Status.NOT_FOUND,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
  UNAVAILABLE: Status.UNAVAILABLE,
  INTERNAL: Status.INTERNAL,
  CANCELLED: Status.CANCELLED,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
};

/**
 * Most characters of a status message, and of each ErrorInfo metadata value, that go out. Both travel
 * in the trailers, the message twice (grpc-message, and grpc-status-details-bin in base64), and a
 * client drops trailers past its header list limit (Node's 64 KiB; grpc core's default 8 KiB soft
 * limit for other languages) with the call left hanging: a message that quoted a 200,000-character id
 * whole held the call until its deadline. Messages quote client strings cut (errors.ts quoted());
 * this bounds whatever else would pass.
 */
const MAX_MESSAGE_CHARACTERS = 2048;
const MAX_METADATA_VALUE_CHARACTERS = 256;

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${headOf(text, max)}… (cut from ${text.length} characters)`;
}

/** The error a handler passes to grpc-js for `error`. */
export function toServiceError(error: unknown, log?: Logger): Partial<ServerErrorResponse> {
  if (!(error instanceof TensormemError)) {
    log?.error({ err: error }, 'internal error');
    const message = error instanceof Error ? error.message : String(error);
    return { code: Status.INTERNAL, details: bounded(`internal error: ${message}`, MAX_MESSAGE_CHARACTERS), metadata: new Metadata() };
  }
  const code = STATUS_BY_KIND[error.kind];
  const details = bounded(error.message, MAX_MESSAGE_CHARACTERS);
  const errorMetadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(error.metadata)) errorMetadata[key] = bounded(value, MAX_METADATA_VALUE_CHARACTERS);
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, encodeStatusDetails(code, details, { reason: error.reason, domain: ERROR_DOMAIN, metadata: errorMetadata }));
  return { code, details, metadata };
}
