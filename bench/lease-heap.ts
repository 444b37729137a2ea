/**
 * The daemon's heap per open lease, in-process (MemoryManager + LeaseRegistry on the host backend):
 * `leases` leases opened through LeaseRegistry.open, then `arrays` UINT8 [16] arrays in each, GC forced
 * before each reading, so garbage is not counted. Not a row of `npm run bench` (no target); the figure
 * the daemon's heap rule of README, "Operating a shared GPU host", quotes. Usage:
 * node --expose-gc dist/bench/lease-heap.js [leases=20000] [arrays=1] [snapshot-path]
 */
import pino from 'pino';
import { createBackend } from '../src/native/addon';
import { MemoryManager } from '../src/memory/memory-manager';
import { givenLimits } from '../src/memory/limits';
import { PhysicalMemoryGuard } from '../src/memory/physical-memory-guard';
import { LeaseRegistry } from '../src/leases/lease-registry';
import { MiB } from '../src/units';
if (typeof (globalThis as any).gc !== 'function') throw new Error('run with node --expose-gc');
const gc = (globalThis as any).gc as () => void;
const [leaseCount, arraysEach] = [Number(process.argv[2] ?? 20_000), Number(process.argv[3] ?? 1)];

async function main() {
  const memory = new MemoryManager(createBackend('host', { deviceCapacityBytes: 2048 * MiB, deviceCount: 1 }), givenLimits([1024 * MiB], 1024 * MiB), { poolChunkBytes: 64 * MiB, asyncCopyThresholdBytes: MiB, scrub: false }, new PhysicalMemoryGuard(0));
  const registry = new LeaseRegistry(memory, 3600_000, false, pino({ level: 'silent' }));
  const open = () => registry.open({ clientName: 'client', ttlSeconds: 3600, tenant: '', labels: {} }).lease;
  const request = () => ({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_UNSPECIFIED', device: 0, workspaceId: '', zero: false, label: '', requestId: '' });
  // Warm-up: the code optimized before the readings.
  for (let i = 0; i < 500; i++) {
    const lease = open();
    lease.freeArray((await lease.allocateArray(request())).arrayId);
    registry.close(lease, 'closed');
  }
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const leases = Array.from({ length: leaseCount }, open);
  gc();
  gc();
  const opened = process.memoryUsage().heapUsed;
  for (const lease of leases) for (let i = 0; i < arraysEach; i++) await lease.allocateArray(request());
  gc();
  gc();
  const filled = process.memoryUsage().heapUsed;
  console.log(
    `${leaseCount} leases: heapUsed/lease ${((opened - before) / leaseCount).toFixed(0)} B; ` +
      `with ${arraysEach} UINT8 [16] array(s) each ${((filled - before) / leaseCount).toFixed(0)} B`,
  );
  if (process.argv[4]) require('v8').writeHeapSnapshot(process.argv[4]);
}
main();
