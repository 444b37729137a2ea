/**
 * LeaseRegistry.page (ListLeases): a page is found by the serial it starts after, not by walking the
 * open leases from the first one (O(leases) a page, O(leases² / page size) a whole listing: a page
 * after 100,000 leases took 1.2 ms, a listing in pages of 100 took 360 ms). Leases opened and closed
 * between pages are seen as the walk from the first lease saw them: each listed once, in serial order.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Lease } from '../../src/leases/lease';
import { LeaseRegistry } from '../../src/leases/lease-registry';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { rng } from '../helpers/rng';

function newRegistry(): LeaseRegistry {
  const memory = new MemoryManager(createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 }), givenLimits([64 * MiB], 64 * MiB), { poolChunkBytes: 16 * MiB, asyncCopyThresholdBytes: MiB }, new PhysicalMemoryGuard(0));
  return new LeaseRegistry(memory, 3_600_000, false, pino({ level: 'silent' }));
}

function open(registry: LeaseRegistry, tenant: string): Lease {
  return registry.open({ tenant, clientName: 'client', ttlSeconds: 0, labels: {} }).lease;
}

/** Every page of `pageSize` of `tenant`'s leases (every tenant's when undefined); `between` runs after each page. */
function listAll(registry: LeaseRegistry, tenant: string | undefined, pageSize: number, between: () => void = () => undefined): Lease[] {
  const listed: Lease[] = [];
  for (let afterSerial = 0; ; ) {
    const page = registry.page(tenant, afterSerial, pageSize);
    listed.push(...page.leases);
    if (page.nextAfterSerial === undefined) return listed;
    afterSerial = page.nextAfterSerial;
    between();
  }
}

describe('LeaseRegistry.page', () => {
  it("finds a page's first lease without walking the leases before it: a listing in pages reads each lease about once", () => {
    const registry = newRegistry();
    const LEASES = 3000;
    const leases = Array.from({ length: LEASES }, (_, i) => open(registry, `t${i % 3}`));
    // Count every look at a lease's serial, which a walk makes for each lease it passes.
    let reads = 0;
    for (const lease of leases) {
      const serial = lease.serial;
      Object.defineProperty(lease, 'serial', { get: () => (reads++, serial), configurable: true });
    }
    expect(listAll(registry, undefined, 10)).toEqual(leases);
    // A walk from the first lease each page: 10 · Σ pages ≈ LEASES² / 20 = 450,000 reads.
    expect(reads).toBeLessThan(LEASES * 5);
    reads = 0;
    expect(listAll(registry, 't1', 10)).toEqual(leases.filter((lease) => lease.tenant === 't1'));
    expect(reads).toBeLessThan(LEASES * 2);
  });

  it('gives each page what a walk from the first lease would, while leases open and close between pages', () => {
    const registry = newRegistry();
    const random = rng(7);
    const tenants = ['a', 'b', 'c'];
    for (let i = 0; i < 400; i++) open(registry, tenants[i % 3]);
    /** The page the walk from the first open lease gives. */
    const walked = (tenant: string | undefined, afterSerial: number, size: number) =>
      registry
        .list()
        .filter((lease) => (tenant === undefined || lease.tenant === tenant) && lease.serial > afterSerial)
        .slice(0, size);
    for (const tenant of [undefined, 'a', 'b']) {
      const seen = new Set<Lease>();
      for (let afterSerial = 0; ; ) {
        const expected = walked(tenant, afterSerial, 7);
        const more = walked(tenant, afterSerial, 8).length > 7;
        const page = registry.page(tenant, afterSerial, 7);
        expect(page.leases).toEqual(expected);
        expect(page.total).toBe(tenant === undefined ? registry.size : registry.countOf(tenant));
        for (const lease of page.leases) {
          expect(seen.has(lease)).toBe(false);
          seen.add(lease);
        }
        if (!more) {
          expect(page.nextAfterSerial).toBeUndefined();
          break;
        }
        afterSerial = page.nextAfterSerial!;
        // Close some leases (those of the page just read and those ahead, enough to sweep the order), open others.
        const current = registry.list();
        for (let k = 0; k < 12 && current.length > 0; k++) registry.close(current[Math.floor(random() * current.length)], 'closed');
        for (let k = 0; k < 4; k++) open(registry, tenants[Math.floor(random() * 3)]);
      }
    }
    // A tenant whose every lease closed lists nothing; one opened afterwards lists from its new lease.
    for (const lease of registry.leasesOf('c')) registry.close(lease, 'closed');
    expect(registry.page('c', 0, 5)).toEqual({ leases: [], total: 0 });
    const again = open(registry, 'c');
    expect(registry.page('c', 0, 5)).toEqual({ leases: [again], total: 1 });
  });
});
