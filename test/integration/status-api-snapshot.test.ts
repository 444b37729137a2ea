/**
 * /api/snapshot on a daemon holding many blocks, against a daemon process: the JSON is written a
 * slice at a time, so a trainer's calls are answered while it is built (one JSON.stringify of every
 * block held the event loop for the whole build: 1.5 s at 300k arrays), and the text is the exact
 * snapshot (every block, every lease).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const ARRAYS = 40_000;

describe('/api/snapshot of many blocks', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let base: string;
  const leases: LeaseSession[] = [];

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '256M', '--pool-chunk', '16M', '--scrub', 'off', '--log-level', 'info']);
    base = `http://${daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string}`;
    client = new TensormemClient(daemon.tcpAddress);
    for (let i = 0; i < 4; i++) leases.push(await client.openLease({ clientName: `holder-${i}`, ttlSeconds: 600 }));
    for (let i = 0; i < ARRAYS; i += 64) {
      await Promise.all(Array.from({ length: 64 }, (_, j) => leases[(i + j) % 4].allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })));
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all(leases.map((lease) => lease.close().catch(() => undefined)));
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('answers a trainer between slices, and the JSON holds every block and lease', async () => {
    const probe = await client.openLease({ clientName: 'probe' });
    // Warm: the probe's own first calls are not what is timed.
    for (let i = 0; i < 20; i++) await probe.free((await probe.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })).array_id);

    const started = performance.now();
    const snapshot = fetch(`${base}/api/snapshot`).then(async (response) => ({ status: response.status, text: await response.text(), ms: performance.now() - started }));
    let done = false;
    void snapshot.finally(() => (done = true));
    const waits: number[] = [];
    while (!done) {
      const t = performance.now();
      await probe.free((await probe.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })).array_id);
      waits.push(performance.now() - t);
    }
    const { status, text, ms } = await snapshot;
    expect(status).toBe(200);
    // Built in slices: the probe's slowest pair is far below the whole build, which one
    // JSON.stringify would have made it wait (the slowest pair then took about the whole of it).
    expect(waits.length).toBeGreaterThan(4);
    expect(Math.max(...waits)).toBeLessThan(ms / 2);

    const body = JSON.parse(text) as {
      version: string;
      snapshot: { taken_at: unknown; info: { devices: unknown[] }; pools: Array<{ pool: string; segments: Array<{ chunk: number; bytes: number; blocks: Array<{ offset: number; bytes: number; free: boolean; lease_id: string }> }> }> };
      leases: Array<{ lease_id: string }>;
      lease_count: number;
    };
    expect(body.snapshot.info.devices.length).toBe(1);
    const device = body.snapshot.pools.find((pool) => pool.pool === 'device:0')!;
    const live = device.segments.flatMap((segment) => segment.blocks).filter((block) => !block.free);
    expect(live.filter((block) => leases.some((lease) => lease.leaseId === block.lease_id))).toHaveLength(ARRAYS);
    for (const segment of device.segments) expect(segment.blocks.reduce((sum, block) => sum + block.bytes, 0)).toBe(segment.bytes);
    expect(body.lease_count).toBe(5);
    expect(body.leases.map((lease) => lease.lease_id).sort()).toEqual([...leases, probe].map((lease) => lease.leaseId).sort());
    await probe.close();
  }, 60_000);
});
