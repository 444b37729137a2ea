import { describe, expect, it } from 'vitest';
import { OutOfMemoryError, TensormemError } from '../../src/errors';
import { LimitingAdaptor } from '../../src/memory/limiting-adaptor';
import type { Block, BlockOwner, ChunkSource, MemoryResource, ResourceStats } from '../../src/memory/memory-resource';
import { PoolResource } from '../../src/memory/pool-resource';
import { KiB, MiB } from '../../src/units';
import { thrownBy } from '../helpers/thrown';

/** Hands out handles 1, 2, 3, ... and records them; never refuses. */
class RecordingChunkSource implements ChunkSource {
  readonly log: string[] = [];
  private nextHandle = 1;
  allocateChunk(bytes: number): number {
    this.log.push(`alloc ${bytes}`);
    return this.nextHandle++;
  }
  freeChunk(handle: number): void {
    this.log.push(`free ${handle}`);
  }
}

/** A pool with 64 KiB chunks, and how many times allocate reached it. */
function setup(limitBytes: number, options: { memory?: 'DEVICE' | 'HOST'; maxReservedBytes?: number } = {}) {
  const source = new RecordingChunkSource();
  const pool = new PoolResource({ source, memory: options.memory ?? 'DEVICE', device: 1, maxReservedBytes: options.maxReservedBytes ?? 16 * MiB, chunkBytes: 64 * KiB });
  const calls = { allocate: 0 };
  const allocate = pool.allocate.bind(pool);
  pool.allocate = (bytes: number, owner: BlockOwner): Block => {
    calls.allocate++;
    return allocate(bytes, owner);
  };
  const limiter = new LimitingAdaptor(pool, {
    limitBytes,
    capName: options.memory === 'HOST' ? 'host cap (host-maxbytes)' : 'pool cap (maxbytes)',
    memory: options.memory ?? 'DEVICE',
    device: options.memory === 'HOST' ? undefined : 1,
  });
  return { source, pool, limiter, calls };
}

const refusal = (action: () => unknown): OutOfMemoryError => thrownBy(action, OutOfMemoryError);

describe('LimitingAdaptor', () => {
  it('accepts a request that lands exactly on the limit', () => {
    const { limiter, pool } = setup(4096);
    const block = limiter.allocate(4096, {});
    expect(block.bytes).toBe(4096);
    expect(pool.usedBytes).toBe(4096);
  });

  it('refuses a request one aligned unit past the limit, counting the aligned size', () => {
    const { limiter, pool, calls } = setup(4096);
    const error = refusal(() => limiter.allocate(4097, {})); // takes 4352 bytes
    expect(error.facts).toEqual({
      memory: 'DEVICE',
      device: 1,
      requestedBytes: 4097,
      capName: 'pool cap (maxbytes)',
      capBytes: 4096,
      usedBytes: 0,
      largestFreeBlockBytes: 0,
    });
    expect(calls.allocate).toBe(0);
    expect(pool.reservedBytes).toBe(0);
  });

  it('with blocks live: fills up to the limit, then refuses even one byte, with the exact message', () => {
    const { limiter, pool, source, calls } = setup(4096);
    limiter.allocate(3000, {}); // 3072
    limiter.allocate(1024, {}); // 4096: exactly the limit
    const before = { stats: pool.stats(), log: [...source.log], calls: calls.allocate };
    const error = refusal(() => limiter.allocate(1, {}));
    expect(error.message).toBe(
      "Can't allocate [DEVICE] memory: 1 bytes (1 B) on device 1: pool cap (maxbytes) 4096 bytes (4.00 KiB), used 4096 bytes (4.00 KiB), " +
        'largest free block 61440 bytes (60.00 KiB). Try: free arrays, a smaller batch, workspaces, or a larger --maxbytes.',
    );
    expect(error.metadata).toMatchObject({ requested_bytes: '1', cap_bytes: '4096', used_bytes: '4096', largest_free_block_bytes: '61440', device: '1' });
    expect(calls.allocate).toBe(before.calls);
    expect(pool.stats()).toEqual(before.stats);
    expect(source.log).toEqual(before.log);
  });

  it('counts a 0-byte request as one aligned unit', () => {
    const { limiter } = setup(256);
    expect(limiter.allocate(0, {}).bytes).toBe(256);
    expect(refusal(() => limiter.allocate(0, {})).facts).toMatchObject({ requestedBytes: 0, usedBytes: 256, capBytes: 256 });
  });

  it('with a limit that is not aligned, refuses the aligned unit that would cross it', () => {
    const { limiter } = setup(1000);
    limiter.allocate(768, {});
    refusal(() => limiter.allocate(1, {})); // 768 + 256 = 1024 > 1000
    expect(limiter.usedBytes).toBe(768);
  });

  it('counts blocks allocated on the upstream directly against the limit', () => {
    const { limiter, pool } = setup(8 * KiB);
    pool.allocate(7 * KiB, {});
    expect(refusal(() => limiter.allocate(2 * KiB, {})).facts.usedBytes).toBe(7 * KiB);
    expect(limiter.allocate(1 * KiB, {}).bytes).toBe(1 * KiB);
  });

  it('gives bytes back to the limit on deallocate, and passes invariant violations through', () => {
    const { limiter } = setup(4096);
    const block = limiter.allocate(4096, {});
    refusal(() => limiter.allocate(256, {}));
    limiter.deallocate(block);
    expect(limiter.allocate(256, {}).bytes).toBe(256);
    expect(() => limiter.deallocate(block)).toThrow(/no live block/);
  });

  it('setLimit raises and lowers the limit; a limit below the used bytes refuses until enough is freed', () => {
    const { limiter } = setup(1024);
    const a = limiter.allocate(1024, {});
    limiter.setLimit(2048);
    const b = limiter.allocate(1024, {});
    limiter.setLimit(1024);
    expect(limiter.limitBytes).toBe(1024);
    expect(refusal(() => limiter.allocate(0, {})).facts).toMatchObject({ capBytes: 1024, usedBytes: 2048 });
    limiter.deallocate(a);
    refusal(() => limiter.allocate(0, {}));
    limiter.deallocate(b);
    expect(limiter.allocate(1024, {}).bytes).toBe(1024);
    expect(() => limiter.setLimit(-1)).toThrow(/Expected a non-negative safe integer for limitBytes but received -1/);
    expect(() => new LimitingAdaptor(setup(0).pool, { limitBytes: 0.5, capName: 'x', memory: 'HOST' })).toThrow(TensormemError);
  });

  it('names the host cap and flag for HOST memory', () => {
    const { limiter } = setup(512, { memory: 'HOST' });
    const error = refusal(() => limiter.allocate(1024, {}));
    expect(error.message).toBe(
      "Can't allocate [HOST] memory: 1024 bytes (1.00 KiB): host cap (host-maxbytes) 512 bytes (512 B), used 0 bytes (0 B), " +
        'largest free block 0 bytes (0 B). Try: free arrays, a smaller batch, workspaces, or a larger --host-maxbytes.',
    );
    expect(error.reason).toBe('HOST_OUT_OF_MEMORY');
  });

  it("lets the upstream's own refusal through unchanged when under the limit", () => {
    const { limiter } = setup(1 * MiB, { maxReservedBytes: 64 * KiB });
    limiter.allocate(60 * KiB, {});
    expect(refusal(() => limiter.allocate(8 * KiB, {})).facts).toMatchObject({ capName: 'pool reservation cap', capBytes: 64 * KiB });
  });

  it('rejects bad sizes with INVALID_ARGUMENT without calling upstream', () => {
    const { limiter, calls } = setup(1 * MiB);
    expect(() => limiter.allocate(-5, {})).toThrow(/Expected a non-negative safe integer for bytes but received -5/);
    expect(calls.allocate).toBe(0);
  });

  it("reports the upstream's stats with its own refusals added to failedAllocationsTotal", () => {
    const { limiter, pool } = setup(1024);
    limiter.allocate(512, {});
    refusal(() => limiter.allocate(1024, {}));
    refusal(() => limiter.allocate(1024, {}));
    expect(limiter.stats()).toEqual({ ...pool.stats(), failedAllocationsTotal: 2 });
    expect(limiter.alignedSize(1)).toBe(256);
    expect(limiter.usedBytes).toBe(512);
  });

  it('takes an upstream without alignedSize or usedBytes at its word: the requested bytes, and stats().usedBytes', () => {
    let used = 0;
    const upstream: MemoryResource = {
      allocate: (bytes: number, owner: BlockOwner): Block => {
        used += bytes;
        return { chunkHandle: 1, offset: 0, bytes, requestedBytes: bytes, owner };
      },
      deallocate: (block: Block) => {
        used -= block.bytes;
      },
      stats: (): ResourceStats => ({
        usedBytes: used,
        reservedBytes: 0,
        peakUsedBytes: 0,
        largestFreeBlockBytes: 7,
        allocationCount: 0,
        allocationsTotal: 0,
        failedAllocationsTotal: 0,
      }),
    };
    const limiter = new LimitingAdaptor(upstream, { limitBytes: 1000, capName: 'test cap', memory: 'DEVICE' });
    limiter.allocate(999, {});
    limiter.allocate(1, {});
    expect(refusal(() => limiter.allocate(1, {})).facts).toMatchObject({ usedBytes: 1000, largestFreeBlockBytes: 7, capName: 'test cap' });
  });
});
