/** MemoryWaitQueue: waiters that leave (deadline, cancel) let the next one in, and waits of any length. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OutOfMemoryError, TensormemError } from '../../src/errors';
import { MAX_TIMER_MS, setLongTimeout } from '../../src/long-timeout';
import { MemoryWaitQueue, TenantWaits, WaitHandle } from '../../src/memory/memory-wait-queue';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A device of `capacity` units: take(n) succeeds while n units are free, else refuses as the pool does. */
function device(capacity: number) {
  let used = 0;
  return {
    get used() {
      return used;
    },
    take: (units: number) => async () => {
      if (used + units > capacity) {
        throw new OutOfMemoryError({ memory: 'DEVICE', device: 0, requestedBytes: units, capName: 'pool cap (maxbytes)', capBytes: capacity, usedBytes: used, largestFreeBlockBytes: capacity - used });
      }
      used += units;
      return units;
    },
    give: (units: number) => {
      used -= units;
    },
  };
}

/** Whether `promise` has settled after the pending callbacks ran, and how. */
function observe<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** A promise settled from outside: `open` lets it resolve. */
function gate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Lets the pending promise callbacks and the queue's retries (setImmediate) run. */
const turns = async (count = 5) => {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** `units` go back to the device and the queue hears of it; then its retries run. */
async function freeAndSettle(queue: MemoryWaitQueue, dev: ReturnType<typeof device>, units: number) {
  dev.give(units);
  queue.notifyFreed();
  await turns();
}

describe('MemoryWaitQueue', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("counts a tenant's waiters in every device's queue against --max-tenant-waits, and each that leaves (served, deadline, cancel, refusal) out", async () => {
    const waits = new TenantWaits(2);
    const queues = [new MemoryWaitQueue(undefined, waits), new MemoryWaitQueue(undefined, waits)];
    const devices = [device(100), device(100)];
    await devices[0].take(100)();
    await devices[1].take(100)();
    let handle: WaitHandle | undefined;
    const first = observe(queues[0].run('a', devices[0].take(10), devices[0].give, 5_000, (h) => (handle = h)));
    const second = observe(queues[1].run('a', devices[1].take(10), devices[1].give, 5_000));
    const other = observe(queues[0].run('b', devices[0].take(10), devices[0].give, 5_000));
    await turns();
    expect([waits.of('a'), waits.of('b')]).toEqual([2, 1]);
    let refused: unknown;
    let tried = false;
    const attempt = async () => {
      tried = true;
      return 1;
    };
    try {
      await queues[1].run('a', attempt, () => undefined, 5_000);
    } catch (error) {
      refused = error;
    }
    expect(tried).toBe(false);
    expect(refused).toMatchObject({ kind: 'RESOURCE_EXHAUSTED', reason: 'TOO_MANY_WAITS', metadata: { tenant: 'a', waiting_allocations: '2', max_tenant_waits: '2' } });
    expect((refused as Error).message).toContain('--max-tenant-waits (2)');

    handle!.cancel();
    await turns();
    expect(first.settled).toBe(true);
    expect(waits.of('a')).toBe(1);
    const third = observe(queues[0].run('a', devices[0].take(10), devices[0].give, 50));
    await freeAndSettle(queues[1], devices[1], 10);
    expect(second.value).toBe(10);
    await freeAndSettle(queues[0], devices[0], 10);
    expect(other.value).toBe(10);
    expect(waits.of('a')).toBe(1);
    await sleep(100);
    expect((third.error as TensormemError).kind).toBe('DEADLINE_EXCEEDED');
    expect([waits.of('a'), waits.of('b')]).toEqual([0, 0]);
    // A first attempt that is refused for another reason gives its place back too.
    await expect(queues[0].run('a', async () => Promise.reject(new Error('no')), () => undefined, 50)).rejects.toThrow('no');
    expect(waits.of('a')).toBe(0);
  });

  it("serves a tenant's next waiter as soon as its head gives up at its deadline", async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(256);
    await dev.take(128)();
    const big = observe(queue.run('a', dev.take(200), dev.give, 100));
    await sleep(10);
    const started = Date.now();
    const small = observe(queue.run('a', dev.take(64), dev.give, 5_000));
    // The small one fits, but waits behind the same tenant's head; nothing is freed meanwhile.
    await sleep(30);
    expect(small.settled).toBe(false);
    await sleep(300);
    expect(big.settled).toBe(true);
    expect((big.error as TensormemError).kind).toBe('DEADLINE_EXCEEDED');
    expect(small.settled).toBe(true);
    expect(small.value).toBe(64);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(queue.size).toBe(0);
    expect(dev.used).toBe(192);
  });

  it('tells every attempt after the first that it is a retry, also for a waiter queued without a first attempt', async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(256);
    await dev.take(256)();
    const flags: Record<string, boolean[]> = { a: [], b: [] };
    const attempt = (tenant: string, units: number) => (retry: boolean) => {
      flags[tenant].push(retry);
      return dev.take(units)();
    };
    const a = observe(queue.run('a', attempt('a', 128), dev.give, 5_000));
    await sleep(10);
    const b = observe(queue.run('b', attempt('b', 128), dev.give, 5_000));
    await sleep(10);
    for (let i = 0; i < 3; i++) {
      queue.notifyFreed();
      await sleep(10);
    }
    dev.give(256);
    queue.notifyFreed();
    await sleep(10);
    expect([a.value, b.value]).toEqual([128, 128]);
    expect(flags.a[0]).toBe(false);
    expect(flags.a.slice(1)).toEqual(flags.a.slice(1).map(() => true));
    expect(flags.a.length).toBeGreaterThan(2);
    // b came while a waited: queued at once, its first attempt ran in the queue.
    expect(flags.b[0]).toBe(false);
    expect(flags.b.slice(1)).toEqual(flags.b.slice(1).map(() => true));
    expect(flags.b.length).toBeGreaterThan(2);
  });

  it("serves a tenant's next waiter as soon as its head is cancelled", async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(256);
    await dev.take(128)();
    let head: WaitHandle | undefined;
    const big = observe(queue.run('a', dev.take(200), dev.give, 10_000, (handle) => (head = handle)));
    await sleep(10);
    const small = observe(queue.run('a', dev.take(64), dev.give, 10_000));
    await sleep(30);
    expect(small.settled).toBe(false);
    head!.cancel();
    await sleep(30);
    expect((big.error as TensormemError).kind).toBe('CANCELLED');
    expect(small.value).toBe(64);
    expect(queue.size).toBe(0);
  });

  it("keeps each tenant's order and the tenants' turns when waiters leave from the middle, the end and the head of their lists", async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(100);
    await dev.take(100)();
    const served: string[] = [];
    const handles = new Map<string, WaitHandle>();
    const results = new Map<string, ReturnType<typeof observe>>();
    const request = (tenant: string, name: string) => {
      const attempt = async () => {
        const units = await dev.take(10)();
        served.push(name);
        return units;
      };
      results.set(name, observe(queue.run(tenant, attempt, dev.give, 60_000, (handle) => handles.set(name, handle))));
    };
    for (let i = 0; i < 6; i++) {
      request('a', `a${i}`);
      request('b', `b${i}`);
    }
    await turns();
    expect(queue.size).toBe(12);
    // Middle, end and head of a's list; the middle and end of b's; one cancelled twice.
    for (const name of ['a2', 'a5', 'a0', 'b3', 'b5', 'a2']) handles.get(name)!.cancel();
    await turns();
    expect(queue.size).toBe(7);
    for (const name of ['a0', 'a2', 'a5', 'b3', 'b5']) expect((results.get(name)!.error as TensormemError).kind).toBe('CANCELLED');
    // Room for one at a time: tenants in turn, each one's waiters first come first served.
    for (let i = 0; i < 7; i++) await freeAndSettle(queue, dev, 10);
    expect(served).toEqual(['a1', 'b0', 'a3', 'b1', 'a4', 'b2', 'b4']);
    expect(queue.size).toBe(0);
    // A waiter that left: cancelling it again changes nothing.
    handles.get('a1')!.cancel();
    handles.get('b3')!.cancel();
    expect(results.get('a1')!.value).toBe(10);
    expect(queue.size).toBe(0);
  });

  it("serves one tenant's requests issued in the same tick in the order they were issued, however their first tries come back", async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(256);
    await dev.take(256)();
    const served: string[] = [];
    const tries: string[] = [];
    const gates = { first: gate(), second: gate() };
    // Each request's first try is held until its gate opens (the pool answers on its own time); later tries answer at once.
    const attempt = (name: 'first' | 'second') => async (retry: boolean) => {
      tries.push(`${name}${retry ? ' retry' : ''}`);
      if (!retry) await gates[name].promise;
      const units = await dev.take(128)();
      served.push(name);
      return units;
    };
    const first = observe(queue.run('a', attempt('first'), dev.give, 10_000));
    // Nothing waits: the first request is tried in the same call, no turn later.
    expect(tries).toEqual(['first']);
    const second = observe(queue.run('a', attempt('second'), dev.give, 10_000));
    // The second one's refusal comes back first.
    gates.second.open();
    await turns();
    gates.first.open();
    await turns();
    expect(queue.size).toBe(2);
    // Room for one of them: the one issued first.
    await freeAndSettle(queue, dev, 128);
    // Without the fix: ['second'] (queued in the order the refusals came back).
    expect(served).toEqual(['first']);
    expect(first.value).toBe(128);
    expect(second.settled).toBe(false);
    await freeAndSettle(queue, dev, 128);
    expect(served).toEqual(['first', 'second']);
    expect(second.value).toBe(128);
    expect(queue.size).toBe(0);
  });

  it("does not try a tenant's later request while its earlier one's first try is still under way, and serves it next", async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(256);
    await dev.take(192)();
    const tries: string[] = [];
    const held = gate();
    const big = observe(
      queue.run(
        'a',
        async (retry) => {
          tries.push(`big${retry ? ' retry' : ''}`);
          if (!retry) await held.promise;
          return dev.take(128)();
        },
        dev.give,
        10_000,
      ),
    );
    const small = observe(
      queue.run(
        'a',
        (retry) => {
          tries.push(`small${retry ? ' retry' : ''}`);
          return dev.take(32)();
        },
        dev.give,
        10_000,
      ),
    );
    // Another tenant is not held up by tenant a's try under way: tried in the same call, and served.
    const other = observe(queue.run('b', dev.take(16), dev.give, 10_000));
    await turns();
    expect(other.value).toBe(16);
    // Without the fix the small one (it fits) was tried at once and served ahead of the big one issued before it.
    expect(tries).toEqual(['big']);
    expect(small.settled).toBe(false);
    held.open();
    await turns();
    // The big one was refused: it heads tenant a's list, the small one waits behind it.
    expect(big.settled).toBe(false);
    expect(small.settled).toBe(false);
    expect(queue.size).toBe(2);
    await freeAndSettle(queue, dev, 192);
    expect(big.value).toBe(128);
    expect(small.value).toBe(32);
    expect(queue.size).toBe(0);
  });

  it("tries a tenant's request queued behind its earlier one's first try as soon as that try is served or fails, with no free", async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(256);
    const quota = new TensormemError('RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', 'tenant "b" over its quota');
    for (const [tenant, outcome] of [
      ['a', 'served'],
      ['b', 'failed'],
    ] as const) {
      const held = gate();
      const head = observe(
        queue.run(
          tenant,
          async () => {
            await held.promise;
            if (outcome === 'failed') throw quota;
            return dev.take(64)();
          },
          dev.give,
          10_000,
        ),
      );
      const next = observe(queue.run(tenant, dev.take(64), dev.give, 10_000));
      await turns();
      expect(next.settled).toBe(false);
      held.open();
      await turns();
      if (outcome === 'served') expect(head.value).toBe(64);
      else expect(head.error).toBe(quota);
      expect(next.value).toBe(64);
      expect(queue.size).toBe(0);
    }
    expect(dev.used).toBe(192);
  });

  it('serves a request whose memory was freed after its first attempt was refused but before it was queued', async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(256);
    await dev.take(200)();
    let handle: WaitHandle | undefined;
    // The first attempt is refused at once; the refusal reaches run() only a few microtasks later.
    const waiting = observe(queue.run('a', dev.take(100), dev.give, 10_000, (h) => (handle = h)));
    // Another call frees in the same tick (FreeArray, a lease closing), when no waiter is queued yet.
    dev.give(200);
    queue.notifyFreed();
    await sleep(50);
    // Without the fix it waited for the next free, or its deadline (10 s) with nothing freed after.
    expect(waiting.settled).toBe(true);
    expect(waiting.value).toBe(100);
    expect(queue.size).toBe(0);
    handle?.cancel();
  });

  it("says the request's bytes, its device and the pool's figures at the deadline of a waiter never tried", async () => {
    const dev = device(256);
    const queue = new MemoryWaitQueue(() => ({ device: 1, capName: 'pool cap (maxbytes)', capBytes: 256, usedBytes: dev.used, largestFreeBlockBytes: 256 - dev.used }));
    await dev.take(192)();
    let head: WaitHandle | undefined;
    const big = observe(queue.run('a', dev.take(128), dev.give, 10_000, (handle) => (head = handle), 128));
    await sleep(10);
    // Behind its tenant's head, it is never tried before its deadline.
    const small = observe(queue.run('a', dev.take(96), dev.give, 50, undefined, 96));
    await sleep(100);
    const error = small.error as TensormemError;
    expect(error.kind).toBe('DEADLINE_EXCEEDED');
    expect(error.reason).toBe('DEVICE_OUT_OF_MEMORY');
    // Without the fix: "0 bytes (0 B) on device 0: queued behind earlier waiters 0 bytes (0 B), used 0 bytes (0 B)", metadata all 0.
    expect(error.message).toContain("Can't allocate [DEVICE] memory: 96 bytes (96 B) on device 1: pool cap (maxbytes) 256 bytes (256 B), used 192 bytes (192 B), largest free block 64 bytes (64 B)");
    expect(error.message).toContain('not tried: tenant "a" had earlier requests waiting ahead of it');
    expect(error.metadata).toMatchObject({ requested_bytes: '96', device: '1', cap_bytes: '256', used_bytes: '192' });
    head!.cancel();
    await sleep(10);
    expect(big.settled).toBe(true);
    expect(queue.size).toBe(0);
  });

  it('fails a waiter at once with the error of a retry refused for a reason waiting cannot cure, and serves the one behind it', async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(256);
    await dev.take(256)();
    const quota = new TensormemError('RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', 'tenant "a" quota lowered meanwhile');
    let tries = 0;
    const head = observe(
      queue.run(
        'a',
        async () => {
          // Refused for memory first; by the retry a reload has lowered the tenant's quota.
          if (tries++ > 0) throw quota;
          return dev.take(256)();
        },
        dev.give,
        10_000,
      ),
    );
    await sleep(10);
    const next = observe(queue.run('a', dev.take(64), dev.give, 10_000));
    await sleep(10);
    dev.give(128);
    queue.notifyFreed();
    await sleep(50);
    // Without it the head stayed queued until its deadline, then said DEADLINE_EXCEEDED with the old refusal, holding up its tenant.
    expect(head.error).toBe(quota);
    expect(next.value).toBe(64);
    expect(queue.size).toBe(0);
  });

  it('clears the deadline timer of a waiter that is served', async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(256);
    await dev.take(256)();
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const waiting = observe(queue.run('a', dev.take(128), dev.give, 3_600_000));
    for (let i = 0; i < 5; i++) await tick();
    expect(queue.size).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    dev.give(256);
    queue.notifyFreed();
    for (let i = 0; i < 5; i++) await tick();
    expect(waiting.value).toBe(128);
    // A timer left armed keeps the waiter (its request, its lease) alive for the whole wait.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects a cancelled waiter with the error given to cancel, once', async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(16);
    await dev.take(16)();
    let handle: WaitHandle | undefined;
    const waiting = observe(queue.run('a', dev.take(8), dev.give, 10_000, (h) => (handle = h)));
    await sleep(10);
    const closed = new TensormemError('UNAUTHENTICATED', 'LEASE_EXPIRED', 'lease lease-1 is closed');
    handle!.cancel(closed);
    handle!.cancel();
    await sleep(10);
    expect(waiting.error).toBe(closed);
    expect(queue.size).toBe(0);
  });

  it('keeps waiting when the wait is longer than setTimeout allows (2^31 - 1 ms)', async () => {
    const queue = new MemoryWaitQueue();
    const dev = device(16);
    await dev.take(16)();
    let handle: WaitHandle | undefined;
    const waiting = observe(queue.run('a', dev.take(8), dev.give, 600 * 3_600_000, (h) => (handle = h)));
    await sleep(100);
    expect(waiting.settled).toBe(false);
    expect(queue.size).toBe(1);
    dev.give(16);
    queue.notifyFreed();
    await sleep(30);
    expect(waiting.value).toBe(8);
    handle!.cancel();
    expect(queue.size).toBe(0);
  });

  it('lets no request wait after failAll: one that comes later, and one whose first try was under way, get its error', async () => {
    const dev = device(100);
    const waits = new TenantWaits(10);
    const queue = new MemoryWaitQueue(undefined, waits);
    await dev.take(100)();
    const draining = new TensormemError('UNAVAILABLE', 'SHUTTING_DOWN', 'tensormemd is shutting down');
    const held = gate();
    const underWay = observe(
      queue.run(
        'a',
        async () => {
          await held.promise;
          return dev.take(10)();
        },
        dev.give,
        60_000,
      ),
    );
    const waiting = observe(queue.run('b', dev.take(10), dev.give, 60_000));
    await turns();
    queue.failAll(draining);
    await turns();
    expect(waiting.error).toBe(draining);
    // The first try under way is refused after failAll: it does not start waiting.
    held.open();
    await turns();
    expect(underWay.error).toBe(draining);
    // A request that comes after failAll (a request_id retry that awaited a failed call) does not either.
    const late = observe(queue.run('c', dev.take(10), dev.give, 60_000));
    await turns();
    expect(late.error).toBe(draining);
    expect([queue.size, waits.of('a'), waits.of('b'), waits.of('c')]).toEqual([0, 0, 0, 0]);
  });

  it('refuses at once, without waiting or counting a wait, a request larger than the pool cap, which no free can make fit', async () => {
    const dev = device(1000);
    const waits = new TenantWaits(1);
    const queue = new MemoryWaitQueue(() => ({ device: 0, capName: 'pool cap (maxbytes)', capBytes: 1000, usedBytes: dev.used, largestFreeBlockBytes: 1000 - dev.used }), waits);
    // Another tenant's request waits already: the one that can never fit does not queue behind it either.
    await dev.take(600)();
    const waiting = observe(queue.run('b', dev.take(600), dev.give, 60_000, undefined, 600));
    const tooBig = observe(queue.run('a', dev.take(1500), dev.give, 60_000, undefined, 1500));
    await turns();
    expect(tooBig.settled).toBe(true);
    expect(tooBig.error).toBeInstanceOf(OutOfMemoryError);
    expect((tooBig.error as OutOfMemoryError).facts).toMatchObject({ requestedBytes: 1500, capBytes: 1000 });
    expect(queue.size).toBe(1);
    expect(waits.of('a')).toBe(0);
    // One that fits once memory is freed still waits, and is served.
    await freeAndSettle(queue, dev, 600);
    expect(waiting.value).toBe(600);
  });

  it('arms a long timeout in steps and fires it when the whole delay has passed', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let fired = 0;
    const timers: NodeJS.Timeout[] = [];
    setLongTimeout(() => fired++, 2 * MAX_TIMER_MS + 5_000, (timer) => timers.push(timer));
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(4_999);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
    expect(timers).toHaveLength(3);
  });

  it('clears a stepped timeout through the latest timer', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let fired = 0;
    let current: NodeJS.Timeout | undefined;
    setLongTimeout(() => fired++, MAX_TIMER_MS + 10, (timer) => (current = timer));
    vi.advanceTimersByTime(MAX_TIMER_MS);
    clearTimeout(current);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toBe(0);
  });
});
