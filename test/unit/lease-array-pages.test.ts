/**
 * Lease.arrayPage (ListArrays): a page whose token the page before gave goes on from where that page
 * stopped, instead of walking the lease's arrays from the first (O(arrays) a page, O(arrays² / page
 * size) a whole listing: a page after 200,000 arrays took 2.6 ms more than the first). Arrays freed,
 * allocated or made listable (a DuplicateArray copy) between pages are seen as the walk from the
 * first saw them: each array listed once, in serial order.
 */
import { describe, expect, it } from 'vitest';
import { Lease } from '../../src/leases/lease';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import type { TensorArray } from '../../src/memory/tensor-array';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { allocateParams } from '../helpers/allocate-params';

function newLease(): Lease {
  const capacity = 64 * MiB;
  const backend = createBackend('host', { deviceCapacityBytes: capacity, deviceCount: 1 });
  const memory = new MemoryManager(backend, givenLimits([capacity], capacity), { poolChunkBytes: 16 * MiB, asyncCopyThresholdBytes: MiB, scrub: false }, new PhysicalMemoryGuard(0));
  return new Lease('lease-a', 'hash-a', 'tenant-a', 'client', {}, 3_600_000, memory, false);
}

async function allocate(lease: Lease, count: number): Promise<TensorArray[]> {
  const arrays: TensorArray[] = [];
  for (let i = 0; i < count; i++) arrays.push(await lease.allocateArray(allocateParams({ placement: 'PLACEMENT_HOST_ONLY' })));
  return arrays;
}

/** Every page of `pageSize` from the start; `between` runs after each page. */
async function listAll(lease: Lease, pageSize: number, between: (page: number) => Promise<void> = async () => undefined): Promise<TensorArray[]> {
  const listed: TensorArray[] = [];
  let afterSerial = 0;
  for (let page = 0; ; page++) {
    const result = lease.arrayPage(afterSerial, pageSize);
    listed.push(...result.arrays);
    if (result.nextAfterSerial === undefined) return listed;
    afterSerial = result.nextAfterSerial;
    await between(page);
  }
}

describe('Lease.arrayPage', () => {
  it('goes on from where the page before stopped: a listing in pages reads each array about once, not the arrays before each page again', async () => {
    const lease = newLease();
    const ARRAYS = 3000;
    await allocate(lease, ARRAYS);
    // Count every look at an array's serial, which the walk makes for each array it passes.
    let reads = 0;
    for (const array of lease.arrays.values()) {
      let serial = array.serialInLease;
      Object.defineProperty(array, 'serialInLease', {
        get: () => (reads++, serial),
        set: (value: number) => (serial = value),
        configurable: true,
      });
    }
    const listed = await listAll(lease, 10);
    expect(listed).toHaveLength(ARRAYS);
    expect(new Set(listed).size).toBe(ARRAYS);
    // Going on: about 3 reads an array (the walk, the page's last, the array read past it). Walking
    // from the first array each page: 10 · Σ pages ≈ ARRAYS² / 20 = 450,000.
    expect(reads).toBeLessThan(ARRAYS * 5);
    lease.close();
  });

  it('gives each page what a walk from the first array would, while arrays are freed, allocated and moved to the end between pages', async () => {
    const lease = newLease();
    await allocate(lease, 300);
    /** The page the walk from the first array gives: the first `pageSize` arrays in order with a serial above `afterSerial`. */
    const walked = (afterSerial: number, pageSize: number) => [...lease.arrays.values()].filter((array) => array.serialInLease > afterSerial).slice(0, pageSize);
    let afterSerial = 0;
    const seen = new Set<string>();
    for (let page = 0; ; page++) {
      const expected = walked(afterSerial, 7);
      const more = walked(afterSerial, 8).length > 7;
      const result = lease.arrayPage(afterSerial, 7);
      expect(result.arrays).toEqual(expected);
      for (const array of result.arrays) {
        expect(seen.has(array.arrayId)).toBe(false);
        seen.add(array.arrayId);
      }
      if (!more) {
        expect(result.nextAfterSerial).toBeUndefined();
        break;
      }
      afterSerial = result.nextAfterSerial!;
      const ahead = walked(afterSerial, 10);
      const listed = result.arrays[page % result.arrays.length];
      // Each page a different change to the array just past it (the one the page read past its end).
      if (page % 3 === 0 && ahead[0]) lease.freeArray(ahead[0].arrayId);
      if (page % 3 === 1 && ahead[0]) lease.arrays.renew(ahead[0].arrayId);
      if (ahead[4]) lease.freeArray(ahead[4].arrayId);
      if (ahead[6]) lease.arrays.renew(ahead[6].arrayId);
      if (lease.arrays.has(listed.arrayId)) lease.freeArray(listed.arrayId);
      await allocate(lease, page < 30 ? 2 : 0);
    }
    // Every array still in the lease was listed once.
    for (const array of lease.arrays.values()) expect(seen.has(array.arrayId)).toBe(true);
    lease.close();
  });
});
