/**
 * The status page's /events messages stay small on a busy daemon: a pool of more blocks than the page
 * draws comes as runs of adjacent blocks that add up to the pool exactly, and only the biggest leases
 * are listed (with the count of all), while /api/snapshot stays exact. Against a daemon process, with
 * the page itself in Chromium where it is installed.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { MAX_DRAWN_BLOCKS, MAX_LISTED_LEASES, RUNS_PER_POOL } from '../../src/observability/status-snapshot';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { daemonForTests } from '../helpers/daemon-for-tests';

const CHROMIUM = '/usr/bin/chromium';

interface Block {
  offset: number;
  bytes: number;
  free: boolean;
  lease_id: string;
  count?: number;
  leases?: number;
  free_bytes?: number;
  array_id?: string;
}
interface Snapshot {
  snapshot: { pools: Array<{ pool: string; segments: Array<{ chunk: number; bytes: number; block_count?: number; blocks: Block[] }> }> };
  leases: Array<{ lease_id: string; device_bytes: number }>;
  lease_count: number;
}

/** The first message of an /events stream, and its size. */
async function firstEvent(base: string): Promise<{ data: Snapshot; bytes: number }> {
  const controller = new AbortController();
  const response = await fetch(`${base}/events`, { signal: controller.signal });
  const reader = response.body!.getReader();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`/events ended before a message: ${text.slice(0, 200)}`);
    text += Buffer.from(value).toString('utf8');
    // The stream opens with a `retry:` line; the first message is the first `event: snapshot`.
    const start = text.indexOf('event: snapshot\n');
    const end = start < 0 ? -1 : text.indexOf('\n\n', start);
    if (end >= 0) {
      controller.abort();
      const line = text.slice(start, end).split('\n').find((part) => part.startsWith('data: '))!;
      return { data: JSON.parse(line.slice('data: '.length)) as Snapshot, bytes: end - start };
    }
  }
}

describe('status page messages on a busy daemon', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let base: string;
  const leases: LeaseSession[] = [];
  const LEASES = MAX_LISTED_LEASES + 20;
  const ARRAYS = MAX_DRAWN_BLOCKS + 2000;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '256M', '--pool-chunk', '16M', '--lease-ttl', '300s', '--scrub', 'off']);
    base = `http://${daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string}`;
    client = new TensormemClient(daemon.tcpAddress);
    for (let i = 0; i < LEASES; i += 50) leases.push(...(await Promise.all(Array.from({ length: Math.min(50, LEASES - i) }, (_, j) => client.openLease({ clientName: `c${i + j}` })))));
    // Arrays of the first three leases, interleaved, so that adjacent blocks belong to different leases;
    // the 4th lease holds the most bytes (one array), the rest none.
    for (let i = 0; i < ARRAYS; i += 64) {
      await Promise.all(Array.from({ length: Math.min(64, ARRAYS - i) }, (_, j) => leases[(i + j) % 3].allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000 + ((i + j) % 7) * 300] })));
    }
    await leases[3].allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * 1024 * 1024] });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(leases.map((lease) => lease.close().catch(() => undefined)));
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('sends a big pool as runs that add up to it, and the biggest leases with the count of all', async () => {
    const exact = (await (await fetch(`${base}/api/snapshot`)).json()) as Snapshot;
    const { data, bytes } = await firstEvent(base);

    const exactPool = exact.snapshot.pools.find((pool) => pool.pool === 'device:0')!;
    const drawnPool = data.snapshot.pools.find((pool) => pool.pool === 'device:0')!;
    const exactBlocks = exactPool.segments.reduce((sum, segment) => sum + segment.blocks.length, 0);
    expect(exactBlocks).toBeGreaterThan(ARRAYS);
    const runs = drawnPool.segments.flatMap((segment) => segment.blocks);
    expect(runs.length).toBeLessThanOrEqual(2 * RUNS_PER_POOL + drawnPool.segments.length);
    expect(runs.length).toBeGreaterThan(drawnPool.segments.length);
    // Every segment's runs tile it, in order, and count its blocks.
    expect(drawnPool.segments.map((segment) => [segment.chunk, segment.bytes, segment.block_count])).toEqual(exactPool.segments.map((segment) => [segment.chunk, segment.bytes, segment.blocks.length]));
    for (const segment of drawnPool.segments) {
      let offset = 0;
      let count = 0;
      for (const run of segment.blocks) {
        expect(run.offset).toBe(offset);
        offset += run.bytes;
        count += run.count ?? 1;
      }
      expect(offset).toBe(segment.bytes);
      expect(count).toBe(segment.block_count);
    }
    // Runs of several leases say so, and name one of them.
    const mixed = runs.filter((run) => (run.leases ?? 1) > 1);
    expect(mixed.length).toBeGreaterThan(0);
    for (const run of mixed) expect(leases.slice(0, 3).map((lease) => lease.leaseId)).toContain(run.lease_id);
    // Free bytes counted in the runs are the pool's free bytes.
    const freeOf = (blocks: Block[]) => blocks.reduce((sum, run) => sum + (run.free_bytes ?? (run.free ? run.bytes : 0)), 0);
    expect(freeOf(runs)).toBe(freeOf(exactPool.segments.flatMap((segment) => segment.blocks)));

    // The host pool holds a few blocks: exact, as before.
    const host = data.snapshot.pools.find((pool) => pool.pool === 'host')!;
    expect(host).toEqual({ pool: 'host', segments: exact.snapshot.pools.find((pool) => pool.pool === 'host')!.segments.map((segment) => ({ ...segment, block_count: segment.blocks.length })) });

    expect(data.lease_count).toBe(LEASES);
    expect(data.leases).toHaveLength(MAX_LISTED_LEASES);
    expect(data.leases[0].lease_id).toBe(leases[3].leaseId);
    expect(exact.leases).toHaveLength(LEASES);
    expect(exact.lease_count).toBe(LEASES);
    // Bounded: what the page draws, not every block (the exact snapshot is several times bigger).
    expect(bytes).toBeLessThan(JSON.stringify(exact).length / 3);
  });

  it.skipIf(!existsSync(CHROMIUM))('the page draws the runs and says how many leases it lists', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${base}/?interval_ms=500`);
      await page.locator('[data-leases-shown]').waitFor({ timeout: 10_000 });
      expect(await page.textContent('[data-leases-shown]')).toBe(`the ${MAX_LISTED_LEASES} leases holding the most bytes, of ${LEASES}`);
      expect(await page.locator('#lease-table tbody tr').count()).toBe(MAX_LISTED_LEASES);
      expect(await page.textContent('#meta')).toContain(`${LEASES} leases`);
      const pool = page.locator('[data-pool="device:0"]');
      expect(await pool.locator('.segment-label').first().textContent()).toMatch(/blocks \(drawn as \d+ runs of adjacent blocks\)$/);
      const run = pool.locator('.block[data-leases]').first();
      expect(await run.getAttribute('title')).toMatch(/blocks of [23] leases/);
    } finally {
      await browser.close();
    }
  });
});

describe('a big free block on a busy daemon', () => {
  const running = daemonForTests(['--maxbytes', '256M', '--pool-chunk', '16M', '--lease-ttl', '300s', '--scrub', 'off']);

  it('is sent as free space, not inside a run of the small array before it', async () => {
    // One 16 MiB chunk: MAX_DRAWN_BLOCKS + 100 small arrays of one lease (4 MiB), one small array of
    // another, then 12 MiB free. The run of that last array was under a thousandth of the pool, so it
    // took the 12 MiB free block: three quarters of the chunk drawn in that lease's colour.
    const [many, one] = await Promise.all([running.client.openLease({ clientName: 'many' }), running.client.openLease({ clientName: 'one' })]);
    for (let i = 0; i < MAX_DRAWN_BLOCKS + 100; i += 100) await Promise.all(Array.from({ length: 100 }, () => many.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000] })));
    await one.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000] });

    const exact = (await (await fetch(`${running.statusBase}/api/snapshot`)).json()) as Snapshot;
    const { data } = await firstEvent(running.statusBase);
    const exactPool = exact.snapshot.pools.find((pool) => pool.pool === 'device:0')!;
    const drawnPool = data.snapshot.pools.find((pool) => pool.pool === 'device:0')!;
    const poolBytes = exactPool.segments.reduce((sum, segment) => sum + segment.bytes, 0);
    const big = exactPool.segments.flatMap((segment) => segment.blocks.map((block) => ({ chunk: segment.chunk, ...block }))).filter((block) => block.bytes >= poolBytes / RUNS_PER_POOL);
    expect(big.some((block) => block.free && block.bytes >= 8 * 1024 * 1024)).toBe(true);
    // Every block of at least a thousandth of the pool is drawn as what it is: inside a run of its own kind only.
    for (const block of big) {
      const segment = drawnPool.segments.find((candidate) => candidate.chunk === block.chunk)!;
      const run = segment.blocks.find((candidate) => candidate.offset <= block.offset && block.offset < candidate.offset + candidate.bytes)!;
      const drawn = { offset: block.offset, free: run.free, lease_id: run.lease_id, leases: run.free ? 0 : (run.leases ?? 1) };
      expect(drawn).toEqual({ offset: block.offset, free: block.free, lease_id: block.lease_id, leases: block.free ? 0 : 1 });
    }
  }, 60_000);

  it.skipIf(!existsSync(CHROMIUM))('the page marks it as the largest free block', async () => {
    const largest = Number(((await (await fetch(`${running.statusBase}/api/snapshot`)).json()) as { snapshot: { info: { devices: Array<{ largest_free_block_bytes: number }> } } }).snapshot.info.devices[0].largest_free_block_bytes);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${running.statusBase}/`);
      await page.locator('[data-pool="device:0"] .segment-label').first().waitFor({ timeout: 10_000 });
      const marked = page.locator('[data-pool="device:0"] .block[data-largest="true"]');
      expect(await marked.count()).toBe(1);
      expect(await marked.getAttribute('data-bytes')).toBe(String(largest));
      expect(await marked.getAttribute('data-free')).toBe('true');
    } finally {
      await browser.close();
    }
  });
});

describe.skipIf(!existsSync(CHROMIUM))('the largest free block of a pool drawn as runs, under a thousandth of the pool', () => {
  const running = daemonForTests(['--maxbytes', '256M', '--pool-chunk', '16M', '--lease-ttl', '300s', '--scrub', 'off']);

  it('is not claimed by a smaller free block drawn on its own', async () => {
    // One full 16 MiB chunk of small arrays (a thousandth of it is 16 KiB) with two holes: 3 KiB before
    // a 100 KiB array (a free run of its own), and 8 KiB after another lease's 1 KiB array (inside that
    // array's run). The page marked the 3 KiB hole "largest free block · 3.00 KiB", beside a summary
    // saying 8.00 KiB.
    const KiB = 1024;
    const [a, b] = await Promise.all([running.client.openLease({ clientName: 'a' }), running.client.openLease({ clientName: 'b' })]);
    const bytes = (lease: LeaseSession, size: number) => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size] });
    for (let i = 0; i < MAX_DRAWN_BLOCKS + 100; i += 100) await Promise.all(Array.from({ length: 100 }, () => bytes(a, KiB)));
    const holes: string[] = [];
    for (let i = 0; i < 3; i++) holes.push((await bytes(a, KiB)).array_id);
    await bytes(a, 100 * KiB);
    await bytes(b, KiB);
    for (let i = 0; i < 8; i++) holes.push((await bytes(a, KiB)).array_id);
    for (let i = 0; i < 10; i++) await bytes(a, KiB);
    const tail = ((await (await fetch(`${running.statusBase}/api/snapshot`)).json()) as Snapshot).snapshot.pools.find((pool) => pool.pool === 'device:0')!.segments[0].blocks.at(-1)!;
    expect(tail.free).toBe(true);
    await bytes(a, Number(tail.bytes));
    for (const id of holes) await a.free(id);
    const exact = (await (await fetch(`${running.statusBase}/api/snapshot`)).json()) as Snapshot & { snapshot: { info: { devices: Array<{ largest_free_block_bytes: number }> } } };
    expect(exact.snapshot.pools.find((pool) => pool.pool === 'device:0')!.segments.map((segment) => segment.blocks.filter((block) => block.free).map((block) => Number(block.bytes)))).toEqual([[3 * KiB, 8 * KiB]]);
    expect(Number(exact.snapshot.info.devices[0].largest_free_block_bytes)).toBe(8 * KiB);

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${running.statusBase}/`);
      const pool = page.locator('[data-pool="device:0"]');
      expect(await pool.locator('.segment-label').first().textContent()).toMatch(/drawn as \d+ runs/);
      expect(await pool.locator('.block[data-free="true"][data-bytes="3072"]').count()).toBe(1);
      expect(await pool.locator('.block[data-largest="true"]').count()).toBe(0);
      expect(await pool.locator('.summary').textContent()).toContain('largest free block 8.00 KiB');
    } finally {
      await browser.close();
    }
  }, 60_000);
});
