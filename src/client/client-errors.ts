/**
 * The typed client's error: the gRPC code, the daemon's ErrorInfo reason and its metadata, whether the
 * refusal came from the daemon over gRPC, from its data plane, or from the client's own checks before
 * anything was sent (which speak the daemon's words, errors.ts).
 */
import { ServiceError, status as Status } from '@grpc/grpc-js';
import { errorInfoOf } from '../rpc-status';
import { describe } from '../errors';
import type { ErrorReason } from '../errors';
import type { DataPlaneHttpError } from '../dataplane/data-plane-client';

/**
 * The daemon's google.rpc.ErrorInfo reasons, stable names a trainer branches on. `reason` is typed as
 * one of them or any string: an editor offers these, and a reason added by a newer daemon still fits.
 */
export type { ErrorReason };

export class TensormemClientError extends Error {
  constructor(
    readonly code: Status,
    readonly reason: ErrorReason | (string & {}) | undefined,
    readonly details: string,
    readonly errorMetadata: Record<string, string>,
  ) {
    // The reason only where it says more than the code ("FAILED_PRECONDITION (FAILED_PRECONDITION): …" did not).
    super(`${Status[code]}${reason && reason !== Status[code] ? ` (${reason})` : ''}: ${details}`);
    this.name = 'TensormemClientError';
  }
}

/** A gRPC error as a TensormemClientError: its code, and the reason and metadata of its ErrorInfo. */
export function clientError(error: ServiceError): TensormemClientError {
  const info = errorInfoOf(error.metadata);
  return new TensormemClientError(error.code, info?.reason, error.details, info?.metadata ?? {});
}

/** A data plane error as the gRPC client would have seen it (same code name and ErrorInfo reason). */
export function clientErrorOfHttp(error: DataPlaneHttpError): TensormemClientError {
  const code = (Status as unknown as Record<string, Status>)[error.body.status] ?? Status.UNKNOWN;
  return new TensormemClientError(code, error.body.reason || undefined, error.body.message, error.body.metadata);
}

/** INVALID_ARGUMENT in the daemon's words (errors.ts invalidArgument), raised here before any call. */
export function invalidArgument(field: string, expected: string, received: unknown): TensormemClientError {
  return new TensormemClientError(Status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', `Expected ${expected} for ${field} but received ${describe(received)}`, { field });
}

/** OUT_OF_RANGE in the daemon's words (errors.ts outOfRange), raised here before any call. */
export function outOfRange(field: string, message: string): TensormemClientError {
  return new TensormemClientError(Status.OUT_OF_RANGE, 'OUT_OF_RANGE', `${field}: ${message}`, { field });
}
