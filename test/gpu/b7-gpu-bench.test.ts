/**
 * B7, the benchmark's GPU rows (DESIGN.md §6), measured in-process on the cuda backend:
 *   B7.alloc  pool allocate + free of 1 MiB (MemoryManager over the device pool), median,
 *             against cudaMalloc + cudaFree of the same size (the addon's allocDevice/free, then
 *             settleReleases: the addon's cudaFree runs on its release thread, and the baseline waits for
 *             it, hand-over included, a few µs): ≥ 50 × faster;
 *             the two are sampled in alternating blocks, so that both see the same machine state
 *   B7.d2h / B7.h2d  SyncArray's copy of a 256 MiB array between device and its pinned mirror,
 *             against a bare cudaMemcpy between a device chunk and a pinned host chunk: ≥ 0.8 ×
 * Figures go to stdout and, when TENSORMEM_GPU_RESULTS names a folder (scripts/gpu-run.sh), to b7.json there.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { TensorArray } from '../../src/memory/tensor-array';
import { probeCuda, resultsDir, skipNote } from './cuda-device';

const MiB = 1024 * 1024;
const cuda = probeCuda();

interface Row {
  id: string;
  what: string;
  measured: string;
  baseline: string;
  ratio: number;
  target: string;
  pass: boolean;
}
const rows: Row[] = [];

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timeNs(operation: () => void): number {
  const start = process.hrtime.bigint();
  operation();
  return Number(process.hrtime.bigint() - start);
}

async function timeNsAsync(operation: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await operation();
  return Number(process.hrtime.bigint() - start);
}

describe.skipIf(!cuda.backend)(`B7: GPU pool and mirror sync${skipNote(cuda)}`, () => {
  const backend = cuda.backend!;
  const makeMemory = () =>
    new MemoryManager(
      backend,
      givenLimits(
        Array.from({ length: backend.deviceCount() }, () => 2048 * MiB),
        1024 * MiB,
      ),
      { poolChunkBytes: 64 * MiB, asyncCopyThresholdBytes: 256 * 1024 },
      new PhysicalMemoryGuard(0),
    );

  afterAll(() => {
    if (rows.length === 0) return;
    const device = backend.deviceInfo(0);
    const report = { device: `${device.name} (compute ${device.computeCapability}, ${device.totalBytes} bytes)`, node: process.version, rows };
    process.stdout.write(`B7 on ${report.device}\n${rows.map((row) => `  ${row.id} ${row.what}: ${row.measured} vs ${row.baseline} = ${row.ratio.toFixed(2)} × (target ${row.target}) ${row.pass ? 'pass' : 'FAIL'}`).join('\n')}\n`);
    const dir = resultsDir();
    if (dir) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'b7.json'), `${JSON.stringify(report, null, 2)}\n`);
    }
  });

  it('B7.alloc: a pool allocate + free is at least 50 × faster than cudaMalloc + cudaFree', () => {
    const memory = makeMemory();
    const owner = { leaseId: 'b7', tenant: 'b7', purpose: 'array' };
    try {
      const bytes = MiB;
      memory.deallocateDevice(0, memory.allocateDevice(0, bytes, owner)); // the pool takes its first chunk
      const driverPair = () => {
        backend.free(backend.allocDevice(0, bytes));
        backend.settleReleases();
      };
      driverPair(); // warm the driver's path
      // Interleaved in blocks (5,000 pool and 300 driver samples in all), the order alternating from one
      // block to the next, so that both medians see the same machine state (clocks, other processes).
      const pool: number[] = [];
      const driver: number[] = [];
      const blocks = 10;
      const poolBlock = () => {
        for (let i = 0; i < 500; i++) pool.push(timeNs(() => memory.deallocateDevice(0, memory.allocateDevice(0, bytes, owner))));
      };
      const driverBlock = () => {
        for (let i = 0; i < 30; i++) driver.push(timeNs(driverPair));
      };
      for (let block = 0; block < blocks; block++) {
        if (block % 2 === 0) {
          poolBlock();
          driverBlock();
        } else {
          driverBlock();
          poolBlock();
        }
      }
      const ratio = median(driver) / median(pool);
      rows.push({ id: 'B7.alloc', what: 'pool allocate+free 1 MiB', measured: `${(median(pool) / 1000).toFixed(2)} µs`, baseline: `cudaMalloc+cudaFree ${(median(driver) / 1000).toFixed(2)} µs`, ratio, target: '≥ 50 ×', pass: ratio >= 50 });
      expect(ratio, `pool ${median(pool)} ns vs cudaMalloc+cudaFree ${median(driver)} ns`).toBeGreaterThanOrEqual(50);
    } finally {
      memory.release();
    }
  });

  it('B7.d2h / B7.h2d: SyncArray of 256 MiB moves at least 0.8 × the speed of a bare pinned cudaMemcpy', async () => {
    const bytes = 256 * MiB;
    const memory = makeMemory();
    const device = backend.allocDevice(0, bytes);
    const pinned = backend.allocHost(bytes);
    try {
      const array = await TensorArray.create(
        { arrayId: 'b7-sync', leaseId: 'b7', tenant: 'b7', dataType: 'DATA_TYPE_UINT8', shape: [bytes], byteSize: bytes, placement: 'PLACEMENT_DEVICE', device: 0, label: '' },
        memory,
        { zero: true, eagerMirror: true },
      );
      const reps = 7;
      const measure = async (direction: 'd2h' | 'h2d') => {
        const bare: number[] = [];
        const sync: number[] = [];
        for (let i = 0; i <= reps; i++) {
          const bareNs = await timeNsAsync(() => (direction === 'd2h' ? backend.copyAsync(pinned, 0, device, 0, bytes) : backend.copyAsync(device, 0, pinned, 0, bytes)));
          const syncNs = await timeNsAsync(() => (direction === 'd2h' ? array.syncToHost() : array.syncToDevice()));
          if (i > 0) {
            bare.push(bareNs); // the first pair is a warm-up
            sync.push(syncNs);
          }
        }
        const gbps = (ns: number) => `${(bytes / ns).toFixed(2)} GB/s`;
        const ratio = median(bare) / median(sync);
        rows.push({ id: `B7.${direction}`, what: `SyncArray ${direction === 'd2h' ? 'TO_HOST' : 'TO_DEVICE'} 256 MiB`, measured: gbps(median(sync)), baseline: `pinned cudaMemcpy ${gbps(median(bare))}`, ratio, target: '≥ 0.8 ×', pass: ratio >= 0.8 });
        return ratio;
      };
      const d2h = await measure('d2h');
      const h2d = await measure('h2d');
      array.release();
      expect(d2h).toBeGreaterThanOrEqual(0.8);
      expect(h2d).toBeGreaterThanOrEqual(0.8);
    } finally {
      backend.free(device);
      backend.free(pinned);
      memory.release();
    }
  });
});
