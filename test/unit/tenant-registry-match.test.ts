/**
 * TenantRegistry.match (OpenLease, and every GetMemoryInfo, ListLeases, admin call and tenant-token
 * stream): which tenant a token is. A comparison with every tenant's hash per call cost about 0.55 us a
 * tenant (10,000 tenants: 546 us per call, more than a whole unary gRPC call here).
 */
import * as crypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { TenantRegistry } from '../../src/leases/tenant-registry';
import type { TenantSpec } from '../../src/leases/tenants-file';
import { tokenSha256 } from '../helpers/tenants-file';

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

function spec(name: string, token: string, admin = false): TenantSpec {
  return { name, tokenSha256: tokenSha256(token), deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxLeases: 0, maxArrays: 0, maxMappedRegions: 0, admin };
}

describe('TenantRegistry.match', () => {
  it("answers each token's tenant, and none for an unknown, empty or missing token, after a reload too", () => {
    const registry = new TenantRegistry([spec('a', 'token-a'), spec('b', 'token-b', true)]);
    expect(registry.match('token-a')?.name).toBe('a');
    expect(registry.match('token-b')?.name).toBe('b');
    expect(registry.match('token-c')).toBeUndefined();
    expect(registry.match('')).toBeUndefined();
    expect(registry.match(undefined)).toBeUndefined();
    // The token's hash, not the hash itself, is what matches.
    expect(registry.match(tokenSha256('token-a'))).toBeUndefined();
    expect(registry.isAdmin('token-b')).toBe(true);
    expect(registry.isAdmin('token-a')).toBe(false);
    registry.reloaded([spec('b', 'token-b2'), spec('c', 'token-c')]);
    expect(registry.match('token-a')).toBeUndefined();
    expect(registry.match('token-b')).toBeUndefined();
    expect(registry.match('token-b2')?.name).toBe('b');
    expect(registry.match('token-c')?.name).toBe('c');
    expect(registry.isAdmin('token-b2')).toBe(false);
  });

  it('takes token_sha256 in upper case as in lower case', () => {
    const upper = { ...spec('a', 'token-a'), tokenSha256: tokenSha256('token-a').toUpperCase() };
    expect(new TenantRegistry([upper]).match('token-a')?.name).toBe('a');
  });

  it('of two tenants with one hash (the tenants file refuses that), answers the first', () => {
    const registry = new TenantRegistry([spec('first', 'same'), spec('second', 'same')]);
    expect(registry.match('same')?.name).toBe('first');
  });

  it('compares a token with at most one hash, however many tenants there are', () => {
    const TENANTS = 2000;
    const registry = new TenantRegistry(Array.from({ length: TENANTS }, (_, i) => spec(`t${i}`, `token-${i}`)));
    const compare = vi.mocked(crypto.timingSafeEqual);
    compare.mockClear();
    for (const i of [0, TENANTS / 2, TENANTS - 1]) expect(registry.match(`token-${i}`)?.name).toBe(`t${i}`);
    expect(registry.match('unknown')).toBeUndefined();
    // A comparison with every tenant's hash: 4 * TENANTS.
    expect(compare.mock.calls.length).toBeLessThanOrEqual(4);
  });
});
