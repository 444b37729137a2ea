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
  }, release: () => undefined } as unknown as HeapGuard;
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

describe('the heap guard and what a lease frees', () => {
  it('lets calls through as soon as a lease that held the heap closes, before V8 has collected what it kept', async () => {
    const heap = { used: 0, liveAfterGc: 0, now: 0 };
    const guard = new HeapGuard({ limitBytes: 100 * MiB, reserveBytes: 20 * MiB, readUsedBytes: () => heap.used, collect: () => (heap.used = heap.liveAfterGc), now: () => heap.now, sampleEvery: 1, collectIntervalMs: 60_000 });
    const memory = new MemoryManager(createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 }), givenLimits([32 * MiB], 32 * MiB), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: MiB, mmapDir, heapGuard: guard }, new PhysicalMemoryGuard(0));
    const hog = new Lease('lease-hog', 'hash-hog', 'default', 'client', {}, 3_600_000, memory, false);
    for (let i = 0; i < 2000; i++) await hog.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [1], placement: 'PLACEMENT_HOST_ONLY' }));
    // The heap reaches the line with the hog's arrays; the collection that confirms it finds them live.
    heap.used = heap.liveAfterGc = 80 * MiB;
    const other = new Lease('lease-b', 'hash-b', 'default', 'client', {}, 3_600_000, memory, false);
    expect((await refusal(other.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [1] })))).reason).toBe('HEAP_LIMIT');
    // The hog closes: its arrays are garbage, still in the heap until V8 collects them (a reading sees 80 MiB).
    hog.close();
    heap.now = 1000;
    await other.allocateArray(allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [1] }));
    other.close();
  });
});
