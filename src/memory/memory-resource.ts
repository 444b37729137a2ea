/**
 * The allocator interface every pool and adaptor implements (RMM's device_memory_resource shape).
 * Behaviour is composed by wrapping: a PoolResource sub-allocates chunks from a ChunkSource;
 * LimitingAdaptor caps it; StatisticsAdaptor counts; quota adaptors wrap per tenant. Each adaptor
 * undoes its own bookkeeping when its upstream throws.
 */

/** Who holds a block, for snapshots and leak hunting. */
export interface BlockOwner {
  leaseId?: string;
  tenant?: string;
  arrayId?: string;
  workspaceId?: string;
  label?: string;
  /** What the block is: "array", "mirror", "workspace", "spill", ... */
  purpose?: string;
}

/** A sub-allocation: `bytes` (aligned) at `offset` inside chunk `chunkHandle`. */
export interface Block {
  readonly chunkHandle: number;
  readonly offset: number;
  /** Aligned size actually reserved for the block; what used_bytes counts. */
  readonly bytes: number;
  /** What the caller asked for (≤ bytes). */
  readonly requestedBytes: number;
  owner: BlockOwner;
}

export interface ResourceStats {
  /** Bytes in live blocks (aligned sizes). */
  usedBytes: number;
  /** Bytes in chunks held from upstream. */
  reservedBytes: number;
  peakUsedBytes: number;
  largestFreeBlockBytes: number;
  /** Live blocks. */
  allocationCount: number;
  /** Blocks handed out since start. */
  allocationsTotal: number;
  /** Requests refused since start. */
  failedAllocationsTotal: number;
}

/**
 * How a block is placed. dedicated: the block gets a chunk of its own, sized to it (rounded up to
 * DEDICATED_GRANULE_BYTES), that holds no other block and goes back to the source when the block is
 * freed, never reused; the source makes it exportable (a named shared-memory object for host memory).
 * ExportArray hands such chunks to other processes, whose mappings outlive the block.
 */
export interface AllocateOptions {
  dedicated?: boolean;
  /**
   * The request is being tried again after a refusal (a wait_for_memory waiter retried after a free):
   * a refusal now is not counted again in failedAllocationsTotal, which counts requests, not attempts.
   */
  retry?: boolean;
}

/** Dedicated chunks are whole pages, the unit of mmap. */
export const DEDICATED_GRANULE_BYTES = 4096;

/**
 * Dedicated device chunks on the cuda backend are whole multiples of 2 MiB: cudaMalloc may sub-allocate
 * a smaller allocation from a larger block, and a CUDA IPC handle of it shares that entire block, the
 * other allocations in it included (CUDA C++ Programming Guide, Interprocess Communication: "only share
 * allocations with a 2MiB aligned size").
 */
export const CUDA_IPC_GRANULE_BYTES = 2 * 1024 * 1024;

export interface MemoryResource {
  /** Throws OutOfMemoryError (src/errors.ts) with the numbers when it cannot; nothing is held then. */
  allocate(bytes: number, owner: BlockOwner, options?: AllocateOptions): Block;
  deallocate(block: Block): void;
  stats(): ResourceStats;
}

/** Where a pool gets its chunks: the native backend's device or host memory. */
export interface ChunkSource {
  /** Throws OutOfMemoryError when the backend refuses. `dedicated`: a chunk for one block that may be exported (AllocateOptions). */
  allocateChunk(bytes: number, options?: AllocateOptions): number;
  freeChunk(handle: number): void;
  /**
   * Throws when a dedicated chunk of `bytes` would be refused however much room the pool made (a cap on
   * how many there are, --max-mapped-regions): asked before the pool gives empty chunks back for it, so
   * that such a refusal changes nothing. The pool asks it before each allocateChunk of a dedicated
   * chunk, which then need not check again.
   */
  checkDedicated?(bytes: number): void;
}

/** One chunk and its blocks, for GetMemorySnapshot. */
export interface SegmentSnapshot {
  chunkHandle: number;
  bytes: number;
  /** A chunk of one exportable block (AllocateOptions.dedicated). */
  dedicated?: boolean;
  blocks: Array<{ offset: number; bytes: number; free: boolean; owner?: BlockOwner }>;
}
