/** A circular workspace's ring: which allocations a later lap has overwritten. */
import type { WorkspaceAllocation } from './workspace';

/** One allocation in a circular workspace's ring: [start, end) of its side's buffer, and its number. */
interface RingEntry {
  start: number;
  end: number;
  seq: number;
}

/**
 * What one side (primary, or a FULL workspace's host mirror side) of a circular workspace handed out
 * in its current lap of the ring and the lap before, in offset order (offsets only grow within a lap).
 * An allocation of lap L is overwritten once an allocation of lap L + 1 or L + 2 overlaps it, and in
 * any case once the ring is past lap L + 2 (older laps are not kept: such an allocation is treated as
 * overwritten, which also lets the lease forget it).
 */
export class RingLaps {
  lap = 0;
  current: RingEntry[] = [];
  previous: RingEntry[] = [];

  nextLap(): void {
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
    if (laps > 2) return true;
    const start = allocation.offset;
    const end = allocation.offset + allocation.bytes;
    if (RingLaps.overlaps(this.current, start, end, ignoreSeq)) return true;
    return laps === 2 && RingLaps.overlaps(this.previous, start, end, ignoreSeq);
  }

  private static overlaps(entries: RingEntry[], start: number, end: number, ignoreSeq: number | undefined): boolean {
    // The first entry ending after `start` (entries are sorted and disjoint).
    let low = 0;
    let high = entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (entries[middle].end <= start) low = middle + 1;
      else high = middle;
    }
    for (let index = low; index < entries.length && entries[index].start < end; index++) {
      if (entries[index].seq !== ignoreSeq) return true;
    }
    return false;
  }
}
