/**
 * --heap-growth: how far V8 lets the old generation grow past what the last full GC kept.
 *
 * V8's own choice on a machine with a few GiB of memory is up to 4 x. For this daemon that means a
 * burst of calls leaves up to ~100 MB of dead call objects on the heap (and in the resident set) before
 * the next full GC, several times the bookkeeping of 100k live arrays (bench B8). With 10 % the next
 * full GC comes after max(10 % of the live heap, 8 MiB) plus the young generation; at 100k live arrays
 * each full GC takes tens of milliseconds.
 *
 * V8 reads the flag each time it sets the next limit, so setting it once the process runs takes effect
 * from the next full GC on. It is process-wide and overrides node's own --heap-growing-percent: the
 * last daemon started in a process sets it, and it stays set after that daemon stops.
 */
import { setFlagsFromString } from 'node:v8';

export function applyHeapGrowth(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growth percent must be a whole number >= 0, got ${percent}`);
  // 0 leaves V8's flags as node was started (V8's own choice unless --heap-growing-percent was given to node).
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/**
 * The heap growth while a bulk gRPC stream is in flight: V8's own largest factor (4 x).
 *
 * A WriteArray or ReadArray stream holds its 1 MiB message buffers for a few milliseconds each, up to
 * ~45 MiB at a time, and V8 counts that memory against the old generation's limit. With 10 % the limit
 * sits 15-23 MiB above a 12 MiB live heap, so a stream started a full GC about every 14 MiB it moved:
 * 180 over 5 x 256 MiB each way, a third of the daemon's CPU. 100 % still gave 174; 300 % gave 4, and
 * the writes ran at 0.29-0.35 GB/s instead of 0.22-0.25 (bench/README.md, B3).
 */
export const STREAMING_HEAP_GROWTH_PERCENT = 300;

/** A stream counts as bulk once it has moved this many bytes (or, for ReadArray, will). */
export const BULK_STREAM_BYTES = 8 * 1024 * 1024;

/**
 * --heap-growth while idle, STREAMING_HEAP_GROWTH_PERCENT while any bulk stream is in flight. The
 * next limit V8 sets uses the percent in force at that full GC: after the last bulk stream ends, the
 * heap may grow by up to 4 x once more before a full GC brings the limit back to --heap-growth.
 * With --heap-growth 0 (V8's own choice) nothing is ever changed.
 */
export class HeapGrowth {
  private bulkStreams = 0;

  constructor(
    readonly idlePercent: number,
    private readonly setPercent: (percent: number) => void = applyHeapGrowth,
  ) {
    this.setPercent(idlePercent);
  }

  /** Bulk streams in flight. */
  get streamsInFlight(): number {
    return this.bulkStreams;
  }

  /** Marks a bulk stream in flight until the returned function is called (once; later calls do nothing). */
  beginBulkStream(): () => void {
    if (this.idlePercent === 0) return () => {};
    if (this.bulkStreams++ === 0) this.setPercent(STREAMING_HEAP_GROWTH_PERCENT);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.bulkStreams === 0) this.setPercent(this.idlePercent);
    };
  }
}
