/** --health-listen: the plaintext HTTP probe endpoint (Kubernetes), and the gRPC health probe script of the container (docker/healthcheck.js). */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { credentials, makeGenericClientConstructor, status } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, ROOT, runTensormemd, startDaemon } from '../helpers/daemon-process';

const HEALTHCHECK = join(ROOT, 'docker', 'healthcheck.js');

let daemon: DaemonProcess | undefined;
afterEach(async () => {
  await daemon?.stop('SIGKILL');
  daemon = undefined;
});

function healthUrl(d: DaemonProcess, path: string): string {
  const listening = d.logs.find((entry) => entry.event === 'listening')!;
  return `http://${listening.healthAddress as string}${path}`;
}

async function get(url: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { method });
  return { status: response.status, body: await response.text() };
}

function probe(address: string): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [HEALTHCHECK, address], { encoding: 'utf8', timeout: 15_000 });
  return { status: result.status, output: result.stdout + result.stderr };
}

describe('--health-listen', () => {
  it('answers /healthz and /readyz with 200 while serving, 404/405 otherwise, and 503 on /readyz while draining', async () => {
    daemon = await startDaemon(['--health-listen', '127.0.0.1:0', '--data-listen', '127.0.0.1:0', '--shutdown-timeout', '20s']);
    expect(await get(healthUrl(daemon, '/healthz'))).toEqual({ status: 200, body: 'ok\n' });
    expect(await get(healthUrl(daemon, '/readyz'))).toEqual({ status: 200, body: 'SERVING\n' });
    expect((await get(healthUrl(daemon, '/readyz'), 'HEAD')).status).toBe(200);
    expect((await get(healthUrl(daemon, '/metrics'))).status).toBe(404);
    expect((await get(healthUrl(daemon, '/healthz'), 'POST')).status).toBe(405);

    // A data plane PUT with half its body sent is work in flight: it keeps the drain open, so the
    // draining state can be observed. (Watch streams do not: they end when the drain starts.)
    const client = new TensormemClient(daemon.unixAddress);
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    const data = new URL(daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string);
    const upload = connect(Number(data.port), data.hostname);
    upload.on('error', () => undefined);
    await new Promise((resolve) => upload.once('connect', resolve));
    upload.write(`PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nContent-Length: 4096\r\n\r\n${'x'.repeat(100)}`);
    const health = new (makeGenericClientConstructor(healthService, 'Health'))(daemon.unixAddress, credentials.createInsecure()) as unknown as {
      watch(request: { service: string }): NodeJS.EventEmitter;
      close(): void;
    };
    const healthWatches = new Map<string, { statuses: string[]; end?: { code: number; details: string } }>();
    try {
      for (const name of ['', 'tensormem.v1.ArrayService', 'tensormem.v1.LeaseService']) {
        const watch: { statuses: string[]; end?: { code: number; details: string } } = { statuses: [] };
        healthWatches.set(name, watch);
        const stream = health.watch({ service: name });
        stream.on('data', (response: { status: string }) => watch.statuses.push(response.status));
        stream.on('status', (end: { code: number; details: string }) => (watch.end = end));
        stream.on('error', () => undefined);
      }
      await expect.poll(() => [...healthWatches.values()].every((watch) => watch.statuses.length === 1), { timeout: 5_000 }).toBe(true);
      daemon.child.kill('SIGTERM');
      await expect.poll(async () => (await get(healthUrl(daemon!, '/readyz'))).status, { timeout: 5_000, interval: 50 }).toBe(503);
      expect(await get(healthUrl(daemon, '/readyz'))).toEqual({ status: 503, body: 'NOT_SERVING\n' });
      expect((await get(healthUrl(daemon, '/healthz'))).status).toBe(200);
      // grpc.health.v1 Watch streams opened before the drain see it, for the server and for each service,
      // and then end (UNAVAILABLE), so that they do not hold the drain.
      await expect.poll(() => [...healthWatches.values()].every((watch) => watch.end !== undefined), { timeout: 5_000 }).toBe(true);
      for (const [name, watch] of healthWatches) {
        expect([name, watch.statuses, watch.end!.code, watch.end!.details]).toEqual([name, ['SERVING', 'NOT_SERVING'], status.UNAVAILABLE, 'tensormemd is shutting down']);
      }
      expect(daemon.child.exitCode).toBeNull();
    } finally {
      upload.destroy();
      client.close();
      health.close();
    }
    // The PUT going away was the last work in flight: the drain ends then, not at --shutdown-timeout.
    const stoppingAt = Date.now();
    expect(await daemon.exited).toBe(0);
    expect(Date.now() - stoppingAt).toBeLessThan(10_000);
    expect(daemon.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: true });
  });

  it('is refused with a message naming the flag when the address is not HOST:PORT', async () => {
    const result = await runTensormemd(['--backend', 'host', '--emulated-device', '64M', '--listen', '127.0.0.1:0', '--health-listen', 'localhost']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--health-listen/);
    expect(result.stderr).toMatch(/"localhost"/);
  });
});

describe('docker/healthcheck.js (the container HEALTHCHECK, through grpc.health.v1)', () => {
  it('exits 0 against a serving daemon on its unix socket and on TCP', async () => {
    daemon = await startDaemon();
    const unix = probe(daemon.unixAddress);
    expect(unix.status, unix.output).toBe(0);
    expect(unix.output).toMatch(/SERVING/);
    expect(probe(daemon.tcpAddress).status).toBe(0);
  });

  it('exits 1 naming the address when nothing serves there', () => {
    const result = probe('unix:/nonexistent/tensormemd.sock');
    expect(result.status).toBe(1);
    expect(result.output).toMatch(/unix:\/nonexistent\/tensormemd\.sock/);
  });
});
