/** AllocateArray with wait_for_memory: waits for frees up to the deadline, fair across tenants, cancellable without a trace. */
import { getEventListeners } from 'node:events';
import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ArrayInfo, TensormemClientError } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('backpressure', () => {
  const running = daemonForTests(['--maxbytes', '16M', '--pool-chunk', '4M']);

  const used = async () => (await running.client.memoryInfo()).devices[0].used_bytes;

  it('fails fast by default, and a waiting request is served when memory is freed', async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [12 * MiB] });
    const waiter = await running.client.openLease({ tenant: 'waiter' });
    const fast = (await waiter.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB] }).catch((e: unknown) => e)) as TensormemClientError;
    expect(fast.code).toBe(status.RESOURCE_EXHAUSTED);
    const started = Date.now();
    const pending = waiter.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 10_000 });
    await sleep(300);
    expect(await used()).toBe(12 * MiB);
    await holder.free(held.array_id);
    const array = await pending;
    expect(array.byte_size).toBe(8 * MiB);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(await used()).toBe(8 * MiB);
    await waiter.close();
    await holder.close();
  });

  it("counts a waiting request's refusal once in failed_allocations_total, however often it is retried", async () => {
    const failedBefore = (await running.client.memoryInfo()).devices[0].failed_allocations_total;
    const holder = await running.client.openLease({ tenant: 'holder' });
    const held: ArrayInfo[] = [];
    for (let i = 0; i < 16; i++) held.push(await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] }));
    const waiter = await running.client.openLease({ tenant: 'waiter' });
    try {
      const pending = waiter.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 10_000 });
      pending.catch(() => undefined); // awaited below; the lease's close ends it when a check fails first
      await sleep(200);
      // Eight frees, each a retry that does not fit yet, then the ninth makes room.
      for (const array of held.slice(0, 8)) {
        await holder.free(array.array_id);
        await sleep(20);
      }
      expect((await running.client.memoryInfo()).devices[0].failed_allocations_total).toBe(failedBefore + 1);
      await holder.free(held[8].array_id);
      expect((await pending).byte_size).toBe(8 * MiB);
      expect((await running.client.memoryInfo()).devices[0].failed_allocations_total).toBe(failedBefore + 1);
      // A request that gives up at its deadline after retries is one failed request too.
      const late = waiter.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 1000 }).catch((e: unknown) => e);
      await sleep(100);
      for (const array of held.slice(9, 12)) {
        await holder.free(array.array_id);
        await sleep(20);
      }
      expect(((await late) as TensormemClientError).code).toBe(status.DEADLINE_EXCEEDED);
      expect((await running.client.memoryInfo()).devices[0].failed_allocations_total).toBe(failedBefore + 2);
    } finally {
      await waiter.close();
      await holder.close();
    }
  });

  it('gives up at the deadline with DEADLINE_EXCEEDED and the out-of-memory numbers', async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [12 * MiB] });
    const lease = await running.client.openLease();
    const error = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 700 }).catch((e: unknown) => e)) as TensormemClientError;
    expect(error.code).toBe(status.DEADLINE_EXCEEDED);
    expect(await used()).toBe(12 * MiB);
    expect(await lease.list()).toEqual([]);
    await lease.close();
    await holder.free(held.array_id);
    await holder.close();
  });

  it('refuses at once, without waiting, a request larger than --maxbytes, which no free can make fit', async () => {
    const lease = await running.client.openLease();
    const started = Date.now();
    const error = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [20 * MiB], waitForMemory: true, deadlineMs: 10_000 }).catch((e: unknown) => e)) as TensormemClientError;
    expect([error.code, error.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'DEVICE_OUT_OF_MEMORY']);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await used()).toBe(0);
    expect(await lease.list()).toEqual([]);
    await lease.close();
  });

  it('leaves no trace of a waiting call that is cancelled', async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB] });
    const lease = await running.client.openLease({ tenant: 'impatient' });
    const md = new Metadata();
    md.set('authorization', `Bearer ${lease.token}`);
    const call = running.client.arrays.AllocateArray(
      { lease_id: lease.leaseId, data_type: 'DATA_TYPE_UINT8', shape: [4 * MiB], placement: 'PLACEMENT_DEVICE', wait_for_memory: true },
      md,
      { deadline: Date.now() + 10_000 },
      () => {},
    );
    await sleep(300);
    call.cancel();
    await sleep(100);
    await holder.free(held.array_id);
    await sleep(300);
    expect(await used()).toBe(0);
    expect(await lease.list()).toEqual([]);
    await lease.close();
    await holder.close();
  });

  it("gives a waiting allocate up when its AbortSignal aborts: CANCELLED at once, out of the daemon's queue, no trace", async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB] });
    const lease = await running.client.openLease({ tenant: 'aborting' });
    const controller = new AbortController();
    const pending = lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], waitForMemory: true, deadlineMs: 10_000, signal: controller.signal }).catch((e: unknown) => e);
    await sleep(300);
    expect((await running.client.memoryInfo()).devices[0].waiting_allocations).toBe(1);
    const started = Date.now();
    controller.abort(new Error('epoch stopped'));
    const error = (await pending) as TensormemClientError;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(TensormemClientError);
    expect(error.code).toBe(status.CANCELLED);
    expect(error.details).toBe('allocate was aborted by its signal (epoch stopped)');
    await sleep(200);
    expect((await running.client.memoryInfo()).devices[0].waiting_allocations).toBe(0);
    // Freed memory goes to nobody: the aborted call is gone from the queue.
    await holder.free(held.array_id);
    await sleep(200);
    expect(await used()).toBe(0);
    expect(await lease.list()).toEqual([]);
    // An aborted signal sends nothing; a signal that is no AbortSignal is refused naming it.
    const already = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], signal: AbortSignal.abort() }).catch((e: unknown) => e)) as TensormemClientError;
    expect(already.code).toBe(status.CANCELLED);
    const wrong = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], signal: { aborted: false } as unknown as AbortSignal }).catch((e: unknown) => e)) as TensormemClientError;
    expect(wrong.code).toBe(status.INVALID_ARGUMENT);
    expect(wrong.details).toBe('Expected an AbortSignal for allocate option signal but received {aborted: false}');
    expect(await lease.list()).toEqual([]);
    // A signal that never aborts changes nothing, and its listener goes with the call.
    const kept = new AbortController();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], signal: kept.signal });
    expect(array.byte_size).toBe(MiB);
    expect(getEventListeners(kept.signal, 'abort')).toHaveLength(0);
    kept.abort();
    expect((await lease.list()).map((a) => a.array_id)).toEqual([array.array_id]);
    expect(await used()).toBe(MiB);
    await lease.close();
    await holder.close();
    expect(await used()).toBe(0);
  });

  it('takes one AbortSignal for many allocates in flight: no MaxListenersExceededWarning, each call settles once, an abort gives up those still waiting', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      const lease = await running.client.openLease({ tenant: 'shared-signal' });
      const stop = new AbortController();
      // A trainer's one stop signal, passed to every allocate of a step.
      const arrays = await Promise.all(Array.from({ length: 50 }, () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], signal: stop.signal })));
      expect(new Set(arrays.map((array) => array.array_id)).size).toBe(50);
      // The one listener goes with the last call that waited on it.
      expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
      await lease.close();
      const holder = await running.client.openLease({ tenant: 'holder' });
      const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB] });
      const waiter = await running.client.openLease({ tenant: 'shared-signal' });
      const settled: unknown[] = [];
      const pending = Array.from({ length: 20 }, () =>
        waiter.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], waitForMemory: true, deadlineMs: 10_000, signal: stop.signal }).then(
          (array) => settled.push(array),
          (error: unknown) => settled.push(error),
        ),
      );
      await sleep(300);
      expect((await running.client.memoryInfo()).devices[0].waiting_allocations).toBe(20);
      expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
      stop.abort(new Error('trainer stopped'));
      await Promise.all(pending);
      expect(settled).toHaveLength(20);
      for (const error of settled) expect(error).toMatchObject({ code: status.CANCELLED, details: 'allocate was aborted by its signal (trainer stopped)' });
      await sleep(200);
      expect((await running.client.memoryInfo()).devices[0].waiting_allocations).toBe(0);
      await holder.free(held.array_id);
      await sleep(200);
      expect(await used()).toBe(0);
      await waiter.close();
      await holder.close();
      await sleep(50); // process warnings are emitted on the next tick
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it("serves a tenant's next waiting request as soon as the one ahead of it gives up at its deadline", async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB] });
    const first = await running.client.openLease({ tenant: 'queued' });
    const second = await running.client.openLease({ tenant: 'queued' });
    // 8 + 12 > 16: waits; the 4 MiB request fits but queues behind it (same tenant, first come first served).
    const big = first.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [12 * MiB], waitForMemory: true, deadlineMs: 700 }).catch((e: unknown) => e);
    await sleep(100);
    const started = Date.now();
    const small = await second.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], waitForMemory: true, deadlineMs: 10_000 });
    expect(small.byte_size).toBe(4 * MiB);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(((await big) as TensormemClientError).code).toBe(status.DEADLINE_EXCEEDED);
    expect(await used()).toBe(12 * MiB);
    await second.close();
    await first.close();
    await holder.free(held.array_id);
    await holder.close();
    expect(await used()).toBe(0);
  });

  it('fails a waiting request at once when its lease is closed, evicted or expires, and serves the same tenant next', async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB] });
    const next = await running.client.openLease({ tenant: 'closing' });
    for (const end of ['close', 'evict', 'expiry'] as const) {
      const doomed = await running.client.openLease({ tenant: 'closing', ttlSeconds: end === 'expiry' ? 1 : 0 });
      const started = Date.now();
      const waiting = doomed.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [12 * MiB], waitForMemory: true, deadlineMs: 15_000 }).catch((e: unknown) => e);
      await sleep(200);
      if (end === 'close') await doomed.close();
      if (end === 'evict') await running.client.evictLease(doomed.leaseId);
      const error = (await waiting) as TensormemClientError;
      expect(error).toBeInstanceOf(TensormemClientError);
      // LEASE_EXPIRED always comes with UNAUTHENTICATED, the code the expired lease's token gets from then on.
      expect(error.code).toBe(status.UNAUTHENTICATED);
      expect(error.reason).toBe('LEASE_EXPIRED');
      expect(error.details).toContain(doomed.leaseId);
      expect(Date.now() - started).toBeLessThan(end === 'expiry' ? 5_000 : 2_000);
      // The token then gets the same answer, saying why the lease ended (not "unknown lease token").
      const why = { close: ['closed', 'was closed by CloseLease'], evict: ['evicted', 'was evicted by an admin'], expiry: ['expired', 'has expired'] }[end];
      const after = (await doomed.list().then(() => undefined, (e: unknown) => e)) as TensormemClientError;
      expect([after.code, after.reason, after.errorMetadata.close_reason, after.errorMetadata.lease_id]).toEqual([status.UNAUTHENTICATED, 'LEASE_EXPIRED', why[0], doomed.leaseId]);
      expect(after.details).toBe(`lease ${doomed.leaseId} ${why[1]}: open a new lease`);
      if (end !== 'expiry') expect(error.details).toContain(why[1]);
      // The closed lease's request has left the queue: the tenant's next one, which fits, is served at once.
      const queuedAt = Date.now();
      const array = await next.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], waitForMemory: true, deadlineMs: 10_000 });
      expect(Date.now() - queuedAt).toBeLessThan(2_000);
      await next.free(array.array_id);
    }
    expect(await used()).toBe(8 * MiB);
    await next.close();
    await holder.free(held.array_id);
    await holder.close();
    expect(await used()).toBe(0);
  });

  it('serves waiting tenants in turn rather than one tenant first', async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const blocks: ArrayInfo[] = [];
    for (let i = 0; i < 4; i++) blocks.push(await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] }));
    const x = await running.client.openLease({ tenant: 'x' });
    const y = await running.client.openLease({ tenant: 'y' });
    const served: string[] = [];
    const ask = (lease: typeof x, name: string) =>
      lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], waitForMemory: true, deadlineMs: 15_000 }).then((a) => {
        served.push(name);
        return a;
      });
    const x1 = ask(x, 'x1');
    await sleep(50);
    const x2 = ask(x, 'x2');
    await sleep(50);
    const x3 = ask(x, 'x3');
    await sleep(50);
    const y1 = ask(y, 'y1');
    await sleep(200);
    for (let i = 0; i < 3; i++) {
      await holder.free(blocks[i].array_id);
      await sleep(200);
    }
    await Promise.all([x1, y1, x2]);
    expect(served).toEqual(['x1', 'y1', 'x2']);
    await holder.free(blocks[3].array_id);
    await x3;
    expect(served).toEqual(['x1', 'y1', 'x2', 'x3']);
    await x.close();
    await y.close();
    await holder.close();
    expect(await used()).toBe(0);
  });
});

describe('backpressure with a --max-wait beyond 2^31 - 1 ms', () => {
  const running = daemonForTests(['--maxbytes', '16M', '--pool-chunk', '4M', '--max-wait', '600h']);

  it('keeps waiting until memory is freed instead of timing out at once', async () => {
    const holder = await running.client.openLease({ tenant: 'holder' });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB] });
    const x = await running.client.openLease({ tenant: 'x' });
    const y = await running.client.openLease({ tenant: 'y' });
    const settled: string[] = [];
    // No call deadline: each waits up to --max-wait, 600 h (2.16e9 ms, past what one setTimeout can arm).
    const first = x.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], waitForMemory: true }).finally(() => settled.push('x'));
    const second = y.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], waitForMemory: true }).finally(() => settled.push('y'));
    first.catch(() => {});
    second.catch(() => {});
    await sleep(500);
    expect(settled).toEqual([]);
    await holder.free(held.array_id);
    expect((await first).byte_size).toBe(4 * MiB);
    expect((await second).byte_size).toBe(4 * MiB);
    await x.close();
    await y.close();
    await holder.close();
    expect((await running.client.memoryInfo()).devices[0].used_bytes).toBe(0);
  });
});

describe('backpressure under a --maxbytes that is no multiple of the pool alignment', () => {
  // 10,000,001 bytes: the pool takes requests in 256-byte units, so 10,000,001 bytes take 10,000,128
  // and can never fit, though they are not larger than the cap itself; they waited out their deadline.
  const running = daemonForTests(['--maxbytes', '10000001', '--pool-chunk', '1M']);

  it('refuses at once a request whose 256-byte-aligned size passes the cap, and serves one that fits', async () => {
    const lease = await running.client.openLease();
    for (const bytes of [10_000_001, 9_999_873]) {
      const started = Date.now();
      const error = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], waitForMemory: true, deadlineMs: 10_000 }).catch((e: unknown) => e)) as TensormemClientError;
      expect([error.code, error.reason], error.message).toEqual([status.RESOURCE_EXHAUSTED, 'DEVICE_OUT_OF_MEMORY']);
      expect(error.message).toContain('10000001');
      expect(Date.now() - started).toBeLessThan(5000);
    }
    const fits = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [9_999_872], waitForMemory: true, deadlineMs: 10_000 });
    expect(Number(fits.byte_size)).toBe(9_999_872);
    expect((await running.client.memoryInfo()).devices[0].used_bytes).toBe(9_999_872);
    await lease.close();
    expect((await running.client.memoryInfo()).devices[0].used_bytes).toBe(0);
  });
});
