/** tenantState: the STATE column of tensormemctl tenants, info and top, from TenantUsage.dropped and evicting. */
import { describe, expect, it } from 'vitest';
import { tenantState } from '../../src/cli/tenant-state';

describe('tenantState', () => {
  it('names each of the four combinations', () => {
    expect(tenantState({ dropped: false, evicting: false })).toBe('active');
    expect(tenantState({ dropped: true, evicting: false })).toBe('dropped');
    expect(tenantState({ dropped: false, evicting: true })).toBe('evicting');
    expect(tenantState({ dropped: true, evicting: true })).toBe('dropped, evicting');
  });
});
