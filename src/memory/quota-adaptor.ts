/**
 * One tenant's share of one pool: wraps the pool's stack and refuses, before calling upstream, any
 * request that would take the tenant past its hard quota (QUOTA_EXCEEDED with the numbers). Its used
 * bytes are the tenant's usage of that pool. A quota of 0 means none.
 */
import { QuotaExceededError, MemoryKind } from '../errors';
import type { AllocateOptions, Block, BlockOwner, ResourceStats } from './memory-resource';
import { SizedMemoryResource, alignedSizeOf } from './sized-resource';

export class QuotaAdaptor implements SizedMemoryResource {
  private used = 0;
  private live = 0;

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
      throw new QuotaExceededError(this.tenant, this.memory, this.device, bytes, this.quotaBytes, this.used);
    }
  }

  allocate(bytes: number, owner: BlockOwner, options?: AllocateOptions): Block {
    this.check(bytes, options);
    const block = this.upstream.allocate(bytes, owner, options);
    this.used += block.bytes;
    this.live++;
    return block;
  }

  deallocate(block: Block): void {
    this.upstream.deallocate(block);
    this.used -= block.bytes;
    this.live--;
  }

  stats(): ResourceStats {
    return { ...this.upstream.stats(), usedBytes: this.used, allocationCount: this.live };
  }
}
