/** What the tenants_reloaded line says a SIGHUP changed, and what it left for the operator to act on. */
import { describe, expect, it } from 'vitest';
import type { TenantSpec } from '../../src/leases/tenants-file';
import { summarizeTenantsReload, type TenantUse } from '../../src/leases/tenants-reload-summary';

const MiB = 1024 * 1024;
const spec = (name: string, limits: Partial<TenantSpec> = {}): TenantSpec => ({
  name,
  tokenSha256: name.padEnd(64, '0'),
  deviceQuotaBytes: 0,
  hostQuotaBytes: 0,
  mmapQuotaBytes: 0,
  deviceGuaranteeBytes: 0,
  maxLeases: 0,
  maxArrays: 0,
  maxMappedRegions: 0,
  admin: false,
  ...limits,
});
const idle: TenantUse = { deviceBytes: [0, 0], hostBytes: 0, mmapBytes: 0, leases: 0, arrays: 0, mappedRegions: 0 };

describe('summarizeTenantsReload', () => {
  it('says nothing more for a file that changed nothing', () => {
    const tenants = [spec('a', { deviceQuotaBytes: 8 * MiB }), spec('ops', { admin: true })];
    expect(summarizeTenantsReload(tenants, tenants.map((t) => ({ ...t })), () => idle)).toEqual({ added: [], removed: [], changed: [], removedWithLeases: [], overLimit: [], text: '' });
  });

  it('names tenants added, removed and changed (a rotated token too), and a removed tenant whose leases are open', () => {
    const use = (name: string): TenantUse => (name === 'b' ? { ...idle, leases: 2 } : idle);
    const summary = summarizeTenantsReload([spec('a'), spec('b'), spec('c')], [spec('a', { tokenSha256: 'f'.repeat(64) }), spec('d')], use);
    expect(summary).toMatchObject({ added: ['d'], removed: ['b', 'c'], changed: ['a'], removedWithLeases: [{ tenant: 'b', leases: 2 }], overLimit: [] });
    expect(summary.text).toBe('added d; removed b, c; changed a; removed tenant b still has 2 leases open (tensormemctl evict --tenant b ends them)');
  });

  it('names each limit a tenant is now above: its fullest device against the per-device quota, host, mmap and the count caps', () => {
    const limits = { deviceQuotaBytes: 8 * MiB, hostQuotaBytes: 4 * MiB, mmapQuotaBytes: 2 * MiB, maxLeases: 1, maxArrays: 10, maxMappedRegions: 3 };
    const use: TenantUse = { deviceBytes: [6 * MiB, 9 * MiB], hostBytes: 5 * MiB, mmapBytes: 2 * MiB, leases: 2, arrays: 11, mappedRegions: 3 };
    const summary = summarizeTenantsReload([spec('a')], [spec('a', limits)], () => use);
    expect(summary.overLimit).toEqual([
      { tenant: 'a', limit: 'device', used: 9 * MiB, max: 8 * MiB },
      { tenant: 'a', limit: 'host', used: 5 * MiB, max: 4 * MiB },
      { tenant: 'a', limit: 'max_leases', used: 2, max: 1 },
      { tenant: 'a', limit: 'max_arrays', used: 11, max: 10 },
    ]);
    expect(summary.text).toContain('tenant a holds 9.00 MiB of device memory on a device, above its new quota.device 8.00 MiB');
    expect(summary.text).toContain('tenant a has 11 arrays, above its new max_arrays 10');
  });
});
