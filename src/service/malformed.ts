/**
 * Messages that do not decode as their tensormem.v1 type. grpc-js answers a deserializer's throw with
 * INTERNAL; bad input must be INVALID_ARGUMENT, so the deserializers are wrapped to hand the handler a
 * marked object instead, and the handlers refuse it before doing anything. (The responses' serializers
 * are wrapped here too, for long lists: chunked-serialize.ts.)
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { invalidArgument } from '../errors';
import { chunkedSerializer } from './chunked-serialize';

const MALFORMED = Symbol('malformed message');

export function tolerantDeserializers<T extends ServiceDefinition>(service: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    wrapped[name] = {
      ...method,
      // Long lists are encoded a slice at a time (chunked-serialize.ts): the daemon's heap.
      responseSerialize: chunkedSerializer(method.responseSerialize as (value: unknown) => Buffer),
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          return { [MALFORMED]: (error as Error).message };
        }
      },
    };
  }
  return wrapped as T;
}

/** Throws INVALID_ARGUMENT for a message that did not decode. */
export function requireWellFormed(message: unknown): void {
  if (message !== null && typeof message === 'object' && MALFORMED in message) {
    throw invalidArgument('request', 'a well-formed protobuf message', `bytes that do not decode (${(message as { [MALFORMED]: string })[MALFORMED]})`);
  }
}
