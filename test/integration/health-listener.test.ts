/** --health-listen: the plaintext HTTP probe endpoint (Kubernetes), and the gRPC health probe script of the container (docker/healthcheck.js). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
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
    daemon = await startDaemon(['--health-listen', '127.0.0.1:0', '--shutdown-timeout', '20s']);
    expect(await get(healthUrl(daemon, '/healthz'))).toEqual({ status: 200, body: 'ok\n' });
    expect(await get(healthUrl(daemon, '/readyz'))).toEqual({ status: 200, body: 'SERVING\n' });
    expect((await get(healthUrl(daemon, '/readyz'), 'HEAD')).status).toBe(200);
    expect((await get(healthUrl(daemon, '/metrics'))).status).toBe(404);
    expect((await get(healthUrl(daemon, '/healthz'), 'POST')).status).toBe(405);

    // A WatchMemory stream keeps the drain open, so the draining state can be observed.
    const client = new TensormemClient(daemon.unixAddress);
    let updates = 0;
    const stopWatching = client.watchMemory(100, () => (updates += 1), () => undefined);
    const health = new (makeGenericClientConstructor(healthService, 'Health'))(daemon.unixAddress, credentials.createInsecure()) as unknown as {
      watch(request: { service: string }): NodeJS.EventEmitter;
      close(): void;
    };
    const healthWatches = new Map<string, string[]>();
    try {
      await expect.poll(() => updates, { timeout: 5_000 }).toBeGreaterThan(0);
      for (const name of ['', 'tensormem.v1.ArrayService', 'tensormem.v1.LeaseService']) {
        const statuses: string[] = [];
        healthWatches.set(name, statuses);
        const stream = health.watch({ service: name });
        stream.on('data', (response: { status: string }) => statuses.push(response.status));
        stream.on('error', () => undefined);
      }
      await expect.poll(() => [...healthWatches.values()].every((statuses) => statuses.length === 1), { timeout: 5_000 }).toBe(true);
      daemon.child.kill('SIGTERM');
      await expect.poll(async () => (await get(healthUrl(daemon!, '/readyz'))).status, { timeout: 5_000, interval: 50 }).toBe(503);
      expect(await get(healthUrl(daemon, '/readyz'))).toEqual({ status: 503, body: 'NOT_SERVING\n' });
      expect((await get(healthUrl(daemon, '/healthz'))).status).toBe(200);
      // grpc.health.v1 Watch streams opened before the drain see it, for the server and for each service.
      for (const [name, statuses] of healthWatches) expect([name, statuses]).toEqual([name, ['SERVING', 'NOT_SERVING']]);
    } finally {
      stopWatching();
      client.close();
      health.close();
    }
    expect(await daemon.exited).toBe(0);
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
