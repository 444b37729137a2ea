/**
 * PoolResource: sub-allocates chunks obtained from a ChunkSource (RMM's pool_memory_resource).
 *
 * - Every block is aligned: offsets and sizes are multiples of `alignment` (default 256 bytes).
 *   A request of 0 bytes takes one aligned unit (256 bytes), so that every live block has a distinct
 *   address; Block.requestedBytes stays 0.
 * - Best fit: a smallest free block that fits (among several of that size, the one that became free
 *   last); the rest of it stays free. Freed blocks coalesce with free neighbours in the same chunk,
 *   so no two physically adjacent blocks are ever both free.
 * - allocate and deallocate are O(log d), d = distinct sizes among the free blocks, and expected
 *   O(1) when no size enters or leaves the size index; stats() is O(1).
 * - Free blocks are records in a FreeSpanTable, found by size for best fit and by address for
 *   coalescing; live blocks are small objects with no links. At 10^6 live blocks the free ones
 *   number about 5·10^4, so the table stays in cache and a pair of free and allocate reads one cold
 *   object, the block freed (B5 in DESIGN.md §6).
 * - Growth: when nothing fits, a new chunk of max(aligned request, chunkBytes), clamped to what the
 *   reservation cap leaves. If the cap leaves too little and releasing fully free chunks would make
 *   room, just enough of them (oldest first) go back to the source first. If the source refuses a
 *   chunk larger than the request, the pool retries once with exactly the aligned request.
 * - Refusals throw OutOfMemoryError and leave the pool as it was. The one exception: when fully
 *   free chunks were given back to make room and the source then refused the new chunk, those
 *   chunks stay given back (they held no block, so no block and no used byte changed). A chunk that
 *   would end past 2^53 units of the pool's address space (see nextBase) is given back and refused
 *   with a plain Error, also counted as a failed allocation; no pool gets near that.
 * - deallocate takes the Block object allocate returned. Anything else (a copy, a block of another
 *   resource, a block freed already or released by release()) is an invariant violation: a plain
 *   Error, and nothing changes.
 *
 * - Dedicated blocks (AllocateOptions.dedicated, for ExportArray): a chunk of exactly the block's size
 *   (rounded up to the dedicated granule, DEDICATED_GRANULE_BYTES unless told, and the alignment), asked of the source as dedicated, holds
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
import { FreeSpanTable } from './free-span-table';
import { PoolCapture } from './pool-capture';
import { checkRequestBytes } from './sized-resource';
import type { SizedMemoryResource } from './sized-resource';
import { formatBytes } from '../units';

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
  /** What a dedicated chunk's size is a multiple of (a power of two); default DEDICATED_GRANULE_BYTES, a page. */
  dedicatedGranuleBytes?: number;
  /** How refusals name the reservation cap (default "pool reservation cap"); the daemon names its flag. */
  capName?: string;
  /** Monotonic clock in ms for releaseIdleChunks (default performance.now); read when a chunk's last block is freed. */
  now?: () => number;
}

/** The capName in this pool's refusals. */
export const POOL_RESERVATION_CAP = 'pool reservation cap';

/** Block alignment of every pool the daemon makes (the default of PoolResourceOptions.alignment). */
const DEFAULT_ALIGNMENT = 256;

/** A block's liveIndex once it is freed, or dropped by release(): the caller's reference is stale. */
const DEAD = -1;

class PoolChunk {
  /** Bytes in this chunk's live blocks. */
  usedBytes = 0;
  /** When its last live block was freed (PoolResourceOptions.now); meaningful while usedBytes is 0. */
  emptySince = 0;

  constructor(
    readonly pool: PoolResource,
    readonly handle: number,
    readonly bytes: number,
    /** Its index in the pool's chunk list by slot: a small integer, reused once the chunk is gone. */
    readonly slot: number,
    /** The address of its first byte in the pool's address space, in units of the alignment (the free-span table's keys); -1 for a dedicated chunk. */
    readonly base: number,
    /** A chunk of one block, released when that block is freed (AllocateOptions.dedicated). */
    readonly dedicated = false,
  ) {}
}

/**
 * A live block, handed out as Block. It holds no link to other blocks: a free finds its free
 * neighbours in the span table by address, so the only cold memory a free reads is this object
 * (B5), and a block costs five fields, 64 B (B8): its size is not one of them, as the request and
 * the chunk decide it (pooledSize).
 */
class PoolBlock implements Block {
  constructor(
    readonly chunk: PoolChunk,
    readonly offset: number,
    readonly requestedBytes: number,
    readonly owner: BlockOwner,
    /** Its place in the pool's list of live blocks; DEAD once freed or released. */
    public liveIndex: number,
  ) {}

  get chunkHandle(): number {
    return this.chunk.handle;
  }

  /** Bytes the block takes: its dedicated chunk, else the request rounded up to the alignment (one aligned unit for 0). */
  get bytes(): number {
    const chunk = this.chunk;
    if (chunk.dedicated) return chunk.bytes;
    return pooledSize(this.requestedBytes, chunk.pool.alignment);
  }
}

export class PoolResource implements SizedMemoryResource {
  readonly memory: MemoryKind;
  private readonly capName: string;
  readonly device: number | undefined;
  readonly alignment: number;
  /** What a dedicated chunk's size is a multiple of (PoolResourceOptions.dedicatedGranuleBytes). */
  private readonly dedicatedGranule: number;
  readonly maxReservedBytes: number;
  readonly chunkBytes: number;

  private readonly source: ChunkSource;
  private readonly now: () => number;
  /** maxReservedBytes rounded down to the alignment: the most chunk bytes the pool may hold. */
  private readonly reservationLimit: number;
  /** Chunks in the order they were obtained (Map keeps insertion order). */
  private readonly chunks = new Map<number, PoolChunk>();
  /** Chunks by slot (PoolChunk.slot); a slot whose chunk went back waits in spareSlots. */
  private readonly chunkBySlot: Array<PoolChunk | undefined> = [];
  private readonly spareSlots: number[] = [];
  /**
   * The base of the next chunk, in units of the alignment: chunks take ranges of one address space,
   * never reused, so that a free span is known by one small integer. A one-unit gap after each chunk
   * keeps the end of one chunk from being the start of the next, so free spans of two chunks never
   * look adjacent. Dedicated chunks, which never hold a free span, take no range. It starts again at
   * 0 whenever the pool holds no chunk; running out would take 2^53 units of chunks taken while the
   * pool was never empty.
   */
  private nextBase = 0;
  private readonly freeSpans: FreeSpanTable;
  /**
   * Every live block, in no order; a block knows its index. A free moves the last block into its
   * place, and in steady churn that last block is the one allocated just before, still in cache.
   * Snapshots, invariant checks and release() walk it.
   */
  private readonly live: PoolBlock[] = [];
  private used = 0;
  private reserved = 0;
  private peakUsed = 0;
  private allocationsTotal = 0;
  private failedAllocationsTotal = 0;

  constructor(options: PoolResourceOptions) {
    const alignment = options.alignment ?? DEFAULT_ALIGNMENT;
    if (!Number.isSafeInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0 || alignment > 2 ** 30) {
      throw invalidArgument('alignment', 'a power of two from 1 to 2^30', alignment);
    }
    const dedicatedGranule = options.dedicatedGranuleBytes ?? DEDICATED_GRANULE_BYTES;
    if (!Number.isSafeInteger(dedicatedGranule) || dedicatedGranule < 1 || (dedicatedGranule & (dedicatedGranule - 1)) !== 0 || dedicatedGranule > 2 ** 30) {
      throw invalidArgument('dedicatedGranuleBytes', 'a power of two from 1 to 2^30', dedicatedGranule);
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
    this.now = options.now ?? (() => performance.now());
    this.memory = options.memory;
    this.capName = options.capName ?? POOL_RESERVATION_CAP;
    this.device = options.device;
    this.alignment = alignment;
    this.dedicatedGranule = dedicatedGranule;
    this.maxReservedBytes = options.maxReservedBytes;
    this.chunkBytes = roundUp(options.chunkBytes, alignment);
    this.reservationLimit = Math.floor(options.maxReservedBytes / alignment) * alignment;
    this.freeSpans = new FreeSpanTable();
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
    return this.freeSpans.largestSize * this.alignment;
  }

  /** Live blocks. */
  get allocationCount(): number {
    return this.live.length;
  }

  /** Chunks held from the source. */
  get chunkCount(): number {
    return this.chunks.size;
  }

  /** Bytes a request of `bytes` takes: rounded up to the alignment, and one aligned unit for 0. */
  alignedSize(bytes: number, options?: AllocateOptions): number {
    checkRequestBytes(bytes);
    if (options?.dedicated) return roundUp(Math.max(bytes, 1), Math.max(this.alignment, this.dedicatedGranule));
    return pooledSize(bytes, this.alignment);
  }

  allocate(bytes: number, owner: BlockOwner, options?: AllocateOptions): Block {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      this.failedAllocationsTotal++;
      throw invalidArgument('bytes', 'a non-negative safe integer', bytes);
    }
    if (options?.dedicated) return this.allocateDedicated(bytes, owner);
    const size = pooledSize(bytes, this.alignment);
    let span = this.freeSpans.bestFit(size / this.alignment);
    if (span < 0) span = this.grow(size, bytes);
    return this.carve(span, size, bytes, owner);
  }

  deallocate(block: Block): void {
    if (!(block instanceof PoolBlock) || block.liveIndex === DEAD || block.chunk.pool !== this) {
      throw new Error(
        `deallocate: no live block of this pool at chunk ${block?.chunkHandle} offset ${block?.offset} (${block?.bytes} bytes): ` +
          'unknown, already freed, released, or from another resource',
      );
    }
    const chunk = block.chunk;
    const start = block.offset;
    const size = block.bytes;
    this.forget(block);
    chunk.usedBytes -= size;
    this.used -= size;
    if (chunk.dedicated) {
      this.releaseChunk(chunk);
      return;
    }
    if (chunk.usedBytes === 0) chunk.emptySince = this.now();
    // No two free spans are ever adjacent, so at most one free span ends where the block starts and
    // at most one starts where it ends; the freed bytes join them, or become a span of their own.
    const spans = this.freeSpans;
    const units = size / this.alignment;
    const address = chunk.base + start / this.alignment;
    const end = address + units;
    const before = spans.endingAt(address);
    const after = spans.startingAt(end);
    if (before >= 0) {
      const from = spans.addressOf(before);
      let to = end;
      if (after >= 0) {
        to += spans.sizeOf(after);
        spans.remove(after);
      }
      spans.resize(before, from, to - from);
    } else if (after >= 0) {
      spans.resize(after, address, end + spans.sizeOf(after) - address);
    } else {
      spans.insert(chunk.slot, address, units);
    }
  }

  /** A block in a chunk of its own (see the file comment); throws with nothing held. */
  private allocateDedicated(bytes: number, owner: BlockOwner): Block {
    const size = this.alignedSize(bytes, { dedicated: true });
    try {
      this.source.checkDedicated?.(size);
    } catch (error) {
      this.failedAllocationsTotal++;
      throw this.sourceRefusal(error, bytes);
    }
    this.makeRoom(size, bytes, true);
    let handle: number;
    try {
      handle = this.source.allocateChunk(size, { dedicated: true });
    } catch (error) {
      this.failedAllocationsTotal++;
      throw this.sourceRefusal(error, bytes);
    }
    return this.admit(this.adoptChunk(handle, size, true), 0, size, bytes, owner);
  }

  /** O(1). peakUsedBytes, allocationsTotal and failedAllocationsTotal count since construction. */
  stats(): ResourceStats {
    return {
      usedBytes: this.used,
      reservedBytes: this.reserved,
      peakUsedBytes: this.peakUsed,
      largestFreeBlockBytes: this.largestFreeBlockBytes,
      allocationCount: this.live.length,
      allocationsTotal: this.allocationsTotal,
      failedAllocationsTotal: this.failedAllocationsTotal,
    };
  }

  /** Gives every fully free chunk back to the source; returns the bytes released. */
  trim(): number {
    return this.releaseEmptyChunks(() => true);
  }

  /**
   * Gives back the chunks that have held no live block for at least `idleMs` (--pool-idle-release),
   * so that memory a burst took goes back to the device or the host while a steady load, which
   * reuses its chunks, keeps them; returns the bytes released.
   */
  releaseIdleChunks(idleMs: number): number {
    const before = this.now() - idleMs;
    return this.releaseEmptyChunks((chunk) => chunk.emptySince <= before);
  }

  private releaseEmptyChunks(release: (chunk: PoolChunk) => boolean): number {
    // Picked first, then released (releasing changes the map): no copy of every chunk (an exportable
    // array is a dedicated chunk of its own, so a pool may hold 100k of them).
    const picked: PoolChunk[] = [];
    for (const chunk of this.chunks.values()) if (chunk.usedBytes === 0 && release(chunk)) picked.push(chunk);
    let released = 0;
    for (const chunk of picked) {
      this.releaseChunk(chunk);
      released += chunk.bytes;
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
    for (const block of this.live) block.liveIndex = DEAD;
    for (const chunk of this.chunks.values()) {
      try {
        this.source.freeChunk(chunk.handle);
      } catch (error) {
        firstError ??= error;
      }
    }
    this.live.length = 0;
    this.chunks.clear();
    this.chunkBySlot.length = 0;
    this.spareSlots.length = 0;
    this.freeSpans.clear();
    this.reserved = 0;
    this.used = 0;
    if (firstError !== undefined) throw firstError;
  }

  /** Every chunk (in the order obtained) and its blocks by address, built now. O(blocks · log blocks). */
  snapshot(): SegmentSnapshot[] {
    return this.capture().build();
  }

  /**
   * The pool at this instant, to list its snapshot from later (PoolCapture.segments), a step at a
   * time while the pool changes: a copy of the live list and of the free spans, O(blocks) of copying.
   */
  capture(): PoolCapture {
    return new PoolCapture([...this.chunks.values()], this.live.slice(), this.freeSpans.copySpans(), this.alignment);
  }

  /**
   * For tests, O(blocks · log blocks): every chunk is tiled by its live blocks and free spans in
   * address order; offsets and sizes are aligned; no two adjacent spans are both free; the span
   * table is consistent and holds no span of a dedicated chunk; the live list knows each block's
   * place; live bytes sum to usedBytes, free + used to reservedBytes ≤ the cap. Throws an Error
   * naming the first violation.
   */
  checkInvariants(): void {
    const fail = (message: string): never => {
      throw new Error(`PoolResource invariant violated: ${message}`);
    };
    const tableViolation = this.freeSpans.violation();
    if (tableViolation !== null) fail(`free-span table: ${tableViolation}`);
    this.live.forEach((block, index) => {
      if (block.liveIndex !== index) fail(`live block at chunk ${block.chunkHandle} offset ${block.offset} says it is at ${block.liveIndex}, found at ${index}`);
      if (this.chunks.get(block.chunk.handle) !== block.chunk) fail(`live block at chunk ${block.chunkHandle} offset ${block.offset}: its chunk is not held`);
    });
    for (const id of this.freeSpans.ids()) {
      const chunk = this.chunkBySlot[this.freeSpans.chunkSlotOf(id)];
      if (chunk === undefined || this.chunks.get(chunk.handle) !== chunk) {
        fail(`free span ${id} lies in chunk slot ${this.freeSpans.chunkSlotOf(id)}, which holds no chunk`);
      } else if (chunk.dedicated) fail(`free span ${id} lies in dedicated chunk ${chunk.handle}`);
    }
    // Each chunk's tiling, walked in address order: where the next piece must start, what it has held.
    const tiling = new Map<PoolChunk, { expectedOffset: number; used: number; pieces: number; previousFree: boolean }>();
    for (const chunk of this.chunks.values()) tiling.set(chunk, { expectedOffset: 0, used: 0, pieces: 0, previousFree: false });
    let free = 0;
    this.walkBlocks((chunk, offset, bytes, block) => {
      const state = tiling.get(chunk)!;
      const where = `chunk ${chunk.handle} offset ${offset}`;
      if (offset !== state.expectedOffset) fail(`${where}: expected offset ${state.expectedOffset}`);
      if (bytes <= 0 || bytes % this.alignment !== 0) fail(`${where}: size ${bytes} is not a positive aligned size`);
      if (block === null) {
        if (state.previousFree) fail(`${where}: two adjacent free blocks`);
        free += bytes;
      } else {
        if (block.requestedBytes > bytes) fail(`${where}: requestedBytes ${block.requestedBytes} > bytes ${bytes}`);
        state.used += bytes;
      }
      state.expectedOffset += bytes;
      state.previousFree = block === null;
      state.pieces++;
    });
    let used = 0;
    let reserved = 0;
    let slotsHeld = 0;
    for (const [handle, chunk] of this.chunks) {
      if (chunk.handle !== handle) fail(`chunk ${chunk.handle} filed under handle ${handle}`);
      if (this.chunkBySlot[chunk.slot] !== chunk) fail(`chunk ${handle} is not found by its slot ${chunk.slot}`);
      slotsHeld++;
      if (chunk.bytes % this.alignment !== 0) fail(`chunk ${handle} size ${chunk.bytes} is not aligned`);
      reserved += chunk.bytes;
      const state = tiling.get(chunk)!;
      // A dedicated chunk whose release failed holds nothing: the source still has it, and trim() retries.
      const emptyDedicated = chunk.dedicated && state.pieces === 0;
      if (state.expectedOffset !== chunk.bytes && !emptyDedicated) fail(`chunk ${handle}: blocks cover ${state.expectedOffset} of ${chunk.bytes} bytes`);
      if (state.used !== chunk.usedBytes) fail(`chunk ${handle}: usedBytes ${chunk.usedBytes} but live blocks sum to ${state.used}`);
      if (emptyDedicated) free += chunk.bytes;
      used += state.used;
    }
    if (slotsHeld + this.spareSlots.length !== this.chunkBySlot.length) fail(`${this.chunkBySlot.length} chunk slots but ${slotsHeld} held and ${this.spareSlots.length} spare`);
    if (used !== this.used) fail(`usedBytes ${this.used} but live blocks sum to ${used}`);
    if (reserved !== this.reserved) fail(`reservedBytes ${this.reserved} but chunks sum to ${reserved}`);
    if (free + used !== this.reserved) fail(`free ${free} + used ${used} != reserved ${this.reserved}`);
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

  /**
   * Calls `visit` for each live block and free span of each chunk, by address: `visit(chunk, offset,
   * bytes, block)`, with block null for a free span. Each chunk's live blocks and free span ids are
   * sorted apart and merged, and no object is made per block. O(blocks · log blocks), for checks
   * (snapshots are built by PoolCapture).
   */
  private walkBlocks(visit: (chunk: PoolChunk, offset: number, bytes: number, block: PoolBlock | null) => void): void {
    const spans = this.freeSpans;
    const blocksBySlot: PoolBlock[][] = [];
    const spansBySlot: number[][] = [];
    for (const block of this.live) (blocksBySlot[block.chunk.slot] ??= []).push(block);
    for (const id of spans.ids()) (spansBySlot[spans.chunkSlotOf(id)] ??= []).push(id);
    for (const chunk of this.chunks.values()) {
      const blocks = byOffset(blocksBySlot[chunk.slot] ?? [], (block) => block.offset, chunk.bytes);
      const ids = byOffset(spansBySlot[chunk.slot] ?? [], (id) => (spans.addressOf(id) - chunk.base) * this.alignment, chunk.bytes);
      for (let b = 0, f = 0; b < blocks.length || f < ids.length; ) {
        const spanOffset = f < ids.length ? (spans.addressOf(ids[f]) - chunk.base) * this.alignment : Infinity;
        if (b === blocks.length || spanOffset < blocks[b].offset) {
          visit(chunk, spanOffset, spans.sizeOf(ids[f++]) * this.alignment, null);
        } else {
          const block = blocks[b++];
          visit(chunk, block.offset, block.bytes, block);
        }
      }
    }
  }

  /** Takes `size` bytes from the front of free span `span`; the rest stays free. */
  private carve(span: number, size: number, requestedBytes: number, owner: BlockOwner): Block {
    const spans = this.freeSpans;
    const chunk = this.chunkBySlot[spans.chunkSlotOf(span)]!;
    const units = size / this.alignment;
    const address = spans.addressOf(span);
    const spanUnits = spans.sizeOf(span);
    if (spanUnits === units) spans.remove(span);
    else spans.resize(span, address + units, spanUnits - units);
    return this.admit(chunk, (address - chunk.base) * this.alignment, size, requestedBytes, owner);
  }

  /** Makes the live block for bytes already taken from a chunk, and counts it. */
  private admit(chunk: PoolChunk, offset: number, size: number, requestedBytes: number, owner: BlockOwner): PoolBlock {
    const block = new PoolBlock(chunk, offset, requestedBytes, owner, this.live.length);
    this.live.push(block);
    chunk.usedBytes += size;
    this.used += size;
    if (this.used > this.peakUsed) this.peakUsed = this.used;
    this.allocationsTotal++;
    return block;
  }

  /** Takes a live block off the live list (the last block takes its place) and marks it dead. */
  private forget(block: PoolBlock): void {
    const index = block.liveIndex;
    const last = this.live.pop()!;
    if (last !== block) {
      this.live[index] = last;
      last.liveIndex = index;
    }
    block.liveIndex = DEAD;
  }

  /** Obtains a chunk that holds `size` bytes and returns its (whole-chunk) free span, or throws with nothing held. */
  private grow(size: number, requestedBytes: number): number {
    this.makeRoom(size, requestedBytes);
    const headroom = this.reservationLimit - this.reserved;
    const chunkBytes = Math.min(Math.max(size, this.chunkBytes), headroom);
    let handle: number;
    let bytes = chunkBytes;
    try {
      handle = this.source.allocateChunk(chunkBytes);
    } catch (error) {
      if (!(error instanceof OutOfMemoryError) || chunkBytes === size) {
        this.failedAllocationsTotal++;
        throw this.sourceRefusal(error, requestedBytes);
      }
      try {
        handle = this.source.allocateChunk(size);
        bytes = size;
      } catch (retryError) {
        this.failedAllocationsTotal++;
        throw this.sourceRefusal(retryError, requestedBytes);
      }
    }
    const chunk = this.adoptChunk(handle, bytes);
    return this.freeSpans.insert(chunk.slot, chunk.base, bytes / this.alignment);
  }

  /**
   * Makes the reservation cap leave `size` bytes for a new chunk, giving fully free chunks back
   * (oldest first) only when that is enough; otherwise refuses with nothing changed.
   */
  private makeRoom(size: number, requestedBytes: number, dedicated = false): void {
    if (size > this.reservationLimit - this.reserved) {
      // Decide before acting: give chunks back only if that makes room for this request.
      let releasable = 0;
      for (const chunk of this.chunks.values()) if (chunk.usedBytes === 0) releasable += chunk.bytes;
      if (size > this.reservationLimit - this.reserved + releasable) {
        this.failedAllocationsTotal++;
        const refusal = this.refusal(requestedBytes);
        if (!dedicated) {
          // The used bytes the message names leave room for the request: say that the chunks took the cap.
          if (this.used + size <= this.reservationLimit) throw new OutOfMemoryError({ ...refusal.facts, reservedBytes: this.reserved });
          throw refusal;
        }
        // The free space the message names lies in chunks the region cannot use: say where the cap went.
        throw new OutOfMemoryError({
          ...refusal.facts,
          backendDetail:
            `an exportable block needs ${formatBytes(size)} of its own, outside the pool's chunks, and the chunks ` +
            `already reserve ${formatBytes(this.reserved)} of the cap${releasable > 0 ? `, ${formatBytes(releasable)} of it in empty chunks` : ', none of it in empty chunks'}`,
        });
      }
      for (const chunk of [...this.chunks.values()]) {
        if (size <= this.reservationLimit - this.reserved) break;
        if (chunk.usedBytes === 0) this.releaseChunk(chunk);
      }
    }
  }

  /** Files a chunk the source just gave (its bytes not yet in the span table). */
  private adoptChunk(handle: number, bytes: number, dedicated = false): PoolChunk {
    if (this.chunks.size === 0) this.nextBase = 0;
    const units = bytes / this.alignment;
    if (!dedicated && !Number.isSafeInteger(this.nextBase + units)) {
      this.source.freeChunk(handle);
      this.failedAllocationsTotal++;
      throw new Error(`PoolResource: address space spent (${this.nextBase} units of chunks since the pool was last empty)`);
    }
    const slot = this.spareSlots.length > 0 ? this.spareSlots.pop()! : this.chunkBySlot.length;
    const chunk = new PoolChunk(this, handle, bytes, slot, dedicated ? -1 : this.nextBase, dedicated);
    chunk.emptySince = this.now();
    if (!dedicated) this.nextBase += units + 1;
    this.chunkBySlot[slot] = chunk;
    this.chunks.set(handle, chunk);
    this.reserved += bytes;
    return chunk;
  }

  /** Gives a chunk with no live block back to the source; if the source throws, the pool still holds it. */
  private releaseChunk(chunk: PoolChunk): void {
    const whole = chunk.dedicated ? -1 : this.freeSpans.startingAt(chunk.base);
    if (chunk.usedBytes !== 0 || (!chunk.dedicated && (whole < 0 || this.freeSpans.sizeOf(whole) * this.alignment !== chunk.bytes))) {
      throw new Error(`releaseChunk: chunk ${chunk.handle} is not one free block`);
    }
    this.source.freeChunk(chunk.handle);
    if (whole >= 0) this.freeSpans.remove(whole);
    this.chunks.delete(chunk.handle);
    this.chunkBySlot[chunk.slot] = undefined;
    this.spareSlots.push(chunk.slot);
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
      largestFreeBlockBytes: this.largestFreeBlockBytes,
    });
  }

  /**
   * The source's OutOfMemoryError with this pool's request, used bytes and largest free block, and, where
   * the backend refused, this pool's cap (the backend's own numbers are in its detail): the used bytes are
   * the pool's, so the cap beside them is too. Other errors as they are.
   */
  private sourceRefusal(error: unknown, requestedBytes: number): unknown {
    if (!(error instanceof OutOfMemoryError)) return error;
    return new OutOfMemoryError({
      ...error.facts,
      ...(error.facts.backendRefused ? { capName: this.capName, capBytes: this.maxReservedBytes } : {}),
      memory: this.memory,
      device: this.device ?? error.facts.device,
      requestedBytes,
      usedBytes: this.used,
      largestFreeBlockBytes: this.largestFreeBlockBytes,
    });
  }
}

/**
 * `items` (distinct offsets below `chunkBytes`) in offset order. Each offset is read once and packed
 * with the item's index into one number, and those numbers are sorted natively, so that a chunk of
 * 10^5 blocks scattered over the heap is not read again at every comparison; a chunk too large to
 * pack falls back to a comparison sort.
 */
function byOffset<T>(items: T[], offsetOf: (item: T) => number, chunkBytes: number): T[] {
  const scale = 2 ** Math.ceil(Math.log2(items.length + 1));
  if (chunkBytes * scale > Number.MAX_SAFE_INTEGER) return items.sort((a, b) => offsetOf(a) - offsetOf(b));
  const keys = new Float64Array(items.length);
  for (let i = 0; i < items.length; i++) keys[i] = offsetOf(items[i]) * scale + i;
  keys.sort();
  return Array.from(keys, (key) => items[key % scale]);
}

/** Rounds up to a multiple of `alignment`; exact for safe integers and power-of-two alignments. */
/** Bytes a pooled (not dedicated) request of `bytes` takes: rounded up to the alignment, one aligned unit for 0. */
function pooledSize(bytes: number, alignment: number): number {
  return bytes === 0 ? alignment : roundUp(bytes, alignment);
}

function roundUp(bytes: number, alignment: number): number {
  return Math.ceil(bytes / alignment) * alignment;
}
