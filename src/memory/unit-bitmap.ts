/**
 * A set of small integers (0 ≤ n < UNIT_BITMAP_SIZE) as a three-level bitmap: each bit of a level
 * says whether the 32-bit word below it has any bit set. The next member at or above n and the
 * largest member take a few word operations, however many members there are: FreeSpanTable uses it
 * to find the smallest free size that fits among 2^16 exact sizes without a tree walk.
 */

export const UNIT_BITMAP_SIZE = 1 << 16;

export class UnitBitmap {
  private readonly words = new Uint32Array(UNIT_BITMAP_SIZE >>> 5);
  private readonly summary = new Uint32Array(UNIT_BITMAP_SIZE >>> 10);
  /** Bit i: summary word i is not zero. Two words cover the 64 summary words. */
  private readonly top = new Uint32Array(2);

  /** Whether n is a member; false for any n outside 0 ≤ n < UNIT_BITMAP_SIZE. */
  has(n: number): boolean {
    return n >= 0 && n < UNIT_BITMAP_SIZE && (this.words[n >>> 5] & (1 << (n & 31))) !== 0;
  }

  add(n: number): void {
    const w = n >>> 5;
    this.words[w] |= 1 << (n & 31);
    this.summary[w >>> 5] |= 1 << (w & 31);
    this.top[w >>> 10] |= 1 << ((w >>> 5) & 31);
  }

  delete(n: number): void {
    const w = n >>> 5;
    this.words[w] &= ~(1 << (n & 31));
    if (this.words[w] !== 0) return;
    const s = w >>> 5;
    this.summary[s] &= ~(1 << (w & 31));
    if (this.summary[s] !== 0) return;
    this.top[s >>> 5] &= ~(1 << (s & 31));
  }

  /** The smallest member ≥ n, or -1. */
  nextAtLeast(n: number): number {
    if (n >= UNIT_BITMAP_SIZE) return -1;
    const w = n >>> 5;
    const inWord = this.words[w] & (-1 << (n & 31));
    if (inWord !== 0) return (w << 5) | lowestBit(inWord);
    // The next non-empty word after w: first in w's summary word, then in later summary words.
    const s = w >>> 5;
    const inSummary = (w & 31) === 31 ? 0 : this.summary[s] & (-1 << ((w & 31) + 1));
    let word: number;
    if (inSummary !== 0) {
      word = (s << 5) | lowestBit(inSummary);
    } else {
      const t = s + 1;
      if (t >= this.summary.length) return -1;
      let inTop = this.top[t >>> 5] & (-1 << (t & 31));
      let summaryWord: number;
      if (inTop !== 0) {
        summaryWord = ((t >>> 5) << 5) | lowestBit(inTop);
      } else {
        if ((t >>> 5) + 1 >= this.top.length || this.top[(t >>> 5) + 1] === 0) return -1;
        inTop = this.top[(t >>> 5) + 1];
        summaryWord = (((t >>> 5) + 1) << 5) | lowestBit(inTop);
      }
      word = (summaryWord << 5) | lowestBit(this.summary[summaryWord]);
    }
    return (word << 5) | lowestBit(this.words[word]);
  }

  /** The largest member, or -1. */
  last(): number {
    for (let t = this.top.length - 1; t >= 0; t--) {
      if (this.top[t] === 0) continue;
      const s = (t << 5) | highestBit(this.top[t]);
      const w = (s << 5) | highestBit(this.summary[s]);
      return (w << 5) | highestBit(this.words[w]);
    }
    return -1;
  }

  clear(): void {
    this.words.fill(0);
    this.summary.fill(0);
    this.top.fill(0);
  }
}

/** Index of the lowest set bit of a non-zero 32-bit value. */
function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Index of the highest set bit of a non-zero 32-bit value. */
function highestBit(x: number): number {
  return 31 - Math.clz32(x);
}
