/**
 * --max-tenant-waits: a tenant's AllocateArray calls waiting for device memory (wait_for_memory), over
 * all its leases and connections, are capped; one more is refused at once, RESOURCE_EXHAUSTED /
 * TOO_MANY_WAITS with the numbers, while other tenants still wait and a waiter that leaves gives its
 * place back. Without the cap each waiting call held about 10 KB of the daemon's heap (5,000 of one
 * tenant: 21 -> 71 MiB) that nothing else bounded.
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { TensormemClientError } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';

const MiB = 1024 * 1024;
const LIMIT = 3;

describe('--max-tenant-waits', () => {
  const setup = daemonForTests(['--maxbytes', '16M', '--pool-chunk', '4M', '--max-tenant-waits', String(LIMIT)]);

  it("refuses a tenant's waiting allocation past the cap, over all its leases, and counts waiters that leave out", async () => {
    const holder = await setup.client.openLease({ tenant: 'holder', ttlSeconds: 60 });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB] });
    const a1 = await setup.client.openLease({ tenant: 'a', ttlSeconds: 60 });
    const a2 = await setup.client.openLease({ tenant: 'a', ttlSeconds: 60 });
    const b = await setup.client.openLease({ tenant: 'b', ttlSeconds: 60 });
    /** Polled, not read after a fixed sleep: on a loaded machine the daemon may hear of a call later. */
    const waitingNow = () => expect.poll(async () => (await setup.client.memoryInfo()).devices[0].waiting_allocations, { timeout: 15_000 });
    const waitFor = (lease: typeof a1, deadlineMs = 20_000, signal?: AbortSignal) =>
      lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], waitForMemory: true, deadlineMs, signal }).catch((error: unknown) => error as TensormemClientError);
    try {
      const abort = new AbortController();
      const waiting = [waitFor(a1, 20_000, abort.signal), waitFor(a2), waitFor(a1)];
      await waitingNow().toBe(LIMIT);

      const refused = (await waitFor(a2)) as TensormemClientError;
      expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refused.reason).toBe('TOO_MANY_WAITS');
      expect(refused.message).toContain(`tenant "a" has ${LIMIT} AllocateArray calls waiting for device memory`);
      expect(refused.message).toContain(`--max-tenant-waits (${LIMIT})`);
      expect(refused.errorMetadata).toEqual({ tenant: 'a', waiting_allocations: String(LIMIT), max_tenant_waits: String(LIMIT) });

      // Another tenant still waits; a fail-fast allocation of "a" is refused for memory, not for the cap.
      const ofB = waitFor(b);
      const fast = (await a1.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] }).catch((error: unknown) => error)) as TensormemClientError;
      expect(fast.reason).toBe('DEVICE_OUT_OF_MEMORY');
      await waitingNow().toBe(LIMIT + 1);

      // A waiter that leaves (cancelled) gives its place back.
      abort.abort();
      expect(((await waiting[0]) as TensormemClientError).code).toBe(status.CANCELLED);
      // The client's abort rejects at once; the daemon hears of it a moment later.
      await waitingNow().toBe(LIMIT);
      const again = waitFor(a2);
      await waitingNow().toBe(LIMIT + 1);

      // Once memory is freed every waiter is served, and the cap counts nothing any more.
      await holder.free(held.array_id);
      for (const result of [waiting[1], waiting[2], ofB, again]) expect((await result as { byte_size: number }).byte_size).toBe(MiB);
      expect((await setup.client.memoryInfo()).devices[0].waiting_allocations).toBe(0);
    } finally {
      await Promise.all([holder.close(), a1.close(), a2.close(), b.close()]);
    }
  });
});
