/**
 * A tenant's state as `tensormemctl tenants`, `info` and `top` print it, from TenantUsage's `dropped`
 * and `evicting`: `active` (the tenants file names it, or open mode), `dropped` (a tenants file reload
 * dropped it: its row is what its open leases and memory still hold, and it leaves the list once they
 * are gone), `evicting` (evict --tenant is closing its leases), or `dropped, evicting`.
 */
import type { MemoryInfo } from '../client/tensormem-client';

export function tenantState(tenant: Pick<MemoryInfo['tenants'][number], 'dropped' | 'evicting'>): string {
  if (tenant.dropped) return tenant.evicting ? 'dropped, evicting' : 'dropped';
  return tenant.evicting ? 'evicting' : 'active';
}
