/**
 * DuplicateArray's copy is allocated without --scrub (every byte is copied in), so until the copy
 * ends its memory holds what the pools' last user left there, possibly another tenant. The lease must
 * not let any call reach it by id, or list it, before then.
 */
import { describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import { Lease } from '../../src/leases/lease';
import { allocateParams } from '../helpers/allocate-params';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';

const BYTES = 2 * MiB;

function newLeases(): { a: Lease; b: Lease } {
  const capacity = 64 * MiB;
  const backend = createBackend('host', { deviceCapacityBytes: capacity, deviceCount: 1 });
  // Copies of 64 KiB and more run off the event loop: the 2 MiB copy below is in flight for a while.
  const memory = new MemoryManager(backend, givenLimits([capacity], capacity), { poolChunkBytes: 16 * MiB, asyncCopyThresholdBytes: 64 * 1024, scrub: true }, new PhysicalMemoryGuard(0));
  return {
    a: new Lease('lease-a', 'hash-a', 'tenant-a', 'client', {}, 3_600_000, memory, false),
    b: new Lease('lease-b', 'hash-b', 'tenant-b', 'client', {}, 3_600_000, memory, false),
  };
}

describe.each(['PLACEMENT_HOST_ONLY', 'PLACEMENT_DEVICE'])('a DuplicateArray copy (%s) still being filled', (placement) => {
  it('is NOT_FOUND and not listed until its bytes are in, then usable', async () => {
    const { a, b } = newLeases();
    const source = await b.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [BYTES], placement }));
    await source.write(0, Buffer.alloc(BYTES, 0x42));
    // Tenant A's secret, freed: best fit gives its block to the copy, which is not scrubbed.
    const secret = await a.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [BYTES], placement }));
    await secret.write(0, Buffer.alloc(BYTES, 0x41));
    a.freeArray(secret.arrayId);

    const duplicating = b.duplicateArray(source.arrayId, 'PLACEMENT_UNSPECIFIED', '', '');
    while (b.arrays.size < 2) await Promise.resolve();
    const copy = [...b.arrays.values()].find((array) => array !== source)!;
    // The copy runs in the thread pool and cannot have ended: its memory still holds A's bytes.
    const error = (() => {
      try {
        b.getArray(copy.arrayId);
      } catch (thrown) {
        return thrown as TensormemError;
      }
      return undefined;
    })();
    expect(error?.kind).toBe('NOT_FOUND');
    expect(error?.message).toBe(`array "${copy.arrayId}" not found`);
    expect(b.arrayPage(0, 0).arrays.map((array) => array.arrayId)).toEqual([source.arrayId]);

    expect(await duplicating).toBe(copy);
    expect(b.getArray(copy.arrayId)).toBe(copy);
    expect(b.arrayPage(0, 0).arrays).toHaveLength(2);
    const seen = Buffer.alloc(BYTES);
    await b.getArray(copy.arrayId).read(0, seen);
    expect(seen.equals(Buffer.alloc(BYTES, 0x42))).toBe(true);
    b.close();
    a.close();
  });
});
