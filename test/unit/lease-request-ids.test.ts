/** Lease request_ids (AllocateArray.request_id): idempotent while the array lives, forgotten once it is freed. */
import { describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import { Lease, RETIRED_ARRAYS_KEPT } from '../../src/leases/lease';
import { allocateParams } from '../helpers/allocate-params';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';

function newLease(): Lease {
  const capacity = 64 * MiB;
  const backend = createBackend('host', { deviceCapacityBytes: capacity, deviceCount: 1 });
  const memory = new MemoryManager(
    backend,
    givenLimits([capacity], capacity),
    { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: MiB },
    new PhysicalMemoryGuard(0),
  );
  return new Lease('lease-test', 'hash', 'tenant', 'client', {}, 3_600_000, memory, false);
}

describe('Lease request_id', () => {
  it('returns the same array for a retried request_id while the array lives', async () => {
    const lease = newLease();
    const first = await lease.allocateArray(allocateParams({ requestId: 'r1' }));
    const retry = await lease.allocateArray(allocateParams({ requestId: 'r1' }));
    expect(retry).toBe(first);
    expect(lease.arrays.size).toBe(1);
    const error = (await lease.allocateArray(allocateParams({ requestId: 'r1', shape: [8] })).catch((e: unknown) => e)) as TensormemError;
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('request_id');
    expect(error.message).toContain('r1');
    lease.close();
  });

  it('forgets a request_id when its array is freed, and a retry then allocates anew', async () => {
    const lease = newLease();
    const first = await lease.allocateArray(allocateParams({ requestId: 'r1' }));
    expect(lease.requestIdCount).toBe(1);
    lease.freeArray(first.arrayId);
    expect(lease.requestIdCount).toBe(0);
    const again = await lease.allocateArray(allocateParams({ requestId: 'r1' }));
    expect(again.arrayId).not.toBe(first.arrayId);
    expect(lease.requestIdCount).toBe(1);
    // Freeing the first array (already gone) must not drop the entry of the new one.
    expect(() => lease.freeArray(first.arrayId)).toThrow();
    expect(await lease.allocateArray(allocateParams({ requestId: 'r1' }))).toBe(again);
    lease.close();
    expect(lease.requestIdCount).toBe(0);
  });

  it('keeps nothing of 10 000 allocations made with request_ids once they are freed', async () => {
    const lease = newLease();
    for (let i = 0; i < 10_000; i++) {
      const array = await lease.allocateArray(allocateParams({ requestId: `req-${i}` }));
      lease.freeArray(array.arrayId);
    }
    expect(lease.arrays.size).toBe(0);
    expect(lease.requestIdCount).toBe(0);
    lease.close();
  });

  it('forgets the request_ids of retired arrays once their ids are no longer remembered', async () => {
    const lease = newLease();
    const workspace = lease.workspaces.create('ws');
    const count = RETIRED_ARRAYS_KEPT + 50;
    lease.workspaces.enter(workspace.workspaceId);
    for (let i = 0; i < count; i++) await lease.allocateArray(allocateParams({ requestId: `attached-${i}`, workspaceId: workspace.workspaceId }));
    expect(lease.requestIdCount).toBe(count);
    lease.workspaces.leave(workspace.workspaceId);
    lease.workspaces.destroy(workspace.workspaceId);
    lease.retireOutOfScope(workspace);
    expect(lease.retiredCount).toBe(RETIRED_ARRAYS_KEPT);
    expect(lease.requestIdCount).toBe(RETIRED_ARRAYS_KEPT);
    lease.close();
  });
});
