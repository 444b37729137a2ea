/**
 * A daemon that dies or is restarted, and a second daemon started on the first's addresses: what the
 * dead one left is taken over, what a live one holds is not.
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { AddressInfo, Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { TENSORMEMD, startDaemon } from '../helpers/daemon-process';
import { spawnTied } from '../helpers/tied-spawn';

/** Runs tensormemd with `args` until it exits, or kills it after `timeoutMs` (code null: it was still running). */
function runUntilExit(args: string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawnTied(process.execPath, [TENSORMEMD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (data) => (stderr += data));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** Opens connections to a unix socket until one is not accepted into the backlog (EAGAIN); returns the open ones. */
async function fillBacklog(path: string): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let batch = 0; batch < 40; batch++) {
    const results = await Promise.all(
      Array.from({ length: 128 }, () => {
        const socket = connect(path);
        sockets.push(socket);
        return new Promise<string>((resolve) => {
          socket.once('connect', () => resolve('connected'));
          socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
        });
      }),
    );
    if (results.includes('EAGAIN')) return sockets;
  }
  throw new Error(`the backlog of ${path} took ${sockets.length} connections without EAGAIN`);
}

const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error as TensormemClientError);

describe('daemon restart', () => {
  it('fails a call in flight when the daemon is SIGKILLed with UNAVAILABLE naming its address, and serves a new lease on the same client once it is restarted', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tensormem-restart-'));
    // A unix socket of the test's own, which outlives the daemon: the killed daemon leaves its file there.
    const address = `unix:${join(folder, 'tensormemd.sock')}`;
    const flags = ['--listen', address, '--maxbytes', '64M', '--pool-chunk', '16M'];
    let daemon = await startDaemon(flags);
    const client = new TensormemClient(address);
    try {
      const lease = await client.openLease({ clientName: 'trainer' });
      const keepAliveErrors: TensormemClientError[] = [];
      lease.startKeepAlive(200, { onError: (error) => keepAliveErrors.push(error) });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [48 * 1024 * 1024] });
      // Waits for device memory that never comes: in flight when the daemon dies.
      const waiting = failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [32 * 1024 * 1024], waitForMemory: true, deadlineMs: 30_000 }));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await daemon.stop('SIGKILL');

      const inFlight = await waiting;
      expect(inFlight?.code).toBe(status.UNAVAILABLE);
      expect(inFlight?.message).toContain(address.slice('unix:'.length));
      const later = await failure(client.memoryInfo());
      expect(later?.code).toBe(status.UNAVAILABLE);
      expect(later?.message).toContain(address.slice('unix:'.length));
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(keepAliveErrors.length).toBeGreaterThan(0);
      expect(keepAliveErrors.every((error) => error.code === status.UNAVAILABLE)).toBe(true);

      const restartedAfter = Date.now();
      daemon = await startDaemon(flags);
      // grpc-js reconnects by itself (after its backoff): the same client object serves a new lease.
      let fresh;
      for (let attempt = 0; !fresh; attempt++) {
        fresh = await client.openLease({ clientName: 'trainer again' }).catch((error: TensormemClientError) => {
          if (error.code !== status.UNAVAILABLE || attempt >= 100) throw error;
          return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 200));
        });
      }
      expect((await fresh.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024] })).byte_size).toBe(1024);
      // The old lease is gone with the daemon that held it: its keep-alive is told so and stops, and a
      // call with its token says the daemon restarted since.
      await expect.poll(() => keepAliveErrors.at(-1)?.code, { timeout: 10_000 }).toBe(status.UNAUTHENTICATED);
      const old = await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] }));
      expect(old?.code).toBe(status.UNAUTHENTICATED);
      const since = /^unknown lease token \(this daemon has run since (\S+), and a lease ends with the daemon that granted it: after a restart, open a new one\)$/.exec(old!.details);
      expect(since, old!.details).not.toBeNull();
      expect(Date.parse(since![1])).toBeGreaterThanOrEqual(Math.floor(restartedAfter / 1000) * 1000);
    } finally {
      client.close();
      await daemon.stop();
      rmSync(folder, { recursive: true, force: true });
    }
  }, 90_000);

  it('keeps trying to reconnect at least every few seconds while the daemon is gone, so a daemon back after a long outage serves within seconds', async () => {
    // Stands in for a daemon that is gone: every connection is accepted and closed at once, and its
    // time noted. grpc-js backs off between attempts (1 s, growing 1.6 times each, by default up to
    // 120 s): after a 40 s outage the client went on failing UNAVAILABLE for 22 s more.
    const attempts: number[] = [];
    const server = createServer((socket) => {
      attempts.push(Date.now());
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const client = new TensormemClient(`127.0.0.1:${port}`);
    let daemon;
    try {
      const start = Date.now();
      // A trainer that retries its call every 100 ms; calls fail fast while the channel is down.
      while (Date.now() - start < 26_000) {
        expect((await failure(client.memoryInfo()))?.code).toBe(status.UNAVAILABLE);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const gaps = [...attempts, Date.now()].map((at, index, all) => at - (all[index - 1] ?? start));
      expect(attempts.length).toBeGreaterThan(3);
      expect(Math.max(...gaps), `gaps between connection attempts: ${gaps.join(', ')} ms`).toBeLessThan(8_000);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // The daemon comes back on that address: the same client is served within one backoff (at most 5 s,
      // 6 s with grpc-js's 20 % jitter; the margin is for a loaded machine).
      daemon = await startDaemon(['--listen', `127.0.0.1:${port}`]);
      const back = Date.now();
      await expect.poll(() => client.memoryInfo().then((info) => info.devices.length, () => 0), { timeout: 10_000, interval: 100 }).toBe(1);
      expect(Date.now() - back).toBeLessThan(8_000);
    } finally {
      client.close();
      server.close();
      await daemon?.stop();
    }
  }, 60_000);

  it('logs the count and bytes of the shared-memory objects a dead daemon left, and only a few of their names', async () => {
    // Test files run in parallel: a daemon another file starts at the same moment may sweep some of the
    // objects first, or all of them (then this daemon has nothing to log), so that case is tried again
    // with a fresh dead instance, up to three times.
    for (let attempt = 1; ; attempt++) {
      // A dead instance of this test's own (no liveness socket): 500 objects of 4 KiB, as 500 exports left them.
      const instance = randomBytes(8).toString('hex');
      const names = Array.from({ length: 500 }, (_, index) => `/tensormem-1-${instance}-${index.toString(16).padStart(32, '0')}`);
      for (const name of names) writeFileSync(`/dev/shm${name}`, Buffer.alloc(4096));
      const daemon = await startDaemon();
      try {
        expect(names.some((name) => existsSync(`/dev/shm${name}`))).toBe(false);
        const line = daemon.logs.find((entry) => entry.event === 'stale_shm_removed') as { count: number; bytes: number; names: string[]; msg: string } | undefined;
        if (line === undefined && attempt < 3) continue;
        expect(line, 'no stale_shm_removed line in three tries').toBeDefined();
        expect(line!.count).toBeGreaterThan(0);
        expect(line!.bytes).toBeGreaterThanOrEqual(line!.count * 4096);
        expect(line!.names.length).toBeLessThanOrEqual(20);
        expect(line!.msg).toMatch(/^removed \d+ shared-memory objects \([\d.]+ [KMG]iB\) left by daemons that died$/);
        expect(JSON.stringify(line).length).toBeLessThan(4096);
        return;
      } finally {
        await daemon.stop();
      }
    }
  }, 90_000);

  it('removes the unix socket files a SIGKILLed daemon left at its --listen and --data-listen, and logs each', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tensormem-restart-sockets-'));
    const grpcSocket = join(folder, 'grpc.sock');
    const dataSocket = join(folder, 'data.sock');
    const flags = ['--listen', `unix:${grpcSocket}`, '--data-listen', `unix:${dataSocket}`];
    let daemon = await startDaemon(flags);
    try {
      await daemon.stop('SIGKILL');
      expect(statSync(grpcSocket).isSocket()).toBe(true);
      expect(statSync(dataSocket).isSocket()).toBe(true);
      daemon = await startDaemon(flags);
      const removed = daemon.logs.filter((entry) => entry.event === 'stale_socket_removed');
      expect(removed.map(({ path, flag, msg }) => ({ path, flag, msg }))).toEqual([
        { path: grpcSocket, flag: '--listen', msg: `removed the unix socket ${grpcSocket} (--listen) left by a process that has exited (it refused connections)` },
        { path: dataSocket, flag: '--data-listen', msg: `removed the unix socket ${dataSocket} (--data-listen) left by a process that has exited (it refused connections)` },
      ]);
      // A clean stop leaves no socket file, so the next start has none to remove.
      expect(await daemon.stop()).toBe(0);
      expect(existsSync(grpcSocket)).toBe(false);
      expect(existsSync(dataSocket)).toBe(false);
      daemon = await startDaemon(flags);
      expect(daemon.logs.some((entry) => entry.event === 'stale_socket_removed')).toBe(false);
    } finally {
      await daemon.stop();
      rmSync(folder, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses a TCP address another daemon serves with JSON log lines and one closing message, no bare grpc-js line', async () => {
    const first = await startDaemon();
    try {
      const second = await runUntilExit(['--backend', 'host', '--emulated-device', '2G', '--listen', first.tcpAddress, '--data-listen', 'off', '--metrics-listen', 'off'], 15_000);
      expect(second.code).toBe(1);
      const lines = second.stderr.trimEnd().split('\n');
      expect(lines.at(-1)).toContain(`tensormemd: cannot listen on ${first.tcpAddress} (--listen): No address added out of total 1 resolved errors: [listen EADDRINUSE`);
      // What to do: a second daemon beside the first (npm start twice) is the usual cause.
      expect(lines.at(-1)).toContain('address already in use 127.0.0.1:');
      expect(lines.at(-1)).toContain('(a tensormemd already running?): stop that process, or give --listen another address (port 0 picks a free one)');
      for (const line of lines.slice(0, -1)) expect(() => JSON.parse(line), line).not.toThrow();
      expect(lines.map((line) => (line.startsWith('{') ? (JSON.parse(line) as { event?: string }).event : undefined))).toContain('grpc_js');
    } finally {
      await first.stop();
    }
  }, 60_000);

  it('refuses a unix socket or a metrics address another daemon serves, naming the flag and what to do', async () => {
    const first = await startDaemon();
    try {
      const unix = await runUntilExit(['--backend', 'host', '--emulated-device', '2G', '--listen', first.unixAddress, '--data-listen', 'off', '--metrics-listen', 'off'], 15_000);
      expect(unix.code).toBe(1);
      expect(unix.stderr).toContain(`cannot listen on ${first.unixAddress} (--listen): another process is serving there (a tensormemd already running?): stop that process, or give --listen another address\n`);
      const metricsAddress = first.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string;
      const metrics = await runUntilExit(['--backend', 'host', '--emulated-device', '2G', '--listen', '127.0.0.1:0', '--data-listen', 'off', '--metrics-listen', metricsAddress], 15_000);
      expect(metrics.code).toBe(1);
      expect(metrics.stderr).toContain(`cannot listen on ${metricsAddress} (--metrics-listen): listen EADDRINUSE: address already in use ${metricsAddress} (a tensormemd already running?): stop that process, or give --metrics-listen another address (port 0 picks a free one)\n`);
    } finally {
      await first.stop();
    }
  }, 60_000);

  it('refuses a unix socket whose daemon is alive but does not accept (full backlog), and leaves that daemon its socket file', async () => {
    const first = await startDaemon();
    const socketPath = first.unixAddress.slice('unix:'.length);
    const inode = statSync(socketPath).ino;
    let sockets: Socket[] = [];
    const client = new TensormemClient(first.unixAddress);
    try {
      try {
        // A stopped (or flooded) daemon's socket answers EAGAIN, not ECONNREFUSED, once its backlog is full.
        first.child.kill('SIGSTOP');
        sockets = await fillBacklog(socketPath);
        const second = await runUntilExit(['--backend', 'host', '--emulated-device', '2G', '--listen', first.unixAddress, '--data-listen', 'off', '--metrics-listen', 'off'], 15_000);
        expect(second.code).toBe(1);
        expect(second.stderr).toContain(`cannot listen on ${first.unixAddress} (--listen): a connection to the socket there failed with EAGAIN, not refused`);
        expect(statSync(socketPath).ino).toBe(inode);
      } finally {
        for (const socket of sockets) socket.destroy();
        first.child.kill('SIGCONT');
      }
      // Its socket serves again once it has accepted (and dropped) the backlog the test left.
      await expect.poll(() => client.memoryInfo().then((info) => info.devices.length, () => 0), { timeout: 10_000 }).toBe(1);
    } finally {
      client.close();
      await first.stop();
    }
  }, 60_000);
});
