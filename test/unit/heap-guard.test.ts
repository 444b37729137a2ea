/** HeapGuard: refuses new objects while the daemon's live heap leaves less than the reserve, confirming with a full GC at most once an interval. */
import { describe, expect, it } from 'vitest';
import { HeapLimitError } from '../../src/errors';
import { HeapGuard, defaultHeapReserve } from '../../src/memory/heap-guard';
import { thrownBy } from '../helpers/thrown';

const MiB = 1024 * 1024;

/** A guard over a fake heap: `used` is what a reading sees, `liveAfterGc` what a full collection leaves. */
function fakeHeap(options: { limit: number; reserve: number; sampleEvery?: number }) {
  const heap = { used: 0, liveAfterGc: 0, collections: 0, now: 0 };
  const guard = new HeapGuard({
    limitBytes: options.limit,
    reserveBytes: options.reserve,
    readUsedBytes: () => heap.used,
    collect: () => {
      heap.collections++;
      heap.used = heap.liveAfterGc;
    },
    now: () => heap.now,
    sampleEvery: options.sampleEvery ?? 1,
    collectIntervalMs: 1000,
  });
  return { heap, guard };
}

describe('HeapGuard', () => {
  it('passes under the line without collecting; over it, a collection that frees enough lets the call through', () => {
    const { heap, guard } = fakeHeap({ limit: 100 * MiB, reserve: 20 * MiB });
    heap.used = 80 * MiB;
    guard.check();
    expect(heap.collections).toBe(0);
    heap.used = 90 * MiB;
    heap.liveAfterGc = 50 * MiB;
    guard.check();
    expect(heap.collections).toBe(1);
  });

  it('refuses with the numbers while the live heap stays over the line, without collecting again within the interval', () => {
    const { heap, guard } = fakeHeap({ limit: 100 * MiB, reserve: 20 * MiB });
    heap.used = 95 * MiB;
    heap.liveAfterGc = 85 * MiB;
    const error = thrownBy(() => guard.check(), HeapLimitError);
    expect(error.kind).toBe('RESOURCE_EXHAUSTED');
    expect(error.reason).toBe('HEAP_LIMIT');
    expect(error.message).toContain("The daemon's heap is nearly full: 89128960 bytes (85.00 MiB) live of its 104857600 bytes (100.00 MiB) limit (new arrays, leases and workspaces are refused above 83886080 bytes (80.00 MiB)).");
    expect(error.metadata).toEqual({ heap_live_bytes: String(85 * MiB), heap_limit_bytes: String(100 * MiB), heap_threshold_bytes: String(80 * MiB) });
    // Freed meanwhile, but within the interval the last collection's figure stands: refused, no new collection.
    heap.liveAfterGc = 10 * MiB;
    heap.now = 999;
    expect(() => guard.check()).toThrow(HeapLimitError);
    expect(heap.collections).toBe(1);
    // Once the interval is over, the next check collects again and sees the room.
    heap.now = 1000;
    guard.check();
    expect(heap.collections).toBe(2);
  });

  it('takes what is released within the interval off the estimate: the room a closed lease leaves is there before V8 collects its garbage', () => {
    const { heap, guard } = fakeHeap({ limit: 100 * MiB, reserve: 20 * MiB });
    heap.used = 95 * MiB;
    heap.liveAfterGc = 85 * MiB;
    expect(() => guard.check(1 * MiB)).toThrow(HeapLimitError);
    // A lease keeping 10 MiB of objects closes; V8 has not collected them (a reading still sees them).
    guard.release(10 * MiB);
    heap.now = 100;
    // 85 - 10 = 75 live: five calls of 1 MiB fit under the 80 MiB line, the sixth does not.
    for (let i = 0; i < 5; i++) guard.check(1 * MiB);
    expect(() => guard.check(1 * MiB)).toThrow(HeapLimitError);
    expect(heap.collections).toBe(1);
    // What a call let through and is released again makes no room beyond what it took.
    guard.release(1 * MiB);
    guard.check(1 * MiB);
    expect(() => guard.check(1 * MiB)).toThrow(HeapLimitError);
  });

  it('collects at most once an interval while garbage alone keeps the heap over the line', () => {
    const { heap, guard } = fakeHeap({ limit: 100 * MiB, reserve: 20 * MiB });
    heap.liveAfterGc = 60 * MiB;
    for (let i = 0; i < 10; i++) {
      heap.used = 95 * MiB; // garbage made since
      guard.check();
      heap.now += 100;
    }
    expect(heap.collections).toBe(1);
  });

  it('reads the heap every sampleEvery checks; a reserve of 0 never refuses', () => {
    const { heap, guard } = fakeHeap({ limit: 100 * MiB, reserve: 20 * MiB, sampleEvery: 16 });
    heap.used = 99 * MiB;
    heap.liveAfterGc = 99 * MiB;
    expect(() => guard.check()).toThrow(HeapLimitError); // the first check reads
    const off = fakeHeap({ limit: 100 * MiB, reserve: 0 });
    off.heap.used = 100 * MiB;
    off.heap.liveAfterGc = 100 * MiB;
    off.guard.check();
    expect(off.heap.collections).toBe(0);
  });

  it('between collections, counts what the calls let through keep: a collection that found room is no free pass for the interval', () => {
    const { heap, guard } = fakeHeap({ limit: 100 * MiB, reserve: 20 * MiB });
    heap.used = 90 * MiB; // over the line: the first check collects
    heap.liveAfterGc = 70 * MiB;
    guard.check(1 * MiB);
    heap.used += 1 * MiB; // what the call made
    expect(heap.collections).toBe(1);
    // 70 live + 1 admitted: 9 more calls of 1 MiB fit under the 80 MiB line, the tenth does not.
    for (let i = 0; i < 9; i++) {
      guard.check(1 * MiB);
      heap.used += 1 * MiB;
    }
    const error = thrownBy(() => guard.check(1 * MiB), HeapLimitError);
    expect(error.metadata.heap_live_bytes).toBe(String(80 * MiB));
    // 80 MiB live is at the 80 MiB line, not above it: the call's own 1 MiB is what passes it, and the refusal says so.
    expect(error.message).toContain(
      "The daemon's heap is nearly full: 83886080 bytes (80.00 MiB) live of its 104857600 bytes (100.00 MiB) limit, and this call would keep about 1048576 bytes (1.00 MiB) more " +
        '(new arrays, leases and workspaces are refused above 83886080 bytes (80.00 MiB)).',
    );
    expect(error.metadata.heap_cost_bytes).toBe(String(1 * MiB));
    expect(heap.collections).toBe(1);
    // Once the interval is over, a collection counts again from what is live then.
    heap.now = 1000;
    heap.used = 95 * MiB;
    heap.liveAfterGc = 72 * MiB;
    guard.check(1 * MiB);
    expect(heap.collections).toBe(2);
  });

  it('waits 20 times as long as its last collection took before the next (at most 5 % of the time paused), but sees room a reading shows meanwhile', () => {
    const heap = { used: 95 * MiB, liveAfterGc: 85 * MiB, collections: 0, now: 0 };
    const guard = new HeapGuard({
      limitBytes: 100 * MiB,
      reserveBytes: 20 * MiB,
      readUsedBytes: () => heap.used,
      collect: () => {
        heap.collections++;
        heap.now += 400; // a 400 ms pause (a heap of about 350 MiB)
        heap.used = heap.liveAfterGc;
      },
      now: () => heap.now,
      sampleEvery: 1,
      collectIntervalMs: 1000,
    });
    expect(() => guard.check(512)).toThrow(HeapLimitError);
    heap.now += 7_900; // 8 s after the collection, past collectIntervalMs but within 20 × 400 ms
    expect(() => guard.check(512)).toThrow(HeapLimitError);
    expect(heap.collections).toBe(1);
    heap.now += 200;
    heap.used = 95 * MiB;
    expect(() => guard.check(512)).toThrow(HeapLimitError);
    expect(heap.collections).toBe(2);
    // An evicted lease's objects collected by V8 itself: the reading is under the line, so there is room at once.
    heap.now += 100;
    heap.used = 50 * MiB;
    guard.check(512);
    expect(heap.collections).toBe(2);
    // And the estimate goes on from that reading: 30 MiB more fit, then no more until the next reading or collection.
    guard.check(29 * MiB);
    heap.used += 29 * MiB;
    expect(() => guard.check(2 * MiB)).toThrow(HeapLimitError);
  });

  it('keeps by default what leaves the line at 75 % of the old generation (the limit less the 48 MiB young generation), at least 64 MiB, leaving at least 32 MiB (or half the limit) under the line', () => {
    expect(defaultHeapReserve(4144 * MiB)).toBe(1072 * MiB); // node's default on this 24 GB machine: the line at 3072 of 4096 MiB
    expect(defaultHeapReserve(176 * MiB)).toBe(80 * MiB); // --max-old-space-size=128
    expect(defaultHeapReserve(144 * MiB)).toBe(72 * MiB); // 96
    expect(defaultHeapReserve(112 * MiB)).toBe(64 * MiB); // 64
    expect(defaultHeapReserve(80 * MiB)).toBe(48 * MiB); // 32: at least 32 MiB under the line
    expect(defaultHeapReserve(64 * MiB)).toBe(32 * MiB); // 16: a daemon under a very small heap still starts
  });

  it('runs a real full collection when V8 is asked (no --expose-gc needed)', () => {
    const guard = new HeapGuard({ reserveBytes: Number.MAX_SAFE_INTEGER });
    // A reserve above the limit: every reading is over the line, so the first check collects and refuses.
    expect(() => guard.check()).toThrow(HeapLimitError);
  });
  it("refuses a tenant over its fair share at FAIR_SHARE_LINE of the line, the others only at the line; asks about shares only past that line", () => {
    const { heap, guard } = fakeHeap({ limit: 100 * MiB, reserve: 20 * MiB });
    expect(guard.fairShareLineBytes).toBe(64 * MiB);
    let asked = 0;
    guard.fairShareOf = (tenant) => (asked++, tenant === 'a' ? { tenant: 'a', heldBytes: 30 * MiB, totalBytes: 31 * MiB, tenants: 2 } : undefined);
    const leaker = 'a';
    const light = 'b';
    heap.used = heap.liveAfterGc = 60 * MiB;
    guard.check(0, leaker);
    expect(asked).toBe(0);
    heap.used = heap.liveAfterGc = 70 * MiB;
    const error = thrownBy(() => guard.check(0, leaker), HeapLimitError);
    expect(error.message).toContain('refused above 67108864 bytes (64.00 MiB) for tenant "a", whose arrays, leases and workspaces hold about 31457280 bytes (30.00 MiB) of the 32505856 bytes (31.00 MiB) that 2 tenants\' hold, more than its fair share');
    expect(error.metadata).toMatchObject({ heap_threshold_bytes: String(64 * MiB), tenant: 'a', tenant_heap_bytes: String(30 * MiB), tenants_heap_bytes: String(31 * MiB) });
    guard.check(0, light);
    guard.check(0);
    // Past the line everyone is refused, without the fair-share wording.
    heap.now = 5000;
    heap.used = heap.liveAfterGc = 85 * MiB;
    expect(thrownBy(() => guard.check(0, light), HeapLimitError).metadata.heap_threshold_bytes).toBe(String(80 * MiB));
  });
});
