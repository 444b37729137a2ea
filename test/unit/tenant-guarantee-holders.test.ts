/**
 * While any tenant has a device guarantee, every device allocation adds up the other tenants' unused
 * guarantees (TenantAccounts.guaranteeHolders). Only the accounts that have a guarantee are visited,
 * not every tenant's (a walk over all of them made each allocation O(tenants): 1,000 tenants, one with
 * a guarantee, AllocateArray + FreeArray 14 -> 47 µs), and the guarantees bind as before, through a
 * reload that gives or takes one away and an idle account's release.
 */
import { describe, expect, it } from 'vitest';
import { OutOfMemoryError } from '../../src/errors';
import { Lease } from '../../src/leases/lease';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import type { TenantLimits } from '../../src/memory/tenant-accounts';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { allocateParams } from '../helpers/allocate-params';

const NONE: TenantLimits = { deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxArrays: 0, maxMappedRegions: 0 };

function manager(): MemoryManager {
  const backend = createBackend('host', { deviceCapacityBytes: 32 * MiB, deviceCount: 1 });
  return new MemoryManager(backend, givenLimits([16 * MiB], 16 * MiB), { poolChunkBytes: MiB, asyncCopyThresholdBytes: MiB }, new PhysicalMemoryGuard(0));
}

function lease(memory: MemoryManager, tenant: string): Lease {
  return new Lease(`lease-${tenant}`, `hash-${tenant}`, tenant, 'client', {}, 3_600_000, memory, false);
}

describe('guarantee holders', () => {
  it("visits only the accounts with a guarantee on each device allocation, not every tenant's", async () => {
    const memory = manager();
    const TENANTS = 1000;
    const names = Array.from({ length: TENANTS }, (_, i) => `tenant-${i}`);
    memory.setTenantLimits((name) => ({ ...NONE, deviceGuaranteeBytes: name === 'tenant-0' ? 4 * MiB : 0 }));
    memory.tenants.declare(names);
    // Count every look at a guarantee of an account that has none (a walk over every account makes one each).
    let reads = 0;
    for (const name of names.slice(1)) {
      const account = memory.tenants.account(name);
      let bytes = account.guaranteeBytes;
      Object.defineProperty(account, 'guaranteeBytes', { get: () => (reads++, bytes), set: (value: number) => (bytes = value), configurable: true });
    }
    const borrower = lease(memory, 'tenant-1');
    for (let i = 0; i < 100; i++) borrower.freeArray((await borrower.allocateArray(allocateParams())).arrayId);
    // Visiting every account: 999 reads an allocation, 99,900 in all.
    expect(reads).toBe(0);
    borrower.close();
  });

  it("binds as before: a borrower may not take another's unused guarantee, through reloads and an idle account's release", async () => {
    const memory = manager();
    let guaranteeOfA = 12 * MiB;
    memory.setTenantLimits((name) => ({ ...NONE, deviceGuaranteeBytes: name === 'a' ? guaranteeOfA : 0 }));
    memory.tenants.declare(['a']);
    const b = lease(memory, 'b');
    const big = allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [6 * MiB] });
    // 16 MiB cap, 12 MiB kept for a: 6 MiB for b does not fit.
    await expect(b.allocateArray(big)).rejects.toBeInstanceOf(OutOfMemoryError);
    // A reload takes a's guarantee away: b may take it.
    guaranteeOfA = 0;
    memory.setTenantLimits((name) => ({ ...NONE, deviceGuaranteeBytes: name === 'a' ? guaranteeOfA : 0 }));
    expect(memory.tenants.guaranteesInForce).toBe(false);
    const taken = await b.allocateArray(big);
    b.freeArray(taken.arrayId);
    // And gives it back.
    guaranteeOfA = 12 * MiB;
    memory.setTenantLimits((name) => ({ ...NONE, deviceGuaranteeBytes: name === 'a' ? guaranteeOfA : 0 }));
    expect(memory.tenants.guaranteesInForce).toBe(true);
    await expect(b.allocateArray(big)).rejects.toBeInstanceOf(OutOfMemoryError);
    expect(memory.othersUnusedGuaranteeBytes(0, 'b')).toBe(12 * MiB);
    // Dropped from the tenants file and idle, a's account goes, and its guarantee with it.
    memory.tenants.declare([]);
    guaranteeOfA = 0;
    expect(memory.tenants.releaseIdle('a')).toBe(true);
    expect(memory.tenants.guaranteesInForce).toBe(false);
    expect(memory.othersUnusedGuaranteeBytes(0, 'b')).toBe(0);
    b.freeArray((await b.allocateArray(big)).arrayId);
    b.close();
  });
});
