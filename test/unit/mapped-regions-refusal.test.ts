/**
 * --max-mapped-regions: a dedicated chunk (an exportable array's region) past the cap is refused with
 * MAPPING_LIMIT and nothing changed. The pool made room for the region first (giving empty chunks back
 * to the host) and only then asked the cap, which those chunks, no regions, could never satisfy.
 */
import { describe, expect, it } from 'vitest';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';

const OWNER = { leaseId: 'lease-a', tenant: 'a' };

describe('MAPPING_LIMIT', () => {
  it('leaves the pool as it was: no empty chunk given back for a region the cap refuses', () => {
    const backend = createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 });
    const memory = new MemoryManager(backend, givenLimits([32 * MiB], 12 * MiB), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: MiB, maxMappedRegions: 1 }, new PhysicalMemoryGuard(0));
    const exported = memory.allocateHost(1, OWNER, 'host_only', { dedicated: true });
    // Two empty 4 MiB chunks: a 5 MiB region fits the 12 MiB cap only once one of them is given back.
    const plain = [memory.allocateHost(3 * MiB, OWNER, 'host_only'), memory.allocateHost(3 * MiB, OWNER, 'host_only')];
    for (const block of plain) memory.deallocateHost(block, 'host_only');
    const before = memory.hostReport();
    const liveBefore = backend.liveChunks();

    expect(() => memory.allocateHost(5 * MiB, OWNER, 'host_only', { dedicated: true })).toThrow(expect.objectContaining({ reason: 'MAPPING_LIMIT' }));
    expect(memory.hostReport().reservedBytes).toBe(before.reservedBytes);
    expect(backend.liveChunks()).toEqual(liveBefore);

    memory.deallocateHost(exported, 'host_only');
    memory.allocateHost(5 * MiB, OWNER, 'host_only', { dedicated: true });
    memory.release();
  });
});
