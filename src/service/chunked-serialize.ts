/**
 * Responses with long lists (ListLeases, ListArrays, ListWorkspaces) encoded a slice at a time.
 * protobufjs's serializer turns the whole response into message objects before it encodes a byte: about
 * 3.3 KiB of heap a LeaseSummary, as much again as the lease itself keeps, so listing the leases of a
 * daemon near its heap limit (tensormemctl leases, or top every second) took it past the limit and it
 * died ("JavaScript heap out of memory") with every lease. Protobuf messages concatenate: a repeated
 * field's elements encoded in slices, one after another, decode as the one list, so each long top-level
 * list is encoded LIST_SLICE elements at a time and the bytes (outside the heap) joined.
 */

import { PreEncoded } from './snapshot-encoder';

/** Elements of a repeated field encoded at once. */
export const LIST_SLICE = 256;

/** Whether a field of `value` is a list longer than LIST_SLICE; allocates nothing (every reply of every call passes here). */
function hasLongList(value: Record<string, unknown>): boolean {
  for (const key in value) {
    const field = value[key];
    if (Array.isArray(field) && field.length > LIST_SLICE) return true;
  }
  return false;
}

export function chunkedSerializer(serialize: (value: unknown) => Buffer): (value: unknown) => Buffer {
  return (value: unknown) => {
    // Encoded by the handler already, a slice at a time (GetMemorySnapshot: snapshot-encoder.ts).
    if (value instanceof PreEncoded) return value.bytes;
    if (value === null || typeof value !== 'object' || !hasLongList(value as Record<string, unknown>)) return serialize(value);
    const lists = Object.entries(value as Record<string, unknown>).filter((entry): entry is [string, unknown[]] => Array.isArray(entry[1]) && entry[1].length > LIST_SLICE);
    const rest: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const [name] of lists) delete rest[name];
    const parts = [serialize(rest)];
    for (const [name, list] of lists) {
      for (let start = 0; start < list.length; start += LIST_SLICE) parts.push(serialize({ [name]: list.slice(start, start + LIST_SLICE) }));
    }
    return Buffer.concat(parts);
  };
}
