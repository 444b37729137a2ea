/**
 * The daemon's resident set after a burst of transfers, once idle: the pools give their chunks back
 * (--pool-idle-release), and the daemon gives back what else the burst grew (V8's young generation,
 * grown to 32 MiB, the garbage of the calls, and the freed buffers glibc keeps in its heap), so that
 * RSS, which --maxphysicalbytes counts, comes back near where it started.
 *
 * Measured (host backend, 2 GB moved over both paths, 16 at a time): start 81 MB, end 298 MB, and
 * still 168 MB 35 s after the chunks had gone; 80 MB after a full GC and malloc_trim.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { IDLE_TRIM_GROWTH_BYTES } from '../../src/memory/idle-memory-trim';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((text) => text.startsWith('VmRSS:'));
  return Number(line!.split(/\s+/)[1]) * 1024;
}

/**
 * RSS back within `marginBytes` of `startBytes` within 15 s once the daemon trimmed, or, where it logged
 * no trim, within the growth it leaves by design (IDLE_TRIM_GROWTH_BYTES, plus 4 MiB: its floor is read
 * at its start, a little under this test's start). A burst that grows RSS by less than that is not
 * trimmed: in 4 runs of this file here, 3 of the 8 bursts ended 17-24 MiB over the start with no trim, and one fresh-clone CI
 * run read 32 MiB, which the 24 MiB margin alone refused. A failure says what the daemon logged of its
 * trims and chunk releases.
 */
async function expectGivenBack(daemon: DaemonProcess, startBytes: number, peakBytes: number, marginBytes: number): Promise<void> {
  const pid = daemon.child.pid!;
  // The burst did grow the resident set (else this test could not fail).
  expect(peakBytes - startBytes).toBeGreaterThan(64 * MiB);
  const idleSince = Date.now();
  let idleBytes = residentBytes(pid);
  while (idleBytes - startBytes > marginBytes && Date.now() - idleSince < 15_000) {
    await sleep(500);
    idleBytes = residentBytes(pid);
  }
  const trimmed = daemon.logs.some((entry) => entry.event === 'idle_memory_trimmed');
  const trims = daemon.logs.filter((entry) => entry.event === 'idle_memory_trimmed' || entry.event === 'idle_memory_trim_failed' || entry.event === 'idle_chunks_released');
  const figures = `RSS at start ${Math.round(startBytes / MiB)} MiB, peak ${Math.round(peakBytes / MiB)} MiB, after ${Date.now() - idleSince} ms idle ${Math.round(idleBytes / MiB)} MiB; logged: ${JSON.stringify(trims)}`;
  expect(idleBytes - startBytes, figures).toBeLessThan(trimmed ? marginBytes : Math.max(marginBytes, IDLE_TRIM_GROWTH_BYTES + 4 * MiB));
}

describe.runIf(process.platform === 'linux')('idle memory trim', () => {
  let daemon: DaemonProcess | undefined;
  let client: TensormemClient | undefined;
  afterEach(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('gives back the memory a burst of transfers grew once the daemon is idle', async () => {
    daemon = await startDaemon(['--data-listen', '127.0.0.1:0', '--pool-idle-release', '1s', '--log-level', 'info']);
    const pid = daemon.child.pid!;
    client = new TensormemClient(daemon.tcpAddress);
    const lease = await client.openLease({});
    expect(lease.dataPlane).toBeDefined();
    await sleep(1000);
    const startBytes = residentBytes(pid);
    // 100 B - 6 MiB arrays, 16 at a time, half over the data plane and half over gRPC: ~1 GiB each way.
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const source = Buffer.alloc(6 * MiB, 5);
    let moved = 0;
    let peakBytes = 0;
    for (let round = 0; moved < 1024 * MiB; round++) {
      const size = Math.floor(100 + random() * (6 * MiB - 100));
      await Promise.all(
        Array.from({ length: 16 }, async (_, index) => {
          const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: index % 3 === 0 ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_DEVICE' });
          const view = source.subarray(0, size);
          const overHttp = (round + index) % 2 === 0;
          await (overHttp ? lease.write(array.array_id, view) : lease.writeGrpc(array.array_id, view));
          const back = overHttp ? await lease.read(array.array_id) : await lease.readGrpc(array.array_id);
          expect(back.length).toBe(size);
          await lease.free(array.array_id);
        }),
      );
      moved += 16 * size;
      peakBytes = Math.max(peakBytes, residentBytes(pid));
    }
    await lease.close();
    // Chunks go back after 1 s; the rest once nothing has happened for a while (seconds). Measured: 3 MiB
    // over the start; without the idle trim 44-88 MiB 15-25 s later (glibc keeps 20-34 MB of freed
    // buffers for good, V8 its grown young generation until its memory reducer runs, if it does).
    await expectGivenBack(daemon, startBytes, peakBytes, 24 * MiB);
  }, 300_000);

  it('gives back the heap a closed lease of 100k arrays grew once the daemon is idle', async () => {
    daemon = await startDaemon(['--pool-idle-release', '1s', '--log-level', 'info']);
    const pid = daemon.child.pid!;
    client = new TensormemClient(daemon.tcpAddress);
    const lease = await client.openLease({});
    lease.startKeepAlive();
    await sleep(1000);
    const startBytes = residentBytes(pid);
    for (let made = 0; made < 100_000; made += 100) {
      await Promise.all(Array.from({ length: 100 }, () => lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [16] })));
    }
    const peakBytes = residentBytes(pid);
    await lease.close();
    // Measured: 17 MiB over the start; without the idle trim 56 MiB 15 s later, 85 MiB 30 s later.
    await expectGivenBack(daemon, startBytes, peakBytes, 36 * MiB);
  }, 300_000);
});
