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
/**
 * Most bytes the two trailers of an error (grpc-message, grpc-status-details-bin) take in the client's
 * header list, each field counted as HPACK counts it (RFC 7541 §4.1: name + value + 32). grpc core
 * clients (Python's grpcio, C++) refuse a header list past 8 KiB, and the rest of it (grpc-status,
 * :status, content-type, date: some 300 bytes) fits in the last KiB. The characters alone do not bound it: grpc-js
 * sends the message as encodeURI(details), 9 bytes a CJK character, so 2,048 of them with a CJK
 * workspace name in the ErrorInfo came to 28 KB, and grpcio ended the call RESOURCE_EXHAUSTED
 * "received initial metadata size exceeds limit", the error and its ErrorInfo lost.
 */
const MAX_ERROR_TRAILER_BYTES = 7 * 1024;

function bounded(text: string, max: number): string {
  return text.length <= max ? text : cutTo(text, max);
}

function cutTo(text: string, units: number): string {
  return `${headOf(text, units)}… (cut from ${text.length} characters)`;
}

function trailerBytes(details: string, statusDetails?: Buffer): number {
  const field = (name: string, valueBytes: number) => name.length + valueBytes + 32;
  const message = field('grpc-message', encodeURI(details).length);
  return statusDetails ? message + field(STATUS_DETAILS_KEY, Math.ceil(statusDetails.length / 3) * 4) : message;
}

/**
 * The message, cut as much more as it must be for the trailers to stay within MAX_ERROR_TRAILER_BYTES,
 * with the google.rpc.Status made from it (none for an error without ErrorInfo). The longest head that
 * fits, by bisection: the size grows with the head.
 */
function fittedDetails(message: string, encode?: (details: string) => Buffer): { details: string; statusDetails?: Buffer } {
  const fitted = (details: string) => ({ details, statusDetails: encode?.(details) });
  const whole = fitted(bounded(message, MAX_MESSAGE_CHARACTERS));
  if (trailerBytes(whole.details, whole.statusDetails) <= MAX_ERROR_TRAILER_BYTES) return whole;
  let best = fitted(cutTo(message, 0));
  let low = 1;
  let high = Math.min(message.length, MAX_MESSAGE_CHARACTERS) - 1;
  while (low <= high) {
    const units = Math.floor((low + high) / 2);
    const candidate = fitted(cutTo(message, units));
    if (trailerBytes(candidate.details, candidate.statusDetails) <= MAX_ERROR_TRAILER_BYTES) {
      best = candidate;
      low = units + 1;
    } else {
      high = units - 1;
    }
  }
  return best;
}

/** The error a handler passes to grpc-js for `error`. */
export function toServiceError(error: unknown, log?: Logger): Partial<ServerErrorResponse> {
  if (!(error instanceof TensormemError)) {
    log?.error({ event: 'internal_error', err: error }, 'internal error');
    const message = error instanceof Error ? error.message : String(error);
    return { code: Status.INTERNAL, details: fittedDetails(`internal error: ${message}`).details, metadata: new Metadata() };
  }
  const code = STATUS_BY_KIND[error.kind];
  const errorMetadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(error.metadata)) errorMetadata[key] = bounded(value, MAX_METADATA_VALUE_CHARACTERS);
  const info = { reason: error.reason, domain: ERROR_DOMAIN, metadata: errorMetadata };
  const { details, statusDetails } = fittedDetails(error.message, (text) => encodeStatusDetails(code, text, info));
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, statusDetails!);
  return { code, details, metadata };
}
