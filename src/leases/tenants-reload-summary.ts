/**
 * What a tenants file reload (SIGHUP) changed, for its `tenants_reloaded` log line: the tenants added,
 * dropped and changed, and what the operator must still act on, since a reload takes nothing back: a
 * dropped tenant's leases stay open (under its last quotas) until they end or are evicted, and a tenant
 * whose quota or max_leases the file lowered below its use keeps what it holds (only new allocations and
 * leases are refused). Without this the line named the tenants in force and nothing else.
 */
import { counted } from '../counted';
import { formatIec } from '../units';
import type { TenantSpec } from './tenants-file';

/** A tenant's use now, as the accounts and the lease registry hold it. */
export interface TenantUse {
  /** Bytes on each device. */
  deviceBytes: number[];
  hostBytes: number;
  mmapBytes: number;
  leases: number;
  arrays: number;
  mappedRegions: number;
}

/** A tenant of the new file that holds more than one of its new limits allows. */
export interface OverLimit {
  tenant: string;
  /** `device` (its fullest device, against the per-device quota), `host`, `mmap`, or the count caps `max_leases`, `max_arrays`, `max_mapped_regions`. */
  limit: 'device' | 'host' | 'mmap' | 'max_leases' | 'max_arrays' | 'max_mapped_regions';
  used: number;
  max: number;
}

export interface TenantsReloadSummary {
  added: string[];
  removed: string[];
  /** Tenants of both files whose token, quotas, guarantee, caps or admin flag changed. */
  changed: string[];
  /** Dropped tenants that still have leases open: `evict --tenant NAME` ends them. */
  removedWithLeases: Array<{ tenant: string; leases: number }>;
  overLimit: OverLimit[];
  /** The same, as the tail of the line's message ("" when nothing changed). */
  text: string;
}

const SPEC_KEYS: Array<keyof TenantSpec> = ['tokenSha256', 'deviceQuotaBytes', 'hostQuotaBytes', 'mmapQuotaBytes', 'deviceGuaranteeBytes', 'maxLeases', 'maxArrays', 'maxMappedRegions', 'admin'];

export function summarizeTenantsReload(previous: readonly TenantSpec[], next: readonly TenantSpec[], useOf: (tenant: string) => TenantUse): TenantsReloadSummary {
  const before = new Map(previous.map((spec) => [spec.name, spec]));
  const after = new Set(next.map((spec) => spec.name));
  const added = next.filter((spec) => !before.has(spec.name)).map((spec) => spec.name);
  const removed = previous.filter((spec) => !after.has(spec.name)).map((spec) => spec.name);
  const changed = next.filter((spec) => before.has(spec.name) && SPEC_KEYS.some((key) => before.get(spec.name)![key] !== spec[key])).map((spec) => spec.name);
  const removedWithLeases = removed.map((tenant) => ({ tenant, leases: useOf(tenant).leases })).filter((entry) => entry.leases > 0);
  const overLimit: OverLimit[] = [];
  for (const spec of next) {
    const use = useOf(spec.name);
    const over = (limit: OverLimit['limit'], used: number, max: number) => {
      if (max > 0 && used > max) overLimit.push({ tenant: spec.name, limit, used, max });
    };
    over('device', Math.max(0, ...use.deviceBytes), spec.deviceQuotaBytes);
    over('host', use.hostBytes, spec.hostQuotaBytes);
    over('mmap', use.mmapBytes, spec.mmapQuotaBytes);
    over('max_leases', use.leases, spec.maxLeases);
    over('max_arrays', use.arrays, spec.maxArrays);
    over('max_mapped_regions', use.mappedRegions, spec.maxMappedRegions);
  }
  const parts = [
    added.length > 0 ? `added ${added.join(', ')}` : '',
    removed.length > 0 ? `removed ${removed.join(', ')}` : '',
    changed.length > 0 ? `changed ${changed.join(', ')}` : '',
    ...removedWithLeases.map(({ tenant, leases }) => `removed tenant ${tenant} still has ${counted(leases, 'lease')} open (tensormemctl evict --tenant ${tenant} ends them)`),
    ...overLimit.map(({ tenant, limit, used, max }) =>
      limit.startsWith('max_')
        ? `tenant ${tenant} has ${used} ${limit.slice(4).replace('_', ' ')}, above its new ${limit} ${max} (kept; it makes no more until it is below)`
        : `tenant ${tenant} holds ${formatIec(used)} of ${limit} memory${limit === 'device' ? ' on a device' : ''}, above its new quota.${limit} ${formatIec(max)} (kept; new allocations are refused until it frees)`,
    ),
  ].filter((part) => part !== '');
  return { added, removed, changed, removedWithLeases, overLimit, text: parts.join('; ') };
}
