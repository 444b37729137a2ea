/**
 * The heap guard refuses calls that make new objects; it must not change which error a bad request
 * gets, nor cost a lease what it already holds. A lease over the host backend whose heap guard refuses
 * (HEAP_LIMIT) from a given moment on: deterministic, unlike a daemon whose real heap is filled, where
 * a collection can show room again between two calls.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HeapLimitError, TensormemError } from '../../src/errors';
import { Lease } from '../../src/leases/lease';
import { HeapGuard } from '../../src/memory/heap-guard';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { allocateParams } from '../helpers/allocate-params';

const mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-'));
afterAll(() => rmSync(mmapDir, { recursive: true, force: true }));

/** A lease whose daemon heap is "full" once `heap.full` is set. */
function leaseWithHeap() {
  const heap = { full: false };
  const guard = { check: () => {
    if (heap.full) throw new HeapLimitError(90 * MiB, 100 * MiB, 80 * MiB);
  } } as unknown as HeapGuard;
  const memory = new MemoryManager(createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 }), givenLimits([32 * MiB], 32 * MiB), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: MiB, mmapDir, heapGuard: guard }, new PhysicalMemoryGuard(0));
  return { heap, lease: new Lease('lease-a', 'hash-a', 'default', 'client', {}, 3_600_000, memory, false) };
}

async function refusal(promise: Promise<unknown> | (() => unknown)): Promise<TensormemError> {
  const error = await (typeof promise === 'function' ? Promise.resolve().then(promise) : promise).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(TensormemError);
  return error as TensormemError;
}

describe('the heap guard, with the heap full', () => {
  it('still answers INVALID_ARGUMENT for a request that could never succeed, and HEAP_LIMIT for a valid one', async () => {
    const { heap, lease } = leaseWithHeap();
    const full = lease.workspaces.create('full', { initialSize: 64 * 1024, learningPolicy: 'NONE' });
    const source = await lease.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [16] }));
    mkdirSync(join(mmapDir, 'tenant-default'), { recursive: true, mode: 0o700 });
    writeFileSync(join(mmapDir, 'tenant-default', 'empty.mmap'), '');
    heap.full = true;
    const hostInFull = await refusal(lease.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_HOST_ONLY', workspaceId: full.workspaceId })));
    expect([hostInFull.kind, hostInFull.metadata.field]).toEqual(['INVALID_ARGUMENT', 'placement']);
    const dupHostInFull = await refusal(lease.duplicateArray(source.arrayId, 'PLACEMENT_HOST_ONLY', full.workspaceId, ''));
    expect([dupHostInFull.kind, dupHostInFull.metadata.field]).toEqual(['INVALID_ARGUMENT', 'placement']);
    const emptyFile = await refusal(() => lease.workspaces.create('weights', { initialSize: 0, locationPolicy: 'MMAP', learningPolicy: 'NONE', tempFilePath: 'empty.mmap' }));
    expect([emptyFile.kind, emptyFile.metadata.field]).toEqual(['INVALID_ARGUMENT', 'config.temp_file_path']);
    expect((await refusal(lease.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [16] })))).reason).toBe('HEAP_LIMIT');
    expect((await refusal(() => lease.workspaces.create('another', { initialSize: 64 * 1024, learningPolicy: 'NONE' }))).reason).toBe('HEAP_LIMIT');
    lease.close();
  });

  it('keeps the cuDNN scratch a refused growth would have replaced', async () => {
    const { heap, lease } = leaseWithHeap();
    const first = await lease.acquireCudnnScratch(0, MiB);
    heap.full = true;
    expect((await refusal(lease.acquireCudnnScratch(0, 2 * MiB))).reason).toBe('HEAP_LIMIT');
    expect(lease.cudnnScratchOf(0)).toBe(first.scratch);
    expect(lease.cudnnScratchOf(0)!.byteSize).toBe(MiB);
    // The same size needs no new object: it is the scratch the lease holds.
    expect((await lease.acquireCudnnScratch(0, MiB)).scratch).toBe(first.scratch);
    lease.close();
  });
});
