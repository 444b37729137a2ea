import { describe, expect, it } from 'vitest';
import { rng } from '../helpers/rng';
import { FreeSpanTable } from '../../src/memory/free-span-table';

interface ModelSpan {
  id: number;
  slot: number;
  address: number;
  size: number;
  /** When the span entered the table or was last resized: the newest of a size comes first. */
  stamp: number;
}

/** Table order: size ascending, the newest first within a size. */
const byTableOrder = (a: ModelSpan, b: ModelSpan): number => a.size - b.size || b.stamp - a.stamp;

/** Sizes (in units) of 2^16 and more go to the size tree; the test's sizes cross that line. */
const LARGE = 2 ** 16;
/** Each span lives in a region of its own, so no two spans are ever adjacent (the table's precondition). */
const REGION = 4 * LARGE;

describe('FreeSpanTable', () => {
  it('keeps best fit, newest-first ties, both boundary lookups and its structure through random inserts, removals and resizes', () => {
    const table = new FreeSpanTable();
    const model: ModelSpan[] = [];
    const freeRegions = Array.from({ length: 400 }, (_, i) => i);
    const regionOf = new Map<number, number>();
    const random = rng(2026);
    let clock = 0;
    const sizeOf = (): number => {
      const roll = random();
      if (roll < 0.1) return LARGE + Math.floor(random() * 2 ** 16); // tree sizes
      if (roll < 0.15) return LARGE - Math.floor(random() * 3); // just under the line
      return 1 + Math.floor(random() * random() * 64); // many spans share few small sizes
    };
    let crossings = 0;
    for (let op = 0; op < 6000; op++) {
      const roll = random();
      if ((roll < 0.45 && freeRegions.length > 0) || model.length === 0) {
        const region = freeRegions.splice(Math.floor(random() * freeRegions.length), 1)[0];
        const size = sizeOf();
        const address = region * REGION + Math.floor(random() * 8) + 1;
        const slot = region % 7;
        const id = table.insert(slot, address, size);
        expect(model.some((span) => span.id === id)).toBe(false);
        regionOf.set(id, region);
        model.push({ id, slot, address, size, stamp: ++clock });
      } else if (roll < 0.75) {
        const [span] = model.splice(Math.floor(random() * model.length), 1);
        table.remove(span.id);
        freeRegions.push(regionOf.get(span.id)!);
      } else {
        // Move either end, or both, within the span's region.
        const span = model[Math.floor(random() * model.length)];
        const region = regionOf.get(span.id)! * REGION;
        const size = sizeOf();
        const address = random() < 0.5 ? span.address : region + Math.floor(random() * 8) + 1;
        if ((span.size >= LARGE) !== (size >= LARGE)) crossings++;
        table.resize(span.id, address, size);
        Object.assign(span, { address, size, stamp: ++clock });
      }
      model.sort(byTableOrder);
      const want = Math.max(1, sizeOf() - Math.floor(random() * 3));
      expect(table.bestFit(want)).toBe(model.find((span) => span.size >= want)?.id ?? -1);
      const probe = model[Math.floor(random() * model.length)];
      if (probe !== undefined) {
        expect(table.startingAt(probe.address)).toBe(probe.id);
        expect(table.endingAt(probe.address + probe.size)).toBe(probe.id);
        expect(table.startingAt(probe.address + probe.size)).toBe(-1);
        expect(table.endingAt(probe.address)).toBe(-1);
        expect([table.addressOf(probe.id), table.sizeOf(probe.id), table.chunkSlotOf(probe.id)]).toEqual([probe.address, probe.size, probe.slot]);
      }
      const largest = model.length === 0 ? 0 : model[model.length - 1].size;
      expect([table.size, table.largestSize, table.totalSize]).toEqual([model.length, largest, model.reduce((sum, span) => sum + span.size, 0)]);
      if (op % 100 === 0) {
        expect(table.violation()).toBeNull();
        expect([...table.ids()]).toEqual(model.map((span) => span.id));
        expect(table.distinctSizes).toBe(new Set(model.map((span) => span.size)).size);
      }
    }
    expect(crossings).toBeGreaterThan(50);
    expect(table.violation()).toBeNull();
    table.clear();
    expect([table.size, table.largestSize, table.bestFit(1), table.violation()]).toEqual([0, 0, -1, null]);
  });

  it('grows its records past their first capacity and reuses removed ids', () => {
    const table = new FreeSpanTable();
    const ids = Array.from({ length: 500 }, (_, i) => table.insert(0, i * 8, 1 + (i % 3)));
    expect(new Set(ids).size).toBe(500);
    for (let i = 0; i < 500; i++) expect([table.addressOf(ids[i]), table.startingAt(i * 8)]).toEqual([i * 8, ids[i]]);
    table.remove(ids[10]);
    expect(table.insert(0, 10 * 8, 2)).toBe(ids[10]);
    expect(table.violation()).toBeNull();
  });

  it('re-keys a lone large span in place when no other size lies between, and moves it otherwise', () => {
    const table = new FreeSpanTable();
    const [small, middle, large] = [2 ** 17, 2 ** 18, 2 ** 20].map((size, i) => table.insert(0, i * 2 ** 22, size));
    table.resize(middle, 2 * 2 ** 22 - 2 ** 22, 2 ** 18 + 4096);
    expect(table.bestFit(2 ** 17 + 1)).toBe(middle);
    table.resize(middle, 2 ** 22, 2 ** 21);
    expect([table.largestSize, table.bestFit(2 ** 20 + 1), table.bestFit(2 ** 18)]).toEqual([2 ** 21, middle, large]);
    table.resize(small, 0, 100);
    expect([table.bestFit(1), table.bestFit(101)]).toEqual([small, large]);
    expect(table.violation()).toBeNull();
  });

  it('violation() reports a span filed under the wrong size', () => {
    const table = new FreeSpanTable();
    const ids = [1, 2, 3].map((n) => table.insert(0, n * 16, n));
    expect(table.violation()).toBeNull();
    // Corrupt the record's size behind the table's back, the way a bad write would.
    (table as unknown as { doubles: Float64Array }).doubles[4 * ids[0] + 1] = 4;
    expect(table.violation()).toMatch(/span 0 \(address 16, size 4\): its size is filed in the wrong index/);
  });
});
