/**
 * How full a tenant is, as `tensormemctl tenants` and `top` print it. The device quota applies to each
 * device, so the device share is the fullest device's (named when there are several), never the sum
 * over devices against the per-device quota.
 */
import type { MemoryInfo } from '../client/tensormem-client';

type TenantRow = MemoryInfo['tenants'][number];

/** "42.0%" of `cap`, or "-" when there is no cap. */
export function quotaShare(used: number, cap: number): string {
  return cap > 0 ? `${((100 * used) / cap).toFixed(1)}%` : '-';
}

/** The fullest device's share of the tenant's device quota: "75.0%", or "75.0% (device 0)" with several devices; "-" without a quota. */
export function deviceQuotaShare(tenant: TenantRow, devices: MemoryInfo['devices']): string {
  const byDevice = tenant.device_used_bytes_by_device;
  if (byDevice.length <= 1) return quotaShare(tenant.device_used_bytes, tenant.quota_bytes);
  if (tenant.quota_bytes <= 0) return '-';
  const fullest = byDevice.indexOf(Math.max(...byDevice));
  return `${quotaShare(byDevice[fullest], tenant.quota_bytes)} (device ${devices[fullest]?.device ?? fullest})`;
}
