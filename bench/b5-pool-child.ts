/**
 * B5's measuring process (started by bench/run with a JSON argument; prints one JSON line).
 *
 * One PoolResource per live-block count, over a fake ChunkSource that hands out integer handles (no
 * native code, no memory behind the chunks). Each pool is filled with `live` blocks of sizes drawn
 * from 256 B to 64 KiB (skewed to small: 256 × (1 + ⌊r³ × 255⌋)), then churned untimed (`live` pairs)
 * so its free list is fragmented as in steady use. One timed pair = deallocate a random live block,
 * then allocate a new block of a random size in its slot: the live count stays constant.
 *
 * Timer overhead: pairs are timed in batches of `batch` (default 1000) with one process.hrtime.bigint()
 * pair per batch (~0.1 µs), i.e. < 0.001 µs per pair; the indices and sizes are drawn beforehand so the
 * PRNG is not timed. The same loop with no pool calls is timed too and reported as the loop overhead
 * (not subtracted). Batches of the pools are interleaved (small, large, small, ...), so the growth
 * ratio compares measurements taken side by side.
 *
 * Two side measurements explain the churn figure: LIFO (allocate a block and free it at once, the same
 * sizes: the pool's own work with its data in cache) and touch (no pool call: read a random live
 * block's offset, size and chunk, the cold memory a churn pair cannot avoid, as the free must read the
 * block it is given; its growth is the cache's, not the pool's).
 */
import { PoolResource } from '../src/memory/pool-resource';
import type { Block, BlockOwner, ChunkSource } from '../src/memory/memory-resource';
import { median, percentile, xorshift32 } from './lib/stats';

interface Params {
  live: number[];
  batches: number;
  batch: number;
  seed: number;
}

class FakeChunkSource implements ChunkSource {
  private next = 1;
  readonly held = new Set<number>();
  allocateChunk(): number {
    const handle = this.next++;
    this.held.add(handle);
    return handle;
  }
  freeChunk(handle: number): void {
    this.held.delete(handle);
  }
}

const OWNER: BlockOwner = Object.freeze({ purpose: 'bench' });

function drawSize(random: () => number): number {
  const r = random();
  return 256 * (1 + Math.floor(r * r * r * 255));
}

interface PoolUnderTest {
  live: number;
  pool: PoolResource;
  blocks: Block[];
  indices: Uint32Array;
  /** Slots for the touch measure, drawn apart from the churn's so that they are not warm from it. */
  touchIndices: Uint32Array;
  sizes: Float64Array;
  cursor: number;
  perPairUs: number[];
  /** Same pools, allocate a block and free it at once (LIFO): the pool's own cost with caches warm. */
  lifoUs: number[];
  /** No pool call: read a random live block's offset, size and chunk (the memory a churn pair touches at least). */
  touchUs: number[];
  chunks: number;
}

function build(live: number, draws: number, seed: number): PoolUnderTest {
  const random = xorshift32(seed);
  const source = new FakeChunkSource();
  const pool = new PoolResource({ source, memory: 'DEVICE', device: 0, maxReservedBytes: 2 ** 52, chunkBytes: 64 * 1024 * 1024 });
  const blocks: Block[] = new Array(live);
  for (let i = 0; i < live; i++) blocks[i] = pool.allocate(drawSize(random), OWNER);
  // Untimed churn to a fragmented steady state.
  for (let i = 0; i < live; i++) {
    const slot = Math.floor(random() * live);
    pool.deallocate(blocks[slot]);
    blocks[slot] = pool.allocate(drawSize(random), OWNER);
  }
  const indices = new Uint32Array(draws);
  const touchIndices = new Uint32Array(draws);
  const sizes = new Float64Array(draws);
  for (let i = 0; i < draws; i++) {
    indices[i] = Math.floor(random() * live);
    touchIndices[i] = Math.floor(random() * live);
    sizes[i] = drawSize(random);
  }
  return { live, pool, blocks, indices, touchIndices, sizes, cursor: 0, perPairUs: [], lifoUs: [], touchUs: [], chunks: source.held.size };
}

function timeBatch(p: PoolUnderTest, batch: number): number {
  const { pool, blocks, indices, sizes } = p;
  let k = p.cursor;
  const start = process.hrtime.bigint();
  for (let i = 0; i < batch; i++, k++) {
    const slot = indices[k];
    pool.deallocate(blocks[slot]);
    blocks[slot] = pool.allocate(sizes[k], OWNER);
  }
  const elapsed = Number(process.hrtime.bigint() - start);
  p.cursor = k;
  return elapsed / 1000 / batch;
}

let sink = 0;

function timeLifoBatch(p: PoolUnderTest, batch: number, from: number): number {
  const { pool, sizes } = p;
  const start = process.hrtime.bigint();
  for (let i = 0, k = from; i < batch; i++, k++) pool.deallocate(pool.allocate(sizes[k], OWNER));
  return Number(process.hrtime.bigint() - start) / 1000 / batch;
}

function timeTouchBatch(p: PoolUnderTest, batch: number, from: number): number {
  const { blocks, touchIndices } = p;
  const start = process.hrtime.bigint();
  for (let i = 0, k = from; i < batch; i++, k++) {
    const block = blocks[touchIndices[k]];
    sink += block.offset + block.bytes + block.chunkHandle;
  }
  return Number(process.hrtime.bigint() - start) / 1000 / batch;
}

function timeEmptyBatch(p: PoolUnderTest, batch: number, from: number): number {
  const { indices, sizes } = p;
  const start = process.hrtime.bigint();
  for (let i = 0, k = from; i < batch; i++, k++) sink += indices[k] + sizes[k];
  return Number(process.hrtime.bigint() - start) / 1000 / batch;
}

function main(): void {
  const params = JSON.parse(process.argv[2] ?? '{}') as Params;
  const warmupBatches = Math.max(5, Math.floor(params.batches / 10));
  const draws = (params.batches + warmupBatches) * params.batch;
  const buildStart = process.hrtime.bigint();
  const pools = params.live.map((live, i) => build(live, draws, params.seed + i));
  const buildSeconds = Number(process.hrtime.bigint() - buildStart) / 1e9;

  for (let b = 0; b < warmupBatches; b++) for (const p of pools) timeBatch(p, params.batch);
  for (let b = 0; b < params.batches; b++) {
    const order = b % 2 === 0 ? pools : [...pools].reverse();
    for (const p of order) {
      const from = p.cursor;
      p.perPairUs.push(timeBatch(p, params.batch));
      p.lifoUs.push(timeLifoBatch(p, params.batch, from));
      p.touchUs.push(timeTouchBatch(p, params.batch, from));
    }
  }
  const loopOverhead: number[] = [];
  const timerOverheadNs: number[] = [];
  for (let b = 0; b < 50; b++) {
    loopOverhead.push(timeEmptyBatch(pools[0], params.batch, (b * params.batch) % (draws - params.batch)));
    const t = process.hrtime.bigint();
    timerOverheadNs.push(Number(process.hrtime.bigint() - t));
  }
  for (const p of pools) p.pool.checkInvariants();

  process.stdout.write(
    `${JSON.stringify({
      batch: params.batch,
      batches: params.batches,
      warmupBatches,
      buildSeconds,
      loopOverheadUsPerPair: median(loopOverhead),
      timerOverheadNsPerRead: median(timerOverheadNs),
      sink: sink > 0,
      pools: pools.map((p) => ({
        live: p.live,
        liveAfter: p.pool.allocationCount,
        chunks: p.pool.chunkCount,
        reservedBytes: p.pool.reservedBytes,
        usedBytes: p.pool.usedBytes,
        medianUsPerPair: median(p.perPairUs),
        p99BatchUsPerPair: percentile(p.perPairUs, 99),
        minUsPerPair: Math.min(...p.perPairUs),
        maxUsPerPair: Math.max(...p.perPairUs),
        lifoMedianUsPerPair: median(p.lifoUs),
        touchMedianUsPerPair: median(p.touchUs),
      })),
    })}\n`,
  );
}

main();
