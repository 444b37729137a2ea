/**
 * TenantRegistry's lookups by name (get, maxLeasesOf, limitsOf): GetMemoryInfo asks each tenant's
 * max_leases, and a reload each tenant's limits, so a scan of the tenants per lookup made both
 * O(tenants²) (10,000 tenants: one GetMemoryInfo 246 ms). They answer as the scan did.
 */
import { describe, expect, it } from 'vitest';
import { TenantRegistry } from '../../src/leases/tenant-registry';
import type { TenantSpec } from '../../src/leases/tenants-file';
import { tokenSha256 } from '../helpers/tenants-file';

function spec(name: string, maxLeases: number): TenantSpec {
  return { name, tokenSha256: tokenSha256(`token-${name}`), deviceQuotaBytes: maxLeases * 10, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxLeases, maxArrays: 0, maxMappedRegions: 0, admin: false };
}

/** `specs` behind a stand-in that counts every element read (a scan reads one per tenant it passes). */
function counted(specs: TenantSpec[]): { tenants: TenantSpec[]; reads: () => number } {
  let reads = 0;
  const tenants = new Proxy(specs, {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
      return Reflect.get(target, key, receiver);
    },
  });
  return { tenants, reads: () => reads };
}

describe('TenantRegistry lookups by name', () => {
  it("finds each tenant's limits without a scan of the tenants", () => {
    const TENANTS = 2000;
    const { tenants, reads } = counted(Array.from({ length: TENANTS }, (_, i) => spec(`tenant-${i}`, i + 1)));
    const registry = new TenantRegistry(tenants);
    const before = reads();
    for (let i = 0; i < TENANTS; i++) {
      expect(registry.maxLeasesOf(`tenant-${i}`)).toBe(i + 1);
      expect(registry.limitsOf(`tenant-${i}`).deviceQuotaBytes).toBe((i + 1) * 10);
    }
    // A scan per lookup: about TENANTS² / 2 reads each for maxLeasesOf and limitsOf (4,000,000).
    expect(reads() - before).toBeLessThan(TENANTS);
  });

  it('answers as the tenants in force say, after a reload too', () => {
    const registry = new TenantRegistry([spec('a', 1), spec('b', 2)]);
    expect(registry.get('a')?.maxLeases).toBe(1);
    expect(registry.get('c')).toBeUndefined();
    registry.reloaded([spec('b', 5), spec('c', 3)]);
    expect(registry.get('b')?.maxLeases).toBe(5);
    expect(registry.get('c')?.maxLeases).toBe(3);
    expect(registry.get('a')).toBeUndefined();
    // A dropped tenant keeps its last limits (its leases stay bound by them).
    expect(registry.maxLeasesOf('a')).toBe(1);
    expect(registry.limitsOf('a').deviceQuotaBytes).toBe(10);
    expect(new TenantRegistry(undefined).get('a')).toBeUndefined();
  });
});
