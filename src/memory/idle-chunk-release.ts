/**
 * --pool-idle-release: pool chunks that held no live block for a while go back to the device or the
 * host. The pools cache their chunks so that a steady load allocates from the backend only while it
 * grows (B6, B7); without this, whatever one burst took (a job that allocated 40 GiB once and ended)
 * stayed reserved in the daemon until memory pressure or shutdown, out of reach of every other
 * process on the GPU, and in the daemon's resident set on the host backend.
 */
import type { Logger } from 'pino';
import { formatBytes } from '../units';
import type { MemoryManager } from './memory-manager';

/** How often chunks are checked: half the idle time, at most every 5 s, at least every 50 ms. */
export function idleReleaseCheckMs(idleMs: number): number {
  return Math.min(Math.max(Math.floor(idleMs / 2), 50), 5000);
}

/** Starts the checks (an unref'd timer); returns the function that stops them. idleMs 0: nothing is started. */
export function startIdleChunkRelease(memory: Pick<MemoryManager, 'releaseIdleChunks'>, idleMs: number, log: Logger): () => void {
  if (idleMs <= 0) return () => {};
  const timer = setInterval(() => {
    try {
      const released = memory.releaseIdleChunks(idleMs);
      const pools = Object.keys(released);
      if (pools.length === 0) return;
      const text = pools.map((pool) => `${pool} ${formatBytes(released[pool])}`).join(', ');
      log.info({ event: 'idle_chunks_released', released, idleMs }, `gave back pool chunks unused for ${idleMs} ms: ${text}`);
    } catch (error) {
      log.error({ event: 'idle_release_failed', err: error }, `releasing idle pool chunks failed: ${(error as Error).message}`);
    }
  }, idleReleaseCheckMs(idleMs));
  timer.unref();
  return () => clearInterval(timer);
}
