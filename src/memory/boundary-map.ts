/**
 * A hash map from an address in a pool's address space (PoolResource gives each chunk a base; an
 * address is base + offset, in units of the alignment, a safe integer) to a free span id: how a free
 * finds the free spans that touch the block it frees (FreeSpanTable files each span under its start
 * and under its end, in one map) without any link in the live blocks.
 *
 * Open addressing with linear probing and backward-shift deletion, in one Float64Array of (key,
 * value) pairs: no object per entry, nothing for the GC to trace, and a probe reads one cache line
 * (four entries). The capacity is a power of two kept at least twice the entries, so get, set and
 * delete are expected O(1), and the map takes 32 to 64 bytes an entry. A pool's free spans number in
 * the tens of thousands at 10^6 live blocks, so the map stays in cache (B5 in DESIGN.md §6).
 *
 * Keys are unique: set() on a key already present replaces its value.
 */

const EMPTY = -1;
const MIN_CAPACITY = 16;

export class BoundaryMap {
  /** Entry i is the key at [2i] and the value (a span id, EMPTY where there is none) at [2i + 1]. */
  private pairs = emptyPairs(MIN_CAPACITY);
  private mask = MIN_CAPACITY - 1;
  private shift = 32 - Math.log2(MIN_CAPACITY);
  private count = 0;

  /** Entries held. */
  get size(): number {
    return this.count;
  }

  /** The value at `key`, or -1 when there is none. */
  get(key: number): number {
    const { pairs, mask } = this;
    for (let i = this.home(key); ; i = (i + 1) & mask) {
      const value = pairs[2 * i + 1];
      if (value === EMPTY || pairs[2 * i] === key) return value;
    }
  }

  /** Sets `key` to `value` (≥ 0), replacing a value already there. */
  set(key: number, value: number): void {
    if ((this.count + 1) * 2 > this.mask + 1) this.rehash((this.mask + 1) * 2);
    const { pairs, mask } = this;
    let i = this.home(key);
    for (; pairs[2 * i + 1] !== EMPTY; i = (i + 1) & mask) {
      if (pairs[2 * i] === key) {
        pairs[2 * i + 1] = value;
        return;
      }
    }
    pairs[2 * i] = key;
    pairs[2 * i + 1] = value;
    this.count++;
  }

  /** Removes `key`; returns whether it was there. */
  delete(key: number): boolean {
    const { pairs, mask } = this;
    let gap = this.home(key);
    for (; ; gap = (gap + 1) & mask) {
      if (pairs[2 * gap + 1] === EMPTY) return false;
      if (pairs[2 * gap] === key) break;
    }
    // Backward-shift deletion: later entries of the probe run move into the gap when their home
    // allows it, so no tombstone is needed and every run stays unbroken.
    for (let j = (gap + 1) & mask; pairs[2 * j + 1] !== EMPTY; j = (j + 1) & mask) {
      const home = this.home(pairs[2 * j]);
      // The entry at j must stay when its home lies cyclically in (gap, j].
      const stays = gap <= j ? gap < home && home <= j : gap < home || home <= j;
      if (!stays) {
        pairs[2 * gap] = pairs[2 * j];
        pairs[2 * gap + 1] = pairs[2 * j + 1];
        gap = j;
      }
    }
    pairs[2 * gap + 1] = EMPTY;
    this.count--;
    return true;
  }

  clear(): void {
    this.resetTo(MIN_CAPACITY);
  }

  /** Every entry as [key, value], in no particular order. O(capacity), for tests and checks. */
  *entries(): IterableIterator<[number, number]> {
    for (let i = 0; i <= this.mask; i++) if (this.pairs[2 * i + 1] !== EMPTY) yield [this.pairs[2 * i], this.pairs[2 * i + 1]];
  }

  /** Fibonacci hashing of both 32-bit halves of the key: the top bits of one multiply. */
  private home(key: number): number {
    const low = key >>> 0;
    const mixed = low ^ Math.imul((key - low) / 4294967296, 0x85ebca6b);
    return Math.imul(mixed ^ (mixed >>> 15), 0x9e3779b1) >>> this.shift;
  }

  /** Empties the map into fresh pairs of `capacity` (a power of two) entries. */
  private resetTo(capacity: number): void {
    this.pairs = emptyPairs(capacity);
    this.mask = capacity - 1;
    this.shift = 32 - Math.log2(capacity);
    this.count = 0;
  }

  private rehash(capacity: number): void {
    const old = this.pairs;
    this.resetTo(capacity);
    for (let i = 0; i < old.length; i += 2) if (old[i + 1] !== EMPTY) this.set(old[i], old[i + 1]);
  }
}

function emptyPairs(capacity: number): Float64Array {
  const pairs = new Float64Array(2 * capacity);
  for (let i = 1; i < pairs.length; i += 2) pairs[i] = EMPTY;
  return pairs;
}
