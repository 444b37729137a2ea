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
 * three 16 MiB semi-spaces' worth) that the old generation, where these objects live, cannot use. Nor
 * can the old generation be held near full: V8 kills the process ("Ineffective mark-compacts near heap
 * limit") after four full collections in a row that leave it at 80 % or more of its size while the
 * collections take more than 60 % of the time, which a daemon held at the line and busy (listing its
 * leases, say) reached within seconds. The default reserve keeps the line at 75 % of the old generation
 * (limit - 48 MiB), and at least 64 MiB: defaultHeapReserve.
 *
 * The heap in use is read at most every `sampleEvery` checks (a read costs about 0.3 µs). It counts
 * garbage too, so a reading above the line is confirmed by a full collection first (at most one every
 * `collectIntervalMs`, and at most 5 % of the time: the collection stops the daemon about 1.1 ms a MiB
 * live, 3.4 s near a 3 GiB line, so there the next waits 68 s), and until the next one the
 * live figure that collection left, plus what the calls let through since are estimated to keep (each
 * check's `costBytes`: HEAP_COST), decides: a collection that found room does not let a client make
 * objects unchecked for `collectIntervalMs` (leases with 64 long labels, about 25 KiB each, at
 * hundreds a second, took a 128 MiB heap past its limit within that interval). A reading under the line
 * meanwhile is room (the heap in use is never below what is live): what an evicted lease left is seen as
 * soon as V8 has collected it, not only at the guard's next collection. Objects freed meanwhile (arrays,
 * leases, workspaces: release) come off the estimate at the same HEAP_COST: V8 collects their garbage
 * only once something else fills the heap, and with calls refused nothing did, so closing the lease
 * that held the heap left every tenant refused until the interval ended (68 s near a 3 GiB line).
 *
 * The heap is every tenant's, so one tenant leaking objects would take it to the line for all. A check
 * made for a tenant (fairShareOf) that holds more than its fair share of the daemon's objects (more than
 * the average of the tenants that hold any, or all of them while the tenants file names others, idle
 * now: TenantAccounts.heapShareOf) is refused earlier, at FAIR_SHARE_LINE of the line: the leaker stops
 * there, and the others keep the rest of the way to the line.
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

/** node's young generation (three 16 MiB semi-spaces), part of heap_size_limit. */
const YOUNG_GENERATION_BYTES = 48 * 1024 * 1024;

/**
 * --heap-reserve's default: what leaves the line at 75 % of the old generation (the limit less the young
 * generation), under the 80 % where V8 gives up on collections that free too little; at least 64 MiB,
 * but leaving at least 32 MiB (or half the limit) under the line, so that a daemon under a very small
 * heap (node --max-old-space-size=16: a 64 MiB limit) still starts and serves. Under a limit below
 * about 100 MiB that may not cover the young generation: the old generation can then run out before
 * the guard refuses anything (give --heap-reserve there).
 */
export function defaultHeapReserve(limitBytes: number): number {
  const oldGeneration = Math.max(0, limitBytes - YOUNG_GENERATION_BYTES);
  const reserve = Math.max(limitBytes - Math.floor(oldGeneration * 0.75), 64 * 1024 * 1024);
  return Math.min(reserve, Math.max(limitBytes - 32 * 1024 * 1024, Math.floor(limitBytes / 2)));
}

let exposedGc: (() => void) | undefined;

/** V8's full collection, made callable once (node runs without --expose-gc). */
export function fullCollection(): void {
  if (!exposedGc) {
    setFlagsFromString('--expose-gc');
    exposedGc = runInNewContext('gc') as () => void;
  }
  exposedGc();
}

/**
 * What a call that passes check() is estimated to keep on the heap, on the high side (measured: an array
 * about 250 B, a lease about 0.8 KB without labels, bench/lease-heap.ts, and more once it uses request
 * ids, waits, retired arrays or its cuDNN scratch, whose bookkeeping it makes on first use); strings
 * (labels, names, request ids) are added at 2 bytes a character by the callers.
 */
export const HEAP_COST = { array: 512, lease: 4096, label: 64, workspace: 8192 } as const;

/** The most of the daemon's time the guard's own full collections may take. */
const PAUSE_SHARE = 0.05;

/** Where a tenant over its fair share is refused, as a fraction of the line (thresholdBytes). */
export const FAIR_SHARE_LINE = 0.8;

/**
 * A tenant's share of the daemon's objects (MemoryManager): undefined when it holds no more than its
 * fair share; else what it and the others hold, for the refusal. Asked only past the fair-share line.
 */
export type FairShareOf = (tenant: string) => HeapShare | undefined;

export interface HeapShare {
  tenant: string;
  /** Its estimated heap (HEAP_COST of its arrays, leases and workspaces), and every tenant's together. */
  heldBytes: number;
  totalBytes: number;
  /** Tenants that hold any. */
  tenants: number;
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
  /**
   * What the last full collection this guard ran left live (or a later reading under that), when it
   * ended, and how long after it no other runs; undefined before the first.
   */
  private lastCollection: { liveBytes: number; atMs: number; intervalMs: number } | undefined;
  /** The costBytes of the checks passed since the last collection (or reading), less those of the objects released since (release). */
  private admittedBytes = 0;

  constructor(options: HeapGuardOptions = {}) {
    this.limitBytes = options.limitBytes ?? getHeapStatistics().heap_size_limit;
    this.reserveBytes = options.reserveBytes ?? defaultHeapReserve(this.limitBytes);
    this.readUsedBytes = options.readUsedBytes ?? (() => getHeapStatistics().used_heap_size);
    this.collect = options.collect ?? fullCollection;
    this.now = options.now ?? Date.now;
    this.sampleEvery = options.sampleEvery ?? 16;
    this.collectIntervalMs = options.collectIntervalMs ?? 5000;
  }

  /**
   * Objects that a check let through, or that the last collection found live, are gone: their
   * `costBytes` (HEAP_COST, what their check was given) come off the estimate until the next collection
   * or reading, so that the room they leave is there at once, not only once V8 has collected them.
   */
  release(costBytes: number): void {
    if (this.lastCollection !== undefined && costBytes > 0) this.admittedBytes -= costBytes;
  }

  /** The line: live heap above it refuses new objects. */
  get thresholdBytes(): number {
    return Math.max(0, this.limitBytes - this.reserveBytes);
  }

  /** The line of a tenant over its fair share (fairShareOf). */
  get fairShareLineBytes(): number {
    return Math.floor(this.thresholdBytes * FAIR_SHARE_LINE);
  }

  /** Who holds more than a fair share (set by MemoryManager); unset, every tenant is held to the line alone. */
  fairShareOf?: FairShareOf;

  /**
   * Throws HeapLimitError while the live heap is above the line, or would be with `costBytes` (what the
   * call is about to keep) added to what the last collection left and the calls let through since; for
   * `tenant`, above the fair-share line already while it holds more than its share (fairShareOf).
   */
  check(costBytes = 0, tenant?: string): void {
    if (this.reserveBytes <= 0) return;
    const last = this.lastCollection;
    if (last !== undefined && this.now() - last.atMs < last.intervalMs) {
      // Within the interval no collection: the estimate decides, so what passes stays under the line.
      const estimate = last.liveBytes + this.admittedBytes;
      if (estimate + costBytes <= this.lineFor(estimate + costBytes, tenant)) {
        this.admittedBytes += costBytes;
        return;
      }
      // The heap in use is never less than what is live: a reading under the line (V8 collected what an
      // evicted lease left, say) is room now, not at the end of the interval.
      const usedBytes = this.readUsedBytes();
      if (usedBytes + costBytes > this.lineFor(usedBytes + costBytes, tenant)) throw this.refusal(estimate, usedBytes + costBytes, costBytes, tenant);
      last.liveBytes = usedBytes;
      this.admittedBytes = costBytes;
      return;
    }
    if (this.checks++ % this.sampleEvery !== 0) return;
    // Under the line: no collection (the reading counts garbage too, so live is lower still).
    const usedBytes = this.readUsedBytes();
    if (usedBytes + costBytes <= this.lineFor(usedBytes + costBytes, tenant)) return;
    const startedMs = this.now();
    this.collect();
    const liveBytes = this.readUsedBytes();
    const endedMs = this.now();
    // At most PAUSE_SHARE of the time in these pauses: about 1.1 ms a MiB live (a 3 GiB heap: 3.4 s).
    this.lastCollection = { liveBytes, atMs: endedMs, intervalMs: Math.max(this.collectIntervalMs, (endedMs - startedMs) / PAUSE_SHARE) };
    this.admittedBytes = 0;
    if (liveBytes + costBytes > this.lineFor(liveBytes + costBytes, tenant)) throw this.refusal(liveBytes, liveBytes + costBytes, costBytes, tenant);
    this.admittedBytes = costBytes;
  }

  /** The line a check for `tenant` that would take the heap to `heapBytes` is held to (fairShareOf asked only past the fair-share line). */
  private lineFor(heapBytes: number, tenant: string | undefined): number {
    if (tenant === undefined || this.fairShareOf === undefined || heapBytes <= this.fairShareLineBytes) return this.thresholdBytes;
    return this.fairShareOf(tenant) === undefined ? this.thresholdBytes : this.fairShareLineBytes;
  }

  private refusal(liveBytes: number, heapBytes: number, costBytes: number, tenant: string | undefined): HeapLimitError {
    const share = tenant !== undefined && heapBytes > this.fairShareLineBytes ? this.fairShareOf?.(tenant) : undefined;
    return new HeapLimitError(liveBytes, this.limitBytes, share ? this.fairShareLineBytes : this.thresholdBytes, share, costBytes);
  }
}
