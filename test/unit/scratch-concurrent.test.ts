/** Concurrent AcquireCudnnWorkspace calls of one lease on one device, with --scrub zeroing the scratch asynchronously. */
import { describe, expect, it } from 'vitest';
import { Lease } from '../../src/leases/lease';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';

function manager(scrub: boolean): MemoryManager {
  const capBytes = 16 * MiB;
  const backend = createBackend('host', { deviceCapacityBytes: 2 * capBytes, deviceCount: 1 });
  return new MemoryManager(
    backend,
    givenLimits([capBytes], capBytes),
    { poolChunkBytes: MiB, asyncCopyThresholdBytes: 256 * 1024, scrub },
    new PhysicalMemoryGuard(0),
  );
}

describe.each([false, true])('cuDNN scratch acquired concurrently (scrub %s)', (scrub) => {
  it('leaves the lease one scratch, holding only its bytes', async () => {
    const memory = manager(scrub);
    const lease = new Lease('lease-a', 'hash-a', 'a', 'client', {}, 3_600_000, memory, false);
    const results = await Promise.all([lease.acquireCudnnScratch(0, 2 * MiB), lease.acquireCudnnScratch(0, 2 * MiB)]);
    const held = lease.cudnnScratchOf(0)!;
    expect(results.map((r) => r.scratch?.arrayId)).toEqual([held.arrayId, held.arrayId]);
    expect(lease.deviceBytes()).toBe(held.deviceHeldBytes);
    // Growth: two calls at once asking for more.
    await Promise.all([lease.acquireCudnnScratch(0, 4 * MiB), lease.acquireCudnnScratch(0, 4 * MiB)]);
    expect(lease.deviceBytes()).toBe(lease.cudnnScratchOf(0)!.deviceHeldBytes);
    expect(memory.deviceReports()[0].usedBytes).toBe(lease.cudnnScratchOf(0)!.deviceHeldBytes);
    lease.close('closed');
  });
});
