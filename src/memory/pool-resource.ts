/**
 * PoolResource: sub-allocates chunks obtained from a ChunkSource (RMM's pool_memory_resource).
 *
 * - Every block is aligned: offsets and sizes are multiples of `alignment` (default 256 bytes).
 *   A request of 0 bytes takes one aligned unit (256 bytes), so that every live block has a distinct
 *   address; Block.requestedBytes stays 0.
 * - Best fit: a smallest free block that fits (among several of that size, the one that became free
 *   last); the rest of it stays free. Freed blocks coalesce with free neighbours in the same chunk,
 *   so no two physically adjacent blocks are ever both free.
 * - allocate and deallocate are O(log d), d = distinct sizes among the free blocks (FreeBlockIndex),
 *   and O(1) when no size enters or leaves the index; stats() is O(1).
 * - Growth: when nothing fits, a new chunk of max(aligned request, chunkBytes), clamped to what the
 *   reservation cap leaves. If the cap leaves too little and releasing fully free chunks would make
 *   room, just enough of them (oldest first) go back to the source first. If the source refuses a
 *   chunk larger than the request, the pool retries once with exactly the aligned request.
 * - Refusals throw OutOfMemoryError and leave the pool as it was. The one exception: when fully
 *   free chunks were given back to make room and the source then refused the new chunk, those
 *   chunks stay given back (they held no block, so no block and no used byte changed).
 * - deallocate takes the Block object allocate returned. Anything else (a copy, a block of another
 *   resource, a block freed already or released by release()) is an invariant violation: a plain
 *   Error, and nothing changes.
 *
 * - Dedicated blocks (AllocateOptions.dedicated, for ExportArray): a chunk of exactly the block's size
 *   (rounded up to DEDICATED_GRANULE_BYTES and the alignment), asked of the source as dedicated, holds
 *   that block only and goes back to the source when the block is freed: another process may have it
 *   mapped, so its memory must never hold another block. It counts in used and reserved bytes like any
 *   chunk; making room for it may give fully free chunks back first, as growth does.
 *
 * Limits, quotas and statistics are adaptors around a pool (LimitingAdaptor, StatisticsAdaptor), not
 * flags in it; maxReservedBytes only bounds the chunks the pool holds.
 */
import { OutOfMemoryError, invalidArgument } from '../errors';
import type { MemoryKind } from '../errors';
import type { AllocateOptions, Block, BlockOwner, ChunkSource, ResourceStats, SegmentSnapshot } from './memory-resource';
import { DEDICATED_GRANULE_BYTES } from './memory-resource';
import { FreeBlockIndex } from './free-block-index';
import type { FreeBucketRef, FreeListNode } from './free-block-index';
import { checkRequestBytes } from './sized-resource';
import type { SizedMemoryResource } from './sized-resource';

export interface PoolResourceOptions {
  source: ChunkSource;
  memory: MemoryKind;
  /** Device index, for DEVICE pools' error messages. */
  device?: number;
  /** The pool never holds more chunk bytes than this (rounded down to the alignment). */
  maxReservedBytes: number;
  /** Growth granularity: the least a new chunk takes (rounded up to the alignment), e.g. 64 MiB. */
  chunkBytes: number;
  /** Power of two; default 256. */
  alignment?: number;
  /** How refusals name the reservation cap (default "pool reservation cap"); the daemon names its flag. */
  capName?: string;
}

/** The capName in this pool's refusals. */
export const POOL_RESERVATION_CAP = 'pool reservation cap';

/** Block alignment of every pool the daemon makes (the default of PoolOptions.alignment). */
export const POOL_ALIGNMENT = 256;
const DEFAULT_ALIGNMENT = POOL_ALIGNMENT;

/** Most dead FreeSpans a pool keeps for reuse (each about 100 bytes of heap). */
const MAX_SPARE_SPANS = 1024;

/** A block's state. Dead: freed by deallocate or dropped by release(); the caller's reference is stale. */
const BlockState = { Free: 0, Live: 1, Dead: 2 } as const;
type BlockState = (typeof BlockState)[keyof typeof BlockState];

class PoolChunk {
  /** Bytes in this chunk's live blocks. */
  usedBytes = 0;
  /** The block at offset 0; blocks follow by address through `next`. */
  head: Span;

  constructor(
    readonly pool: PoolResource,
    readonly handle: number,
    readonly bytes: number,
    /** A chunk of one block, released when that block is freed (AllocateOptions.dedicated). */
    readonly dedicated = false,
  ) {
    this.head = new FreeSpan(this, 0, bytes);
  }
}

/**
 * What live and free blocks share: a place in their chunk's address-ordered list. A live block and a
 * free one are objects of different classes, because a live block never becomes free: freeing it
 * gives its bytes to a free neighbour or to a new FreeSpan, and allocating carves a new PoolBlock off
 * a FreeSpan. So only free blocks carry the free-block index's links, and live blocks (one per array)
 * stay small (DESIGN.md §6, B8).
 */
abstract class PoolSpan {
  /** Neighbours by address in the chunk. */
  prev: Span | null = null;
  next: Span | null = null;

  constructor(
    /** Fixed for a live block; a FreeSpan changes chunk only when the pool reuses it (spareSpans). */
    public chunk: PoolChunk,
    public offset: number,
    public bytes: number,
  ) {}

  get chunkHandle(): number {
    return this.chunk.handle;
  }
}

/** A live block, handed out as Block; it never changes afterwards except its state (Live, then Dead). */
class PoolBlock extends PoolSpan implements Block {
  constructor(
    chunk: PoolChunk,
    offset: number,
    bytes: number,
    readonly requestedBytes: number,
    readonly owner: BlockOwner,
    public state: typeof BlockState.Live | typeof BlockState.Dead,
  ) {
    super(chunk, offset, bytes);
  }
}

/** A free block: also a node of the free-block index, whose links it carries. */
class FreeSpan extends PoolSpan implements FreeListNode<FreeSpan> {
  state: typeof BlockState.Free | typeof BlockState.Dead = BlockState.Free;
  prevFree: FreeSpan | null = null;
  nextFree: FreeSpan | null = null;
  freeBucket: FreeBucketRef | null = null;
}

type Span = PoolBlock | FreeSpan;

export class PoolResource implements SizedMemoryResource {
  readonly memory: MemoryKind;
  private readonly capName: string;
  readonly device: number | undefined;
  readonly alignment: number;
  readonly maxReservedBytes: number;
  readonly chunkBytes: number;

  private readonly source: ChunkSource;
  /** maxReservedBytes rounded down to the alignment: the most chunk bytes the pool may hold. */
  private readonly reservationLimit: number;
  /** Chunks in the order they were obtained (Map keeps insertion order). */
  private readonly chunks = new Map<number, PoolChunk>();
  private readonly freeBlocks = new FreeBlockIndex<FreeSpan>();
  /**
   * Dead FreeSpans for reuse: a free that coalesces with nothing needs a new free block, and a carve
   * that fills a hole exactly, or a free that joins three blocks, retires one. Reusing them keeps that
   * churn out of V8's young generation, where at 10⁵–10⁶ live blocks every object that survives a
   * scavenge costs copying and slot updates across the old heap (B5).
   */
  private readonly spareSpans: FreeSpan[] = [];
  private used = 0;
  private reserved = 0;
  private peakUsed = 0;
  private liveBlocks = 0;
  private allocationsTotal = 0;
  private failedAllocationsTotal = 0;

  constructor(options: PoolResourceOptions) {
    const alignment = options.alignment ?? DEFAULT_ALIGNMENT;
    if (!Number.isSafeInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0 || alignment > 2 ** 30) {
      throw invalidArgument('alignment', 'a power of two from 1 to 2^30', alignment);
    }
    if (!Number.isSafeInteger(options.maxReservedBytes) || options.maxReservedBytes < 0) {
      throw invalidArgument('maxReservedBytes', 'a non-negative safe integer', options.maxReservedBytes);
    }
    if (!Number.isSafeInteger(options.chunkBytes) || options.chunkBytes < 1) {
      throw invalidArgument('chunkBytes', 'a positive safe integer', options.chunkBytes);
    }
    if (options.device !== undefined && (!Number.isSafeInteger(options.device) || options.device < 0)) {
      throw invalidArgument('device', 'a non-negative integer', options.device);
    }
    this.source = options.source;
    this.memory = options.memory;
    this.capName = options.capName ?? POOL_RESERVATION_CAP;
    this.device = options.device;
    this.alignment = alignment;
    this.maxReservedBytes = options.maxReservedBytes;
    this.chunkBytes = roundUp(options.chunkBytes, alignment);
    this.reservationLimit = Math.floor(options.maxReservedBytes / alignment) * alignment;
  }

  /** Bytes in live blocks (aligned sizes). */
  get usedBytes(): number {
    return this.used;
  }

  /** Bytes in chunks held from the source. */
  get reservedBytes(): number {
    return this.reserved;
  }

  get largestFreeBlockBytes(): number {
    return this.freeBlocks.largestBytes;
  }

  /** Live blocks. */
  get allocationCount(): number {
    return this.liveBlocks;
  }

  /** Chunks held from the source. */
  get chunkCount(): number {
    return this.chunks.size;
  }

  /** Bytes a request of `bytes` takes: rounded up to the alignment, and one aligned unit for 0. */
  alignedSize(bytes: number, options?: AllocateOptions): number {
    checkRequestBytes(bytes);
    if (options?.dedicated) return roundUp(Math.max(bytes, 1), Math.max(this.alignment, DEDICATED_GRANULE_BYTES));
    return bytes === 0 ? this.alignment : roundUp(bytes, this.alignment);
  }

  allocate(bytes: number, owner: BlockOwner, options?: AllocateOptions): Block {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      this.failedAllocationsTotal++;
      throw invalidArgument('bytes', 'a non-negative safe integer', bytes);
    }
    if (options?.dedicated) return this.allocateDedicated(bytes, owner);
    const size = bytes === 0 ? this.alignment : roundUp(bytes, this.alignment);
    const hole = this.freeBlocks.bestFit(size) ?? this.grow(size, bytes);
    return this.carve(hole, size, bytes, owner);
  }

  deallocate(block: Block): void {
    if (!(block instanceof PoolBlock) || block.state !== BlockState.Live || block.chunk.pool !== this) {
      throw new Error(
        `deallocate: no live block of this pool at chunk ${block?.chunkHandle} offset ${block?.offset} (${block?.bytes} bytes): ` +
          'unknown, already freed, released, or from another resource',
      );
    }
    const chunk = block.chunk;
    const size = block.bytes;
    block.state = BlockState.Dead;
    chunk.usedBytes -= size;
    this.used -= size;
    this.liveBlocks--;

    const prev = block.prev;
    const next = block.next;
    if (prev instanceof FreeSpan) {
      if (next instanceof FreeSpan) {
        this.freeBlocks.remove(next);
        this.freeBlocks.resize(prev, prev.bytes + size + next.bytes);
        const after = next.next;
        prev.next = after;
        if (after !== null) after.prev = prev;
        this.retireSpan(next);
      } else {
        this.freeBlocks.resize(prev, prev.bytes + size);
        prev.next = next;
        if (next !== null) next.prev = prev;
      }
    } else if (next instanceof FreeSpan) {
      this.freeBlocks.resize(next, next.bytes + size);
      next.offset = block.offset;
      next.prev = prev;
      if (prev !== null) prev.next = next;
      else chunk.head = next;
    } else {
      const hole = this.newFreeSpan(chunk, block.offset, size);
      hole.prev = prev;
      hole.next = next;
      if (prev !== null) prev.next = hole;
      else chunk.head = hole;
      if (next !== null) next.prev = hole;
      this.freeBlocks.insert(hole);
    }
    block.prev = null;
    block.next = null;
    if (chunk.dedicated) this.releaseChunk(chunk);
  }

  /** A block in a chunk of its own (see the file comment); throws with nothing held. */
  private allocateDedicated(bytes: number, owner: BlockOwner): Block {
    const size = this.alignedSize(bytes, { dedicated: true });
    this.makeRoom(size, bytes);
    let handle: number;
    try {
      handle = this.source.allocateChunk(size, { dedicated: true });
    } catch (error) {
      this.failedAllocationsTotal++;
      throw this.sourceRefusal(error, bytes);
    }
    return this.carve(this.adoptChunk(handle, size, true), size, bytes, owner);
  }

  /** O(1). peakUsedBytes, allocationsTotal and failedAllocationsTotal count since construction. */
  stats(): ResourceStats {
    return {
      usedBytes: this.used,
      reservedBytes: this.reserved,
      peakUsedBytes: this.peakUsed,
      largestFreeBlockBytes: this.freeBlocks.largestBytes,
      allocationCount: this.liveBlocks,
      allocationsTotal: this.allocationsTotal,
      failedAllocationsTotal: this.failedAllocationsTotal,
    };
  }

  /** Gives every fully free chunk back to the source; returns the bytes released. */
  trim(): number {
    let released = 0;
    for (const chunk of [...this.chunks.values()]) {
      if (chunk.usedBytes === 0) {
        this.releaseChunk(chunk);
        released += chunk.bytes;
      }
    }
    return released;
  }

  /**
   * Shutdown: gives every chunk back to the source, live blocks included; those blocks become stale
   * (deallocate throws for them). If the source throws for a chunk, the rest are still freed and the
   * first error is rethrown at the end; the pool is empty either way.
   */
  release(): void {
    let firstError: unknown = undefined;
    for (const chunk of this.chunks.values()) {
      for (let block: Span | null = chunk.head; block !== null; ) {
        const next: Span | null = block.next;
        block.state = BlockState.Dead;
        block.prev = null;
        block.next = null;
        block = next;
      }
      try {
        this.source.freeChunk(chunk.handle);
      } catch (error) {
        firstError ??= error;
      }
    }
    this.chunks.clear();
    this.freeBlocks.clear();
    this.reserved = 0;
    this.used = 0;
    this.liveBlocks = 0;
    if (firstError !== undefined) throw firstError;
  }

  /** Every chunk (in the order obtained) and its blocks by address. O(blocks). */
  snapshot(): SegmentSnapshot[] {
    const segments: SegmentSnapshot[] = [];
    for (const chunk of this.chunks.values()) {
      const blocks: SegmentSnapshot['blocks'] = [];
      for (let block: Span | null = chunk.head; block !== null; block = block.next) {
        if (block instanceof FreeSpan) blocks.push({ offset: block.offset, bytes: block.bytes, free: true });
        else blocks.push({ offset: block.offset, bytes: block.bytes, free: false, owner: block.owner });
      }
      segments.push({ chunkHandle: chunk.handle, bytes: chunk.bytes, ...(chunk.dedicated ? { dedicated: true } : {}), blocks });
    }
    return segments;
  }

  /**
   * For tests, O(blocks): every chunk is tiled by its blocks in address order; offsets and sizes are
   * aligned; no two adjacent blocks are both free; the free blocks are exactly the index's nodes;
   * live bytes sum to usedBytes, free + used to reservedBytes ≤ the cap. Throws an Error naming the
   * first violation.
   */
  checkInvariants(): void {
    const fail = (message: string): never => {
      throw new Error(`PoolResource invariant violated: ${message}`);
    };
    const treeViolation = this.freeBlocks.violation();
    if (treeViolation !== null) fail(`free-block index: ${treeViolation}`);
    const indexed = new Set<FreeSpan>(this.freeBlocks.nodes());
    let used = 0;
    let free = 0;
    let freeCount = 0;
    let live = 0;
    let reserved = 0;
    for (const [handle, chunk] of this.chunks) {
      if (chunk.handle !== handle) fail(`chunk ${chunk.handle} filed under handle ${handle}`);
      if (chunk.bytes % this.alignment !== 0) fail(`chunk ${handle} size ${chunk.bytes} is not aligned`);
      reserved += chunk.bytes;
      let chunkUsed = 0;
      let expectedOffset = 0;
      let previous: Span | null = null;
      for (let block: Span | null = chunk.head; block !== null; block = block.next) {
        const where = `chunk ${handle} offset ${block.offset}`;
        if (block.chunk !== chunk) fail(`${where}: block belongs to another chunk`);
        if (block.prev !== previous) fail(`${where}: prev link broken`);
        if (block.offset !== expectedOffset) fail(`${where}: expected offset ${expectedOffset}`);
        if (block.bytes <= 0 || block.bytes % this.alignment !== 0) fail(`${where}: size ${block.bytes} is not a positive aligned size`);
        if (block.state === BlockState.Dead) {
          fail(`${where}: a dead block is still linked`);
        } else if (block instanceof FreeSpan) {
          if (previous instanceof FreeSpan) fail(`${where}: two adjacent free blocks`);
          if (!indexed.has(block)) fail(`${where}: free block missing from the index`);
          free += block.bytes;
          freeCount++;
        } else {
          if (block.requestedBytes > block.bytes) fail(`${where}: requestedBytes ${block.requestedBytes} > bytes ${block.bytes}`);
          chunkUsed += block.bytes;
          live++;
        }
        expectedOffset += block.bytes;
        previous = block;
      }
      if (expectedOffset !== chunk.bytes) fail(`chunk ${handle}: blocks cover ${expectedOffset} of ${chunk.bytes} bytes`);
      if (chunkUsed !== chunk.usedBytes) fail(`chunk ${handle}: usedBytes ${chunk.usedBytes} but live blocks sum to ${chunkUsed}`);
      used += chunkUsed;
    }
    if (used !== this.used) fail(`usedBytes ${this.used} but live blocks sum to ${used}`);
    if (live !== this.liveBlocks) fail(`allocationCount ${this.liveBlocks} but ${live} live blocks`);
    if (reserved !== this.reserved) fail(`reservedBytes ${this.reserved} but chunks sum to ${reserved}`);
    if (free + used !== this.reserved) fail(`free ${free} + used ${used} != reserved ${this.reserved}`);
    if (freeCount !== this.freeBlocks.size) fail(`${freeCount} free blocks in chunks but ${this.freeBlocks.size} in the index`);
    if (this.reserved > this.reservationLimit) fail(`reservedBytes ${this.reserved} above the cap ${this.reservationLimit}`);
    if (this.peakUsed < this.used) fail(`peakUsedBytes ${this.peakUsed} below usedBytes ${this.used}`);
  }

  /** checkInvariants() as a boolean. */
  invariantHolds(): boolean {
    try {
      this.checkInvariants();
      return true;
    } catch {
      return false;
    }
  }

  /** Takes `size` bytes from the front of free block `hole`; the rest stays free. */
  private carve(hole: FreeSpan, size: number, requestedBytes: number, owner: BlockOwner): Block {
    const chunk = hole.chunk;
    const block = new PoolBlock(chunk, hole.offset, size, requestedBytes, owner, BlockState.Live);
    const prev = hole.prev;
    block.prev = prev;
    if (prev !== null) prev.next = block;
    else chunk.head = block;
    if (hole.bytes === size) {
      this.freeBlocks.remove(hole);
      const next = hole.next;
      block.next = next;
      if (next !== null) next.prev = block;
      this.retireSpan(hole);
    } else {
      this.freeBlocks.resize(hole, hole.bytes - size);
      block.next = hole;
      hole.prev = block;
      hole.offset += size;
    }
    chunk.usedBytes += size;
    this.used += size;
    if (this.used > this.peakUsed) this.peakUsed = this.used;
    this.liveBlocks++;
    this.allocationsTotal++;
    return block;
  }

  /** A FreeSpan for these bytes: a spare one when there is one (no new object to collect), else a new one. */
  private newFreeSpan(chunk: PoolChunk, offset: number, bytes: number): FreeSpan {
    const span = this.spareSpans.pop();
    if (span === undefined) return new FreeSpan(chunk, offset, bytes);
    span.chunk = chunk;
    span.offset = offset;
    span.bytes = bytes;
    span.state = BlockState.Free;
    return span;
  }

  /** A FreeSpan that left the chunk's list and the index: dead, and kept as a spare while there is room. */
  private retireSpan(span: FreeSpan): void {
    span.prev = null;
    span.next = null;
    span.state = BlockState.Dead;
    if (this.spareSpans.length < MAX_SPARE_SPANS) this.spareSpans.push(span);
  }

  /** Obtains a chunk that holds `size` bytes and returns its (whole-chunk) free block, or throws with nothing held. */
  private grow(size: number, requestedBytes: number): FreeSpan {
    this.makeRoom(size, requestedBytes);
    const headroom = this.reservationLimit - this.reserved;
    const chunkBytes = Math.min(Math.max(size, this.chunkBytes), headroom);
    let handle: number;
    try {
      handle = this.source.allocateChunk(chunkBytes);
    } catch (error) {
      if (!(error instanceof OutOfMemoryError) || chunkBytes === size) {
        this.failedAllocationsTotal++;
        throw this.sourceRefusal(error, requestedBytes);
      }
      try {
        handle = this.source.allocateChunk(size);
      } catch (retryError) {
        this.failedAllocationsTotal++;
        throw this.sourceRefusal(retryError, requestedBytes);
      }
      return this.adoptChunk(handle, size);
    }
    return this.adoptChunk(handle, chunkBytes);
  }

  /**
   * Makes the reservation cap leave `size` bytes for a new chunk, giving fully free chunks back
   * (oldest first) only when that is enough; otherwise refuses with nothing changed.
   */
  private makeRoom(size: number, requestedBytes: number): void {
    if (size > this.reservationLimit - this.reserved) {
      // Decide before acting: give chunks back only if that makes room for this request.
      let releasable = 0;
      for (const chunk of this.chunks.values()) if (chunk.usedBytes === 0) releasable += chunk.bytes;
      if (size > this.reservationLimit - this.reserved + releasable) {
        this.failedAllocationsTotal++;
        throw this.refusal(requestedBytes);
      }
      for (const chunk of [...this.chunks.values()]) {
        if (size <= this.reservationLimit - this.reserved) break;
        if (chunk.usedBytes === 0) this.releaseChunk(chunk);
      }
    }
  }

  private adoptChunk(handle: number, bytes: number, dedicated = false): FreeSpan {
    const chunk = new PoolChunk(this, handle, bytes, dedicated);
    const whole = chunk.head as FreeSpan;
    this.chunks.set(handle, chunk);
    this.reserved += bytes;
    this.freeBlocks.insert(whole);
    return whole;
  }

  /** Gives a fully free chunk back to the source; if the source throws, the pool still holds it. */
  private releaseChunk(chunk: PoolChunk): void {
    const whole = chunk.head;
    if (!(whole instanceof FreeSpan) || whole.next !== null) throw new Error(`releaseChunk: chunk ${chunk.handle} is not one free block`);
    this.source.freeChunk(chunk.handle);
    this.freeBlocks.remove(whole);
    whole.state = BlockState.Dead;
    this.chunks.delete(chunk.handle);
    this.reserved -= chunk.bytes;
  }

  private refusal(requestedBytes: number): OutOfMemoryError {
    return new OutOfMemoryError({
      memory: this.memory,
      device: this.device,
      requestedBytes,
      capName: this.capName,
      capBytes: this.maxReservedBytes,
      usedBytes: this.used,
      largestFreeBlockBytes: this.freeBlocks.largestBytes,
    });
  }

  /** The source's OutOfMemoryError with this pool's request, used bytes and largest free block; other errors as they are. */
  private sourceRefusal(error: unknown, requestedBytes: number): unknown {
    if (!(error instanceof OutOfMemoryError)) return error;
    return new OutOfMemoryError({
      ...error.facts,
      memory: this.memory,
      device: this.device ?? error.facts.device,
      requestedBytes,
      usedBytes: this.used,
      largestFreeBlockBytes: this.freeBlocks.largestBytes,
    });
  }
}

/** Rounds up to a multiple of `alignment`; exact for safe integers and power-of-two alignments. */
function roundUp(bytes: number, alignment: number): number {
  return Math.ceil(bytes / alignment) * alignment;
}
