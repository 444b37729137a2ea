/**
 * Optional capabilities a MemoryResource may offer beyond the contract in memory-resource.ts, so
 * that adaptors can check limits before calling upstream without building a stats object.
 * PoolResource, LimitingAdaptor and StatisticsAdaptor all provide both.
 */
import { invalidArgument } from '../errors';
import type { AllocateOptions, MemoryResource } from './memory-resource';

export interface SizedMemoryResource extends MemoryResource {
  /**
   * Bytes a request of `bytes` would take (what usedBytes grows by when it succeeds); throws
   * INVALID_ARGUMENT for a size that is not a non-negative safe integer.
   */
  alignedSize?(bytes: number, options?: AllocateOptions): number;
  /** The same number as stats().usedBytes, read in O(1) without allocating. */
  readonly usedBytes?: number;
}

/** Throws INVALID_ARGUMENT unless `bytes` is a non-negative safe integer. */
export function checkRequestBytes(bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw invalidArgument('bytes', 'a non-negative safe integer', bytes);
}

/** `upstream`'s used bytes: its usedBytes property when it has one, else stats().usedBytes. */
export function usedBytesOf(upstream: SizedMemoryResource): number {
  const used = upstream.usedBytes;
  return used !== undefined ? used : upstream.stats().usedBytes;
}

/** What a request of `bytes` takes from `upstream`: its alignedSize when it has one, else `bytes`. */
export function alignedSizeOf(upstream: SizedMemoryResource, bytes: number, options?: AllocateOptions): number {
  if (upstream.alignedSize !== undefined) return upstream.alignedSize(bytes, options);
  checkRequestBytes(bytes);
  return bytes;
}
