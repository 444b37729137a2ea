/** Concurrent AcquireCudnnWorkspace calls of one lease on one device, with --scrub zeroing the scratch asynchronously. */
import { describe, expect, it, vi } from 'vitest';
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

describe('cuDNN scratch growth when the lease closes meanwhile', () => {
  it('takes no memory again for the closed lease: the old size is not remade, and every byte comes back', async () => {
    const backend = createBackend('host', { deviceCapacityBytes: 4 * MiB, deviceCount: 1 });
    // --scrub, and fills past 512 bytes run off the event loop: the new scratch is being zeroed when the lease closes.
    const memory = new MemoryManager(backend, givenLimits([MiB], MiB), { poolChunkBytes: 64 * 1024, asyncCopyThresholdBytes: 512, scrub: true }, new PhysicalMemoryGuard(0));
    const lease = new Lease('lease-c', 'hash-c', 'c', 'client', {}, 3_600_000, memory, false);
    await lease.acquireCudnnScratch(0, 4000);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const fill = memory.fill.bind(memory);
    const filling = vi.spyOn(memory, 'fill').mockImplementation(async (...args: Parameters<MemoryManager['fill']>) => {
      await gate;
      return fill(...args);
    });
    const growing = lease.acquireCudnnScratch(0, 20000).then(
      () => undefined,
      (error: unknown) => error,
    );
    await vi.waitFor(() => expect(filling).toHaveBeenCalledTimes(1));
    const allocating = vi.spyOn(memory, 'allocateDevice');
    lease.close('closed');
    open();
    expect(await growing).toMatchObject({ kind: 'UNAUTHENTICATED', reason: 'LEASE_EXPIRED' });
    // The new scratch went back when its zeroing ended; the 4000-byte one it replaced was not made again.
    expect(allocating).not.toHaveBeenCalled();
    expect(filling).toHaveBeenCalledTimes(1);
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
    vi.restoreAllMocks();
    memory.checkInvariants();
    memory.release();
  });
});
