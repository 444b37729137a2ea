/**
 * Dedicated blocks (AllocateOptions.dedicated, for ExportArray): a chunk of their own, page-rounded,
 * counted like any block, given back to the source at free and never shared with another block.
 */
import { describe, expect, it } from 'vitest';
import { OutOfMemoryError } from '../../src/errors';
import type { AllocateOptions, ChunkSource } from '../../src/memory/memory-resource';
import { LimitingAdaptor } from '../../src/memory/limiting-adaptor';
import { PoolResource } from '../../src/memory/pool-resource';
import { QuotaAdaptor } from '../../src/memory/quota-adaptor';
import { StatisticsAdaptor } from '../../src/memory/statistics-adaptor';
import { KiB, MiB } from '../../src/units';

class RecordingSource implements ChunkSource {
  readonly live = new Map<number, { bytes: number; dedicated: boolean }>();
  readonly freed: number[] = [];
  private next = 1;
  allocateChunk(bytes: number, options?: AllocateOptions): number {
    const handle = this.next++;
    this.live.set(handle, { bytes, dedicated: options?.dedicated ?? false });
    return handle;
  }
  freeChunk(handle: number): void {
    if (!this.live.delete(handle)) throw new Error(`unknown chunk ${handle}`);
    this.freed.push(handle);
  }
}

function pool(source: ChunkSource, maxReservedBytes = 64 * MiB): PoolResource {
  return new PoolResource({ source, memory: 'HOST', maxReservedBytes, chunkBytes: 4 * MiB });
}

describe('dedicated blocks', () => {
  it('take a page-rounded chunk of their own, asked of the source as dedicated, and count as used and reserved', () => {
    const source = new RecordingSource();
    const resource = pool(source);
    expect(resource.alignedSize(1000, { dedicated: true })).toBe(4 * KiB);
    expect(resource.alignedSize(0, { dedicated: true })).toBe(4 * KiB);
    expect(resource.alignedSize(8 * KiB, { dedicated: true })).toBe(8 * KiB);
    const block = resource.allocate(1000, { arrayId: 'a' }, { dedicated: true });
    expect(block).toMatchObject({ offset: 0, bytes: 4 * KiB, requestedBytes: 1000 });
    expect(source.live.get(block.chunkHandle)).toEqual({ bytes: 4 * KiB, dedicated: true });
    expect(resource.stats()).toMatchObject({ usedBytes: 4 * KiB, reservedBytes: 4 * KiB, largestFreeBlockBytes: 0, allocationCount: 1 });
    expect(resource.snapshot()).toEqual([{ chunkHandle: block.chunkHandle, bytes: 4 * KiB, dedicated: true, blocks: [{ offset: 0, bytes: 4 * KiB, free: false, owner: { arrayId: 'a' } }] }]);
    resource.checkInvariants();
  });

  it('are never shared: other requests get other chunks, and the chunk goes back to the source at free', () => {
    const source = new RecordingSource();
    const resource = pool(source);
    const dedicated = resource.allocate(MiB + 1, {}, { dedicated: true });
    expect(dedicated.bytes).toBe(MiB + 4 * KiB);
    const shared = resource.allocate(256, {});
    expect(shared.chunkHandle).not.toBe(dedicated.chunkHandle);
    resource.deallocate(dedicated);
    expect(source.freed).toEqual([dedicated.chunkHandle]);
    expect(source.live.has(dedicated.chunkHandle)).toBe(false);
    // A later request of the same size is carved from the shared chunk, never a freed dedicated one.
    const later = resource.allocate(MiB + 1, {});
    expect(later.chunkHandle).toBe(shared.chunkHandle);
    expect(resource.stats()).toMatchObject({ reservedBytes: 4 * MiB });
    resource.checkInvariants();
  });

  it('pass through the adaptors with their page-rounded size: limits and quotas check it before allocating', () => {
    const source = new RecordingSource();
    const resource = pool(source);
    const limiter = new LimitingAdaptor(resource, { limitBytes: 12 * KiB, capName: 'host cap (host-maxbytes)', memory: 'HOST' });
    const stats = new StatisticsAdaptor(limiter);
    const quota = new QuotaAdaptor(stats, 'team-a', 8 * KiB, 'HOST');
    const first = quota.allocate(100, {}, { dedicated: true });
    expect(quota.usedBytes).toBe(4 * KiB);
    expect(stats.usedBytes).toBe(4 * KiB);
    quota.allocate(4 * KiB, {}, { dedicated: true });
    // 256 bytes would fit the quota pooled, but a dedicated block takes a page: QUOTA_EXCEEDED, nothing taken.
    expect(() => quota.allocate(256, {}, { dedicated: true })).toThrow(/quota/);
    expect(source.live.size).toBe(2);
    quota.deallocate(first);
    // The limiter sees 4 KiB used; 12 KiB would pass it.
    expect(() => limiter.allocate(9 * KiB, {}, { dedicated: true })).toThrow(OutOfMemoryError);
    expect(source.live.size).toBe(1);
    expect(stats.usedBytes).toBe(4 * KiB);
  });

  it('give fully free chunks back to make room under the reservation cap, and refuse with nothing changed when that is not enough', () => {
    const source = new RecordingSource();
    const resource = pool(source, 8 * MiB);
    const shared = resource.allocate(MiB, {});
    resource.deallocate(shared); // a fully free 4 MiB chunk
    const big = resource.allocate(6 * MiB, {}, { dedicated: true });
    expect(source.freed).toEqual([shared.chunkHandle]);
    expect(resource.stats().reservedBytes).toBe(6 * MiB);
    expect(() => resource.allocate(3 * MiB, {}, { dedicated: true })).toThrow(OutOfMemoryError);
    expect(resource.stats()).toMatchObject({ usedBytes: 6 * MiB, reservedBytes: 6 * MiB, failedAllocationsTotal: 1 });
    resource.deallocate(big);
    expect(resource.stats()).toMatchObject({ usedBytes: 0, reservedBytes: 0 });
    resource.checkInvariants();
  });

  it('say, when refused, that the cap went to the chunks whose free space the message names', () => {
    const source = new RecordingSource();
    const resource = pool(source, 4 * MiB);
    const shared = resource.allocate(4 * KiB, {}); // the one 4 MiB chunk, the whole cap
    let refusal: unknown;
    try {
      resource.allocate(4 * KiB, {}, { dedicated: true });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(OutOfMemoryError);
    const message = (refusal as OutOfMemoryError).message;
    expect(message).toContain('used 4096 bytes (4.00 KiB), largest free block 4190208 bytes (4.00 MiB)');
    expect(message).toContain(
      "; an exportable block needs 4096 bytes (4.00 KiB) of its own, outside the pool's chunks, and the chunks already reserve 4194304 bytes (4.00 MiB) of the cap, none of it in empty chunks.",
    );
    // A shared block is not refused that way.
    expect(resource.allocate(4 * KiB, {}).bytes).toBe(4 * KiB);
    resource.deallocate(shared);
  });
});
