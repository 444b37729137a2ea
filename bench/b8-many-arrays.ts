/**
 * B8: many live arrays in one daemon process. Opens `leases` leases, allocates `arrays` arrays
 * (UINT8 [16], DEVICE: one 256-byte block each) spread round-robin over them with `concurrency` calls
 * in flight, and reads the daemon's own numbers from GetMemoryInfo before and after: resident set
 * (process.physical_bytes) and V8 heap used (process.heap_used_bytes). Nothing is forced in the daemon
 * (no GC is triggered), so both readings count the burst's garbage not yet collected as well.
 *
 * The row's two judged figures, each ≤ 300 B per array to pass, come from the same arrays made in a
 * process of their own (bench/b8-live-heap: the daemon's memory and lease layers without gRPC) with a
 * full GC before each reading:
 * - the live heap per array;
 * - the old generation's resident pages per array (live objects plus fragmentation).
 * The daemon's own RSS and heap-used growth are reported beside them but not judged: with no GC
 * forced, each moves with how much garbage either reading held (the heap by up to ±240 B at 100k
 * arrays; the RSS from ~160 to ~680 B/array between 16 MiB and no garbage at the "before" reading).
 * Then `infoCalls` sequential GetMemoryInfo calls with all arrays live give the latency.
 *
 * The emulated device's pages are never touched (--scrub off, no zero fill, no writes), so device
 * bytes add nothing to the resident set: what grows is the daemon's bookkeeping.
 */
import { join } from 'node:path';
import { TensormemClient, LeaseSession, MemoryInfo } from '../src/client/tensormem-client';
import { startDaemon } from './lib/daemon';
import { runJsonChild } from './lib/processes';
import { Row, us } from './lib/report';
import { nowNs, summarize, usSince } from './lib/stats';
import type { BenchOptions } from './options';

async function inParallel(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

export async function runB8(options: BenchOptions, daemonFlags: string[]): Promise<Row[]> {
  const arrays = options.b8Arrays;
  const leaseCount = options.b8Leases;
  // --scrub off: zeroing each array would touch the emulated device's pages (the lent memory itself,
  // 256 B an array here), and the daemon's RSS reading is about its bookkeeping.
  const daemon = await startDaemon([...daemonFlags, '--scrub', 'off']);
  const client = new TensormemClient(options.transport === 'unix' ? daemon.unixAddress : daemon.tcpAddress);
  try {
    const leases: LeaseSession[] = new Array(leaseCount);
    await inParallel(leaseCount, options.b8Concurrency, async (i) => {
      leases[i] = await client.openLease({ clientName: `bench-b8-${i}`, ttlSeconds: 3600 });
    });
    // Warm-up: the allocate/free paths and GetMemoryInfo run JIT-compiled before the "before" reading.
    await inParallel(2000, options.b8Concurrency, async (i) => {
      const lease = leases[i % leaseCount];
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
      await lease.free(array.array_id);
    });
    for (let i = 0; i < 20; i++) await client.memoryInfo();
    const emptyLatency: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t = nowNs();
      await client.memoryInfo();
      emptyLatency.push(usSince(t));
    }

    const before = await client.memoryInfo();
    const start = nowNs();
    await inParallel(arrays, options.b8Concurrency, async (i) => {
      await leases[i % leaseCount].allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
    });
    const allocateSeconds = usSince(start) / 1e6;
    const after = await client.memoryInfo();
    const liveBlocks = Number(after.devices[0]?.allocation_count ?? 0);
    if (liveBlocks !== arrays) throw new Error(`B8: expected ${arrays} live blocks on device 0, GetMemoryInfo says ${liveBlocks}`);

    const latency: number[] = [];
    const heapSeries: number[] = [];
    const rssSeries: number[] = [];
    for (let i = 0; i < options.b8InfoCalls; i++) {
      const t = nowNs();
      const info: MemoryInfo = await client.memoryInfo();
      latency.push(usSince(t));
      heapSeries.push(Number(info.process!.heap_used_bytes));
      rssSeries.push(Number(info.process!.physical_bytes));
    }

    const heapBefore = Number(before.process!.heap_used_bytes);
    const rssBefore = Number(before.process!.physical_bytes);
    const heapAfter = Number(after.process!.heap_used_bytes);
    const rssAfter = Number(after.process!.physical_bytes);
    const rssPerArray = (rssAfter - rssBefore) / arrays;
    const heapPerArray = (heapAfter - heapBefore) / arrays;
    const minHeapPerArray = (Math.min(heapAfter, ...heapSeries) - heapBefore) / arrays;
    const lat = summarize(latency);
    const emptyLat = summarize(emptyLatency);
    const live = await runJsonChild<{ heapBytesPerArray: number; heapPagesBytesPerArray: number; youngGenerationGrowthBytes: number; rssBytesPerArray: number }>(
      'B8 live heap',
      ['--expose-gc'],
      join(__dirname, 'b8-live-heap.js'),
      [String(arrays), String(leaseCount), '--json'],
    );
    const livePerArray = live.heapBytesPerArray;
    const pagesPerArray = live.heapPagesBytesPerArray;
    // Judged: the two figures a full GC makes repeatable. The daemon's RSS growth is not: it moves with
    // how much garbage the "before" reading held (a reading with 16 MiB more garbage reads ~500 B/array less).
    const memoryPass = livePerArray <= 300 && pagesPerArray <= 300;
    const values = {
      arrays,
      leases: leaseCount,
      concurrency: options.b8Concurrency,
      arrayShape: 'UINT8 [16] DEVICE (one 256-byte block)',
      allocateSeconds,
      allocationsPerSecond: arrays / allocateSeconds,
      before: { heapUsedBytes: heapBefore, physicalBytes: rssBefore },
      after: { heapUsedBytes: heapAfter, physicalBytes: rssAfter },
      rssBytesPerArray: rssPerArray,
      heapBytesPerArray: heapPerArray,
      liveHeapBytesPerArray: livePerArray,
      oldGenerationPagesBytesPerArray: pagesPerArray,
      ownProcessRssBytesPerArray: live.rssBytesPerArray,
      ownProcessYoungGenerationGrowthBytes: live.youngGenerationGrowthBytes,
      minHeapBytesPerArrayOverInfoSeries: minHeapPerArray,
      maxRssAfterOverInfoSeries: Math.max(...rssSeries),
      getMemoryInfoUs: lat,
      getMemoryInfoUsWithNoArrays: emptyLat,
    };
    const closeStart = nowNs();
    await inParallel(leaseCount, options.b8Concurrency, async (i) => {
      await leases[i].close();
    });
    const closeSeconds = usSince(closeStart) / 1e6;
    Object.assign(values, { closeAllLeasesSeconds: closeSeconds });
    const count = arrays % 1000 === 0 ? `${arrays / 1000}k` : String(arrays);
    const leasesText = leaseCount % 1000 === 0 ? `${leaseCount / 1000}k` : String(leaseCount);
    return [
      {
        id: 'B8.mem',
        what: `daemon memory per array, ${count} arrays / ${leasesText} leases`,
        measured: `live heap ${livePerArray.toFixed(0)} B, heap pages ${pagesPerArray.toFixed(0)} B (daemon RSS +${rssPerArray.toFixed(0)} B, not judged)`,
        baseline: '—',
        ratio: '—',
        target: '≤ 300 B/array',
        status: memoryPass ? 'pass' : 'fail',
        values,
      },
      {
        id: 'B8.info',
        what: `GetMemoryInfo with ${count} arrays live`,
        measured: `${us(lat.median)} (p99 ${us(lat.p99)})`,
        baseline: `${us(emptyLat.median)} with none`,
        ratio: '—',
        target: '≤ 10 ms (p99)',
        status: lat.p99 <= 10_000 ? 'pass' : 'fail',
        note:
          `B8: allocated ${arrays} arrays at ${(arrays / allocateSeconds).toFixed(0)}/s (${options.b8Concurrency} in flight); ` +
          `the daemon's heap-used growth, garbage not yet collected included and not judged: ${heapPerArray.toFixed(0)} B/array, smallest over the ${options.b8InfoCalls} GetMemoryInfo calls after ${minHeapPerArray.toFixed(0)} B/array; ` +
          `own process, full GC before each reading: live heap ${livePerArray.toFixed(0)} B/array, old-generation pages ${pagesPerArray.toFixed(0)} B/array (judged, each ≤ 300 B), ` +
          `RSS ${live.rssBytesPerArray.toFixed(0)} B/array of which the young generation's one-time resize ${(live.youngGenerationGrowthBytes / 2 ** 20).toFixed(1)} MiB and pages V8 keeps outside its spaces; ` +
          `the daemon's RSS growth (no GC forced, garbage at either reading counts) ${rssPerArray.toFixed(0)} B/array, not judged; ` +
          `RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB, heap ${(heapBefore / 2 ** 20).toFixed(1)} → ${(heapAfter / 2 ** 20).toFixed(1)} MiB; ` +
          `closing the ${leaseCount} leases took ${closeSeconds.toFixed(2)} s`,
      },
    ];
  } finally {
    client.close();
    await daemon.stop();
  }
}
