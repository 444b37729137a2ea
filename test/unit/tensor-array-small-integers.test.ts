/**
 * A TensorArray keeps its creation time and its serial in the lease as differences from its home's
 * (ArrayHome.epochMs, serialBase), stored as V8 small integers (Smis). They were plain numbers: the
 * milliseconds since the daemon's module loaded passed 2^31 after 24.8 days of uptime, and a lease's
 * serial passed it after 2^31 arrays (a workspace loop of 1,000 allocations a cycle gets there in days);
 * from then on V8 kept the field as a boxed double in every array, 12-23 bytes more per array (B8's
 * target is 300). Unoptimized code also boxed some small differences (Date.now() - epoch is a double):
 * a heap snapshot of B8's 100k arrays showed 2,107 creation times held as boxed doubles on day one.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lease } from '../../src/leases/lease';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { HOME_SPAN } from '../../src/memory/tensor-array';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { allocateParams } from '../helpers/allocate-params';
import { ROOT } from '../helpers/daemon-process';

const DAY_MS = 86_400_000;

function newLease(): Lease {
  const backend = createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 });
  const memory = new MemoryManager(backend, givenLimits([64 * MiB], 64 * MiB), { poolChunkBytes: 16 * MiB, asyncCopyThresholdBytes: MiB, scrub: false }, new PhysicalMemoryGuard(0));
  return new Lease('lease-a', 'hash-a', 'tenant-a', 'client', {}, 3_600_000, memory, false);
}

/** The lease's last serial given, moved on by `by` as if that many arrays had come and gone. */
function skipSerials(lease: Lease, by: number): void {
  (lease.arrays as unknown as { lastSerial: number }).lastSerial += by;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('TensorArray creation time and serial', () => {
  it('answers the exact creation time and serial, and keeps ListArrays order, across the new homes a lease starts after HOME_SPAN ms or serials', async () => {
    const lease = newLease();
    const realNow = Date.now();
    let now = realNow;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    const first = await lease.allocateArray(allocateParams({ placement: 'PLACEMENT_HOST_ONLY' }));
    now += 30 * DAY_MS; // past 2^31 ms after the first array's home began
    lease.renew();
    const later = await lease.allocateArray(allocateParams({ placement: 'PLACEMENT_HOST_ONLY' }));
    skipSerials(lease, 3_000_000_000); // past 2^31 serials
    now += 1;
    const last = await lease.allocateArray(allocateParams({ placement: 'PLACEMENT_HOST_ONLY' }));
    expect([first.createdAt.getTime(), later.createdAt.getTime(), last.createdAt.getTime()]).toEqual([realNow, realNow + 30 * DAY_MS, realNow + 30 * DAY_MS + 1]);
    expect([first.serialInLease, later.serialInLease, last.serialInLease]).toEqual([1, 2, 3_000_000_003]);
    // Each difference kept is far under 2^30 (the Smi range with or without pointer compression).
    for (const array of [first, later, last]) {
      const kept = array as unknown as { createdAtMs: number; serialInHome: number };
      expect(Math.abs(kept.createdAtMs)).toBeLessThan(HOME_SPAN);
      expect(Math.abs(kept.serialInHome)).toBeLessThan(HOME_SPAN);
    }
    const page = lease.arrayPage(0, 2);
    expect(page.arrays.map((array) => array.arrayId)).toEqual([first.arrayId, later.arrayId]);
    expect(lease.arrayPage(page.nextAfterSerial!, 2).arrays.map((array) => array.arrayId)).toEqual([last.arrayId]);
    // A serial set later (a DuplicateArray copy made listable) counts from the array's own home.
    lease.arrays.renew(first.arrayId);
    expect(first.serialInLease).toBe(3_000_000_004);
    expect(lease.arrayPage(3_000_000_003, 0).arrays.map((array) => array.arrayId)).toEqual([first.arrayId]);
    lease.close('closed');
  });

  it('costs the same heap per array 30 days into the daemon and 3e9 serials into the lease as at the start (own process, GC forced)', () => {
    // Groups of 20k UINT8 [16] arrays, each in a new memory manager and lease: the one compared with the
    // start ran after Date.now() moved 30 days on (or the lease's serial 3e9 on). With the fields as plain
    // numbers the later group cost 5-12 B more per array in runs here (278.2 vs 288.5 B); with the home's
    // differences, -2 to 0 B.
    const probe = `
      const dist = ${JSON.stringify(join(ROOT, 'dist', 'src'))};
      const { Lease } = require(dist + '/leases/lease');
      const { MemoryManager } = require(dist + '/memory/memory-manager');
      const { givenLimits } = require(dist + '/memory/limits');
      const { PhysicalMemoryGuard } = require(dist + '/memory/physical-memory-guard');
      const { createBackend } = require(dist + '/native/addon');
      const MiB = 1024 * 1024, N = 20000;
      const params = { dataType: 'DATA_TYPE_UINT8', placement: 'PLACEMENT_UNSPECIFIED', device: 0, workspaceId: '', zero: false, label: '', requestId: '', shape: [16] };
      const realNow = Date.now;
      const kept = [];
      // Heap per array of N arrays in a new memory manager and lease (so that every group grows the same
      // maps and lists from empty), with Date.now() 'days' on and the lease's serial 'serials' on.
      async function group(days, serials) {
        gc(); gc();
        const before = process.memoryUsage().heapUsed;
        Date.now = () => realNow() + days * 86400000;
        const memory = new MemoryManager(createBackend('host', { deviceCapacityBytes: 256 * MiB, deviceCount: 1 }), givenLimits([256 * MiB], 256 * MiB), { poolChunkBytes: 64 * MiB, asyncCopyThresholdBytes: MiB, scrub: false }, new PhysicalMemoryGuard(0));
        const lease = new Lease('lease-a', 'hash-a', 'tenant-a', 'client', {}, 3600000, memory, false);
        lease.arrays.lastSerial += serials;
        for (let i = 0; i < N; i++) await lease.allocateArray({ ...params });
        kept.push(lease);
        gc(); gc();
        return (process.memoryUsage().heapUsed - before) / N;
      }
      (async () => {
        await group(0, 0); // warm-up: the code is optimized before the groups compared
        const start = await group(0, 0);
        const later = await group(Number(process.argv[1]), Number(process.argv[2]));
        console.log(JSON.stringify({ start, later }));
      })();`;
    for (const [days, serials] of [
      [30, 0],
      [0, 3e9],
    ]) {
      const run = spawnSync(process.execPath, ['--expose-gc', '-e', probe, String(days), String(serials)], { encoding: 'utf8', timeout: 60_000 });
      expect(run.stderr).toBe('');
      const { start, later } = JSON.parse(run.stdout) as { start: number; later: number };
      expect(start).toBeGreaterThan(100); // the probe measured arrays, not nothing
      expect(later - start, `heap per array at the start ${start.toFixed(1)} B, after ${days} days and ${serials} serials ${later.toFixed(1)} B`).toBeLessThan(3);
    }
  }, 120_000);
});
