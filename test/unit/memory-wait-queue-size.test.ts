/**
 * MemoryWaitQueue.size (the waiters waiting now, a first attempt under way not counted), which every
 * wait_for_memory request asks: it is kept as waiters join, start waiting and leave, not counted over
 * every waiting tenant's list each time (O(tenants waiting) a request; 10,000 tenants' first waits
 * took 1.8 s). It must stay what the lists say through serves, refusals, deadlines, cancels and failAll.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OutOfMemoryError, TensormemError } from '../../src/errors';
import { MemoryWaitQueue, WaitHandle } from '../../src/memory/memory-wait-queue';
import { rng } from '../helpers/rng';

const turns = async (count = 5) => {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
};

function refusal(units: number): OutOfMemoryError {
  return new OutOfMemoryError({ memory: 'DEVICE', device: 0, requestedBytes: units, capName: 'pool cap (maxbytes)', capBytes: 0, usedBytes: 0, largestFreeBlockBytes: 0 });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('MemoryWaitQueue.size', () => {
  it("is answered without walking the waiting tenants' lists", async () => {
    const queue = new MemoryWaitQueue();
    const handles: WaitHandle[] = [];
    for (let i = 0; i < 200; i++) {
      queue.run(`t${i}`, () => Promise.reject(refusal(1)), () => undefined, 60_000, (handle) => handles.push(handle)).catch(() => undefined);
    }
    await turns();
    const walks = vi.spyOn(Map.prototype, 'values');
    expect(queue.size).toBe(200);
    // A walk over the tenants' lists: one Map.values() a read.
    expect(walks).not.toHaveBeenCalled();
    walks.mockRestore();
    for (const handle of handles) handle.cancel();
    expect(queue.size).toBe(0);
  });

  it('counts what the lists hold through first attempts, serves, refusals, deadlines, cancels and failAll', async () => {
    const random = rng(3);
    const queue = new MemoryWaitQueue();
    let free = 0;
    /** Requests not settled yet, whether their first attempt is still under way, and their handles once waiting. */
    const open = new Set<{ firstAttemptUnderWay: boolean; handle?: WaitHandle }>();
    /** First attempts held until released (a first attempt under way is not waiting). */
    const held: Array<() => void> = [];
    for (let step = 0; step < 400; step++) {
      const choice = random();
      if (choice < 0.45) {
        const request: { firstAttemptUnderWay: boolean; handle?: WaitHandle } = { firstAttemptUnderWay: false };
        // run() makes a request's first attempt before it returns when nothing waits ahead of it: that one may be held.
        let inRun = true;
        const attempt = (): Promise<number> => {
          if (inRun && random() < 0.3) {
            request.firstAttemptUnderWay = true;
            return new Promise<number>((resolve, reject) =>
              held.push(() => {
                request.firstAttemptUnderWay = false;
                if (free > 0) {
                  free--;
                  resolve(1);
                } else reject(random() < 0.2 ? new TensormemError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'refused for good') : refusal(1));
              }),
            );
          }
          if (free > 0) {
            free--;
            return Promise.resolve(1);
          }
          return Promise.reject(refusal(1));
        };
        open.add(request);
        queue
          .run(`t${Math.floor(random() * 6)}`, attempt, () => undefined, random() < 0.1 ? 1 : 60_000, (handle) => (request.handle = handle))
          .catch(() => undefined)
          .finally(() => open.delete(request));
        inRun = false;
      } else if (choice < 0.6 && held.length > 0) {
        held.splice(Math.floor(random() * held.length), 1)[0]();
      } else if (choice < 0.8) {
        free += 1 + Math.floor(random() * 3);
        queue.notifyFreed();
      } else {
        const waiting = [...open].filter((request) => request.handle !== undefined);
        if (waiting.length > 0) waiting[Math.floor(random() * waiting.length)].handle!.cancel();
      }
      await turns(random() < 0.5 ? 1 : 3);
      expect(queue.size).toBe([...open].filter((request) => !request.firstAttemptUnderWay).length);
    }
    queue.failAll(new TensormemError('UNAVAILABLE', 'SHUTTING_DOWN', 'draining'));
    await turns();
    expect(queue.size).toBe(0);
    for (const release of held.splice(0)) release();
    await turns();
    expect(queue.size).toBe(0);
    expect(open.size).toBe(0);
  });
});
