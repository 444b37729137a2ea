/**
 * The free spans of a pool: where each is, best fit by size, and which free span starts or ends at
 * a given address. A span is a record id (a small integer), not an object. Addresses and sizes are
 * in units (PoolResource's alignment), so that they stay small integers, which V8 keeps unboxed: an
 * address is a place in the pool's address space (each chunk has a base: address = base + offset).
 *
 * - Records are 32 bytes each in one ArrayBuffer (address, size, the links of its size's list, its
 *   chunk slot), so reading a span reads one cache line and no record is garbage. With its two
 *   boundary-map entries a span takes 64 to 96 bytes; a pool at 10^6 live blocks has some 5·10^4
 *   free spans, so what a free or an allocate reads besides the caller's block stays in cache (B5 in
 *   DESIGN.md §6).
 * - Best fit over exact sizes: the spans of one size form a list, newest first. Sizes under 2^16
 *   units (16 MiB at the pool's 256-byte alignment) have their list heads in an array and a
 *   UnitBitmap of the sizes present, so the smallest size ≥ a request is found in a few word
 *   operations; larger sizes (few: whole chunks and their tails) are buckets of a SizeTree.
 *   bestFit(size) takes the head of the smallest size ≥ size: among several spans of that size,
 *   the one that entered the table (or was resized) last, as recently freed memory is the likeliest
 *   to be warm.
 * - Neighbours by address: `startingAt` and `endingAt` find a span by its first address or by the
 *   address after its last unit (BoundaryMap, expected O(1)). A pool keeps no two free spans
 *   adjacent, so these two lookups are all a free needs to coalesce.
 * - insert, remove and resize are O(1), plus O(log d) when a size of 2^16 units or more enters or
 *   leaves the tree (d = distinct such sizes).
 *
 * Ids are recycled: an id is valid from insert until remove.
 */
import { BoundaryMap } from './boundary-map';
import { SizeTree, predecessor, successor } from './size-tree';
import { UNIT_BITMAP_SIZE, UnitBitmap } from './unit-bitmap';

const NONE = -1;
const MIN_RECORDS = 64;
/** A record's words: float64 [0] address, [1] size; int32 [4] prev, [5] next (its size's list), [6] chunk slot. */
const RECORD_BYTES = 32;

export class FreeSpanTable {
  private records = new ArrayBuffer(MIN_RECORDS * RECORD_BYTES);
  private doubles = new Float64Array(this.records);
  private ints = new Int32Array(this.records);
  /** The head of the list of each size under UNIT_BITMAP_SIZE units, by size in units; NONE where there is none. */
  private readonly smallHeads = new Int32Array(UNIT_BITMAP_SIZE).fill(NONE);
  /** Sizes, in units, whose smallHeads entry is a span. */
  private readonly smallSizes = new UnitBitmap();
  /** Sizes of UNIT_BITMAP_SIZE units and more; each bucket's head is the head of its list. */
  private readonly largeSizes = new SizeTree();
  /** Ids below highWater that were removed, for reuse. */
  private readonly spareIds: number[] = [];
  private highWater = 0;
  /**
   * Each span's first address and the address after its last unit, both to its id. No two spans are
   * adjacent, so no address is both one span's start and another's end; one map for both means a
   * free that finds no neighbour files the new span's ends in the very slots its lookups just read.
   */
  private readonly boundaries = new BoundaryMap();
  private count = 0;
  private sizeTotal = 0;
  private sizeCount = 0;

  /** Free spans held. */
  get size(): number {
    return this.count;
  }

  /** Sum of the spans' sizes. */
  get totalSize(): number {
    return this.sizeTotal;
  }

  /** Distinct sizes among the spans. */
  get distinctSizes(): number {
    return this.sizeCount;
  }

  /** Size of the largest span; 0 when there is none. O(1). */
  get largestSize(): number {
    const bucket = this.largeSizes.max;
    if (bucket !== null) return bucket.size;
    return Math.max(0, this.smallSizes.last());
  }

  addressOf(id: number): number {
    return this.doubles[4 * id];
  }

  sizeOf(id: number): number {
    return this.doubles[4 * id + 1];
  }

  chunkSlotOf(id: number): number {
    return this.ints[8 * id + 6];
  }

  /** A smallest span of at least `size` (> 0; the newest of that size), or -1. */
  bestFit(size: number): number {
    if (size < UNIT_BITMAP_SIZE) {
      const fit = this.smallSizes.nextAtLeast(size);
      if (fit >= 0) return this.smallHeads[fit];
    }
    const bucket = this.largeSizes.ceiling(size);
    return bucket === null ? NONE : bucket.head;
  }

  /** The span whose first unit is at `address`, or -1. */
  startingAt(address: number): number {
    const id = this.boundaries.get(address);
    return id >= 0 && this.doubles[4 * id] === address ? id : NONE;
  }

  /** The span whose last unit is just before `address`, or -1. */
  endingAt(address: number): number {
    const id = this.boundaries.get(address);
    return id >= 0 && this.doubles[4 * id] + this.doubles[4 * id + 1] === address ? id : NONE;
  }

  /** Adds a span of `size` (> 0) at `address`, in the chunk of slot `chunkSlot`; returns its id. */
  insert(chunkSlot: number, address: number, size: number): number {
    const id = this.spareIds.length > 0 ? this.spareIds.pop()! : this.newId();
    this.doubles[4 * id] = address;
    this.doubles[4 * id + 1] = size;
    this.ints[8 * id + 6] = chunkSlot;
    this.boundaries.set(address, id);
    this.boundaries.set(address + size, id);
    this.link(id, size);
    this.count++;
    this.sizeTotal += size;
    return id;
  }

  /** Removes span `id`, which must be in the table (the caller tracks that; it is not checked). */
  remove(id: number): void {
    const address = this.doubles[4 * id];
    const size = this.doubles[4 * id + 1];
    this.boundaries.delete(address);
    this.boundaries.delete(address + size);
    this.unlink(id, size);
    this.spareIds.push(id);
    this.count--;
    this.sizeTotal -= size;
  }

  /**
   * Moves span `id` to [address, address + size) in its chunk (size > 0): either end may move. It
   * ends up the newest of its size, as if freshly inserted.
   */
  resize(id: number, address: number, size: number): void {
    const oldAddress = this.doubles[4 * id];
    const oldSize = this.doubles[4 * id + 1];
    const startMoves = address !== oldAddress;
    const endMoves = address + size !== oldAddress + oldSize;
    // Old keys go before new ones are set: a new end may be an old start.
    if (startMoves) this.boundaries.delete(oldAddress);
    if (endMoves) this.boundaries.delete(oldAddress + oldSize);
    if (startMoves) this.boundaries.set(address, id);
    if (endMoves) this.boundaries.set(address + size, id);
    this.doubles[4 * id] = address;
    this.sizeTotal += size - oldSize;
    this.doubles[4 * id + 1] = size;
    if (size >= UNIT_BITMAP_SIZE && oldSize >= UNIT_BITMAP_SIZE && this.rekeyInPlace(id, oldSize, size)) return;
    this.unlink(id, oldSize);
    this.link(id, size);
  }

  /** Forgets every span. */
  clear(): void {
    for (let units = this.smallSizes.nextAtLeast(0); units >= 0; units = this.smallSizes.nextAtLeast(units + 1)) this.smallHeads[units] = NONE;
    this.smallSizes.clear();
    this.largeSizes.clear();
    this.spareIds.length = 0;
    this.highWater = 0;
    this.boundaries.clear();
    this.count = 0;
    this.sizeTotal = 0;
    this.sizeCount = 0;
  }

  /** Every span id, by size ascending, newest first within a size. O(n), for snapshots and tests. */
  *ids(): IterableIterator<number> {
    for (const head of this.heads()) {
      for (let id = head; id !== NONE; id = this.ints[8 * id + 5]) yield id;
    }
  }

  /** Every span as three numbers: its address, its size and its chunk slot (for a snapshot's instant). O(n). */
  copySpans(): Float64Array {
    const out = new Float64Array(3 * this.count);
    let at = 0;
    for (const head of this.heads()) {
      for (let id = head; id !== NONE; id = this.ints[8 * id + 5]) {
        out[at++] = this.doubles[4 * id];
        out[at++] = this.doubles[4 * id + 1];
        out[at++] = this.ints[8 * id + 6];
      }
    }
    return out;
  }

  /**
   * Checks the large-size tree, that every size present heads a list of spans of that size with
   * consistent links, that the boundary map holds exactly each span's start and end, and the counts
   * and size total. Returns a description of the first violation, or null. O(n), for tests.
   */
  violation(): string | null {
    const treeViolation = this.largeSizes.violation();
    if (treeViolation !== null) return `large-size tree: ${treeViolation}`;
    let sizes = 0;
    let count = 0;
    let total = 0;
    for (const head of this.heads()) {
      sizes++;
      if (head === NONE) return `a size is present with no span`;
      const size = this.sizeOf(head);
      if (this.ints[8 * head + 4] !== NONE) return `head of the list of size ${size} has a previous span`;
      for (let id = head; id !== NONE; id = this.ints[8 * id + 5]) {
        const where = `span ${id} (address ${this.addressOf(id)}, size ${this.sizeOf(id)})`;
        if (this.sizeOf(id) !== size) return `${where} in the list of size ${size}`;
        if ((size < UNIT_BITMAP_SIZE) !== this.smallSizes.has(size) || (size < UNIT_BITMAP_SIZE) === (this.largeSizes.find(size) !== null)) {
          return `${where}: its size is filed in the wrong index`;
        }
        const next = this.ints[8 * id + 5];
        if (next !== NONE && this.ints[8 * next + 4] !== id) return `broken size-list link after ${where}`;
        if (this.startingAt(this.addressOf(id)) !== id) return `${where} is not found by its start`;
        if (this.endingAt(this.addressOf(id) + this.sizeOf(id)) !== id) return `${where} is not found by its end`;
        count++;
        total += this.sizeOf(id);
      }
    }
    if (sizes !== this.sizeCount) return `size count ${this.sizeCount} but ${sizes} sizes present`;
    if (count !== this.count) return `count ${this.count} but ${count} spans`;
    if (this.boundaries.size !== 2 * count) return `the boundary map holds ${this.boundaries.size} addresses for ${count} spans`;
    if (total !== this.sizeTotal) return `size total ${this.sizeTotal} but spans sum to ${total}`;
    return null;
  }

  /** The head of each size's list, by size ascending. */
  private *heads(): IterableIterator<number> {
    for (let units = this.smallSizes.nextAtLeast(0); units >= 0; units = this.smallSizes.nextAtLeast(units + 1)) yield this.smallHeads[units];
    for (const bucket of this.largeSizes.inOrder()) yield bucket.head;
  }

  /** The head of the list of spans of `size`, or NONE. */
  private headOf(size: number): number {
    if (size < UNIT_BITMAP_SIZE) return this.smallHeads[size];
    const bucket = this.largeSizes.find(size);
    return bucket === null ? NONE : bucket.head;
  }

  /** Makes `id` the head of the list of `size`; NONE drops the size. */
  private setHead(size: number, id: number): void {
    if (size < UNIT_BITMAP_SIZE) {
      this.smallHeads[size] = id;
      if (id === NONE) this.smallSizes.delete(size);
      else this.smallSizes.add(size);
    } else if (id === NONE) {
      this.largeSizes.remove(this.largeSizes.find(size)!);
    } else {
      this.largeSizes.findOrInsert(size).head = id;
    }
  }

  /** Files `id` at the head of the list of spans of `size`. */
  private link(id: number, size: number): void {
    const head = this.headOf(size);
    if (head === NONE) this.sizeCount++;
    else this.ints[8 * head + 4] = id;
    this.ints[8 * id + 4] = NONE;
    this.ints[8 * id + 5] = head;
    this.setHead(size, id);
  }

  /** Takes `id` out of the list of spans of `size`, dropping the size when the list empties. */
  private unlink(id: number, size: number): void {
    const prev = this.ints[8 * id + 4];
    const next = this.ints[8 * id + 5];
    if (next !== NONE) this.ints[8 * next + 4] = prev;
    if (prev !== NONE) {
      this.ints[8 * prev + 5] = next;
      return;
    }
    this.setHead(size, next);
    if (next === NONE) this.sizeCount--;
  }

  /**
   * A large span alone in its bucket whose new size has no other size between it and the old one
   * takes its bucket along (as when a chunk's free tail shrinks and grows back): no tree change.
   */
  private rekeyInPlace(id: number, oldSize: number, size: number): boolean {
    const bucket = this.largeSizes.find(oldSize)!;
    if (bucket.head !== id || this.ints[8 * id + 5] !== NONE || size === oldSize) return false;
    const below = predecessor(bucket);
    const above = successor(bucket);
    if ((below !== null && below.size >= size) || (above !== null && size >= above.size)) return false;
    bucket.size = size;
    return true;
  }

  /** The next never-used id, doubling the records when they are full. */
  private newId(): number {
    const id = this.highWater++;
    if (id * RECORD_BYTES === this.records.byteLength) {
      const records = new ArrayBuffer(2 * this.records.byteLength);
      new Uint8Array(records).set(new Uint8Array(this.records));
      this.records = records;
      this.doubles = new Float64Array(records);
      this.ints = new Int32Array(records);
    }
    return id;
  }
}
