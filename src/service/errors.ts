/**
 * The one mapping from domain errors to gRPC: status code, message, and a google.rpc.Status with a
 * google.rpc.ErrorInfo{reason, domain "tensormem.dev", metadata} in the grpc-status-details-bin
 * trailer. Anything that is not a TensormemError is INTERNAL and logged.
 */
import { Metadata, status as Status, ServerErrorResponse } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ErrorKind, TensormemError } from '../errors';
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

/** The error a handler passes to grpc-js for `error`. */
export function toServiceError(error: unknown, log?: Logger): Partial<ServerErrorResponse> {
  if (!(error instanceof TensormemError)) {
    log?.error({ err: error }, 'internal error');
    const message = error instanceof Error ? error.message : String(error);
    return { code: Status.INTERNAL, details: `internal error: ${message}`, metadata: new Metadata() };
  }
  const code = STATUS_BY_KIND[error.kind];
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, encodeStatusDetails(code, error.message, { reason: error.reason, domain: ERROR_DOMAIN, metadata: error.metadata }));
  return { code, details: error.message, metadata };
}
