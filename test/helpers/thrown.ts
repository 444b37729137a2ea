import { expect } from 'vitest';
import { TensormemClientError } from '../../src/client/tensormem-client';

/** What `action` throws, checked to be a `type`; the test fails when it throws nothing. */
export function thrownBy<T>(action: () => unknown, type: abstract new (...args: never[]) => T): T {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as T;
  }
  throw new Error(`expected ${type.name} to be thrown`);
}

/** The TensormemClientError a client call rejects with; the test fails when it resolves or rejects with anything else. */
export async function failure(promise: Promise<unknown>): Promise<TensormemClientError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(TensormemClientError);
  return error as TensormemClientError;
}
