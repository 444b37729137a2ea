import { describe, expect, it } from 'vitest';
import { rng } from '../helpers/rng';
import { UNIT_BITMAP_SIZE, UnitBitmap } from '../../src/memory/unit-bitmap';

function modelNext(members: Set<number>, n: number): number {
  let best = -1;
  for (const m of members) if (m >= n && (best < 0 || m < best)) best = m;
  return best;
}

describe('UnitBitmap', () => {
  it('finds the next member at or above any point and the largest member through random adds and deletes', () => {
    const bitmap = new UnitBitmap();
    const members = new Set<number>();
    const random = rng(42);
    // Members cluster at word, summary and top-level boundaries (multiples of 32, 1024 and 32768) and spread over the rest.
    const pick = (): number => {
      const roll = random();
      if (roll < 0.5) {
        const edge = [32, 1024, 32_768][Math.floor(random() * 3)];
        const n = Math.floor(random() * (UNIT_BITMAP_SIZE / edge)) * edge + Math.floor(random() * 3) - 1;
        return Math.min(UNIT_BITMAP_SIZE - 1, Math.max(0, n));
      }
      return Math.floor(random() * UNIT_BITMAP_SIZE);
    };
    for (let op = 0; op < 4000; op++) {
      const n = pick();
      if (random() < 0.55) {
        bitmap.add(n);
        members.add(n);
      } else {
        const victim = members.size > 0 && random() < 0.8 ? [...members][Math.floor(random() * members.size)] : n;
        bitmap.delete(victim);
        members.delete(victim);
      }
      const probe = pick();
      expect(bitmap.nextAtLeast(probe)).toBe(modelNext(members, probe));
      expect(bitmap.has(probe)).toBe(members.has(probe));
      expect(bitmap.last()).toBe(members.size === 0 ? -1 : Math.max(...members));
    }
    expect(members.size).toBeGreaterThan(100);
    for (let n = 0; n < UNIT_BITMAP_SIZE; n += 997) expect(bitmap.nextAtLeast(n)).toBe(modelNext(members, n));
  });

  it('answers -1 when nothing is at or above the point, and at the ends of the range', () => {
    const bitmap = new UnitBitmap();
    expect([bitmap.nextAtLeast(0), bitmap.last()]).toEqual([-1, -1]);
    bitmap.add(0);
    bitmap.add(UNIT_BITMAP_SIZE - 1);
    expect([bitmap.nextAtLeast(0), bitmap.nextAtLeast(1), bitmap.nextAtLeast(UNIT_BITMAP_SIZE - 1), bitmap.nextAtLeast(UNIT_BITMAP_SIZE)]).toEqual([
      0,
      UNIT_BITMAP_SIZE - 1,
      UNIT_BITMAP_SIZE - 1,
      -1,
    ]);
    expect(bitmap.last()).toBe(UNIT_BITMAP_SIZE - 1);
    bitmap.delete(UNIT_BITMAP_SIZE - 1);
    expect([bitmap.nextAtLeast(1), bitmap.last()]).toEqual([-1, 0]);
    bitmap.clear();
    expect([bitmap.nextAtLeast(0), bitmap.last(), bitmap.has(0)]).toEqual([-1, -1, false]);
  });

  it('has() is false outside its range, even where n modulo 2^32 is a member', () => {
    const bitmap = new UnitBitmap();
    bitmap.add(5);
    expect([bitmap.has(5), bitmap.has(2 ** 32 + 5), bitmap.has(5 - 2 ** 32), bitmap.has(UNIT_BITMAP_SIZE + 5), bitmap.has(-1)]).toEqual([true, false, false, false, false]);
  });

  it('keeps a word marked while another member of it remains', () => {
    const bitmap = new UnitBitmap();
    bitmap.add(64);
    bitmap.add(70);
    bitmap.delete(64);
    expect(bitmap.nextAtLeast(0)).toBe(70);
    bitmap.delete(70);
    expect(bitmap.nextAtLeast(0)).toBe(-1);
  });
});
