import { describe, expect, it } from 'vitest';
import { rng } from '../helpers/rng';
import { BoundaryMap } from '../../src/memory/boundary-map';

describe('BoundaryMap', () => {
  it('matches a Map through random sets, replacements and deletes, growing past its first capacity', () => {
    const map = new BoundaryMap();
    const model = new Map<number, number>();
    const random = rng(7);
    // Keys like a pool's addresses: multiples of 256, some above 2^32, and pairs that share their low 32 bits.
    const keyPool: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const key = Math.floor(random() * 2 ** 24) * 256;
      keyPool.push(key, key + 2 ** 32, key + 7 * 2 ** 40);
    }
    for (let op = 0; op < 40_000; op++) {
      const key = keyPool[Math.floor(random() * keyPool.length)];
      if (random() < 0.6) {
        const value = Math.floor(random() * 1e6);
        map.set(key, value);
        model.set(key, value);
      } else {
        expect(map.delete(key)).toBe(model.delete(key));
      }
      const probe = keyPool[Math.floor(random() * keyPool.length)];
      expect(map.get(probe)).toBe(model.get(probe) ?? -1);
      expect(map.size).toBe(model.size);
    }
    expect(model.size).toBeGreaterThan(1000);
    for (const key of keyPool) expect(map.get(key)).toBe(model.get(key) ?? -1);
    expect(new Map(map.entries())).toEqual(model);
  });

  it('finds every key left after deleting from the middle of long probe runs', () => {
    const map = new BoundaryMap();
    // 4096 consecutive multiples of 256 fill runs densely; deleting every third one shifts the rest back.
    const keys = Array.from({ length: 4096 }, (_, i) => i * 256);
    keys.forEach((key, i) => map.set(key, i));
    keys.forEach((key, i) => {
      if (i % 3 === 0) expect(map.delete(key)).toBe(true);
    });
    keys.forEach((key, i) => expect(map.get(key)).toBe(i % 3 === 0 ? -1 : i));
    expect(map.delete(keys[0])).toBe(false);
    expect(map.size).toBe(4096 - Math.ceil(4096 / 3));
    map.clear();
    expect([map.size, map.get(256)]).toEqual([0, -1]);
  });
});
