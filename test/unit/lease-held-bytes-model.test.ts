/**
 * A seeded model of a lease's held bytes (LeaseSummary's device_bytes and host_bytes), which the lease
 * keeps as totals told of every block its arrays take, move or give back (CountedArrayMap.held), against
 * a fresh sum over its arrays after every step, through the paths the daemon's services take: leases
 * opened and closed through the registry (copies still in flight, wait_for_memory requests still
 * queued), wait_for_memory allocations served late, the cuDNN scratch grown while a read of it is in
 * flight, workspaces (FULL and HOST_ONLY) entered, left, destroyed and their arrays retired, exports,
 * duplicates into workspaces and out of them, frees with copies in flight. Where no copy or wait is in
 * flight, the leases' totals must also be what the pools say is used (an independent count).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Lease } from '../../src/leases/lease';
import { LeaseRegistry } from '../../src/leases/lease-registry';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import type { Workspace } from '../../src/memory/workspace';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { allocateParams } from '../helpers/allocate-params';
import { kept, refusedOrDone, summed } from '../helpers/held-bytes';
import { rng } from '../helpers/rng';

const CAPACITY = 24 * MiB;

function newRegistry(eagerMirror: boolean): { registry: LeaseRegistry; memory: MemoryManager } {
  const backend = createBackend('host', { deviceCapacityBytes: CAPACITY, deviceCount: 1 });
  // Copies of 64 KiB and more run off the event loop: frees, closes and scratch growth meet copies in flight.
  const memory = new MemoryManager(backend, givenLimits([CAPACITY], 4 * CAPACITY), { poolChunkBytes: 8 * MiB, asyncCopyThresholdBytes: 64 * 1024, scrub: false }, new PhysicalMemoryGuard(0));
  return { registry: new LeaseRegistry(memory, 3_600_000, eagerMirror, pino({ level: 'silent' })), memory };
}

describe("a lease's held bytes, modelled", () => {
  it.each([
    [1, false, false],
    [2, true, false],
    [3, false, false],
    [4, true, false],
    [5, false, true],
    [6, true, true],
  ])('stay the sum over its arrays through registry, workspace, scratch and wait paths (seed %i, eager mirror %s, guarantees %s)', async (seed, eagerMirror, guarantees) => {
    const { registry, memory } = newRegistry(eagerMirror);
    const random = rng(seed);
    // With guarantees: the tenants file is reloaded now and then (guarantees raised, lowered, taken away;
    // t2 is declared but never opens a lease), idle accounts are released, and the other tenants'
    // unused guarantees (TenantAccounts keeps their sum) must be what a walk over the accounts says.
    const reload = () => {
      const given = new Map(['t0', 't1', 't2'].map((name) => [name, random() < 0.7 ? Math.floor(random() * 5) * 2 * MiB : 0]));
      memory.setTenantLimits((name) => ({ deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: given.get(name) ?? 0, maxArrays: 0, maxMappedRegions: 0 }));
      memory.tenants.declare(['t0', 't1', 't2'].filter(() => random() < 0.7));
    };
    if (guarantees) reload();
    const checkGuarantees = (step: number, what: string) => {
      for (const tenant of ['t0', 't1', 't2', 'outsider']) {
        let walked = 0;
        for (const other of memory.tenants.names()) {
          const usage = memory.tenants.usage(other);
          if (other !== tenant) walked += Math.max(0, usage.deviceGuaranteeBytes - usage.deviceBytes[0]);
        }
        expect(memory.othersUnusedGuaranteeBytes(0, tenant), `step ${step} (${what}): others' unused guarantees for ${tenant}`).toBe(walked);
      }
    };
    const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(random() * items.length)];
    const closed: Lease[] = [];
    const workspaces = new Map<Lease, Workspace[]>();
    const inFlight: Array<Promise<unknown>> = [];
    const check = (step: number, what: string) => {
      for (const lease of registry.list()) {
        const counted = kept(lease);
        expect(counted, `step ${step} (${what}): lease ${lease.leaseId}`).toEqual(summed(lease));
        expect(counted.device >= 0 && counted.host >= 0, `step ${step} (${what}): negative totals ${JSON.stringify(counted)}`).toBe(true);
      }
      for (const lease of closed) expect(kept(lease), `step ${step} (${what}): closed lease ${lease.leaseId}`).toEqual({ device: 0, host: 0 });
      if (guarantees) checkGuarantees(step, what);
    };
    /** With nothing in flight, the open leases hold every byte the pools count as used. */
    const checkPools = (step: number) => {
      const leases = registry.list();
      const device = leases.reduce((sum, lease) => sum + lease.deviceBytes(), 0);
      const host = leases.reduce((sum, lease) => sum + lease.hostBytes(), 0);
      expect(device, `step ${step}: device bytes of the leases against the pool's used bytes`).toBe(memory.deviceReports()[0].usedBytes);
      expect(host, `step ${step}: host bytes of the leases against the host pool's used bytes`).toBe(memory.hostReport().usedBytes);
    };

    for (let step = 0; step < 400; step++) {
      const leases = registry.list();
      const lease = leases.length < 2 || random() < 0.02 ? registry.open({ tenant: `t${Math.floor(random() * 2)}`, clientName: 'model', ttlSeconds: 0, labels: {} }).lease : pick(leases)!;
      const arrays = [...lease.arrays.values()].filter((array) => !array.isFreed);
      const some = pick(arrays);
      const ofLease = workspaces.get(lease) ?? [];
      workspaces.set(lease, ofLease);
      const workspace = pick(ofLease);
      const large = random() < 0.25;
      const bytes = large ? (1 + Math.floor(random() * 6)) * MiB : 256 + Math.floor(random() * 4096);
      const choice = Math.floor(random() * 16);
      let what = `op ${choice}`;
      await refusedOrDone(async () => {
        if (choice <= 2 || !some) {
          what = 'allocate';
          const placement = random() < 0.4 ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_DEVICE';
          const params = allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], placement, exportable: random() < 0.2, zero: random() < 0.3 });
          if (placement === 'PLACEMENT_DEVICE' && random() < 0.3) {
            // wait_for_memory: served (or timed out, or cancelled by a close) later, in a later step.
            what = 'allocate waiting';
            inFlight.push(lease.allocateArray({ ...params, waitForMemory: { waitMs: Math.floor(random() * 40) } }).catch(() => undefined));
          } else {
            await lease.allocateArray(params);
          }
        } else if (choice === 3) {
          what = 'read';
          await some.read(0, Buffer.alloc(1));
        } else if (choice === 4 && some.workspace === undefined) {
          what = 'export';
          await (some.placement === 'PLACEMENT_DEVICE' && random() < 0.5 ? some.exportDevice() : some.exportHost());
        } else if (choice === 5) {
          what = 'duplicate';
          const into = workspace && workspace.scopeActive && random() < 0.5 ? workspace.workspaceId : '';
          await lease.duplicateArray(some.arrayId, random() < 0.5 ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_UNSPECIFIED', into, '', into === '');
        } else if (choice === 6) {
          what = 'free with a read in flight';
          inFlight.push(some.read(0, Buffer.alloc(Math.min(some.byteSize, 256 * 1024))).catch(() => undefined));
          lease.freeArray(some.arrayId);
        } else if (choice === 7) {
          what = 'free';
          lease.freeArray(some.arrayId);
        } else if (choice === 8) {
          what = 'workspace create';
          if (ofLease.length < 3) ofLease.push(lease.workspaces.create(`ws${step}`, { initialSize: (1 + Math.floor(random() * 2)) * MiB, mirroringPolicy: random() < 0.5 ? 'HOST_ONLY' : 'FULL' }));
        } else if (choice === 9 && workspace) {
          what = 'workspace enter / leave';
          if (!workspace.scopeActive) lease.workspaces.enter(workspace.workspaceId);
          else lease.workspaces.leave(workspace.workspaceId);
          lease.retireOutOfScope(workspace);
        } else if (choice === 10 && workspace) {
          what = 'attached allocate';
          if (!workspace.scopeActive) lease.workspaces.enter(workspace.workspaceId);
          await lease.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [256 + Math.floor(random() * 8192)], workspaceId: workspace.workspaceId, placement: 'PLACEMENT_UNSPECIFIED', zero: random() < 0.5 }));
        } else if (choice === 11 && workspace) {
          what = 'workspace destroy';
          ofLease.splice(ofLease.indexOf(workspace), 1);
          lease.workspaces.destroy(workspace.workspaceId);
          lease.retireOutOfScope(workspace);
        } else if (choice === 12) {
          what = 'cudnn scratch';
          const scratch = lease.cudnnScratchOf(0);
          // A read of the old scratch in flight: the new one is made beside it, the old freed after.
          if (scratch && random() < 0.5) inFlight.push(scratch.read(0, Buffer.alloc(Math.min(scratch.byteSize, 256 * 1024))).catch(() => undefined));
          await lease.acquireCudnnScratch(0, large ? bytes : 64 * 1024 + Math.floor(random() * 512 * 1024));
        } else if (choice === 13) {
          what = 'write';
          await some.write(0, Buffer.alloc(Math.min(some.byteSize, large ? 256 * 1024 : 64), 7));
        } else if (choice === 14 && random() < 0.3) {
          what = 'close with copies in flight';
          for (const array of arrays.slice(0, 3)) inFlight.push(array.read(0, Buffer.alloc(Math.min(array.byteSize, 256 * 1024))).catch(() => undefined));
          registry.close(lease, random() < 0.5 ? 'closed' : 'evicted');
          closed.push(lease);
        } else if (choice === 15 && random() < 0.2) {
          what = 'expired';
          lease.renew(1);
          await new Promise((resolve) => setTimeout(resolve, 3));
          registry.sweep();
          closed.push(lease);
        }
      });
      if (guarantees && random() < 0.05) {
        what += random() < 0.5 ? ', tenants file reloaded' : ', idle accounts released';
        if (what.endsWith('reloaded')) reload();
        else memory.tenants.releaseAllIdle((name) => registry.list().some((open) => open.tenant === name));
      }
      check(step, what);
      if (step % 20 === 19) {
        await Promise.all(inFlight.splice(0));
        // Waits that were served after their lease closed give their arrays back on the way.
        await new Promise((resolve) => setTimeout(resolve, 50));
        await Promise.all(inFlight.splice(0));
        check(step, 'after the copies and waits in flight');
        checkPools(step);
      }
    }
    await Promise.all(inFlight.splice(0));
    await new Promise((resolve) => setTimeout(resolve, 50));
    check(400, 'end');
    checkPools(400);
    for (const lease of registry.list()) {
      registry.close(lease, 'closed');
      closed.push(lease);
    }
    check(401, 'all closed');
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
    expect(memory.hostReport().usedBytes).toBe(0);
  });
});
