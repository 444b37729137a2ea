/** The periodic lease sweep closes a mass expiry a batch per turn of the event loop, and gives every byte back. */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Lease } from '../../src/leases/lease';
import { LeaseRegistry } from '../../src/leases/lease-registry';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { allocateParams } from '../helpers/allocate-params';

const LEASES = 2000;

describe('periodic lease sweep', () => {
  it('closes thousands of expired leases a batch per turn, letting other work in between, and frees their arrays', async () => {
    const physical = new PhysicalMemoryGuard(0);
    const memory = new MemoryManager(createBackend('host', { deviceCapacityBytes: 256 * MiB, deviceCount: 1 }), givenLimits([128 * MiB], 128 * MiB, 0), { poolChunkBytes: 16 * MiB, asyncCopyThresholdBytes: MiB }, physical);
    const registry = new LeaseRegistry(memory, 60_000, false, pino({ level: 'silent' }));
    const leases: Lease[] = [];
    for (let i = 0; i < LEASES; i++) {
      const { lease } = registry.open({ tenant: `t${i % 4}`, clientName: 'client', ttlSeconds: 0, labels: {} });
      await lease.allocateArray(allocateParams({ shape: [256] }));
      leases.push(lease);
    }
    const kept = registry.open({ tenant: 't0', clientName: 'client', ttlSeconds: 3600, labels: {} }).lease;
    await kept.allocateArray(allocateParams({ shape: [256] }));
    for (const lease of leases) lease.expiresAtMs = Date.now() - 1;
    // One closed by its client while the sweep is under way: skipped, not closed twice.
    let closedByHand = false;

    // A probe that runs once per turn of the event loop, noting how many leases are still open each time.
    const openSeen: number[] = [];
    let probing = true;
    const probe = () => {
      openSeen.push(registry.size);
      if (!closedByHand && registry.size < LEASES) {
        registry.close(leases[LEASES - 1], 'closed');
        closedByHand = true;
      }
      if (probing) setImmediate(probe);
    };
    setImmediate(probe);
    registry.startSweeping(5);
    try {
      const deadline = Date.now() + 20_000;
      while (registry.size > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      probing = false;
      registry.stopSweeping();
    }
    expect(registry.size).toBe(1);
    expect(kept.closed).toBe(false);
    // Turns of other work came while some of the expired leases were closed and others not yet.
    expect(openSeen.filter((open) => open > 1 && open < LEASES).length).toBeGreaterThanOrEqual(4);
    expect(registry.reclaimedTotal).toBe(LEASES - 1);
    expect(registry.closedTotal.expired).toBe(LEASES - 1);
    expect(registry.closedTotal.closed).toBe(1);
    expect(memory.deviceReports()[0].usedBytes).toBe(1024);
    registry.closeAll();
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
    memory.release();
  });
});
