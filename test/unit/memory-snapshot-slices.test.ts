/**
 * A memory snapshot of many blocks holds the event loop only briefly: the pools are captured at one
 * instant (copies of the live-block list and the free spans), and the blocks sorted and listed from
 * that capture a slice at a time. Built in one go, a snapshot of 10^6 blocks held the event loop for
 * 0.25-0.6 s (1-2 s in a busy daemon): every other client's call waited that long for each
 * GetMemorySnapshot or /api/snapshot. The snapshot stays the pools of its instant while blocks are
 * allocated and freed during its listing.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { Block, BlockOwner } from '../../src/memory/memory-resource';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { PoolResource } from '../../src/memory/pool-resource';
import { createBackend } from '../../src/native/addon';
import { writeStatusSnapshot } from '../../src/observability/status-snapshot';
import { blockInfo } from '../../src/service/memory-service';
import { loadTensormemProto } from '../../src/service/proto';
import { encodeMemorySnapshot } from '../../src/service/snapshot-encoder';
import type { ServiceContext } from '../../src/service/service-context';
import { GiB, MiB } from '../../src/units';

/**
 * The longest the event loop may be held during a snapshot of 10^6 blocks, as a share of what walking
 * the pools in one go (MemoryManager.snapshot, what both paths did in one turn before they were sliced)
 * takes in the same try (the baseline of the same run, so that a loaded machine slows both): sliced, the
 * longest hold is the capture (a few ms to tens) or a garbage collection: 0.06-0.14 of it here, where
 * the walk in one turn held it 0.66-0.72 of it (the best of three, in a busy daemon much more). A loaded machine may
 * preempt the process for 100 ms now and then, so each case gets a few tries and passes when one stays
 * under the share.
 */
const MAX_HOLD_SHARE = 0.4;
const TRIES = 3;

const owners: BlockOwner[] = Array.from({ length: 8 }, (_, i) => ({ leaseId: `lease-${i}`, tenant: 'default', arrayId: `arr-${i}`, label: i % 2 ? '' : `label-${i}`, purpose: 'array' }));

let memory: MemoryManager | undefined;
afterEach(() => {
  memory?.release();
  memory = undefined;
});

/** A memory manager holding `count` blocks of 256 to 768 bytes on device 0, every seventh freed again. */
function withBlocks(count: number): { memory: MemoryManager; context: ServiceContext; blocks: Block[] } {
  memory = new MemoryManager(
    createBackend('host', { deviceCapacityBytes: 2 * GiB, deviceCount: 1 }),
    givenLimits([1 * GiB], 64 * MiB),
    { poolChunkBytes: 64 * MiB, asyncCopyThresholdBytes: MiB, scrub: false },
    new PhysicalMemoryGuard(0),
  );
  const blocks: Block[] = [];
  for (let i = 0; i < count; i++) blocks.push(memory.allocateDevice(0, 256 * (1 + (i % 3)), owners[i % owners.length]));
  // Free spans scattered among the blocks, as a daemon's churn leaves them.
  for (let i = 0; i < count; i += 7) memory.deallocateDevice(0, blocks[i]);
  const context = {
    memory,
    registry: { list: () => [], countOf: () => 0, tenantsWithLeases: () => [], isEvicting: () => false },
    tenants: { openMode: true, get: () => undefined, maxLeasesOf: () => 0, isDropped: () => false },
  } as unknown as ServiceContext;
  return { memory, context, blocks };
}

/**
 * The longest the event loop was held while `work` ran, as a share of the time `inOneGo` (the same
 * snapshot built synchronously) took just before: the best of TRIES tries; with both in ms.
 */
async function longestHold(work: () => Promise<unknown>, inOneGo: () => unknown): Promise<{ share: number; holdMs: number; oneGoMs: number }> {
  let best = { share: Infinity, holdMs: Infinity, oneGoMs: 0 };
  for (let t = 0; t < TRIES && best.share >= MAX_HOLD_SHARE; t++) {
    const started = performance.now();
    inOneGo();
    const oneGoMs = performance.now() - started;
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    // Its timer running before the work starts: a hold in the work's first turn is then seen too.
    await new Promise((resolve) => setTimeout(resolve, 30));
    await work();
    // And after it ends: the hold of its last turn.
    await new Promise((resolve) => setTimeout(resolve, 30));
    delay.disable();
    const holdMs = delay.max / 1e6;
    if (holdMs / oneGoMs < best.share) best = { share: holdMs / oneGoMs, holdMs, oneGoMs };
  }
  return best;
}

const serializeSnapshot = () => loadTensormemProto().proto.tensormem.v1.MemoryService.service.GetMemorySnapshot.responseSerialize as (value: unknown) => Buffer;
const deserializeSnapshot = () => loadTensormemProto().proto.tensormem.v1.MemoryService.service.GetMemorySnapshot.responseDeserialize as (bytes: Buffer) => any;

describe('a memory snapshot of 10^6 blocks', () => {
  it('/api/snapshot and GetMemorySnapshot hold the event loop briefly', async () => {
    const { memory, context } = withBlocks(1_000_000);
    // What both paths did in one turn before they were sliced: the pools' snapshot, walked at once.
    const inOneGo = () => memory.snapshot();
    let written = 0;
    const api = await longestHold(
      () =>
        writeStatusSnapshot(context, async (piece) => {
          written += piece.length;
          return true;
        }),
      inOneGo,
    );
    expect(written).toBeGreaterThan(1_000_000 * 50);
    const serialize = serializeSnapshot();
    let encoded = 0;
    const grpc = await longestHold(async () => (encoded = (await encodeMemorySnapshot(context, serialize, 2 * GiB)).bytes.length), inOneGo);
    expect(encoded).toBeGreaterThan(1_000_000 * 20);
    const said = (what: string, hold: { holdMs: number; oneGoMs: number }) => `${what} held the event loop ${hold.holdMs.toFixed(0)} ms; in one go ${hold.oneGoMs.toFixed(0)} ms`;
    expect(api.share, said('/api/snapshot', api)).toBeLessThan(MAX_HOLD_SHARE);
    expect(grpc.share, said('GetMemorySnapshot', grpc)).toBeLessThan(MAX_HOLD_SHARE);
  }, 60_000);
});

describe('a memory snapshot listed while blocks are allocated and freed', () => {
  /** Frees and allocates blocks of device 0, one pair a turn of the event loop, until the returned function is called; it resolves to the pairs. */
  function churn(memory: MemoryManager, blocks: Block[]): () => Promise<number> {
    let churning = true;
    let pairs = 0;
    const done = (async () => {
      for (let i = 3; churning; i = (i + 7) % blocks.length) {
        memory.deallocateDevice(0, blocks[i]);
        blocks[i] = memory.allocateDevice(0, 256 * (1 + (pairs % 4)), owners[pairs % owners.length]);
        pairs++;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    })();
    return async () => {
      churning = false;
      await done;
      return pairs;
    };
  }

  it('is the pools of the instant it was asked for: every block once, their bytes the used bytes then', async () => {
    const { memory, context, blocks } = withBlocks(60_000);
    const deserialize = deserializeSnapshot();
    for (const kind of ['api', 'grpc'] as const) {
      // One turn: what the snapshot must show, the counters, and the snapshot asked for (its instant).
      const expected = memory.snapshot().map((pool) => ({ pool: pool.pool, segments: pool.segments.map((segment) => ({ chunk: segment.chunkHandle, bytes: segment.bytes, blocks: segment.blocks.map(blockInfo) })) }));
      const usedAtStart = memory.deviceReports()[0].usedBytes;
      const liveAtStart = memory.deviceReports()[0].allocationCount;
      let text = '';
      const listed =
        kind === 'api'
          ? writeStatusSnapshot(context, async (piece) => {
              text += piece;
              return true;
            }).then(() => JSON.parse(text).snapshot)
          : encodeMemorySnapshot(context, serializeSnapshot(), 2 * GiB).then((encoded) => deserialize(encoded.bytes).snapshot);
      const stop = churn(memory, blocks);
      const snapshot = await listed;
      expect(await stop()).toBeGreaterThan(10);
      const pools = snapshot.pools.map((pool: any) => ({
        pool: pool.pool,
        segments: pool.segments.map((segment: any) => ({
          chunk: Number(segment.chunk),
          bytes: Number(segment.bytes),
          blocks: segment.blocks.map((block: any) => ({ ...block, offset: Number(block.offset), bytes: Number(block.bytes) })),
        })),
      }));
      expect(pools).toEqual(expected);
      // And what it is independently of how snapshot() lists it: each chunk tiled, in address order,
      // by its blocks and free spans (no two free ones adjacent), as many blocks as were live.
      const violations: string[] = [];
      for (const pool of pools) {
        for (const segment of pool.segments) {
          let offset = 0;
          let previousFree = false;
          for (const block of segment.blocks) {
            if (block.offset !== offset) violations.push(`${pool.pool} chunk ${segment.chunk}: a block at ${block.offset}, expected at ${offset}`);
            if (block.free && previousFree) violations.push(`${pool.pool} chunk ${segment.chunk}: two free blocks adjacent at ${offset}`);
            offset += block.bytes;
            previousFree = block.free;
          }
          if (offset !== segment.bytes) violations.push(`${pool.pool} chunk ${segment.chunk}: blocks cover ${offset} of ${segment.bytes} bytes`);
        }
      }
      expect(violations.slice(0, 5)).toEqual([]);
      const device = pools.find((pool: { pool: string }) => pool.pool === 'device:0');
      const used = device.segments.flatMap((segment: any) => segment.blocks).reduce((sum: number, block: any) => sum + (block.free ? 0 : block.bytes), 0);
      expect(used).toBe(usedAtStart);
      expect(device.segments.flatMap((segment: any) => segment.blocks).filter((block: any) => !block.free).length).toBe(liveAtStart);
      expect(Number(snapshot.info.devices[0].used_bytes)).toBe(usedAtStart);
      memory.checkInvariants();
    }
  }, 60_000);
});

describe('PoolResource.snapshot', () => {
  it('lists the blocks of a chunk too large to sort by packed keys (past 2^53 units times its blocks) by address too', () => {
    let handles = 0;
    const pool = new PoolResource({ source: { allocateChunk: () => ++handles, freeChunk: () => undefined }, memory: 'HOST', maxReservedBytes: 2 ** 42, chunkBytes: 2 ** 41, alignment: 1 });
    const blocks = Array.from({ length: 20_000 }, (_, i) => pool.allocate(1 + (i % 5), { label: `b${i}` }));
    for (let i = 0; i < blocks.length; i += 3) pool.deallocate(blocks[i]);
    const [segment] = pool.snapshot();
    let offset = 0;
    let live = 0;
    for (const block of segment.blocks) {
      if (block.offset !== offset) throw new Error(`a block at ${block.offset}, expected at ${offset}`);
      offset += block.bytes;
      if (!block.free) live++;
    }
    expect(offset).toBe(2 ** 41);
    expect(live).toBe(pool.allocationCount);
  });
});
