/**
 * B8 without the daemon: heap bytes per live array in-process (MemoryManager + leases on the host
 * backend, UINT8 [16] arrays round-robin over leases), GC forced before each reading, so garbage is
 * not counted. Usage: node --expose-gc dist/bench/b8-live-heap.js [arrays=100000] [leases=1000] [snapshot-path]
 */
import pino from 'pino';
import { createBackend } from '../src/native/addon';
import { MemoryManager } from '../src/memory/memory-manager';
import { PhysicalMemoryGuard } from '../src/memory/physical-memory-guard';
import { LeaseRegistry } from '../src/leases/lease-registry';
if (typeof (globalThis as any).gc !== 'function') throw new Error('run with node --expose-gc');
const gc = (globalThis as any).gc as () => void;
const MiB = 1024 * 1024;
const N = Number(process.argv[2] ?? 100_000), L = Number(process.argv[3] ?? 1000);
async function main() {
  const backend = createBackend('host', { deviceCapacityBytes: 2048 * MiB });
  const memory = new MemoryManager(backend, { maxBytes: [1024 * MiB], hostMaxBytes: 1024 * MiB, maxPhysicalBytes: 0, deviceReserveBytes: [], sources: { maxbytes: 'flag', 'device-reserve': 'derived', 'host-maxbytes': 'flag', maxphysicalbytes: 'flag' } } as any, { poolChunkBytes: 64 * MiB, asyncCopyThresholdBytes: 1 << 20 }, new PhysicalMemoryGuard(0));
  const registry = new LeaseRegistry(memory, 3600_000, false, pino({ level: 'silent' }));
  const leases = Array.from({ length: L }, (_, i) => registry.open({ clientName: `c${i}`, ttlSeconds: 3600, tenant: '', labels: {} } as any).lease);
  const params = { dataType: 'DATA_TYPE_UINT8', placement: 'PLACEMENT_UNSPECIFIED', device: 0, workspaceId: '', zero: false, label: '', requestId: '' };
  for (let i = 0; i < 2000; i++) { const a = await leases[i % L].allocateArray({ ...params, shape: [16] }); leases[i % L].freeArray(a.arrayId); }
  gc(); gc();
  const before = process.memoryUsage();
  for (let i = 0; i < N; i++) await leases[i % L].allocateArray({ ...params, shape: [16] });
  gc(); gc();
  const after = process.memoryUsage();
  console.log(`N=${N} L=${L} heapUsed/array ${((after.heapUsed - before.heapUsed) / N).toFixed(0)} B; rss/array ${((after.rss - before.rss) / N).toFixed(0)} B; external/array ${((after.external - before.external) / N).toFixed(1)} B`);
  if (process.argv[4]) { require('v8').writeHeapSnapshot(process.argv[4]); }
}
main();
