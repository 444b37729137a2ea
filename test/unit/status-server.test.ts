/**
 * The --metrics-listen server's /events streams, with the snapshot source counted: streams of one
 * interval share one snapshot per tick (a snapshot of 100k blocks took the event loop about half a
 * second to build, so every open page building its own stalled the daemon's gRPC calls), and a
 * snapshot slow to build is built less often than the interval asks.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';

const built = vi.hoisted(() => ({ count: 0, buildMs: 0 }));
vi.mock('../../src/service/memory-service', () => ({
  memorySnapshot: () => ({ taken_at: { seconds: 0, nanos: 0 }, info: {}, pools: [] }),
  memoryInfo: () => ({}),
  blockInfo: () => ({}),
}));

import { EVENTS_INTERVAL_MS, EVENTS_MAX_LOOP_SHARE, StatusServer, startStatusServer } from '../../src/observability/status-server';
import type { DaemonMetrics } from '../../src/observability/daemon-metrics';
import type { ServiceContext } from '../../src/service/service-context';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const context = {
  tenants: { openMode: true },
  log: { error: () => undefined },
  registry: { list: () => [] },
  config: {},
  // What each /events message is built from: counted, and as slow to build as built.buildMs says.
  memory: {
    snapshot: () => {
      built.count++;
      const until = performance.now() + built.buildMs;
      while (performance.now() < until);
      return [];
    },
  },
} as unknown as ServiceContext;

describe('/events', () => {
  let server: StatusServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
    built.buildMs = 0;
  });

  it('builds one snapshot per tick for all the streams of one interval, not one per stream', async () => {
    server = await startStatusServer('127.0.0.1:0', context, {} as DaemonMetrics);
    const interval = EVENTS_INTERVAL_MS.min;
    const received: number[] = [];
    const requests = Array.from({ length: 8 }, (_, i) => {
      received.push(0);
      const req = request(`http://${server!.address}/events?interval_ms=${interval}`, (response) => {
        expect(response.statusCode).toBe(200);
        response.on('data', (chunk: Buffer) => (received[i] += chunk.toString().split('event: snapshot').length - 1));
      });
      req.on('error', () => undefined);
      req.end();
      return req;
    });
    await sleep(200);
    const start = built.count;
    const receivedAtStart = received.reduce((a, b) => a + b, 0);
    await sleep(10 * interval);
    const builds = built.count - start;
    const sent = received.reduce((a, b) => a + b, 0) - receivedAtStart;
    for (const req of requests) req.destroy();
    // Every stream got its snapshots, about ten each ...
    expect(sent).toBeGreaterThanOrEqual(8 * 6);
    // ... from about ten builds, not eighty.
    expect(builds).toBeLessThanOrEqual(14);
  });

  it('builds a slow snapshot less often than the interval asks: at most EVENTS_MAX_LOOP_SHARE of the time', async () => {
    server = await startStatusServer('127.0.0.1:0', context, {} as DaemonMetrics);
    built.buildMs = 20;
    let received = 0;
    const req = request(`http://${server.address}/events?interval_ms=${EVENTS_INTERVAL_MS.min}`, (response) => {
      response.on('data', (chunk: Buffer) => (received += chunk.toString().split('event: snapshot').length - 1));
    });
    req.on('error', () => undefined);
    req.end();
    await sleep(300);
    const start = built.count;
    await sleep(2000);
    const builds = built.count - start;
    req.destroy();
    // 20 ms a build: one every 400 ms at most (5 in 2 s), where the 100 ms interval would have built 20.
    expect(builds).toBeGreaterThanOrEqual(3);
    expect(builds).toBeLessThanOrEqual(Math.ceil(2000 / (built.buildMs / EVENTS_MAX_LOOP_SHARE)) + 1);
    expect(received).toBeGreaterThanOrEqual(builds);
  });

  it('gives the streams of every interval the paced builds: a 1 s page beside a 100 ms one is not starved', async () => {
    server = await startStatusServer('127.0.0.1:0', context, {} as DaemonMetrics);
    // 40 ms a build: one every 800 ms at most. The 100 ms stream's ticks build one at about every 900 ms,
    // so most ticks of the 1 s stream came under 800 ms after one of them and, with nothing sent on a
    // tick too soon after a build, the 1 s stream got one message in 6 s where it should get about six.
    built.buildMs = 40;
    const received = [0, 0];
    const requests = [EVENTS_INTERVAL_MS.min, 1000].map((interval, i) => {
      const req = request(`http://${server!.address}/events?interval_ms=${interval}`, (response) => {
        response.on('data', (chunk: Buffer) => (received[i] += chunk.toString().split('event: snapshot').length - 1));
      });
      req.on('error', () => undefined);
      req.end();
      return req;
    });
    await sleep(300);
    const start = built.count;
    const receivedAtStart = [...received];
    await sleep(6000);
    const builds = built.count - start;
    for (const req of requests) req.destroy();
    expect(received[1] - receivedAtStart[1]).toBeGreaterThanOrEqual(4);
    expect(received[0] - receivedAtStart[0]).toBeGreaterThanOrEqual(4);
    // Still paced: no more builds for the second stream.
    expect(builds).toBeLessThanOrEqual(Math.ceil(6000 / (built.buildMs / EVENTS_MAX_LOOP_SHARE)) + 1);
  }, 15_000);

  it('stops building once the streams are gone', async () => {
    server = await startStatusServer('127.0.0.1:0', context, {} as DaemonMetrics);
    const req = request(`http://${server.address}/events?interval_ms=${EVENTS_INTERVAL_MS.min}`, (response) => response.resume());
    req.on('error', () => undefined);
    req.end();
    await sleep(300);
    req.destroy();
    await sleep(100);
    const after = built.count;
    await sleep(400);
    expect(built.count).toBe(after);
  });
});
