import { describe, expect, it } from 'vitest';
import { OutOfMemoryError } from '../../src/errors';
import { LimitingAdaptor } from '../../src/memory/limiting-adaptor';
import type { Block, BlockOwner, ChunkSource, MemoryResource, ResourceStats } from '../../src/memory/memory-resource';
import { PoolResource } from '../../src/memory/pool-resource';
import { StatisticsAdaptor } from '../../src/memory/statistics-adaptor';
import { KiB, MiB } from '../../src/units';

/** Hands out handles 1, 2, 3, ...; never refuses. */
class CountingChunkSource implements ChunkSource {
  chunks = 0;
  private nextHandle = 1;
  allocateChunk(): number {
    this.chunks++;
    return this.nextHandle++;
  }
  freeChunk(): void {
    this.chunks--;
  }
}

function setup(limitBytes = 1 * MiB) {
  const pool = new PoolResource({ source: new CountingChunkSource(), memory: 'DEVICE', device: 0, maxReservedBytes: 16 * MiB, chunkBytes: 64 * KiB });
  const limiter = new LimitingAdaptor(pool, { limitBytes, capName: 'pool cap (maxbytes)', memory: 'DEVICE', device: 0 });
  return { pool, limiter, statistics: new StatisticsAdaptor(limiter) };
}

describe('StatisticsAdaptor', () => {
  it('counts blocks, live blocks, used and peak bytes in aligned sizes', () => {
    const { statistics } = setup();
    const a = statistics.allocate(1000, {}); // 1024
    const b = statistics.allocate(0, {}); // 256
    statistics.deallocate(a);
    const c = statistics.allocate(100, {}); // 256
    expect(statistics.stats()).toMatchObject({ usedBytes: 512, peakUsedBytes: 1280, allocationCount: 2, allocationsTotal: 3, failedAllocationsTotal: 0 });
    statistics.deallocate(b);
    statistics.deallocate(c);
    expect(statistics.stats()).toMatchObject({ usedBytes: 0, peakUsedBytes: 1280, allocationCount: 0, allocationsTotal: 3 });
    expect([statistics.usedBytes, statistics.peakUsedBytes, statistics.allocationCount, statistics.allocationsTotal]).toEqual([0, 1280, 0, 3]);
  });

  it('counts a refused request and rethrows the same error, changing no other counter', () => {
    const { statistics, pool } = setup(1024);
    statistics.allocate(1024, {});
    const before = statistics.stats();
    let caught: unknown;
    try {
      statistics.allocate(1, {});
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(OutOfMemoryError);
    expect((caught as OutOfMemoryError).facts.capName).toBe('pool cap (maxbytes)');
    expect(statistics.stats()).toEqual({ ...before, failedAllocationsTotal: 1 });
    expect(statistics.failedAllocationsTotal).toBe(1);
    expect(pool.usedBytes).toBe(1024);
  });

  it('does not count the refusal of a retry (AllocateOptions.retry): one request, one failure', () => {
    const { statistics } = setup(1024);
    const held = statistics.allocate(1024, {});
    expect(() => statistics.allocate(1, {})).toThrow(OutOfMemoryError);
    for (let retry = 0; retry < 3; retry++) expect(() => statistics.allocate(1, {}, { retry: true })).toThrow(OutOfMemoryError);
    expect(statistics.failedAllocationsTotal).toBe(1);
    statistics.deallocate(held);
    statistics.allocate(1, {}, { retry: true });
    expect(statistics.stats()).toMatchObject({ failedAllocationsTotal: 1, allocationsTotal: 2, allocationCount: 1 });
  });

  it('rethrows exactly the error object the upstream threw', () => {
    const failure = new Error('upstream broke');
    const upstream: MemoryResource = {
      allocate: () => {
        throw failure;
      },
      deallocate: () => undefined,
      stats: (): ResourceStats => ({
        usedBytes: 0,
        reservedBytes: 0,
        peakUsedBytes: 0,
        largestFreeBlockBytes: 0,
        allocationCount: 0,
        allocationsTotal: 0,
        failedAllocationsTotal: 0,
      }),
    };
    const statistics = new StatisticsAdaptor(upstream);
    expect(() => statistics.allocate(1, {})).toThrow(failure);
    expect(statistics.stats()).toMatchObject({ failedAllocationsTotal: 1, allocationsTotal: 0, allocationCount: 0 });
  });

  it('changes no counter when the upstream rejects a deallocate', () => {
    const { statistics } = setup();
    const block = statistics.allocate(512, {});
    statistics.deallocate(block);
    const before = statistics.stats();
    expect(() => statistics.deallocate(block)).toThrow(/no live block/);
    expect(statistics.stats()).toEqual(before);
  });

  it("reports the upstream's reserved bytes and largest free block with its own counters", () => {
    const { statistics, pool } = setup();
    statistics.allocate(10 * KiB, {});
    pool.allocate(5 * KiB, {}); // bypasses the adaptor: not in its counters, but in the pool's numbers
    const stats = statistics.stats();
    expect(stats).toEqual({
      usedBytes: 10 * KiB,
      reservedBytes: 64 * KiB,
      peakUsedBytes: 10 * KiB,
      largestFreeBlockBytes: 49 * KiB,
      allocationCount: 1,
      allocationsTotal: 1,
      failedAllocationsTotal: 0,
    });
    expect(pool.stats()).toMatchObject({ reservedBytes: 64 * KiB, largestFreeBlockBytes: 49 * KiB, usedBytes: 15 * KiB });
  });

  it('resetPeak restarts the peak at the current used bytes', () => {
    const { statistics } = setup();
    const a = statistics.allocate(4096, {});
    statistics.allocate(1024, {});
    statistics.deallocate(a);
    expect(statistics.peakUsedBytes).toBe(5120);
    statistics.resetPeak();
    expect(statistics.peakUsedBytes).toBe(1024);
  });

  it('passes alignedSize through from the upstream', () => {
    const { statistics } = setup();
    expect([statistics.alignedSize(0), statistics.alignedSize(257)]).toEqual([256, 512]);
  });

  it('counts correctly over a random sequence (against a running sum)', () => {
    const { statistics, pool } = setup(16 * MiB);
    const live: Block[] = [];
    let used = 0;
    let peak = 0;
    let total = 0;
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 2000; i++) {
      if (random() < 0.6 || live.length === 0) {
        const block = statistics.allocate(Math.floor(random() * 8 * KiB), { label: `b${i}` } as BlockOwner);
        live.push(block);
        used += block.bytes;
        peak = Math.max(peak, used);
        total++;
      } else {
        const [block] = live.splice(Math.floor(random() * live.length), 1);
        statistics.deallocate(block);
        used -= block.bytes;
      }
    }
    expect(statistics.stats()).toMatchObject({ usedBytes: used, peakUsedBytes: peak, allocationCount: live.length, allocationsTotal: total });
    expect(pool.usedBytes).toBe(used);
    pool.checkInvariants();
  });
});
