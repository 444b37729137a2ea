import { describe, expect, it } from 'vitest';
import { status as Status } from '@grpc/grpc-js';
import type { ServerUnaryCall, ServerErrorResponse } from '@grpc/grpc-js';
import pino from 'pino';
import { unary } from '../../src/service/handlers';
import { notFound } from '../../src/errors';
import { tolerantDeserializers } from '../../src/service/malformed';

const log = pino({ level: 'silent' });

/** Runs a wrapped handler the way grpc-js does and resolves to what it passed to the callback. */
function invoke<T>(handler: (call: ServerUnaryCall<unknown, T>) => Promise<T> | T, request: unknown = {}): Promise<{ error: Partial<ServerErrorResponse> | null; value?: T; sync: boolean }> {
  return new Promise((resolve) => {
    let returned = false;
    unary<unknown, T>(log, handler)({ request } as ServerUnaryCall<unknown, T>, (error, value) => {
      resolve({ error: error as Partial<ServerErrorResponse> | null, value: value ?? undefined, sync: !returned });
    });
    returned = true;
  });
}

describe('unary handler wrapper', () => {
  it('answers a handler that returns a value in the same tick', async () => {
    const answer = await invoke(() => ({ ok: 1 }));
    expect(answer).toEqual({ error: null, value: { ok: 1 }, sync: true });
  });

  it('answers a handler that returns a promise once it settles', async () => {
    const answer = await invoke(async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { ok: 2 };
    });
    expect(answer).toEqual({ error: null, value: { ok: 2 }, sync: false });
  });

  it('maps a synchronous throw and a rejection through the one error mapping', async () => {
    const thrown = await invoke(() => {
      throw notFound('array', 'a-1');
    });
    expect(thrown.error?.code).toBe(Status.NOT_FOUND);
    expect(thrown.error?.details).toBe('array "a-1" not found');
    const rejected = await invoke(async () => {
      throw notFound('lease', 'l-1');
    });
    expect(rejected.error?.code).toBe(Status.NOT_FOUND);
    expect(rejected.error?.details).toBe('lease "l-1" not found');
    const internal = await invoke(() => {
      throw new TypeError('boom');
    });
    expect(internal.error?.code).toBe(Status.INTERNAL);
    expect(internal.error?.details).toBe('internal error: boom');
  });

  it('refuses a request that did not decode without calling the handler', async () => {
    const service = tolerantDeserializers({
      Echo: {
        path: '/t/Echo',
        requestStream: false,
        responseStream: false,
        requestSerialize: (value: unknown) => Buffer.from(String(value)),
        requestDeserialize: (_bytes: Buffer) => {
          throw new Error('index out of range');
        },
        responseSerialize: (value: unknown) => Buffer.from(String(value)),
        responseDeserialize: (bytes: Buffer) => bytes,
      },
    });
    const malformed = service.Echo.requestDeserialize(Buffer.from([0xff]));
    let called = false;
    const answer = await invoke(() => {
      called = true;
      return {};
    }, malformed);
    expect(called).toBe(false);
    expect(answer.error?.code).toBe(Status.INVALID_ARGUMENT);
    expect(answer.error?.details).toContain('index out of range');
  });
});
