/**
 * Errors on the HTTP data plane: the domain error is mapped to its gRPC status by the one mapping in
 * src/service/errors.ts, and that status to an HTTP status here. The body is JSON
 * `{code, status, reason, message, metadata}`: `code` the HTTP status, `status` the gRPC status name,
 * `reason` and `metadata` the same google.rpc.ErrorInfo fields a gRPC client sees.
 */
import { status as Status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { TensormemError } from '../errors';
import { STATUS_BY_KIND } from '../service/errors';
import type { HttpErrorBody } from './http-error-body';

/**
 * gRPC status → HTTP status. Choices where HTTP has no single answer: OUT_OF_RANGE is 416 (a range or
 * body past the array's end), FAILED_PRECONDITION 409 (the array's state forbids it: out of scope,
 * freed under the transfer), RESOURCE_EXHAUSTED 507 Insufficient Storage (a host mirror or quota
 * refused: the server's memory, not the client's rate), CANCELLED 499 (nginx's "client closed request").
 */
export const HTTP_STATUS_BY_GRPC: Readonly<Record<number, number>> = {
  [Status.INVALID_ARGUMENT]: 400,
  [Status.UNAUTHENTICATED]: 401,
  [Status.PERMISSION_DENIED]: 403,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.FAILED_PRECONDITION]: 409,
  [Status.OUT_OF_RANGE]: 416,
  [Status.CANCELLED]: 499,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.RESOURCE_EXHAUSTED]: 507,
};

/**
 * Reasons whose HTTP status is not their gRPC status's: a conditional request (If-Match, If-None-Match)
 * whose condition is false is FAILED_PRECONDITION for a gRPC client and 412 Precondition Failed here
 * (RFC 9110 §15.5.13), not the 409 of an array whose state forbids the transfer.
 */
const HTTP_STATUS_BY_REASON: Readonly<Partial<Record<string, number>>> = {
  PRECONDITION_FAILED: 412,
};

export type { HttpErrorBody };

/** The HTTP status and JSON body of any error; non-domain errors are INTERNAL and logged. */
export function httpErrorOf(error: unknown, log?: Logger): HttpErrorBody {
  if (!(error instanceof TensormemError)) {
    log?.error({ event: 'data_plane_internal_error', err: error }, 'internal error on the data plane');
    const message = error instanceof Error ? error.message : String(error);
    return { code: 500, status: 'INTERNAL', reason: 'INTERNAL', message: `internal error: ${message}`, metadata: {} };
  }
  const grpc = STATUS_BY_KIND[error.kind];
  return { code: HTTP_STATUS_BY_REASON[error.reason] ?? HTTP_STATUS_BY_GRPC[grpc] ?? 500, status: Status[grpc], reason: error.reason, message: error.message, metadata: error.metadata };
}
