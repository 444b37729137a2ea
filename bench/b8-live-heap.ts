/**
 * B8 without the daemon: memory per live array in-process (MemoryManager + leases on the host
 * backend, UINT8 [16] arrays round-robin over leases), GC forced before each reading, so garbage is
 * not counted: the live heap, and the old generation's resident pages (live objects plus their
 * fragmentation). The young generation's one-time resize is reported apart. Usage: node --expose-gc dist/bench/b8-live-heap.js [arrays=100000] [leases=1000] [snapshot-path] [--json]
 * (--json: one JSON line instead of the text; B8 runs it so).
 */
import { getHeapSpaceStatistics } from 'node:v8';
import pino from 'pino';
import { createBackend } from '../src/native/addon';
import { MemoryManager } from '../src/memory/memory-manager';
import { givenLimits } from '../src/memory/limits';
import { PhysicalMemoryGuard } from '../src/memory/physical-memory-guard';
import { LeaseRegistry } from '../src/leases/lease-registry';
if (typeof (globalThis as any).gc !== 'function') throw new Error('run with node --expose-gc');
const gc = (globalThis as any).gc as () => void;
const MiB = 1024 * 1024;
const json = process.argv.includes('--json');
const args = process.argv.slice(2).filter((arg) => arg !== '--json');
const N = Number(args[0] ?? 100_000), L = Number(args[1] ?? 1000);
/** Physical (resident) bytes of each V8 heap space. */
function spacePages(): Map<string, number> {
  return new Map(getHeapSpaceStatistics().map((space) => [space.space_name, space.physical_space_size]));
}

async function main() {
  const backend = createBackend('host', { deviceCapacityBytes: 2048 * MiB });
  const memory = new MemoryManager(backend, givenLimits([1024 * MiB], 1024 * MiB), { poolChunkBytes: 64 * MiB, asyncCopyThresholdBytes: 1 << 20 }, new PhysicalMemoryGuard(0));
  const registry = new LeaseRegistry(memory, 3600_000, false, pino({ level: 'silent' }));
  const leases = Array.from({ length: L }, (_, i) => registry.open({ clientName: `c${i}`, ttlSeconds: 3600, tenant: '', labels: {} } as any).lease);
  // Each call's request is a new object literal, as the daemon's AllocateArray handler builds it (a copy
  // spread from a template, { ...params, shape }, was promoted to the old space and died there: 411 B/array
  // promoted against 215, the pages' figure 253-277 B against 250-256; bench/README B8).
  const request = () => ({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_UNSPECIFIED', device: 0, workspaceId: '', zero: false, label: '', requestId: '', waitForMemory: undefined, exportable: false });
  for (let i = 0; i < 2000; i++) { const a = await leases[i % L].allocateArray(request()); leases[i % L].freeArray(a.arrayId); }
  gc(); gc();
  const before = process.memoryUsage();
  const spacesBefore = spacePages();
  for (let i = 0; i < N; i++) await leases[i % L].allocateArray(request());
  gc(); gc();
  const after = process.memoryUsage();
  const spacesAfter = spacePages();
  const grew = (space: string) => (spacesAfter.get(space) ?? 0) - (spacesBefore.get(space) ?? 0);
  const heldSpaces = [...spacesAfter.keys()].filter((space) => space !== 'new_space' && space !== 'new_large_object_space');
  const perArray = {
    heapBytesPerArray: (after.heapUsed - before.heapUsed) / N,
    // The pages V8 holds for the old generation (old, large-object, code spaces): the live objects plus
    // their fragmentation, what the daemon keeps resident for its arrays once garbage is collected.
    heapPagesBytesPerArray: heldSpaces.reduce((sum, space) => sum + grew(space), 0) / N,
    // Not per array: the young generation's resize under the allocation burst (one-time, up to 2 x 16 MiB).
    youngGenerationGrowthBytes: grew('new_space') + grew('new_large_object_space'),
    rssBytesPerArray: (after.rss - before.rss) / N,
    externalBytesPerArray: (after.external - before.external) / N,
  };
  if (json) console.log(JSON.stringify({ arrays: N, leases: L, ...perArray }));
  else
    console.log(
      `N=${N} L=${L} heapUsed/array ${perArray.heapBytesPerArray.toFixed(0)} B; old-generation pages/array ${perArray.heapPagesBytesPerArray.toFixed(0)} B; ` +
        `young generation +${(perArray.youngGenerationGrowthBytes / MiB).toFixed(1)} MiB; rss/array ${perArray.rssBytesPerArray.toFixed(0)} B; external/array ${perArray.externalBytesPerArray.toFixed(1)} B`,
    );
  if (args[2]) { require('v8').writeHeapSnapshot(args[2]); }
}
main();
