/**
 * Tenants file reloads one at a time (TenantsReloadQueue): a SIGHUP while a reload reads the file queues
 * one more, which reads it again after that one applied; a burst of them makes one; applies run in order;
 * the drain (close) abandons the read in flight and the queued reload, unapplied. The reads here are
 * promises the test settles, so every interleaving is exact.
 */
import { describe, expect, it } from 'vitest';
import { TenantsReloadQueue } from '../../src/leases/tenants-reload-queue';

/** A queue whose reads wait for the test: each read is a pending entry, settled by hand. */
function harness(options: { applyThrows?: (read: string) => Error | undefined } = {}) {
  const reads: Array<{ resolve(value: string): void; reject(error: Error): void; signal: AbortSignal }> = [];
  const applied: string[] = [];
  const refused: string[] = [];
  const queue = new TenantsReloadQueue<string>({
    read: (signal) =>
      new Promise<string>((resolve, reject) => {
        reads.push({ resolve, reject, signal });
        signal.addEventListener('abort', () => reject(new Error('abandoned')));
      }),
    apply: (read) => {
      const error = options.applyThrows?.(read);
      if (error) throw error;
      applied.push(read);
    },
    refused: (error) => refused.push(error.message),
  });
  return { queue, reads, applied, refused };
}

/** Lets the promise continuations run (a read settled applies a turn later). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('TenantsReloadQueue', () => {
  it('reads and applies one reload, and says it took the file', async () => {
    const { queue, reads, applied } = harness();
    const took = queue.request();
    expect(reads).toHaveLength(1);
    expect(queue.busy).toBe(true);
    reads[0].resolve('A');
    expect(await took).toBe(true);
    expect(applied).toEqual(['A']);
    expect(queue.busy).toBe(false);
  });

  it('queues one more reload while one reads, shared by every request meanwhile, and reads the file again after the first applied', async () => {
    const { queue, reads, applied } = harness();
    const first = queue.request();
    const second = queue.request();
    const third = queue.request();
    // The queued reload has not read yet: the file it reads is the one there after the first applied.
    expect(reads).toHaveLength(1);
    expect(third).toBe(second);
    reads[0].resolve('A');
    expect(await first).toBe(true);
    await settle();
    expect(applied).toEqual(['A']);
    expect(reads).toHaveLength(2);
    reads[1].resolve('B');
    expect(await second).toBe(true);
    expect(applied).toEqual(['A', 'B']);
    // Nothing more was queued: two reads for three requests.
    await settle();
    expect(reads).toHaveLength(2);
    expect(queue.busy).toBe(false);
  });

  it('a refused file changes nothing, and the reload queued behind it still runs', async () => {
    const { queue, reads, applied, refused } = harness();
    const first = queue.request();
    const second = queue.request();
    reads[0].reject(new Error('tenants.yaml:4: expected a size for quota.device of tenant "a" but received "8Q"'));
    expect(await first).toBe(false);
    expect(refused).toEqual(['tenants.yaml:4: expected a size for quota.device of tenant "a" but received "8Q"']);
    expect(applied).toEqual([]);
    await settle();
    reads[1].resolve('fixed');
    expect(await second).toBe(true);
    expect(applied).toEqual(['fixed']);
  });

  it('an apply that refuses (guarantees above maxbytes) is refused like a bad file', async () => {
    const { queue, reads, applied, refused } = harness({ applyThrows: (read) => (read === 'too big' ? new Error('--tenants: 3 GiB of guarantees') : undefined) });
    const took = queue.request();
    reads[0].resolve('too big');
    expect(await took).toBe(false);
    expect(applied).toEqual([]);
    expect(refused).toEqual(['--tenants: 3 GiB of guarantees']);
  });

  it('close() abandons the read in flight and the queued reload: neither applies nor is refused, and no request reads after it', async () => {
    const { queue, reads, applied, refused } = harness();
    const first = queue.request();
    const second = queue.request();
    queue.close();
    expect(reads[0].signal.aborted).toBe(true);
    expect(await first).toBe(false);
    expect(await second).toBe(false);
    expect(await queue.request()).toBe(false);
    expect(reads).toHaveLength(1);
    expect(applied).toEqual([]);
    expect(refused).toEqual([]);
    expect(queue.closed).toBe(true);
  });

  it('a read that finishes after close() is not applied', async () => {
    const reads: Array<(value: string) => void> = [];
    const applied: string[] = [];
    // A read that ignores the signal (past the point where it could be abandoned).
    const queue = new TenantsReloadQueue<string>({ read: () => new Promise((resolve) => reads.push(resolve)), apply: (read) => applied.push(read), refused: () => {} });
    const took = queue.request();
    queue.close();
    reads[0]('late');
    expect(await took).toBe(false);
    expect(applied).toEqual([]);
  });
});
