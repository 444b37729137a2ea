/**
 * A lease's device and host bytes (LeaseSummary's device_bytes and host_bytes: ListLeases, the status
 * page's every tick) are kept as its arrays take, move and give back blocks, not added up over every
 * array each time they are asked for (O(arrays): 2.4 ms a lease of 100,000 arrays). The totals must
 * stay what the sum over the lease's arrays says through everything that changes an array's blocks.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lease } from '../../src/leases/lease';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { TensorArray } from '../../src/memory/tensor-array';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { allocateParams } from '../helpers/allocate-params';
import { kept, refusedOrDone, summed } from '../helpers/held-bytes';
import { rng } from '../helpers/rng';

function newLease(eagerMirror = false): Lease {
  const capacity = 256 * MiB;
  const backend = createBackend('host', { deviceCapacityBytes: capacity, deviceCount: 1 });
  // Copies of 64 KiB and more run off the event loop: frees meet copies in flight.
  const memory = new MemoryManager(backend, givenLimits([capacity], capacity), { poolChunkBytes: 16 * MiB, asyncCopyThresholdBytes: 64 * 1024, scrub: false }, new PhysicalMemoryGuard(0));
  return new Lease('lease-a', 'hash-a', 'tenant-a', 'client', {}, 3_600_000, memory, eagerMirror);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a lease's held bytes", () => {
  it("are answered without reading each array's bytes", async () => {
    const lease = newLease();
    for (let i = 0; i < 500; i++) await lease.allocateArray(allocateParams({ placement: i % 2 ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_DEVICE' }));
    const deviceReads = vi.spyOn(TensorArray.prototype, 'deviceHeldBytes', 'get');
    const hostReads = vi.spyOn(TensorArray.prototype, 'hostHeldBytes', 'get');
    expect(lease.deviceBytes()).toBe(250 * 256);
    expect(lease.hostBytes()).toBe(250 * 256);
    // Added up over the arrays: 500 reads of each.
    expect(deviceReads.mock.calls.length + hostReads.mock.calls.length).toBe(0);
    lease.close();
  });

  it.each([false, true])('follow every change of the arrays (eager mirror %s): allocations, mirrors, exports, duplicates, frees with copies in flight, workspaces, close', async (eagerMirror) => {
    const lease = newLease(eagerMirror);
    const random = rng(eagerMirror ? 11 : 5);
    const workspace = lease.workspaces.create('ws', { initialSize: 4 * MiB });
    const inFlight: Array<Promise<unknown>> = [];
    for (let step = 0; step < 300; step++) {
      const arrays = [...lease.arrays.values()].filter((array) => !array.isFreed);
      const some = arrays[Math.floor(random() * arrays.length)];
      const bytes = random() < 0.2 ? 256 * 1024 : 1024;
      const choice = Math.floor(random() * 9);
      await refusedOrDone(async () => {
        if (choice <= 1 || !some) {
          const placement = random() < 0.5 ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_DEVICE';
          await lease.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], placement, exportable: random() < 0.2, zero: random() < 0.3 }));
        } else if (choice === 2) {
          // A read makes a device array's host mirror.
          await some.read(0, Buffer.alloc(1));
        } else if (choice === 3 && some.workspace === undefined) {
          // An export moves a side into a block of its own.
          await (some.placement === 'PLACEMENT_DEVICE' && random() < 0.5 ? some.exportDevice() : some.exportHost());
        } else if (choice === 4) {
          await lease.duplicateArray(some.arrayId, random() < 0.5 ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_UNSPECIFIED', '', '', true);
        } else if (choice === 5) {
          // Freed while a copy of it is in flight: its blocks go back when the copy ends.
          inFlight.push(some.read(0, Buffer.alloc(Math.min(some.byteSize, 256 * 1024))).catch(() => undefined));
          lease.freeArray(some.arrayId);
        } else if (choice === 6) {
          lease.freeArray(some.arrayId);
        } else if (choice === 7) {
          if (!workspace.scopeActive) lease.workspaces.enter(workspace.workspaceId);
          await lease.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [1024], workspaceId: workspace.workspaceId }));
        } else if (workspace.scopeActive) {
          lease.workspaces.leave(workspace.workspaceId);
          lease.retireOutOfScope(workspace);
        }
      });
      expect(kept(lease)).toEqual(summed(lease));
      if (step % 25 === 0) await Promise.all(inFlight.splice(0));
      expect(kept(lease)).toEqual(summed(lease));
    }
    await Promise.all(inFlight);
    expect(kept(lease)).toEqual(summed(lease));
    expect(lease.deviceBytes() + lease.hostBytes()).toBeGreaterThan(0);
    lease.close();
    expect(kept(lease)).toEqual({ device: 0, host: 0 });
  });
});
