/**
 * The daemon's own heap. Every array, lease and workspace costs V8 heap (about 250 B an array, bench
 * B8; a lease several KiB), which no byte quota bounds: a trainer leaking zero-byte arrays, or a client
 * opening leases in a loop, would take the daemon to V8's heap limit, where the process dies ("FATAL
 * ERROR: ... JavaScript heap out of memory") and every tenant's leases with it. Calls that make such
 * objects (AllocateArray, DuplicateArray, CreateWorkspace, OpenLease) are refused instead, with
 * RESOURCE_EXHAUSTED / HEAP_LIMIT, while the live heap leaves less than `reserveBytes` of the limit
 * (--heap-reserve); arrays freed and leases closed let them through again.
 *
 * The limit is V8's heap_size_limit, which includes the young generation (48 MiB with node's defaults:
 * three 16 MiB semi-spaces' worth) that the old generation, where these objects live, cannot use: the
 * default reserve, the larger of 20 % of the limit and 64 MiB, covers it.
 *
 * The heap in use is read at most every `sampleEvery` checks (a read costs about 0.3 µs). It counts
 * garbage too, so a reading above the line is confirmed by a full collection first (at most one every
 * `collectIntervalMs`: near a heap of GiBs it pauses the daemon for a while), and the live figure that
 * collection leaves decides until the next one.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { HeapLimitError } from '../errors';

export interface HeapGuardOptions {
  /** The heap limit (V8's heap_size_limit). */
  limitBytes?: number;
  /** Refused once less than this is left of the limit; default defaultHeapReserve(limitBytes). 0: never refused. */
  reserveBytes?: number;
  readUsedBytes?: () => number;
  /** A full garbage collection, synchronous. */
  collect?: () => void;
  now?: () => number;
  sampleEvery?: number;
  collectIntervalMs?: number;
}

/**
 * --heap-reserve's default: the larger of 20 % of the heap limit and 64 MiB (V8's young generation,
 * 48 MiB with node's defaults, is part of the limit), but at most half the limit, so that a daemon
 * under a very small heap (node --max-old-space-size=16: a 64 MiB limit) still starts and serves.
 * Under a limit below about 100 MiB that half may not cover the young generation: the old generation
 * can then run out before the guard refuses anything (give --heap-reserve there).
 */
export function defaultHeapReserve(limitBytes: number): number {
  return Math.max(Math.floor(limitBytes * 0.2), Math.min(64 * 1024 * 1024, Math.floor(limitBytes / 2)));
}

let exposedGc: (() => void) | undefined;

/** V8's full collection, made callable once (node runs without --expose-gc). */
function fullCollection(): void {
  if (!exposedGc) {
    setFlagsFromString('--expose-gc');
    exposedGc = runInNewContext('gc') as () => void;
  }
  exposedGc();
}

export class HeapGuard {
  readonly limitBytes: number;
  readonly reserveBytes: number;
  private readonly readUsedBytes: () => number;
  private readonly collect: () => void;
  private readonly now: () => number;
  private readonly sampleEvery: number;
  private readonly collectIntervalMs: number;
  private checks = 0;
  /** What the last full collection this guard ran left live, and when; undefined before the first. */
  private lastCollection: { liveBytes: number; atMs: number } | undefined;

  constructor(options: HeapGuardOptions = {}) {
    this.limitBytes = options.limitBytes ?? getHeapStatistics().heap_size_limit;
    this.reserveBytes = options.reserveBytes ?? defaultHeapReserve(this.limitBytes);
    this.readUsedBytes = options.readUsedBytes ?? (() => getHeapStatistics().used_heap_size);
    this.collect = options.collect ?? fullCollection;
    this.now = options.now ?? Date.now;
    this.sampleEvery = options.sampleEvery ?? 16;
    this.collectIntervalMs = options.collectIntervalMs ?? 5000;
  }

  /** The line: live heap above it refuses new objects. */
  get thresholdBytes(): number {
    return Math.max(0, this.limitBytes - this.reserveBytes);
  }

  /** Throws HeapLimitError while the live heap is above the line. */
  check(): void {
    if (this.reserveBytes <= 0) return;
    const last = this.lastCollection;
    const recent = last !== undefined && this.now() - last.atMs < this.collectIntervalMs;
    if (recent && last.liveBytes > this.thresholdBytes) throw new HeapLimitError(last.liveBytes, this.limitBytes, this.thresholdBytes);
    if (this.checks++ % this.sampleEvery !== 0) return;
    // Under the line, or over it with garbage only a moment ago (V8 collects that itself): no collection.
    if (this.readUsedBytes() <= this.thresholdBytes || recent) return;
    this.collect();
    const liveBytes = this.readUsedBytes();
    this.lastCollection = { liveBytes, atMs: this.now() };
    if (liveBytes > this.thresholdBytes) throw new HeapLimitError(liveBytes, this.limitBytes, this.thresholdBytes);
  }
}
