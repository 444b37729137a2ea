/**
 * One tenant's share of one pool: wraps the pool's stack and refuses, before calling upstream, any
 * request that would take the tenant past its hard quota (QUOTA_EXCEEDED with the numbers). Its used
 * bytes are the tenant's usage of that pool. A quota of 0 means none. When the pool (or a cap above
 * it) refuses a request of a tenant with a quota, the out-of-memory error gains the tenant's quota and
 * usage (DESIGN.md §5: `…; tenant "a" quota 8.00 GiB, used 7.90 GiB. Try: …`).
 */
import { OutOfMemoryError, QuotaExceededError, MemoryKind } from '../errors';
import type { AllocateOptions, Block, BlockOwner, ResourceStats } from './memory-resource';
import { SizedMemoryResource, alignedSizeOf } from './sized-resource';

export class QuotaAdaptor implements SizedMemoryResource {
  private used = 0;
  private live = 0;
  /** Told after every change of usedBytes, with what it was before (TenantAccounts keeps unused guarantees by it). */
  onUsedChange?: (usedBefore: number) => void;

  constructor(
    private readonly upstream: SizedMemoryResource,
    readonly tenant: string,
    public quotaBytes: number,
    readonly memory: MemoryKind,
    readonly device?: number,
  ) {}

  get usedBytes(): number {
    return this.used;
  }

  /** Live blocks allocated through this adaptor. */
  get allocationCount(): number {
    return this.live;
  }

  alignedSize(bytes: number, options?: AllocateOptions): number {
    return alignedSizeOf(this.upstream, bytes, options);
  }

  /** Whether `bytes` more would fit the quota (for checks made before any allocation). */
  check(bytes: number, options?: AllocateOptions): void {
    const aligned = this.alignedSize(bytes, options);
    if (this.quotaBytes > 0 && this.used + aligned > this.quotaBytes) {
      throw new QuotaExceededError(this.tenant, this.memory, this.device, bytes, this.quotaBytes, this.used, aligned);
    }
  }

  /**
   * `error` with this tenant's quota and usage of this pool added, when it is an out-of-memory refusal
   * and the tenant has a quota here; any other error, or a tenant without a quota, as it is.
   */
  withTenantFacts(error: unknown): unknown {
    if (!(error instanceof OutOfMemoryError) || this.quotaBytes <= 0 || error.facts.tenant) return error;
    return error.withTenant({ name: this.tenant, quotaBytes: this.quotaBytes, usedBytes: this.used });
  }

  allocate(bytes: number, owner: BlockOwner, options?: AllocateOptions): Block {
    this.check(bytes, options);
    let block: Block;
    try {
      block = this.upstream.allocate(bytes, owner, options);
    } catch (error) {
      throw this.withTenantFacts(error);
    }
    const before = this.used;
    this.used += block.bytes;
    this.live++;
    this.onUsedChange?.(before);
    return block;
  }

  deallocate(block: Block): void {
    this.upstream.deallocate(block);
    const before = this.used;
    this.used -= block.bytes;
    this.live--;
    this.onUsedChange?.(before);
  }

  stats(): ResourceStats {
    return { ...this.upstream.stats(), usedBytes: this.used, allocationCount: this.live };
  }
}
