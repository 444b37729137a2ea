/**
 * Gives back what a burst grew in the daemon's resident set once the daemon is idle: a full
 * collection (V8 keeps its young generation at the size a burst grew it to, 32 MiB, and the calls'
 * garbage until its next full collection, which an idle daemon may not have for minutes) and, once
 * V8 has freed what that collection found, malloc_trim (glibc keeps the freed buffers of transfers in
 * its heap, resident). --pool-idle-release gives back the pools' chunks; this gives back the rest,
 * which --maxphysicalbytes counts too.
 *
 * Measured on the host backend, RSS 81 MB at start: 2 GB moved over both paths, 16 at a time, left
 * 168 MB 35 s after the chunks had gone (new space 32 MiB, 31 MB of garbage, 34 of glibc's 64 MiB heap
 * free); 80 MB after a full collection and malloc_trim. A lease of 100k arrays, closed: 168 MB for good,
 * 99 MB after two full collections and malloc_trim (the second freed another 14 MB of old space).
 *
 * It runs when nothing happened over a whole check interval (no call, no byte moved) and the RSS
 * that the pools' host-RAM chunks do not explain has grown by IDLE_TRIM_GROWTH_BYTES since the last
 * trim (or start): once per burst, since a full collection holds the event loop (tens of
 * milliseconds at 100k live arrays).
 */
import type { Logger } from 'pino';
import { formatIec } from '../units';

/** How often activity is looked at: idle means none over one interval. */
export const IDLE_TRIM_CHECK_MS = 5000;

/** The growth of RSS (past what the pools' chunks explain) worth a trim. */
export const IDLE_TRIM_GROWTH_BYTES = 32 * 1024 * 1024;

/** How long after the collections malloc_trim runs: V8 frees pages and buffers on its own threads after a collection. */
export const IDLE_TRIM_SETTLE_MS = 500;

export interface IdleMemoryTrimOptions {
  /** A count that grows with any work: calls finished, bytes moved. */
  activity: () => number;
  /** RSS less the bytes of the pools' host-RAM chunks: what a trim may give back grows this. */
  unexplainedBytes: () => number;
  /** The full collections. */
  collect: () => void;
  /** malloc_trim. */
  trimHeap: () => void;
  /** The resident set, logged before and after each trim. */
  residentBytes?: () => number;
  checkMs?: number;
  growthBytes?: number;
  settleMs?: number;
}

/** Starts the checks (unref'd timers); returns the function that stops them. */
export function startIdleMemoryTrim(options: IdleMemoryTrimOptions, log: Logger): () => void {
  const { activity, unexplainedBytes, collect, trimHeap, residentBytes = () => process.memoryUsage.rss() } = options;
  const { checkMs = IDLE_TRIM_CHECK_MS, growthBytes = IDLE_TRIM_GROWTH_BYTES, settleMs = IDLE_TRIM_SETTLE_MS } = options;
  let seen = activity();
  // The lowest unexplained RSS since the last trim (or start): what a burst grew is measured from it.
  let floor = unexplainedBytes();
  let settling: NodeJS.Timeout | undefined;
  const failed = (error: unknown) =>
    log.error({ event: 'idle_memory_trim_failed', err: error }, `giving back memory after a burst failed: ${(error as Error).message}`);
  const check = () => {
    const now = activity();
    const busy = now !== seen;
    seen = now;
    const unexplained = unexplainedBytes();
    floor = Math.min(floor, unexplained);
    if (busy || settling || unexplained - floor < growthBytes) return;
    const before = residentBytes();
    const started = performance.now();
    try {
      collect();
    } catch (error) {
      failed(error);
      return;
    }
    const collectMs = Math.round(performance.now() - started);
    settling = setTimeout(() => {
      settling = undefined;
      try {
        trimHeap();
      } catch (error) {
        failed(error);
      }
      const after = residentBytes();
      floor = unexplainedBytes();
      log.info(
        { event: 'idle_memory_trimmed', rssBefore: before, rssAfter: after, collectMs },
        `idle after a burst: gave back ${formatIec(Math.max(0, before - after))} (RSS ${formatIec(before)} -> ${formatIec(after)}; full collections ${collectMs} ms)`,
      );
    }, settleMs);
    settling.unref();
  };
  const timer = setInterval(check, checkMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    clearTimeout(settling);
  };
}
