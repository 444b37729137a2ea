/**
 * What the status endpoints carry. `/api/snapshot` is exact: every block of every pool (as
 * GetMemorySnapshot) and every lease. The page's `/events` messages are bounded instead, since one is
 * built every interval for as long as a page is open: at 100k live arrays the exact snapshot is
 * 20 MB of JSON and about half a second of the event loop, so a page left open halved every
 * trainer's calls. A pool of more than MAX_DRAWN_BLOCKS blocks is sent as runs of adjacent blocks
 * (about RUNS_PER_POOL of them, at most twice that: runs narrower than that would be under a pixel or
 * two of the page's map), and only the MAX_LISTED_LEASES biggest leases are listed, with the count of all of them.
 */
import type { BlockOwner, SegmentSnapshot } from '../memory/memory-resource';
import { packageVersion } from '../package-root';
import { biggestLeases, leaseSummary } from '../service/lease-service';
import { blockInfo, memoryInfo } from '../service/memory-service';
import { timestamp } from '../service/handlers';
import type { ServiceContext } from '../service/service-context';

/** A pool with more blocks than this is sent to the page as runs of adjacent blocks. */
export const MAX_DRAWN_BLOCKS = 4000;
/**
 * Runs such a pool is sent as, about: a run holds at least 1/RUNS_PER_POOL of the pool's bytes, or
 * is cut short by a block that does (which is never drawn inside a run of another lease or of free
 * space) or by its segment's end, so there are at most 2 x RUNS_PER_POOL of them, plus one a segment.
 */
export const RUNS_PER_POOL = 1000;
/** Leases a page message lists (the biggest); `lease_count` counts them all. */
export const MAX_LISTED_LEASES = 500;

/** Blocks or leases serialized between two turns of the event loop by writeStatusSnapshot (about 4 ms of work here). */
export const JSON_SLICE = 1024;

/**
 * `/api/snapshot`, every block of every pool and every lease, as it is serialized: the JSON of
 * `{ version, snapshot: { taken_at, info, pools: [{ pool, segments: [{ chunk, bytes, blocks: [blockInfo...] }] }] }, leases: [leaseSummary...], lease_count }`, JSON_SLICE blocks or
 * leases at a time with other work let in between, each piece handed to `write` (which waits while
 * the client reads slowly, and resolves false once it has gone: the rest is then not built). One
 * JSON.stringify of 300k blocks (59 MB) held the event loop for 1.5 s, every trainer's call waiting,
 * and a few million blocks would pass V8's longest string. The pools and the leases are taken at the
 * start (the pools' blocks then sorted and listed from that capture a slice at a time:
 * MemoryManager.captureSnapshot); a lease's figures are read when its slice is written.
 */
export async function writeStatusSnapshot(context: ServiceContext, write: (text: string) => Promise<boolean>): Promise<void> {
  const leases = context.registry.list();
  // The pools at this instant, with their counters; the blocks are sorted and listed from that capture a slice at a time.
  const pools = context.memory.captureSnapshot();
  const head = { taken_at: timestamp(Date.now()), info: memoryInfo(context) };
  let text = `{"version":${JSON.stringify(packageVersion())},"snapshot":${JSON.stringify(head).slice(0, -1)},"pools":[`;
  let inSlice = 0;
  /** Hands the text so far to `write` once a slice is full (or `force`); false once the client has gone. */
  const flush = async (force = false): Promise<boolean> => {
    if (!force && ++inSlice < JSON_SLICE) return true;
    inSlice = 0;
    const piece = text;
    text = '';
    if (!(await write(piece))) return false;
    await new Promise<void>((resolve) => setImmediate(resolve));
    return true;
  };
  for (const [p, { pool, capture }] of pools.entries()) {
    text += `${p > 0 ? ',' : ''}{"pool":${JSON.stringify(pool)},"segments":[`;
    let s = 0;
    for await (const segment of capture.segmentsInSlices()) {
      text += `${s++ > 0 ? ',' : ''}{"chunk":${segment.chunkHandle},"bytes":${segment.bytes},"blocks":[`;
      for (let b = 0; b < segment.count; b++) {
        text += (b > 0 ? ',' : '') + JSON.stringify(blockInfo(segment.block(b)));
        if (!(await flush())) return;
      }
      text += ']}';
    }
    text += ']}';
  }
  text += ']},"leases":[';
  for (const [l, lease] of leases.entries()) {
    text += (l > 0 ? ',' : '') + JSON.stringify(leaseSummary(lease));
    if (!(await flush())) return;
  }
  text += `],"lease_count":${leases.length}}`;
  await flush(true);
}

/** An `/events` message: /api/snapshot's, its big pools in runs and its leases the biggest MAX_LISTED_LEASES. */
export function pageSnapshot(context: ServiceContext) {
  const leases = context.registry.list();
  const pools = context.memory.snapshot().map(({ pool, segments }) => {
    const blockCount = segments.reduce((sum, segment) => sum + segment.blocks.length, 0);
    if (blockCount <= MAX_DRAWN_BLOCKS) {
      return { pool, segments: segments.map((segment) => ({ chunk: segment.chunkHandle, bytes: segment.bytes, block_count: segment.blocks.length, blocks: segment.blocks.map(blockInfo) })) };
    }
    const runBytes = segments.reduce((sum, segment) => sum + segment.bytes, 0) / RUNS_PER_POOL;
    return { pool, segments: segments.map((segment) => ({ chunk: segment.chunkHandle, bytes: segment.bytes, block_count: segment.blocks.length, blocks: runsOf(segment, runBytes) })) };
  });
  return {
    version: packageVersion(),
    snapshot: { taken_at: timestamp(Date.now()), info: memoryInfo(context), pools },
    leases: biggestLeases(leases, MAX_LISTED_LEASES).map(leaseSummary),
    lease_count: leases.length,
  };
}

/** Blocks drawn as one: `count` of them, `leases` distinct owners' leases, `free_bytes` of their bytes free. */
interface BlockRun {
  offset: number;
  bytes: number;
  /** Every block of the run is free. */
  free: boolean;
  /** The lease (and its tenant) holding the most bytes of the run; empty when the run is all free. */
  lease_id: string;
  tenant: string;
  count: number;
  leases: number;
  free_bytes: number;
}

/**
 * A segment's blocks in runs: adjacent blocks of one lease (or free space) always join, and a run
 * under `runBytes` takes the next block whatever it is, unless that block is `runBytes` or more: such
 * a block is wide enough to be drawn as what it is (a big free block taken into a run of a small
 * array was drawn in that array's lease's colour, a mostly free chunk as a full one, and the page lost
 * its largest free block). A segment so gives at most about 2 x bytes / runBytes runs. A run of one
 * block carries that block's fields (blockInfo).
 */
function runsOf(segment: SegmentSnapshot, runBytes: number): Array<BlockRun | ReturnType<typeof blockInfo>> {
  const runs: Array<BlockRun | ReturnType<typeof blockInfo>> = [];
  let first: SegmentSnapshot['blocks'][number] | undefined;
  let run: BlockRun | undefined;
  /** Bytes of each lease in the current run, and the leases' owners. */
  const byLease = new Map<string, { bytes: number; owner: BlockOwner }>();
  const close = () => {
    if (first === undefined || run === undefined) return;
    if (run.count === 1) runs.push(blockInfo(first));
    else {
      let most: { bytes: number; owner: BlockOwner } | undefined;
      for (const held of byLease.values()) if (!most || held.bytes > most.bytes) most = held;
      runs.push({ ...run, lease_id: most?.owner.leaseId ?? '', tenant: most?.owner.tenant ?? '', leases: byLease.size });
    }
    byLease.clear();
  };
  for (const block of segment.blocks) {
    const leaseId = block.owner?.leaseId ?? '';
    const joins =
      run !== undefined &&
      ((run.bytes < runBytes && block.bytes < runBytes) || (run.free && block.free) || (!run.free && byLease.size === 1 && byLease.has(leaseId) && !block.free));
    if (!joins) {
      close();
      first = block;
      run = { offset: block.offset, bytes: 0, free: true, lease_id: '', tenant: '', count: 0, leases: 0, free_bytes: 0 };
    }
    run!.bytes += block.bytes;
    run!.count++;
    if (block.free) run!.free_bytes += block.bytes;
    else {
      run!.free = false;
      const held = byLease.get(leaseId);
      if (held) held.bytes += block.bytes;
      else if (block.owner) byLease.set(leaseId, { bytes: block.bytes, owner: block.owner });
    }
  }
  close();
  return runs;
}
