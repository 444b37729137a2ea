/** A circular workspace's ring: which allocations a later lap has overwritten. */
import type { WorkspaceAllocation } from './workspace';

/** One allocation in a circular workspace's ring: [start, end) of its side's buffer, and its number. */
interface RingEntry {
  start: number;
  end: number;
  seq: number;
}

/**
 * What one side (primary, or a FULL workspace's host mirror side) of a circular workspace handed out:
 * its current lap of the ring and the lap before, in offset order (offsets only grow within a lap),
 * and the survivors: allocations of older laps that no later allocation has reached yet. An
 * allocation is overwritten once a later allocation overlaps any of its bytes, however many laps
 * later (a lap may wrap before it reaches the end of the buffer, so an allocation near the end can
 * stay intact for many laps, and stays readable, as in ND4J). A copy being made onto an allocation's
 * own bytes (checkAllocation's `besides`) is told apart within two laps; older survivors are checked
 * against the current lap alone. Survivors are live, disjoint allocations of the buffer, so they
 * number at most what the buffer holds; a lap's change costs one pass over them.
 */
export class RingLaps {
  lap = 0;
  current: RingEntry[] = [];
  previous: RingEntry[] = [];
  /** Entries of laps up to lap - 2 that no allocation of a later lap up to lap - 1 overlaps, by start. */
  private survivors: RingEntry[] = [];

  nextLap(): void {
    // The survivors of laps up to the new lap - 2: those of the lap before and older, less what the
    // lap that ends now reached (the lap before was already checked against older ones when it ran).
    const older = merge(this.survivors, this.previous);
    this.survivors = older.length === 0 ? older : unreached(older, this.current);
    this.lap++;
    this.previous = this.current;
    this.current = [];
  }

  record(start: number, end: number, seq: number): void {
    this.current.push({ start, end, seq });
  }

  /** Whether a later allocation than `allocation` (other than number `ignoreSeq`) covers any of its bytes. */
  overwritten(allocation: WorkspaceAllocation, ignoreSeq: number | undefined): boolean {
    const laps = this.lap - allocation.lap;
    if (laps <= 0) return false;
    const start = allocation.offset;
    const end = allocation.offset + allocation.bytes;
    if (laps > 2) {
      // Among the survivors, unless a lap up to lap - 1 reached it; then only the current lap can.
      const index = firstEndingAfter(this.survivors, start);
      const entry = this.survivors[index];
      if (entry === undefined || entry.seq !== allocation.seq) return true;
      return RingLaps.overlaps(this.current, start, end, undefined);
    }
    if (RingLaps.overlaps(this.current, start, end, ignoreSeq)) return true;
    return laps === 2 && RingLaps.overlaps(this.previous, start, end, ignoreSeq);
  }

  private static overlaps(entries: RingEntry[], start: number, end: number, ignoreSeq: number | undefined): boolean {
    for (let index = firstEndingAfter(entries, start); index < entries.length && entries[index].start < end; index++) {
      if (entries[index].seq !== ignoreSeq) return true;
    }
    return false;
  }
}

/** The first entry ending after `start` (entries are sorted and disjoint). */
function firstEndingAfter(entries: RingEntry[], start: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (entries[middle].end <= start) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Two sorted lists of entries that do not overlap each other, as one sorted list. */
function merge(a: RingEntry[], b: RingEntry[]): RingEntry[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const merged: RingEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) merged.push(a[i].start <= b[j].start ? a[i++] : b[j++]);
  while (i < a.length) merged.push(a[i++]);
  while (j < b.length) merged.push(b[j++]);
  return merged;
}

/** The entries of sorted `entries` that no entry of sorted, disjoint `later` overlaps. */
function unreached(entries: RingEntry[], later: RingEntry[]): RingEntry[] {
  if (later.length === 0) return entries;
  const kept: RingEntry[] = [];
  let j = 0;
  for (const entry of entries) {
    while (j < later.length && later[j].end <= entry.start) j++;
    if (j < later.length && later[j].start < entry.end) continue;
    kept.push(entry);
  }
  return kept;
}
