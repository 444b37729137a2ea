import { describe, expect, it } from 'vitest';
import { rng } from '../helpers/rng';
import { OutOfMemoryError, TensormemError } from '../../src/errors';
import type { MemoryKind } from '../../src/errors';
import { LimitingAdaptor } from '../../src/memory/limiting-adaptor';
import type { Block, ChunkSource, MemoryResource, SegmentSnapshot } from '../../src/memory/memory-resource';
import { PoolResource } from '../../src/memory/pool-resource';
import { StatisticsAdaptor } from '../../src/memory/statistics-adaptor';
import { KiB, MiB } from '../../src/units';

/** Records every chunk; refuses (OutOfMemoryError) past capacityBytes, or fails outright when told to. */
class FakeChunkSource implements ChunkSource {
  readonly live = new Map<number, number>();
  readonly log: string[] = [];
  capacityBytes = Number.MAX_SAFE_INTEGER;
  failWith: Error | undefined;
  private nextHandle = 1;

  get liveBytes(): number {
    let sum = 0;
    for (const bytes of this.live.values()) sum += bytes;
    return sum;
  }

  allocateChunk(bytes: number): number {
    if (this.failWith) {
      this.log.push(`fail ${bytes}`);
      throw this.failWith;
    }
    if (this.liveBytes + bytes > this.capacityBytes) {
      this.log.push(`refuse ${bytes}`);
      throw new OutOfMemoryError({
        memory: 'DEVICE',
        device: 0,
        requestedBytes: bytes,
        capName: 'emulated device capacity',
        capBytes: this.capacityBytes,
        usedBytes: this.liveBytes,
        largestFreeBlockBytes: this.capacityBytes - this.liveBytes,
      });
    }
    const handle = this.nextHandle++;
    this.live.set(handle, bytes);
    this.log.push(`alloc ${bytes} -> ${handle}`);
    return handle;
  }

  freeChunk(handle: number): void {
    if (!this.live.delete(handle)) throw new Error(`fake source: freeChunk of unknown handle ${handle}`);
    this.log.push(`free ${handle}`);
  }
}

interface PoolOptions {
  maxReservedBytes?: number;
  chunkBytes?: number;
  memory?: MemoryKind;
  alignment?: number;
  now?: () => number;
}

function makePool(options: PoolOptions = {}, source = new FakeChunkSource()) {
  const pool = new PoolResource({
    source,
    memory: options.memory ?? 'DEVICE',
    device: 0,
    maxReservedBytes: options.maxReservedBytes ?? 64 * MiB,
    chunkBytes: options.chunkBytes ?? 1 * MiB,
    alignment: options.alignment,
    now: options.now,
  });
  return { pool, source };
}

interface Stack {
  resource: MemoryResource;
  pool: PoolResource;
  source: FakeChunkSource;
}

/** Every resource the allocator suite runs against: the pool alone and wrapped in each adaptor (limits far away). */
const stacks: Array<[string, (options?: PoolOptions) => Stack]> = [
  [
    'PoolResource',
    (options) => {
      const { pool, source } = makePool(options);
      return { pool, source, resource: pool };
    },
  ],
  [
    'LimitingAdaptor(PoolResource)',
    (options) => {
      const { pool, source } = makePool(options);
      return { pool, source, resource: new LimitingAdaptor(pool, { limitBytes: 2 ** 50, capName: 'pool cap (maxbytes)', memory: 'DEVICE', device: 0 }) };
    },
  ],
  [
    'StatisticsAdaptor(PoolResource)',
    (options) => {
      const { pool, source } = makePool(options);
      return { pool, source, resource: new StatisticsAdaptor(pool) };
    },
  ],
  [
    'StatisticsAdaptor(LimitingAdaptor(PoolResource))',
    (options) => {
      const { pool, source } = makePool(options);
      const limiter = new LimitingAdaptor(pool, { limitBytes: 2 ** 50, capName: 'pool cap (maxbytes)', memory: 'DEVICE', device: 0 });
      return { pool, source, resource: new StatisticsAdaptor(limiter) };
    },
  ],
];

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

/** The shape of the snapshot without owners, for comparing layouts. */
function layout(pool: PoolResource): Array<{ chunkHandle: number; bytes: number; blocks: string[] }> {
  return pool.snapshot().map((segment: SegmentSnapshot) => ({
    chunkHandle: segment.chunkHandle,
    bytes: segment.bytes,
    blocks: segment.blocks.map((block) => `${block.free ? 'free' : 'used'}@${block.offset}+${block.bytes}`),
  }));
}

/**
 * A naive reference of the pool's policy: arrays of segments, linear scans. Best fit: the smallest
 * free segment that fits, among equal sizes the one whose size was set last (created, split or
 * merged: `stamp`); coalescing; growth of max(size, chunkBytes) clamped to the cap; release of fully
 * free chunks (oldest first, only as many as needed, only when that makes room).
 */
type ModelChunk = { seq: number; bytes: number; segments: Array<{ offset: number; bytes: number; id: number | null; stamp: number }> };

class ModelPool {
  readonly chunks: ModelChunk[] = [];
  private clock = 0;
  used = 0;
  reserved = 0;
  private nextSeq = 0;
  private readonly cap: number;

  constructor(
    maxReservedBytes: number,
    private readonly chunkBytes: number,
    private readonly alignment = 256,
  ) {
    this.cap = Math.floor(maxReservedBytes / alignment) * alignment;
  }

  allocate(bytes: number, id: number): { seq: number; offset: number; bytes: number } | null {
    const size = bytes === 0 ? this.alignment : Math.ceil(bytes / this.alignment) * this.alignment;
    let best: { chunk: ModelChunk; index: number } | null = null;
    for (const chunk of this.chunks) {
      chunk.segments.forEach((segment, index) => {
        if (segment.id !== null || segment.bytes < size) return;
        if (best === null) best = { chunk, index };
        else {
          const current = best.chunk.segments[best.index];
          const better = segment.bytes < current.bytes || (segment.bytes === current.bytes && segment.stamp > current.stamp);
          if (better) best = { chunk, index };
        }
      });
    }
    if (best === null) {
      if (size > this.cap - this.reserved) {
        const releasable = this.chunks.filter((chunk) => chunk.segments.every((s) => s.id === null)).reduce((sum, chunk) => sum + chunk.bytes, 0);
        if (size > this.cap - this.reserved + releasable) return null;
        for (const chunk of [...this.chunks]) {
          if (size <= this.cap - this.reserved) break;
          if (chunk.segments.every((s) => s.id === null)) this.releaseChunk(chunk);
        }
      }
      const bytesOfChunk = Math.min(Math.max(size, this.chunkBytes), this.cap - this.reserved);
      const chunk = { seq: this.nextSeq++, bytes: bytesOfChunk, segments: [{ offset: 0, bytes: bytesOfChunk, id: null as number | null, stamp: ++this.clock }] };
      this.chunks.push(chunk);
      this.reserved += bytesOfChunk;
      best = { chunk, index: 0 };
    }
    const { chunk, index } = best as { chunk: ModelChunk; index: number };
    const hole = chunk.segments[index];
    const block = { offset: hole.offset, bytes: size, id: id as number | null, stamp: 0 };
    if (hole.bytes === size) chunk.segments[index] = block;
    else {
      chunk.segments.splice(index, 0, block);
      hole.offset += size;
      hole.bytes -= size;
      hole.stamp = ++this.clock;
    }
    this.used += size;
    return { seq: chunk.seq, offset: block.offset, bytes: size };
  }

  free(id: number): void {
    for (const chunk of this.chunks) {
      const index = chunk.segments.findIndex((s) => s.id === id);
      if (index < 0) continue;
      const segment = chunk.segments[index];
      this.used -= segment.bytes;
      segment.id = null;
      segment.stamp = ++this.clock;
      const next = chunk.segments[index + 1];
      if (next && next.id === null) {
        segment.bytes += next.bytes;
        chunk.segments.splice(index + 1, 1);
      }
      const prev = chunk.segments[index - 1];
      if (prev && prev.id === null) {
        prev.bytes += segment.bytes;
        prev.stamp = segment.stamp;
        chunk.segments.splice(index, 1);
      }
      return;
    }
    throw new Error(`model: no block ${id}`);
  }

  trim(): void {
    for (const chunk of [...this.chunks]) if (chunk.segments.every((s) => s.id === null)) this.releaseChunk(chunk);
  }

  largestFree(): number {
    let largest = 0;
    for (const chunk of this.chunks) for (const s of chunk.segments) if (s.id === null && s.bytes > largest) largest = s.bytes;
    return largest;
  }

  /** Same shape as layout(pool); the fake source numbers chunks 1, 2, 3, ... in order, so handle = seq + 1. */
  layout(): Array<{ chunkHandle: number; bytes: number; blocks: string[] }> {
    return this.chunks.map((chunk) => ({
      chunkHandle: chunk.seq + 1,
      bytes: chunk.bytes,
      blocks: chunk.segments.map((s) => `${s.id === null ? 'free' : 'used'}@${s.offset}+${s.bytes}`),
    }));
  }

  private releaseChunk(chunk: ModelChunk): void {
    this.chunks.splice(this.chunks.indexOf(chunk), 1);
    this.reserved -= chunk.bytes;
  }
}

describe.each(stacks)('allocator suite: %s', (_name, makeStack) => {
  it('aligns every block to 256 bytes and gives a 0-byte request one aligned unit', () => {
    const { resource, pool } = makeStack();
    const requests = [0, 1, 255, 256, 257, 1000, 4096, 65_537];
    const blocks = requests.map((bytes) => resource.allocate(bytes, { label: `r${bytes}` }));
    expect(blocks.map((block) => block.bytes)).toEqual([256, 256, 256, 256, 512, 1024, 4096, 65_792]);
    expect(blocks.map((block) => block.requestedBytes)).toEqual(requests);
    for (const block of blocks) expect(block.offset % 256).toBe(0);
    expect(resource.stats().usedBytes).toBe(256 * 4 + 512 + 1024 + 4096 + 65_792);
    expect(blocks[0].owner).toEqual({ label: 'r0' });
    pool.checkInvariants();
  });

  it('hands out blocks that never overlap', () => {
    const { resource, pool } = makeStack({ chunkBytes: 64 * KiB });
    const random = rng(7);
    const blocks: Block[] = [];
    for (let i = 0; i < 300; i++) {
      blocks.push(resource.allocate(Math.floor(random() * 20_000), {}));
      if (random() < 0.3) resource.deallocate(blocks.splice(Math.floor(random() * blocks.length), 1)[0]);
    }
    const sorted = [...blocks].sort((a, b) => a.chunkHandle - b.chunkHandle || a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i].chunkHandle !== sorted[i - 1].chunkHandle) continue;
      expect(sorted[i].offset).toBeGreaterThanOrEqual(sorted[i - 1].offset + sorted[i - 1].bytes);
    }
    expect(pool.invariantHolds()).toBe(true);
  });

  it('counts used bytes and live blocks, and gets every byte back', () => {
    const { resource, pool } = makeStack();
    const a = resource.allocate(1000, {});
    const b = resource.allocate(300, {});
    expect(resource.stats()).toMatchObject({ usedBytes: 1024 + 512, allocationCount: 2, allocationsTotal: 2, peakUsedBytes: 1536 });
    resource.deallocate(a);
    expect(resource.stats()).toMatchObject({ usedBytes: 512, allocationCount: 1, allocationsTotal: 2, peakUsedBytes: 1536 });
    resource.deallocate(b);
    expect(resource.stats()).toMatchObject({ usedBytes: 0, allocationCount: 0, reservedBytes: 1 * MiB, largestFreeBlockBytes: 1 * MiB });
    expect(pool.snapshot()[0].blocks).toEqual([{ offset: 0, bytes: 1 * MiB, free: true }]);
  });

  it('throws a plain Error and changes nothing on a double free, a forged block or a block of another pool', () => {
    const { resource, pool } = makeStack();
    const other = makePool().pool;
    const a = resource.allocate(512, {});
    const b = resource.allocate(512, {});
    resource.deallocate(a);
    const before = { stats: resource.stats(), layout: layout(pool) };
    const forged: Block = { chunkHandle: b.chunkHandle, offset: b.offset, bytes: b.bytes, requestedBytes: b.requestedBytes, owner: {} };
    for (const bad of [a, forged, other.allocate(512, {})]) {
      const error = thrown(() => resource.deallocate(bad));
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(TensormemError);
      expect((error as Error).message).toMatch(/no live block of this pool/);
    }
    expect(resource.stats()).toEqual(before.stats);
    expect(layout(pool)).toEqual(before.layout);
    resource.deallocate(b);
    expect(resource.stats().usedBytes).toBe(0);
  });

  it('rejects sizes that are not non-negative safe integers with INVALID_ARGUMENT', () => {
    const { resource, pool, source } = makeStack();
    for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
      const error = thrown(() => resource.allocate(bad, {}));
      expect(error).toBeInstanceOf(TensormemError);
      expect((error as TensormemError).kind).toBe('INVALID_ARGUMENT');
      expect((error as TensormemError).message).toMatch(/^Expected a non-negative safe integer for bytes but received /);
    }
    expect(source.log).toEqual([]);
    expect(pool.stats()).toMatchObject({ usedBytes: 0, reservedBytes: 0, allocationCount: 0 });
  });

  it('refuses with OutOfMemoryError and changes nothing but failedAllocationsTotal', () => {
    const { resource, pool, source } = makeStack({ maxReservedBytes: 1 * MiB, chunkBytes: 1 * MiB });
    resource.allocate(768 * KiB, {});
    const before = { stats: resource.stats(), layout: layout(pool), log: [...source.log] };
    const error = thrown(() => resource.allocate(512 * KiB, {}));
    expect(error).toBeInstanceOf(OutOfMemoryError);
    expect(resource.stats()).toEqual({ ...before.stats, failedAllocationsTotal: before.stats.failedAllocationsTotal + 1 });
    expect(layout(pool)).toEqual(before.layout);
    expect(source.log).toEqual(before.log);
    pool.checkInvariants();
  });

  // Alignment 1 puts free spans of 2^16 bytes and more (whole chunks, large holes) in the span
  // table's size tree and smaller ones in its bitmap, so sizes cross between the two.
  it.each([256, 1])('matches the reference model over 3000 random operations under a tight reservation cap (alignment %i)', (alignment) => {
    const maxReservedBytes = 256 * KiB + 100; // not aligned on purpose: the pool rounds it down
    const chunkBytes = 64 * KiB + 4 * KiB;
    const { resource, pool, source } = makeStack({ maxReservedBytes, chunkBytes, alignment });
    const model = new ModelPool(maxReservedBytes, chunkBytes, alignment);
    const random = rng(20_260_101);
    const live: Array<{ id: number; block: Block }> = [];
    let refusals = 0;
    let trims = 0;
    for (let op = 0; op < 3000; op++) {
      const roll = random();
      if (roll < 0.55 || live.length === 0) {
        const bytes = random() < 0.05 ? 0 : Math.floor(random() * random() * 40 * KiB);
        const expected = model.allocate(bytes, op);
        if (expected === null) {
          expect(thrown(() => resource.allocate(bytes, { label: `op${op}` }))).toBeInstanceOf(OutOfMemoryError);
          refusals++;
        } else {
          const block = resource.allocate(bytes, { label: `op${op}` });
          expect({ handle: block.chunkHandle, offset: block.offset, bytes: block.bytes }).toEqual({
            handle: expected.seq + 1,
            offset: expected.offset,
            bytes: expected.bytes,
          });
          live.push({ id: op, block });
        }
      } else if (roll < 0.98) {
        const [victim] = live.splice(Math.floor(random() * live.length), 1);
        model.free(victim.id);
        resource.deallocate(victim.block);
      } else {
        model.trim();
        pool.trim();
        trims++;
      }
      const stats = resource.stats();
      expect([stats.usedBytes, stats.reservedBytes, stats.largestFreeBlockBytes, stats.allocationCount]).toEqual([
        model.used,
        model.reserved,
        model.largestFree(),
        live.length,
      ]);
      if (op % 50 === 0) {
        expect(layout(pool)).toEqual(model.layout());
        pool.checkInvariants();
      }
    }
    expect(refusals).toBeGreaterThan(20);
    expect(trims).toBeGreaterThan(20);
    expect(layout(pool)).toEqual(model.layout());
    pool.checkInvariants();
    for (const { block } of live) resource.deallocate(block);
    expect(resource.stats()).toMatchObject({ usedBytes: 0, allocationCount: 0 });
    pool.trim();
    expect(pool.reservedBytes).toBe(0);
    expect(source.live.size).toBe(0);
  });
});

describe('PoolResource', () => {
  /** Live blocks of the given sizes back to back from offset 0 of the first chunk. */
  function packed(pool: PoolResource, sizes: number[]): Block[] {
    return sizes.map((bytes, index) => pool.allocate(bytes, { label: `b${index}` }));
  }

  it('keeps five fields a block (B8): its size comes from the request and its chunk, for pooled, 0-byte, exact and dedicated blocks', () => {
    const { pool } = makePool({ alignment: 512 });
    const sizes: Array<[number, number]> = [[0, 512], [1, 512], [512, 512], [513, 1024], [100_000, 100_352], [3 * MiB, 3 * MiB]];
    const blocks = sizes.map(([requested]) => pool.allocate(requested, { arrayId: `a${requested}` }));
    const dedicated = pool.allocate(1000, { arrayId: 'd' }, { dedicated: true });
    expect(blocks.map((block) => [block.requestedBytes, block.bytes])).toEqual(sizes);
    expect([dedicated.requestedBytes, dedicated.bytes]).toEqual([1000, pool.alignedSize(1000, { dedicated: true })]);
    // Own fields only: chunk, offset, requestedBytes, owner, liveIndex (an object of 64 B in V8 without pointer compression).
    for (const block of [...blocks, dedicated]) expect(Object.keys(block)).toEqual(['chunk', 'offset', 'requestedBytes', 'owner', 'liveIndex']);
    // The used bytes are the sizes, the blocks and free spans cover the chunks, and every byte comes back at free.
    expect(pool.usedBytes).toBe(sizes.reduce((sum, [, bytes]) => sum + bytes, 0) + dedicated.bytes);
    pool.checkInvariants();
    for (const block of [...blocks, dedicated]) pool.deallocate(block);
    expect(pool.usedBytes).toBe(0);
    pool.checkInvariants();
  });

  it('best fit: takes the smallest hole that fits, not the first or the largest', () => {
    const { pool } = makePool();
    const [a, , c, , e] = packed(pool, [1024, 256, 512, 256, 768, 256]);
    for (const block of [a, c, e]) pool.deallocate(block);
    // Holes: 1024 @ 0, 512 @ 1280, 768 @ 2048, and the chunk's tail @ 3072.
    expect(pool.allocate(500, {}).offset).toBe(1280);
    expect(pool.allocate(700, {}).offset).toBe(2048);
    expect(pool.allocate(1000, {}).offset).toBe(0);
    expect(pool.allocate(256, {}).offset).toBe(3072);
    pool.checkInvariants();
  });

  it('best fit: a hole that fits exactly is taken whole; among equal holes the last freed wins', () => {
    const { pool } = makePool();
    const blocks = packed(pool, [512, 256, 512, 256, 512, 256]);
    pool.deallocate(blocks[4]);
    pool.deallocate(blocks[0]);
    pool.deallocate(blocks[2]);
    const first = pool.allocate(512, {});
    expect(first.offset).toBe(768);
    expect(pool.snapshot()[0].blocks[2]).toEqual({ offset: 768, bytes: 512, free: false, owner: {} });
    expect(pool.allocate(400, {}).offset).toBe(0);
    expect(pool.allocate(512, {}).offset).toBe(1536);
    pool.checkInvariants();
  });

  it('best fit: among equal holes in two chunks the last freed wins, whichever chunk it is in', () => {
    const { pool, source } = makePool({ chunkBytes: 4 * KiB });
    const firstChunk = packed(pool, [1024, 1024, 2048]);
    const secondChunk = packed(pool, [1024, 1024, 2048]);
    expect(source.live.size).toBe(2);
    pool.deallocate(firstChunk[0]);
    pool.deallocate(secondChunk[0]);
    const block = pool.allocate(1024, {});
    expect([block.chunkHandle, block.offset]).toEqual([secondChunk[0].chunkHandle, 0]);
    expect(pool.allocate(1024, {}).chunkHandle).toBe(firstChunk[0].chunkHandle);
  });

  it('coalesces a freed block with a free neighbour on the left, on the right and on both sides', () => {
    const { pool } = makePool({ chunkBytes: 4 * KiB });
    const [a, b, c, d, e] = packed(pool, [256, 512, 256, 1024, 2048]);
    pool.deallocate(b);
    pool.deallocate(a); // right neighbour b is free
    expect(layout(pool)[0].blocks).toEqual(['free@0+768', 'used@768+256', 'used@1024+1024', 'used@2048+2048']);
    pool.deallocate(d);
    pool.deallocate(e); // left neighbour d is free, nothing to the right
    expect(layout(pool)[0].blocks).toEqual(['free@0+768', 'used@768+256', 'free@1024+3072']);
    expect(pool.largestFreeBlockBytes).toBe(3072);
    pool.deallocate(c); // free on both sides
    expect(layout(pool)[0].blocks).toEqual(['free@0+4096']);
    expect(pool.largestFreeBlockBytes).toBe(4096);
    pool.checkInvariants();
  });

  it('never coalesces the free end of one chunk with the free start of the next', () => {
    const { pool } = makePool({ chunkBytes: 4 * KiB });
    const first = packed(pool, [2048, 2048]);
    const second = packed(pool, [2048, 2048]);
    expect([first[1].chunkHandle, second[0].chunkHandle]).toEqual([1, 2]);
    pool.deallocate(first[1]); // the last 2 KiB of chunk 1
    pool.deallocate(second[0]); // the first 2 KiB of chunk 2
    expect(layout(pool).map((segment) => segment.blocks)).toEqual([
      ['used@0+2048', 'free@2048+2048'],
      ['free@0+2048', 'used@2048+2048'],
    ]);
    expect(pool.largestFreeBlockBytes).toBe(2048);
    expect(() => pool.allocate(4096, {})).not.toThrow();
    expect(pool.chunkCount).toBe(3);
    pool.checkInvariants();
  });

  it('starts its address space again when empty, and refuses a chunk past 2^53 bytes of addresses, giving it back', () => {
    // Alignment 1: addresses count bytes, so 2^53 of them are spent in a few rounds of 2^51-byte chunks.
    const { pool, source } = makePool({ maxReservedBytes: 2 ** 52, chunkBytes: 1 * MiB, alignment: 1 });
    for (let round = 0; round < 20; round++) {
      pool.deallocate(pool.allocate(2 ** 51, {}));
      pool.trim();
    }
    expect(pool.chunkCount).toBe(0); // each round left the pool empty, so addresses began at 0 again
    const keeper = pool.allocate(1, {}); // keeps the pool from being empty from here on
    let refusal: unknown;
    for (let round = 0; round < 20 && refusal === undefined; round++) {
      try {
        pool.deallocate(pool.allocate(2 ** 51, {}));
        pool.trim();
      } catch (error) {
        refusal = error;
      }
    }
    expect(String(refusal)).toMatch(/address space spent/);
    expect([...source.live.keys()]).toEqual([keeper.chunkHandle]);
    expect(pool.stats()).toMatchObject({ reservedBytes: 1 * MiB, allocationCount: 1, failedAllocationsTotal: 1 });
    pool.checkInvariants();
  });

  it('keeps free spans of 2^32 units and more apart from small ones of the same size modulo 2^32', () => {
    // Alignment 1: a chunk of 2^32 + 20 bytes leaves a free tail of 2^32 + 5 units beside a free 5-unit hole.
    const { pool } = makePool({ alignment: 1, chunkBytes: 2 ** 32 + 20, maxReservedBytes: 2 ** 40 });
    const [, middle] = [pool.allocate(5, {}), pool.allocate(5, {}), pool.allocate(5, {})];
    pool.deallocate(middle);
    expect(layout(pool)[0].blocks).toEqual(['used@0+5', 'free@5+5', 'used@10+5', `free@15+${2 ** 32 + 5}`]);
    pool.checkInvariants();
    expect(pool.allocate(5, {}).offset).toBe(5);
    expect(pool.allocate(6, {}).offset).toBe(15);
    pool.checkInvariants();
  });

  it('grows by chunkBytes, and by exactly the request when that is larger', () => {
    const { pool, source } = makePool({ chunkBytes: 1 * MiB });
    pool.allocate(100, {});
    pool.allocate(900 * KiB, {});
    expect(source.log).toEqual([`alloc ${1 * MiB} -> 1`]);
    pool.allocate(200 * KiB, {}); // 123.75 KiB left in chunk 1
    expect(source.log.at(-1)).toBe(`alloc ${1 * MiB} -> 2`);
    pool.allocate(1 * MiB + 1, {});
    expect(source.log.at(-1)).toBe(`alloc ${1 * MiB + 256} -> 3`);
    const small = pool.allocate(100 * KiB, {}); // best fit across chunks: chunk 1's 123.75 KiB hole
    expect([small.chunkHandle, small.offset]).toEqual([1, 921_856]);
    expect(source.live.size).toBe(3);
    expect(pool.reservedBytes).toBe(3 * MiB + 256);
  });

  it('clamps a new chunk to what the reservation cap leaves', () => {
    const { pool, source } = makePool({ maxReservedBytes: 1 * MiB + 512 * KiB + 100, chunkBytes: 1 * MiB });
    pool.allocate(1 * MiB, {});
    pool.allocate(1, {});
    expect(source.log).toEqual([`alloc ${1 * MiB} -> 1`, `alloc ${512 * KiB} -> 2`]);
    expect(pool.reservedBytes).toBe(1 * MiB + 512 * KiB);
    expect(pool.largestFreeBlockBytes).toBe(512 * KiB - 256);
  });

  it('reuses freed bytes without asking the source again', () => {
    const { pool, source } = makePool({ chunkBytes: 1 * MiB });
    const blocks = packed(pool, [512 * KiB, 512 * KiB]);
    for (const block of blocks) pool.deallocate(block);
    const again = packed(pool, [256 * KiB, 768 * KiB]);
    expect(again.map((block) => [block.chunkHandle, block.offset])).toEqual([
      [1, 0],
      [1, 256 * KiB],
    ]);
    expect(source.log).toEqual([`alloc ${1 * MiB} -> 1`]);
  });

  it('refuses past the reservation cap with the exact numbers, and changes nothing', () => {
    const { pool, source } = makePool({ maxReservedBytes: 1 * MiB, chunkBytes: 1 * MiB });
    pool.allocate(768 * KiB, { label: 'keep' });
    const before = { stats: pool.stats(), layout: layout(pool), log: [...source.log] };
    const error = thrown(() => pool.allocate(512 * KiB, {})) as OutOfMemoryError;
    expect(error).toBeInstanceOf(OutOfMemoryError);
    expect(error.message).toBe(
      "Can't allocate [DEVICE] memory: 524288 bytes (512.00 KiB) on device 0: pool reservation cap 1048576 bytes (1.00 MiB), " +
        'used 786432 bytes (768.00 KiB), largest free block 262144 bytes (256.00 KiB). ' +
        'Try: free arrays, a smaller batch, workspaces, or a larger --maxbytes.',
    );
    expect(error.facts).toEqual({
      memory: 'DEVICE',
      device: 0,
      requestedBytes: 524_288,
      capName: 'pool reservation cap',
      capBytes: 1_048_576,
      usedBytes: 786_432,
      largestFreeBlockBytes: 262_144,
    });
    expect(error.kind).toBe('RESOURCE_EXHAUSTED');
    expect(error.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(pool.stats()).toEqual({ ...before.stats, failedAllocationsTotal: 1 });
    expect(layout(pool)).toEqual(before.layout);
    expect(source.log).toEqual(before.log);
  });

  it('says where the cap went when its chunks, not its used bytes, leave no room', () => {
    // The daemon answered "pool cap (maxbytes) 192.00 MiB, used 6.75 KiB, largest free block 64.00 MiB"
    // to a 150 MiB request: every number in it said the request fits.
    const { pool, source } = makePool({ maxReservedBytes: 4 * MiB, chunkBytes: 2 * MiB });
    const kept = pool.allocate(4 * KiB, { label: 'keep' }); // a 2 MiB chunk, nearly empty
    const before = { stats: pool.stats(), log: [...source.log] };
    const error = thrown(() => pool.allocate(3 * MiB, {})) as OutOfMemoryError;
    expect(error).toBeInstanceOf(OutOfMemoryError);
    expect(error.message).toBe(
      "Can't allocate [DEVICE] memory: 3145728 bytes (3.00 MiB) on device 0: pool reservation cap 4194304 bytes (4.00 MiB), " +
        'used 4096 bytes (4.00 KiB), largest free block 2093056 bytes (2.00 MiB); no free block fits it, and a new chunk for it ' +
        "would pass the cap: the pool's chunks already reserve 2097152 bytes (2.00 MiB) of it. " +
        'Try: free arrays, a smaller batch, workspaces, or a larger --maxbytes.',
    );
    expect(error.facts).toMatchObject({ capBytes: 4 * MiB, usedBytes: 4 * KiB, reservedBytes: 2 * MiB });
    expect(error.metadata.reserved_bytes).toBe(String(2 * MiB));
    expect(pool.stats()).toEqual({ ...before.stats, failedAllocationsTotal: 1 });
    expect(source.log).toEqual(before.log);
    pool.deallocate(kept);
  });

  it('states the request as asked, and HOST memory without a device', () => {
    const { pool } = makePool({ maxReservedBytes: 0, memory: 'HOST' });
    const error = thrown(() => pool.allocate(1, {})) as OutOfMemoryError;
    expect(error.message).toBe(
      "Can't allocate [HOST] memory: 1 bytes (1 B): pool reservation cap 0 bytes (0 B), used 0 bytes (0 B), " +
        'largest free block 0 bytes (0 B). Try: free arrays, a smaller batch, workspaces, or a larger --host-maxbytes.',
    );
    expect(error.reason).toBe('HOST_OUT_OF_MEMORY');
  });

  it('gives fully free chunks back to make room under the cap, oldest first and only as many as needed', () => {
    const { pool, source } = makePool({ maxReservedBytes: 4 * MiB, chunkBytes: 1 * MiB });
    const [x, y, z, w] = packed(pool, [1 * MiB, 1 * MiB, 1 * MiB, 1 * MiB]);
    pool.deallocate(x);
    pool.deallocate(z);
    pool.deallocate(w);
    expect(pool.reservedBytes).toBe(4 * MiB);
    const big = pool.allocate(2 * MiB, {});
    expect(source.log.slice(4)).toEqual(['free 1', 'free 3', `alloc ${2 * MiB} -> 5`]);
    expect([big.chunkHandle, big.offset]).toEqual([5, 0]);
    expect([...source.live.keys()].sort()).toEqual([2, 4, 5]);
    expect(pool.reservedBytes).toBe(4 * MiB);
    pool.deallocate(y);
    pool.checkInvariants();
  });

  it('makes room when the empty chunks are exactly what the request lacks under the cap', () => {
    const { pool, source } = makePool({ maxReservedBytes: 4 * MiB, chunkBytes: 1 * MiB });
    const [x, y, z, w] = packed(pool, [1 * MiB, 1 * MiB, 1 * MiB, 1 * MiB]);
    pool.deallocate(x);
    pool.deallocate(z);
    // No headroom, 2 MiB in empty chunks, a 2 MiB request: both chunks go and it lands exactly on the cap.
    const big = pool.allocate(2 * MiB, {});
    expect(source.log.slice(4)).toEqual(['free 1', 'free 3', `alloc ${2 * MiB} -> 5`]);
    expect(big.chunkHandle).toBe(5);
    expect(pool.reservedBytes).toBe(4 * MiB);
    expect(pool.stats()).toMatchObject({ usedBytes: 4 * MiB, failedAllocationsTotal: 0 });
    for (const block of [y, w, big]) pool.deallocate(block);
    pool.checkInvariants();
  });

  it('gives nothing back when that would not make room', () => {
    const { pool, source } = makePool({ maxReservedBytes: 3 * MiB, chunkBytes: 1 * MiB });
    const [x] = packed(pool, [1 * MiB, 1 * MiB, 1 * MiB]);
    pool.deallocate(x);
    const log = [...source.log];
    const error = thrown(() => pool.allocate(2 * MiB, {})) as OutOfMemoryError;
    expect(error.facts).toMatchObject({ capName: 'pool reservation cap', capBytes: 3 * MiB, usedBytes: 2 * MiB, largestFreeBlockBytes: 1 * MiB });
    expect(source.log).toEqual(log);
    expect(pool.reservedBytes).toBe(3 * MiB);
  });

  it("rethrows the source's refusal with the pool's request, used bytes and largest free block", () => {
    const source = new FakeChunkSource();
    const { pool } = makePool({ chunkBytes: 1 * MiB }, source);
    pool.allocate(768 * KiB, {});
    source.capacityBytes = 1 * MiB;
    const before = { stats: pool.stats(), layout: layout(pool) };
    const error = thrown(() => pool.allocate(512 * KiB, {})) as OutOfMemoryError;
    expect(error).toBeInstanceOf(OutOfMemoryError);
    expect(error.facts).toEqual({
      memory: 'DEVICE',
      device: 0,
      requestedBytes: 512 * KiB,
      capName: 'emulated device capacity',
      capBytes: 1 * MiB,
      usedBytes: 768 * KiB,
      largestFreeBlockBytes: 256 * KiB,
    });
    expect(source.log.slice(1)).toEqual([`refuse ${1 * MiB}`, `refuse ${512 * KiB}`]);
    expect(pool.stats()).toEqual({ ...before.stats, failedAllocationsTotal: 1 });
    expect(layout(pool)).toEqual(before.layout);
  });

  it("names the caller's request, not the aligned chunk asked of the source, when the source refuses", () => {
    const source = new FakeChunkSource();
    const { pool } = makePool({ chunkBytes: 1 * MiB }, source);
    pool.allocate(768 * KiB, {});
    source.capacityBytes = 1 * MiB;
    const error = thrown(() => pool.allocate(300_000, {})) as OutOfMemoryError;
    expect(source.log.slice(1)).toEqual([`refuse ${1 * MiB}`, `refuse ${300_032}`]);
    expect(error).toBeInstanceOf(OutOfMemoryError);
    expect(error.facts.requestedBytes).toBe(300_000);
    expect(error.message).toContain('300000 bytes');
  });

  it('retries a refused chunk once with exactly the request', () => {
    const source = new FakeChunkSource();
    source.capacityBytes = 1 * MiB + 512 * KiB;
    const { pool } = makePool({ chunkBytes: 1 * MiB }, source);
    pool.allocate(768 * KiB, {});
    const block = pool.allocate(512 * KiB, {});
    expect(source.log).toEqual([`alloc ${1 * MiB} -> 1`, `refuse ${1 * MiB}`, `alloc ${512 * KiB} -> 2`]);
    expect([block.chunkHandle, block.offset, pool.reservedBytes]).toEqual([2, 0, 1 * MiB + 512 * KiB]);
    pool.checkInvariants();
  });

  it('passes other source errors through unchanged, holding nothing new', () => {
    const source = new FakeChunkSource();
    const { pool } = makePool({}, source);
    const failure = new Error('backend exploded');
    source.failWith = failure;
    expect(thrown(() => pool.allocate(1, {}))).toBe(failure);
    expect(source.log).toEqual(['fail 1048576']);
    expect(pool.stats()).toMatchObject({ reservedBytes: 0, usedBytes: 0, failedAllocationsTotal: 1 });
  });

  it('trim gives back exactly the fully free chunks', () => {
    const { pool, source } = makePool({ chunkBytes: 1 * MiB });
    const [a, b, c] = packed(pool, [1 * MiB, 1 * MiB, 1 * MiB]);
    pool.deallocate(a);
    pool.deallocate(c);
    expect(pool.trim()).toBe(2 * MiB);
    expect([...source.live.keys()]).toEqual([b.chunkHandle]);
    expect(pool.stats()).toMatchObject({ reservedBytes: 1 * MiB, usedBytes: 1 * MiB, largestFreeBlockBytes: 0 });
    expect(pool.trim()).toBe(0);
    pool.deallocate(b);
    expect(pool.trim()).toBe(1 * MiB);
    expect(source.live.size).toBe(0);
    expect(pool.allocate(1, {}).chunkHandle).toBe(4);
    pool.checkInvariants();
  });

  it('releaseIdleChunks gives back the chunks empty for the idle time, counted from their last free, and keeps the rest', () => {
    let now = 1000;
    const { pool, source } = makePool({ chunkBytes: 1 * MiB, now: () => now });
    const [a, b, c] = packed(pool, [1 * MiB, 1 * MiB, 512 * KiB]);
    const d = pool.allocate(256 * KiB, {});
    expect(d.chunkHandle).toBe(c.chunkHandle);
    pool.deallocate(a); // a's chunk is empty from 1000
    now = 1500;
    pool.deallocate(c); // c's chunk still holds d
    expect(pool.releaseIdleChunks(600)).toBe(0);
    now = 1600;
    expect(pool.releaseIdleChunks(600)).toBe(1 * MiB);
    expect([...source.live.keys()]).toEqual([b.chunkHandle, c.chunkHandle]);
    // A chunk used again after it emptied counts from its next last free.
    pool.deallocate(d); // c's chunk is empty from 1600
    now = 2000;
    const e = pool.allocate(100, {});
    expect(e.chunkHandle).toBe(c.chunkHandle);
    now = 2100;
    pool.deallocate(e);
    now = 2600;
    expect(pool.releaseIdleChunks(600)).toBe(0);
    now = 2700;
    expect(pool.releaseIdleChunks(600)).toBe(1 * MiB);
    expect([...source.live.keys()]).toEqual([b.chunkHandle]);
    expect(pool.stats()).toMatchObject({ reservedBytes: 1 * MiB, usedBytes: 1 * MiB });
    pool.checkInvariants();
    // A chunk with a live block is never idle, however long it has held it.
    now = 10_000;
    pool.deallocate(b);
    const f = pool.allocate(2 * MiB, {});
    now = 20_000;
    expect(pool.releaseIdleChunks(600)).toBe(1 * MiB);
    expect([...source.live.keys()]).toEqual([f.chunkHandle]);
    pool.checkInvariants();
  });

  it('release gives back every chunk, live blocks included, and leaves their blocks stale', () => {
    const { pool, source } = makePool({ chunkBytes: 1 * MiB });
    const blocks = packed(pool, [1 * MiB, 100, 200]);
    pool.release();
    expect(source.live.size).toBe(0);
    expect(pool.stats()).toMatchObject({ reservedBytes: 0, usedBytes: 0, allocationCount: 0, largestFreeBlockBytes: 0 });
    expect(pool.snapshot()).toEqual([]);
    expect(() => pool.deallocate(blocks[1])).toThrow(/no live block/);
    pool.checkInvariants();
    expect(pool.allocate(1, {}).chunkHandle).toBe(3);
  });

  it('release frees every other chunk when the source throws for one, then rethrows the first error', () => {
    const { pool, source } = makePool({ chunkBytes: 1 * MiB });
    const blocks = packed(pool, [1 * MiB, 1 * MiB, 1 * MiB]);
    const failure = new Error('backend free failed');
    const free = source.freeChunk.bind(source);
    source.freeChunk = (handle: number) => {
      if (handle === blocks[0].chunkHandle) throw failure;
      free(handle);
    };
    expect(thrown(() => pool.release())).toBe(failure);
    // Only the chunk whose free failed is left with the source; a release that stopped there leaked the rest.
    expect([...source.live.keys()]).toEqual([blocks[0].chunkHandle]);
    expect(pool.stats()).toMatchObject({ reservedBytes: 0, usedBytes: 0, allocationCount: 0 });
    expect(pool.snapshot()).toEqual([]);
  });

  it('snapshots chunks in order with their blocks by address and the owners of live blocks', () => {
    const { pool } = makePool({ chunkBytes: 4 * KiB });
    const owner = { leaseId: 'l1', tenant: 't', purpose: 'array' };
    const [, b] = packed(pool, [1024, 1024]);
    pool.deallocate(b);
    pool.allocate(512, owner);
    pool.allocate(8 * KiB, {});
    expect(pool.snapshot()).toEqual([
      {
        chunkHandle: 1,
        bytes: 4096,
        blocks: [
          { offset: 0, bytes: 1024, free: false, owner: { label: 'b0' } },
          { offset: 1024, bytes: 512, free: false, owner },
          { offset: 1536, bytes: 2560, free: true },
        ],
      },
      { chunkHandle: 2, bytes: 8192, blocks: [{ offset: 0, bytes: 8192, free: false, owner: {} }] },
    ]);
  });

  it('honours a custom alignment', () => {
    const { pool } = makePool({ alignment: 4096, chunkBytes: 10_000 });
    const block = pool.allocate(1, {});
    expect([block.bytes, pool.reservedBytes, pool.alignedSize(0), pool.alignedSize(4097)]).toEqual([4096, 12_288, 4096, 8192]);
  });

  it('checks its constructor options', () => {
    const source = new FakeChunkSource();
    const base = { source, memory: 'DEVICE' as const, maxReservedBytes: MiB, chunkBytes: MiB };
    expect(() => new PoolResource({ ...base, alignment: 3 })).toThrow(/power of two/);
    expect(() => new PoolResource({ ...base, maxReservedBytes: -1 })).toThrow(/maxReservedBytes/);
    expect(() => new PoolResource({ ...base, chunkBytes: 0 })).toThrow(/chunkBytes/);
  });

  it('checkInvariants catches a corrupted block', () => {
    const { pool } = makePool();
    const block = pool.allocate(1024, {});
    pool.allocate(1024, {});
    pool.checkInvariants();
    // Its size follows requestedBytes (PoolBlock.bytes): 256 bytes of the 1024 it covers.
    (block as { requestedBytes: number }).requestedBytes = 200;
    expect(() => pool.checkInvariants()).toThrow(/invariant violated/);
    expect(pool.invariantHolds()).toBe(false);
  });
});
