/**
 * LimitingAdaptor: caps the used bytes of an upstream resource (RMM's limiting_resource_adaptor).
 *
 * The check comes before the upstream call: a request is refused when upstream used bytes plus the
 * bytes it would take (the upstream's alignedSize, e.g. 256-byte units for a PoolResource) would pass
 * the limit, so the upstream's used bytes never exceed the limit, not even for a moment. A request
 * that lands exactly on the limit is accepted. The used bytes are the upstream's own, so blocks
 * allocated on the upstream directly (not through this adaptor) count against the limit too.
 *
 * An upstream without alignedSize is taken to use exactly the requested bytes.
 */
import { OutOfMemoryError, invalidArgument } from '../errors';
import type { MemoryKind } from '../errors';
import type { AllocateOptions, Block, BlockOwner, ResourceStats } from './memory-resource';
import { alignedSizeOf, usedBytesOf } from './sized-resource';
import type { SizedMemoryResource } from './sized-resource';

export interface LimitingAdaptorOptions {
  /** Upstream used bytes never pass this. */
  limitBytes: number;
  /** Names the limit in refusals, e.g. "pool cap (maxbytes)", "host cap (host-maxbytes)". */
  capName: string;
  memory: MemoryKind;
  /** Device index, for DEVICE refusals. */
  device?: number;
}

export class LimitingAdaptor implements SizedMemoryResource {
  readonly capName: string;
  readonly memory: MemoryKind;
  readonly device: number | undefined;
  private limit: number;
  private refusals = 0;

  constructor(
    readonly upstream: SizedMemoryResource,
    options: LimitingAdaptorOptions,
  ) {
    checkLimit(options.limitBytes);
    this.limit = options.limitBytes;
    this.capName = options.capName;
    this.memory = options.memory;
    this.device = options.device;
  }

  get limitBytes(): number {
    return this.limit;
  }

  /**
   * Changes the limit for later requests. A limit below the current used bytes takes nothing back:
   * it refuses every request until enough is freed.
   */
  setLimit(limitBytes: number): void {
    checkLimit(limitBytes);
    this.limit = limitBytes;
  }

  /** The upstream's used bytes. */
  get usedBytes(): number {
    return usedBytesOf(this.upstream);
  }

  alignedSize(bytes: number, options?: AllocateOptions): number {
    return alignedSizeOf(this.upstream, bytes, options);
  }

  allocate(bytes: number, owner: BlockOwner, options?: AllocateOptions): Block {
    const size = alignedSizeOf(this.upstream, bytes, options);
    const used = usedBytesOf(this.upstream);
    if (used + size > this.limit) {
      this.refusals++;
      throw new OutOfMemoryError({
        memory: this.memory,
        device: this.device,
        requestedBytes: bytes,
        capName: this.capName,
        capBytes: this.limit,
        usedBytes: used,
        largestFreeBlockBytes: this.upstream.stats().largestFreeBlockBytes,
      });
    }
    return this.upstream.allocate(bytes, owner, options);
  }

  deallocate(block: Block): void {
    this.upstream.deallocate(block);
  }

  /** The upstream's stats, with this adaptor's refusals added to failedAllocationsTotal. */
  stats(): ResourceStats {
    const stats = this.upstream.stats();
    return { ...stats, failedAllocationsTotal: stats.failedAllocationsTotal + this.refusals };
  }
}

function checkLimit(limitBytes: number): void {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) throw invalidArgument('limitBytes', 'a non-negative safe integer', limitBytes);
}
