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
