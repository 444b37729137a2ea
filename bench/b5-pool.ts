/** B5: runs bench/b5-pool-child in its own process (a clean heap) and turns its JSON into two rows. */
import { join } from 'node:path';
import { Row, times, us } from './lib/report';
import { runJsonChild } from './lib/processes';
import type { BenchOptions } from './options';

interface ChildResult {
  batch: number;
  batches: number;
  warmupBatches: number;
  buildSeconds: number;
  loopOverheadUsPerPair: number;
  timerOverheadNsPerRead: number;
  pools: Array<{ live: number; liveAfter: number; chunks: number; reservedBytes: number; usedBytes: number; medianUsPerPair: number; p99BatchUsPerPair: number; minUsPerPair: number; maxUsPerPair: number; lifoMedianUsPerPair: number; touchMedianUsPerPair: number }>;
}

export async function runB5(options: BenchOptions): Promise<Row[]> {
  const params = { live: [options.b5Small, options.b5Large], batches: options.b5Batches, batch: options.b5Batch, seed: 12345 };
  const result = await runJsonChild<ChildResult>('B5', [], join(__dirname, 'b5-pool-child.js'), [JSON.stringify(params)]);
  const [small, large] = result.pools;
  const growth = large.medianUsPerPair / small.medianUsPerPair;
  const fmtCount = (n: number) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n));
  const values = { ...result, growth };
  const note =
    `B5: free a random live block + allocate a random size (256 B–64 KiB) per pair, in ${result.batches} interleaved batches of ${result.batch} pairs per pool; ` +
    `median of per-batch means; loop overhead ${us(result.loopOverheadUsPerPair)}/pair and hrtime ${result.timerOverheadNsPerRead.toFixed(0)} ns/batch, not subtracted; ` +
    `p99 batch ${us(small.p99BatchUsPerPair)} (${fmtCount(small.live)}) / ${us(large.p99BatchUsPerPair)} (${fmtCount(large.live)}). ` +
    `Side measures, ${fmtCount(small.live)} → ${fmtCount(large.live)}: allocate-then-free-at-once ${us(small.lifoMedianUsPerPair)} → ${us(large.lifoMedianUsPerPair)} (${times(large.lifoMedianUsPerPair / small.lifoMedianUsPerPair)}); ` +
    `reading a random block's offset, size and chunk, no pool call, ${us(small.touchMedianUsPerPair)} → ${us(large.touchMedianUsPerPair)} (${times(large.touchMedianUsPerPair / small.touchMedianUsPerPair)})`;
  return [
    {
      id: 'B5.median',
      what: `pool allocate+free, ${fmtCount(large.live)} live blocks`,
      measured: us(large.medianUsPerPair),
      baseline: '—',
      ratio: '—',
      target: '≤ 2 µs',
      status: large.medianUsPerPair <= 2 && small.medianUsPerPair <= 2 ? 'pass' : 'fail',
      values,
    },
    {
      id: 'B5.growth',
      what: `pool allocate+free, ${fmtCount(large.live)} vs ${fmtCount(small.live)} live`,
      measured: us(large.medianUsPerPair),
      baseline: `${us(small.medianUsPerPair)} at ${fmtCount(small.live)}`,
      ratio: times(growth),
      target: '≤ 2 ×',
      status: growth <= 2 ? 'pass' : 'fail',
      note,
    },
  ];
}
