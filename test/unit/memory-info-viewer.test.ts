/**
 * memoryInfo (GetMemoryInfo, WatchMemory) for one tenant's view (a tenant's or a lease's token under a
 * tenants file) and for every tenant's (admin, open mode, /metrics, the status page). A tenant's view
 * copied every tenant's lease count and every account's name to show one row: 10,000 tenants, 4.1 ms
 * a call. Both views must answer as they did, and release idle accounts as they did (every view
 * releases every idle account); a tenant's view shows its own row only.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LeaseRegistry } from '../../src/leases/lease-registry';
import { TenantRegistry } from '../../src/leases/tenant-registry';
import { givenLimits } from '../../src/memory/limits';
import { MemoryManager } from '../../src/memory/memory-manager';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { TenantAccounts } from '../../src/memory/tenant-accounts';
import { createBackend } from '../../src/native/addon';
import { memoryInfo } from '../../src/service/memory-service';
import type { ServiceContext } from '../../src/service/service-context';
import { MiB } from '../../src/units';
import { allocateParams } from '../helpers/allocate-params';

function daemonParts(declared: string[]) {
  const memory = new MemoryManager(createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 }), givenLimits([32 * MiB], 32 * MiB, 0), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: MiB }, new PhysicalMemoryGuard(0));
  memory.tenants.declare(declared);
  const registry = new LeaseRegistry(memory, 60_000, false, pino({ level: 'silent' }));
  const context = { memory, registry, tenants: new TenantRegistry([]) } as unknown as ServiceContext;
  return { memory, registry, context };
}

/** An account that holds nothing and has no lease (as a dropped tenant's, once a view lent when its last lease closed ends). */
function idleAccount(memory: MemoryManager, tenant: string): void {
  memory.tenants.countWorkspaces(tenant, 1, 0);
  memory.tenants.countWorkspaces(tenant, -1, 0);
}

const open = (registry: LeaseRegistry, tenant: string) => registry.open({ tenant, clientName: 'client', ttlSeconds: 0, labels: {} }, 0).lease;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('memoryInfo views', () => {
  it("shows a tenant its own row, as every tenant's view shows it, and releases idle accounts as before", async () => {
    const { memory, registry, context } = daemonParts(['a', 'b', 'c']);
    const a1 = open(registry, 'a');
    open(registry, 'a');
    await a1.allocateArray(allocateParams({ shape: [1024] }));
    open(registry, 'b');
    // Outside the tenants file: a lease of its own, and two idle accounts.
    open(registry, 'x');
    idleAccount(memory, 'idle-1');
    idleAccount(memory, 'idle-2');

    // A tenant's view: every idle account goes, its own too, and it has no row.
    expect(memoryInfo(context, { tenant: 'idle-1' }).tenants).toEqual([]);
    expect(memory.tenants.names()).toEqual(['a', 'b', 'c', 'x']);
    idleAccount(memory, 'idle-2');

    const all = memoryInfo(context).tenants!;
    expect(all.map((row) => [row.tenant, row.leases, row.arrays])).toEqual([
      ['a', 2, 1],
      ['b', 1, 0],
      ['c', 0, 0],
      ['x', 1, 0],
    ]);
    // Every tenant's view releases every idle account too.
    expect(memory.tenants.names()).toEqual(['a', 'b', 'c', 'x']);
    expect(all.find((row) => row.tenant === 'a')!.device_used_bytes).toBe(4096);
    for (const row of all) expect(memoryInfo(context, { tenant: row.tenant }).tenants).toEqual([row]);
    expect(memoryInfo(context, { tenant: 'unknown' }).tenants).toEqual([]);
    expect(memoryInfo(context, { tenant: '' }).tenants).toEqual([]);
    registry.closeAll();
  });

  it("answers a tenant's view without copying every tenant's lease count or account name", () => {
    const TENANTS = 2000;
    const tenantNames = Array.from({ length: TENANTS }, (_, i) => `t${i}`);
    const { registry, context } = daemonParts(tenantNames);
    for (const name of tenantNames.slice(0, TENANTS / 2)) open(registry, name);
    const names = vi.spyOn(TenantAccounts.prototype, 'names');
    const counts = vi.spyOn(LeaseRegistry.prototype, 'countsByTenant');
    expect(memoryInfo(context, { tenant: 't7' }).tenants!.map((row) => [row.tenant, row.leases])).toEqual([['t7', 1]]);
    expect(memoryInfo(context, { tenant: `t${TENANTS - 1}` }).tenants!.map((row) => [row.tenant, row.leases])).toEqual([[`t${TENANTS - 1}`, 0]]);
    // Each a Map (or list) of every tenant, made for one row.
    expect(counts).not.toHaveBeenCalled();
    expect(names).not.toHaveBeenCalled();
    registry.closeAll();
  });
});
