/** Out-of-memory refusals of a tenant's request name the tenant's quota and usage (DESIGN.md §5), when it has a quota. */
import { describe, expect, it } from 'vitest';
import { OutOfMemoryError, QuotaExceededError } from '../../src/errors';
import { checkGuarantees } from '../../src/memory/guarantee-policy';
import { LimitingAdaptor } from '../../src/memory/limiting-adaptor';
import type { BlockOwner, ChunkSource } from '../../src/memory/memory-resource';
import { PoolResource } from '../../src/memory/pool-resource';
import { QuotaAdaptor } from '../../src/memory/quota-adaptor';
import { KiB, MiB } from '../../src/units';
import { thrownBy } from '../helpers/thrown';

class CountingChunkSource implements ChunkSource {
  private nextHandle = 1;
  allocateChunk(): number {
    return this.nextHandle++;
  }
  freeChunk(): void {}
}

/** A pool capped at `capBytes` (maxbytes or host-maxbytes), as the memory manager stacks it. */
function pool(memory: 'DEVICE' | 'HOST', capBytes: number) {
  const capName = memory === 'DEVICE' ? 'pool cap (maxbytes)' : 'host cap (host-maxbytes)';
  const device = memory === 'DEVICE' ? 0 : undefined;
  const resource = new PoolResource({ source: new CountingChunkSource(), memory, device, maxReservedBytes: capBytes, chunkBytes: 64 * KiB });
  return new LimitingAdaptor(resource, { limitBytes: capBytes, capName, memory, device });
}

const owner = (tenant: string): BlockOwner => ({ leaseId: 'lease-1', tenant });

const refusal = (action: () => unknown): OutOfMemoryError => thrownBy(action, OutOfMemoryError);

describe('tenant facts in out-of-memory refusals', () => {
  it("adds the tenant's quota and usage of that pool to a device pool cap refusal", () => {
    const upstream = pool('DEVICE', 4 * MiB);
    const a = new QuotaAdaptor(upstream, 'a', 8 * MiB, 'DEVICE', 0);
    a.allocate(3 * MiB, owner('a'));
    const error = refusal(() => a.allocate(2 * MiB, owner('a')));
    expect(error.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(error.message).toContain('pool cap (maxbytes) 4194304 bytes (4.00 MiB), used 3145728 bytes (3.00 MiB), largest free block');
    expect(error.message).toContain('; tenant "a" quota 8388608 bytes (8.00 MiB), used 3145728 bytes (3.00 MiB). Try: ');
    expect(error.metadata).toMatchObject({ tenant: 'a', tenant_quota_bytes: String(8 * MiB), tenant_used_bytes: String(3 * MiB), requested_bytes: String(2 * MiB) });
    expect(a.usedBytes).toBe(3 * MiB);
  });

  it('adds them to a host cap refusal too', () => {
    const a = new QuotaAdaptor(pool('HOST', 2 * MiB), 'a', 4 * MiB, 'HOST');
    const error = refusal(() => a.allocate(3 * MiB, owner('a')));
    expect(error.reason).toBe('HOST_OUT_OF_MEMORY');
    expect(error.message).toContain('; tenant "a" quota 4194304 bytes (4.00 MiB), used 0 bytes (0 B). Try: ');
    expect(error.metadata.tenant).toBe('a');
  });

  it('leaves the refusal of a tenant without a quota as the pool gave it', () => {
    const c = new QuotaAdaptor(pool('DEVICE', 2 * MiB), 'c', 0, 'DEVICE', 0);
    const error = refusal(() => c.allocate(3 * MiB, owner('c')));
    expect(error.message).not.toContain('tenant "');
    expect(error.metadata.tenant).toBeUndefined();
    expect(error.metadata.tenant_quota_bytes).toBeUndefined();
  });

  it('still refuses past the quota itself with QUOTA_EXCEEDED', () => {
    const a = new QuotaAdaptor(pool('DEVICE', 64 * MiB), 'a', MiB, 'DEVICE', 0);
    expect(() => a.allocate(2 * MiB, owner('a'))).toThrow(QuotaExceededError);
  });

  it("adds the tenant's quota to a refusal for others' guarantees, and nothing without a quota", () => {
    // Tenant b's guarantee of 16 MiB, none of it used.
    const othersUnused = 16 * MiB;
    const stats = { usedBytes: 14 * MiB, capBytes: 32 * MiB, largestFreeBlockBytes: 0 };
    const withQuota = refusal(() => checkGuarantees(0, 'a', 4 * MiB, 4 * MiB, stats, othersUnused, { quotaBytes: 8 * MiB, usedBytes: 2 * MiB }));
    expect(withQuota.message).toContain("less other tenants' unused guarantees (16.00 MiB)");
    expect(withQuota.message).toContain('; tenant "a" quota 8388608 bytes (8.00 MiB), used 2097152 bytes (2.00 MiB). Try: ');
    expect(withQuota.metadata).toMatchObject({ tenant: 'a', tenant_quota_bytes: String(8 * MiB), tenant_used_bytes: String(2 * MiB) });
    const noQuota = refusal(() => checkGuarantees(0, 'c', 4 * MiB, 4 * MiB, stats, othersUnused, { quotaBytes: 0, usedBytes: 2 * MiB }));
    expect(noQuota.message).not.toContain('tenant "');
    expect(noQuota.metadata.tenant).toBeUndefined();
  });
});
