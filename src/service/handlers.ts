/** Wraps handlers so that every thrown error goes through the one mapping in errors.ts. */
import type { handleUnaryCall, Metadata, ServerUnaryCall, ServerErrorResponse } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { toServiceError } from './errors';
import { requireWellFormed } from './malformed';

export function unary<Request, Response>(log: Logger, handler: (call: ServerUnaryCall<Request, Response>) => Promise<Response> | Response): handleUnaryCall<Request, Response> {
  return (call, callback) => {
    const fail = (error: unknown) => callback(toServiceError(error, log) as ServerErrorResponse);
    // A handler that answers without waiting is answered in this tick; one that returns a promise when it settles.
    let result: Promise<Response> | Response;
    try {
      requireWellFormed(call.request);
      result = handler(call);
    } catch (error) {
      fail(error);
      return;
    }
    if (result instanceof Promise) result.then((response) => callback(null, response), fail);
    else callback(null, result);
  };
}

/** The token of an `authorization: Bearer <token>` header, if any. */
export function bearerToken(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match ? match[1] : undefined;
}

export function timestamp(date: Date | number): { seconds: number; nanos: number } {
  const ms = typeof date === 'number' ? date : date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}
