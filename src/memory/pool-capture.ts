/**
 * A pool's segments and blocks taken at one instant, cheaply, and built afterwards a step at a time.
 *
 * PoolResource.snapshot() used to sort every chunk's blocks and make an object per block in one go:
 * at 10^6 live blocks that held the event loop for 0.25-0.6 s (more in a busy daemon), and every
 * other client's call waited, for each GetMemorySnapshot and /api/snapshot. Here the instant is only
 * copies: the chunks, the list of live block objects (a block's chunk, offset, size and owner never
 * change, so the objects themselves are the record of it, even once freed) and the free spans (the
 * table changes, so its records are copied into a Float64Array). The sorting by address comes after,
 * from those copies only, in steps of SNAPSHOT_STEP blocks, and the blocks are then read one at a
 * time (SegmentView), while the pool goes on allocating and freeing: the snapshot is still the pool
 * of that instant, no block in it twice or missing, its bytes those of the pool's counters then.
 */
import type { BlockOwner, SegmentSnapshot } from './memory-resource';

/** Blocks (or free spans) handled between two points where a build may yield. */
export const SNAPSHOT_STEP = 8192;

/** The event loop time segmentsInSlices() takes before it lets other work in. */
export const SNAPSHOT_SLICE_MS = 4;

/** What a capture reads of a chunk; none of it changes while the pool holds the chunk. */
export interface CapturedChunk {
  readonly handle: number;
  readonly bytes: number;
  /** Its slot in the pool (unique among the chunks held at one instant). */
  readonly slot: number;
  /** Its first address in the pool's address space, in units of the alignment; -1 for a dedicated chunk. */
  readonly base: number;
  readonly dedicated: boolean;
}

/** What a capture reads of a live block: fixed from its allocation on. */
export interface CapturedBlock {
  readonly chunk: CapturedChunk;
  readonly offset: number;
  readonly bytes: number;
  readonly owner: BlockOwner;
}

/** A block or free span of a snapshot (SegmentSnapshot's blocks). */
export type SnapshotBlock = SegmentSnapshot['blocks'][number];

/**
 * One chunk of a capture with its blocks and free spans in address order, read one at a time
 * (block(k) makes a short-lived object): a snapshot listed through these keeps no object per block,
 * where 10^6 of them kept alive through the listing made every young-generation GC copy them (pauses
 * of 60-180 ms on a loaded machine).
 */
export interface SegmentView {
  readonly chunkHandle: number;
  readonly bytes: number;
  readonly dedicated: boolean;
  /** Blocks and free spans. */
  readonly count: number;
  /** The k-th by address, 0 <= k < count. */
  block(k: number): SnapshotBlock;
}

export class PoolCapture {
  constructor(
    /** The chunks in the order the pool obtained them. */
    private readonly chunks: readonly CapturedChunk[],
    /** A copy of the pool's list of live blocks. */
    private readonly blocks: readonly CapturedBlock[],
    /** The free spans, [address, size, chunk slot] for each, addresses and sizes in units. */
    private readonly spans: Float64Array,
    private readonly alignment: number,
  ) {}

  /** Live blocks and free spans: the entries of the snapshot. */
  get blockCount(): number {
    return this.blocks.length + this.spans.length / 3;
  }

  /**
   * Every chunk (in the order obtained) with its blocks and free spans by address, as each is ready;
   * undefined between, every SNAPSHOT_STEP blocks or so of work, where the caller may let other work
   * in. O(blocks · log blocks) in all, O(SNAPSHOT_STEP · log) between two yields whatever the size of
   * a chunk.
   */
  *segments(): Generator<SegmentView | undefined, void, void> {
    const { chunks, blocks, spans, alignment } = this;
    const blockCount = blocks.length;
    const spanCount = spans.length / 3;
    let maxSlot = -1;
    for (const chunk of chunks) maxSlot = Math.max(maxSlot, chunk.slot);
    const ordinalOfSlot = new Int32Array(maxSlot + 1).fill(-1);
    chunks.forEach((chunk, ordinal) => (ordinalOfSlot[chunk.slot] = ordinal));

    // Each block's and span's chunk (by ordinal), and how many entries each chunk has.
    const entryChunk = new Int32Array(blockCount + spanCount);
    const counts = new Int32Array(chunks.length + 1);
    for (let i = 0; i < blockCount; i++) {
      const ordinal = ordinalOfSlot[blocks[i].chunk.slot];
      entryChunk[i] = ordinal;
      counts[ordinal + 1]++;
      if ((i + 1) % SNAPSHOT_STEP === 0) yield;
    }
    for (let j = 0; j < spanCount; j++) {
      const ordinal = ordinalOfSlot[spans[3 * j + 2]];
      entryChunk[blockCount + j] = ordinal;
      counts[ordinal + 1]++;
    }
    yield;
    // starts[c]..starts[c + 1]: chunk c's entries (an entry: i < blockCount a block, else span i - blockCount).
    const starts = counts;
    for (let c = 0; c < chunks.length; c++) starts[c + 1] += starts[c];
    const fill = starts.slice(0, chunks.length);
    const entries = new Int32Array(blockCount + spanCount);
    for (let e = 0; e < entries.length; e++) {
      entries[fill[entryChunk[e]]++] = e;
      if ((e + 1) % SNAPSHOT_STEP === 0) yield;
    }

    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c];
      const start = starts[c];
      const count = starts[c + 1] - start;
      const unitsOf = (entry: number) => (entry < blockCount ? blocks[entry].offset / alignment : spans[3 * (entry - blockCount)] - chunk.base);
      // A chunk's entries in address order: each key packs an entry's offset (in units) and its place
      // in `entries`, so that they sort as plain numbers, natively, with nothing read again.
      const scale = 2 ** Math.ceil(Math.log2(count + 1));
      let order: Int32Array;
      if ((chunk.bytes / alignment) * scale > Number.MAX_SAFE_INTEGER) {
        // A chunk too large to pack (past 2^53 units times its entries; no pool comes near): compared one by one.
        order = entries.slice(start, start + count).sort((a, b) => unitsOf(a) - unitsOf(b));
        yield;
      } else {
        let keys: Float64Array<ArrayBuffer> = new Float64Array(count);
        for (let k = 0; k < count; k++) {
          keys[k] = unitsOf(entries[start + k]) * scale + k;
          if ((k + 1) % SNAPSHOT_STEP === 0) yield;
        }
        keys = yield* sortInSteps(keys);
        order = new Int32Array(count);
        for (let k = 0; k < count; k++) order[k] = entries[start + (keys[k] % scale)];
        yield;
      }
      yield {
        chunkHandle: chunk.handle,
        bytes: chunk.bytes,
        dedicated: chunk.dedicated,
        count,
        block(k: number): SnapshotBlock {
          const entry = order[k];
          if (entry < blockCount) {
            const block = blocks[entry];
            return { offset: block.offset, bytes: block.bytes, free: false, owner: block.owner };
          }
          const span = 3 * (entry - blockCount);
          return { offset: (spans[span] - chunk.base) * alignment, bytes: spans[span + 1] * alignment, free: true };
        },
      };
    }
  }

  /** Every chunk and its blocks by address, built now (SegmentSnapshot objects). */
  build(): SegmentSnapshot[] {
    const out: SegmentSnapshot[] = [];
    for (const view of this.segments()) {
      if (view === undefined) continue;
      out.push({ chunkHandle: view.chunkHandle, bytes: view.bytes, ...(view.dedicated ? { dedicated: true } : {}), blocks: Array.from({ length: view.count }, (_, k) => view.block(k)) });
    }
    return out;
  }

  /**
   * segments(), letting other work in (setImmediate) after every SNAPSHOT_SLICE_MS of its own work;
   * the caller paces its work on each segment itself.
   */
  async *segmentsInSlices(): AsyncGenerator<SegmentView, void, void> {
    let sliceStart = performance.now();
    for (const view of this.segments()) {
      if (view !== undefined) {
        yield view;
        sliceStart = performance.now();
      } else if (performance.now() - sliceStart >= SNAPSHOT_SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
  }
}

/**
 * `keys` sorted ascending (it or another array of them): runs of SNAPSHOT_STEP sorted natively, then
 * merged pairwise, yielding every SNAPSHOT_STEP keys, so that no step sorts or merges more than that.
 */
function* sortInSteps(keys: Float64Array<ArrayBuffer>): Generator<undefined, Float64Array<ArrayBuffer>, void> {
  const n = keys.length;
  for (let from = 0; from < n; from += SNAPSHOT_STEP) {
    keys.subarray(from, Math.min(n, from + SNAPSHOT_STEP)).sort();
    yield;
  }
  if (n <= SNAPSHOT_STEP) return keys;
  let source = keys;
  let target = new Float64Array(n);
  for (let width = SNAPSHOT_STEP; width < n; width *= 2) {
    let sinceYield = 0;
    for (let left = 0; left < n; left += 2 * width) {
      const middle = Math.min(n, left + width);
      const end = Math.min(n, left + 2 * width);
      let a = left;
      let b = middle;
      for (let out = left; out < end; out++) {
        target[out] = b >= end || (a < middle && source[a] <= source[b]) ? source[a++] : source[b++];
        if (++sinceYield === SNAPSHOT_STEP) {
          sinceYield = 0;
          yield;
        }
      }
    }
    [source, target] = [target, source];
  }
  return source;
}
