import { expect } from 'vitest';

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
