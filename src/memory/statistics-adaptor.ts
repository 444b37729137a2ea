/**
 * StatisticsAdaptor: counts what passes through it (RMM's statistics_resource_adaptor).
 *
 * Counts blocks handed out, live blocks, used and peak used bytes (aligned sizes, block.bytes), and
 * refused requests: when the upstream throws, failedAllocationsTotal goes up by one (not for a retry
 * of a request already refused, AllocateOptions.retry) and the same error is rethrown; nothing else
 * changes. A deallocate the upstream rejects changes no counter.
 * stats() reports these counters with the upstream's reservedBytes and largestFreeBlockBytes.
 * On the hot path: a few additions per call, no allocation.
 */
import type { AllocateOptions, Block, BlockOwner, ResourceStats } from './memory-resource';
import { alignedSizeOf } from './sized-resource';
import type { SizedMemoryResource } from './sized-resource';

export class StatisticsAdaptor implements SizedMemoryResource {
  private used = 0;
  private peakUsed = 0;
  private live = 0;
  private allocated = 0;
  private failed = 0;

  constructor(readonly upstream: SizedMemoryResource) {}

  /** Bytes in live blocks allocated through this adaptor. */
  get usedBytes(): number {
    return this.used;
  }

  get peakUsedBytes(): number {
    return this.peakUsed;
  }

  /** Live blocks allocated through this adaptor. */
  get allocationCount(): number {
    return this.live;
  }

  get allocationsTotal(): number {
    return this.allocated;
  }

  get failedAllocationsTotal(): number {
    return this.failed;
  }

  alignedSize(bytes: number, options?: AllocateOptions): number {
    return alignedSizeOf(this.upstream, bytes, options);
  }

  allocate(bytes: number, owner: BlockOwner, options?: AllocateOptions): Block {
    let block: Block;
    try {
      block = this.upstream.allocate(bytes, owner, options);
    } catch (error) {
      if (!options?.retry) this.failed++;
      throw error;
    }
    this.allocated++;
    this.live++;
    this.used += block.bytes;
    if (this.used > this.peakUsed) this.peakUsed = this.used;
    return block;
  }

  /**
   * A request refused before it reached this adaptor by a check that stands for the pool's cap (others'
   * unused guarantees, a cuDNN scratch's budget): counted as the pool's refusal, once per request.
   */
  countRefusal(options?: AllocateOptions): void {
    if (!options?.retry) this.failed++;
  }

  deallocate(block: Block): void {
    const bytes = block.bytes;
    this.upstream.deallocate(block);
    this.live--;
    this.used -= bytes;
  }

  /** Restarts the peak at the current used bytes (e.g. per training epoch). */
  resetPeak(): void {
    this.peakUsed = this.used;
  }

  stats(): ResourceStats {
    const upstream = this.upstream.stats();
    return {
      usedBytes: this.used,
      reservedBytes: upstream.reservedBytes,
      peakUsedBytes: this.peakUsed,
      largestFreeBlockBytes: upstream.largestFreeBlockBytes,
      allocationCount: this.live,
      allocationsTotal: this.allocated,
      failedAllocationsTotal: this.failed,
    };
  }
}
