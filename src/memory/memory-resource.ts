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

export interface MemoryResource {
  /** Throws OutOfMemoryError (src/errors.ts) with the numbers when it cannot; nothing is held then. */
  allocate(bytes: number, owner: BlockOwner): Block;
  deallocate(block: Block): void;
  stats(): ResourceStats;
}

/** Where a pool gets its chunks: the native backend's device or host memory. */
export interface ChunkSource {
  /** Throws OutOfMemoryError when the backend refuses. */
  allocateChunk(bytes: number): number;
  freeChunk(handle: number): void;
}

/** One chunk and its blocks, for GetMemorySnapshot. */
export interface SegmentSnapshot {
  chunkHandle: number;
  bytes: number;
  blocks: Array<{ offset: number; bytes: number; free: boolean; owner?: BlockOwner }>;
}
