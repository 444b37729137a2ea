/**
 * Guarantees (soft limits): a tenant may borrow device memory above its own guarantee only while every
 * other tenant's unused guarantee stays free. With pool used U, cap C, a request of R bytes for tenant
 * T is allowed when
 *
 *     U + R + Σ_{other tenants O} max(0, guarantee_O − used_O) ≤ C
 *
 * so a tenant inside its guarantee is never refused because of others' borrowing (as long as the
 * guarantees add up to at most the cap, which the daemon checks at load), and borrowers can never eat
 * into memory promised to someone else. Refusals are DEVICE_OUT_OF_MEMORY whose cap names the reserve,
 * with the requesting tenant's quota and usage when it has a quota.
 */
import { OutOfMemoryError } from '../errors';
import { formatIec } from '../units';

export function checkGuarantees(
  device: number,
  tenant: string,
  alignedBytes: number,
  requestedBytes: number,
  pool: { usedBytes: number; capBytes: number; largestFreeBlockBytes: number },
  /** Σ max(0, guarantee_O − used_O) over the other tenants on `device` (TenantAccounts.othersUnusedGuaranteeBytes). */
  reservedForOthers: number,
  /** The requesting tenant's hard device quota and usage on this device: a refusal states them when the quota is > 0 (DESIGN.md §5). */
  quota?: { quotaBytes: number; usedBytes: number },
): void {
  if (reservedForOthers === 0) return;
  if (pool.usedBytes + alignedBytes + reservedForOthers > pool.capBytes) {
    throw new OutOfMemoryError({
      memory: 'DEVICE',
      device,
      requestedBytes,
      capName: `pool cap (maxbytes) less other tenants' unused guarantees (${formatIec(reservedForOthers)})`,
      capBytes: pool.capBytes - reservedForOthers,
      usedBytes: pool.usedBytes,
      largestFreeBlockBytes: pool.largestFreeBlockBytes,
      tenant: quota && quota.quotaBytes > 0 ? { name: tenant, quotaBytes: quota.quotaBytes, usedBytes: quota.usedBytes } : undefined,
    });
  }
}
