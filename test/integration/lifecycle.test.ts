/** Leases expire and give their memory back; the daemon drains and frees everything on SIGTERM. */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type ServiceError, credentials, loadPackageDefinition, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { ROOT, runTensormemd, startDaemon } from '../helpers/daemon-process';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A daemon with `flags` and a data plane, a client with a deadline of `deadlineMs`, and a raw socket to the data plane (`connected` once it is). */
async function daemonWithDataPlaneSocket(flags: string[], deadlineMs: number) {
  const daemon = await startDaemon([...flags, '--data-listen', '127.0.0.1:0']);
  const client = new TensormemClient(daemon.tcpAddress, { deadlineMs });
  const data = new URL(daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string);
  const upload = connect(Number(data.port), data.hostname);
  const connected = new Promise((resolve) => upload.once('connect', resolve));
  return { daemon, client, upload, connected };
}

describe('lease lifecycle', () => {
  it('frees an expired lease within TTL + reclaim interval, and its token then says LEASE_EXPIRED', async () => {
    const daemon = await startDaemon(['--lease-ttl', '1s', '--reclaim-interval', '200ms']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const lease = await client.openLease({ clientName: 'mortal' });
      const kept = await client.openLease({ clientName: 'kept alive', ttlSeconds: 1 });
      await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024, 1024] });
      await kept.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024] });
      kept.startKeepAlive(250);
      const held = await client.memoryInfo();
      expect(held.devices[0].used_bytes).toBe(4 * 1024 * 1024 + 4096);
      await sleep(1000 + 200 + 400);
      const info = await client.memoryInfo();
      expect(info.devices[0].used_bytes).toBe(4096);
      expect((await client.listLeases()).map((l) => l.client_name)).toEqual(['kept alive']);
      const error = (await lease.get('arr-x').then(() => undefined, (e: unknown) => e)) as TensormemClientError;
      expect(error.code).toBe(status.UNAUTHENTICATED);
      expect(error.reason).toBe('LEASE_EXPIRED');
      expect(daemon.logs.some((entry) => entry.event === 'lease_expired' && entry.leaseId === lease.leaseId)).toBe(true);
      await kept.close();
    } finally {
      client.close();
      await daemon.stop();
    }
  });

  it('reports a sub-second --lease-ttl as ttl_seconds 1, never 0 (which means "the default" in a request)', async () => {
    const daemon = await startDaemon(['--lease-ttl', '400ms', '--reclaim-interval', '100ms']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const lease = await client.openLease();
      expect(lease.lease.ttl_seconds).toBe(1);
      expect((await client.listLeases()).find((l) => l.lease_id === lease.leaseId)?.ttl_seconds).toBe(1);
      expect((await lease.renew(0)).ttl_seconds).toBe(1);
      // The TTL itself stays 400 ms: the lease is gone well before a second has passed since the renewal.
      await sleep(750);
      const error = (await lease.list().then(() => undefined, (e: unknown) => e)) as TensormemClientError;
      expect([error.code, error.reason]).toEqual([status.UNAUTHENTICATED, 'LEASE_EXPIRED']);
      const longer = await client.openLease({ ttlSeconds: 2 });
      expect(longer.lease.ttl_seconds).toBe(2);
      await longer.close();
    } finally {
      client.close();
      await daemon.stop();
    }
  });

  it('renews with RenewLease and frees everything on CloseLease', async () => {
    const daemon = await startDaemon();
    const client = new TensormemClient(daemon.unixAddress);
    try {
      const lease = await client.openLease({ ttlSeconds: 5 });
      const renewed = await lease.renew(60);
      expect(renewed.ttl_seconds).toBe(60);
      expect(Number(renewed.expires_at!.seconds)).toBeGreaterThan(Date.now() / 1000 + 50);
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000] });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [10], placement: 'PLACEMENT_HOST_ONLY' });
      expect(await lease.close()).toBe(1024 + 256);
      const info = await client.memoryInfo();
      expect(info.devices[0].used_bytes).toBe(0);
      expect(info.host!.used_bytes).toBe(0);
    } finally {
      client.close();
      await daemon.stop();
    }
  });

  it('drains on SIGTERM: exits 0 and frees every lease and chunk', async () => {
    const daemon = await startDaemon(['--shutdown-timeout', '5s']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const lease = await client.openLease();
      await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256, 1024] });
      await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256], placement: 'PLACEMENT_HOST_ONLY' });
    } finally {
      client.close();
    }
    const code = await daemon.stop('SIGTERM');
    expect(code).toBe(0);
    const stopped = daemon.logs.find((entry) => entry.event === 'stopped') as { freedBytes: number; liveChunks: { device: number; host: number } };
    expect(stopped.freedBytes).toBe(1024 * 1024 + 1024);
    expect(stopped.liveChunks.device).toBe(0);
    expect(stopped.liveChunks.host).toBe(0);
  });

  it('ends WatchMemory and KeepAlive streams and fails waiting allocations when it drains, so none holds SIGTERM to --shutdown-timeout', async () => {
    // Before: a `tensormemctl top` left open, a trainer's KeepAlive or an allocation waiting for memory kept the drain open
    // for the whole --shutdown-timeout, and the daemon logged drained: false.
    const daemon = await startDaemon(['--maxbytes', '8M', '--pool-chunk', '4M', '--shutdown-timeout', '20s']);
    const client = new TensormemClient(daemon.tcpAddress, { deadlineMs: 60_000 });
    try {
      let updates = 0;
      let watchError: TensormemClientError | undefined;
      client.watchMemory(100, () => (updates += 1), (error) => (watchError = error));
      const lease = await client.openLease();
      const keepAliveErrors: TensormemClientError[] = [];
      lease.startKeepAlive(200, { releaseOnDisconnect: true, onError: (error) => keepAliveErrors.push(error) });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [6 * 1024 * 1024] });
      const waiting = lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [6 * 1024 * 1024], waitForMemory: true }).catch((error: unknown) => error);
      await expect.poll(() => updates, { timeout: 5_000 }).toBeGreaterThan(0);
      await expect.poll(async () => (await client.memoryInfo()).devices[0].waiting_allocations, { timeout: 5_000 }).toBe(1);
      const signalledAt = Date.now();
      const code = await daemon.stop('SIGTERM');
      expect(Date.now() - signalledAt).toBeLessThan(10_000);
      expect(code).toBe(0);
      const refused = (await waiting) as TensormemClientError;
      expect(refused).toBeInstanceOf(TensormemClientError);
      expect([refused.code, refused.reason, refused.details]).toEqual([status.UNAVAILABLE, 'SHUTTING_DOWN', 'tensormemd is shutting down']);
      expect([watchError?.code, watchError?.reason]).toEqual([status.UNAVAILABLE, 'SHUTTING_DOWN']);
      expect([keepAliveErrors[0]?.code, keepAliveErrors[0]?.reason]).toEqual([status.UNAVAILABLE, 'SHUTTING_DOWN']);
      // The keep-alive stops there (every lease is freed when the drain ends): no reconnecting to a daemon
      // that is gone, with an onError every 100-200 ms.
      await sleep(800);
      expect(keepAliveErrors.map((error) => error.reason)).toEqual(['SHUTTING_DOWN']);
      expect(daemon.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: true, freedBytes: 6 * 1024 * 1024 });
    } finally {
      client.close();
    }
  });

  it('fails a request_id retry of a waiting allocation at once when it drains, rather than letting it wait anew for --shutdown-timeout', async () => {
    // The retry awaited the first call; the drain failed that one, and the retry then queued again after
    // the drain had failed every waiter: it held SIGTERM for the whole --shutdown-timeout (drain_incomplete).
    const daemon = await startDaemon(['--maxbytes', '8M', '--pool-chunk', '4M', '--shutdown-timeout', '20s']);
    const client = new TensormemClient(daemon.tcpAddress, { deadlineMs: 60_000 });
    try {
      const lease = await client.openLease();
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [6 * 1024 * 1024] });
      const ask = () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [6 * 1024 * 1024], waitForMemory: true, requestId: 'step-1' }).catch((error: unknown) => error);
      const first = ask();
      await expect.poll(async () => (await client.memoryInfo()).devices[0].waiting_allocations, { timeout: 5_000 }).toBe(1);
      const retry = ask();
      await sleep(200);
      const signalledAt = Date.now();
      const code = await daemon.stop('SIGTERM');
      expect(Date.now() - signalledAt).toBeLessThan(10_000);
      expect(code).toBe(0);
      for (const refused of [(await first) as TensormemClientError, (await retry) as TensormemClientError]) {
        expect(refused).toBeInstanceOf(TensormemClientError);
        expect([refused.code, refused.reason, refused.details]).toEqual([status.UNAVAILABLE, 'SHUTTING_DOWN', 'tensormemd is shutting down']);
      }
      expect(daemon.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: true });
    } finally {
      client.close();
    }
  });

  it('serves many WatchMemory, KeepAlive and health Watch streams at once without a Node warning, and ends them all when it drains', async () => {
    // Each such stream listens for the drain on one AbortSignal: from the 11th on, Node printed
    // "MaxListenersExceededWarning: Possible EventTarget memory leak detected" (not a JSON log line) on stderr.
    const daemon = await startDaemon(['--shutdown-timeout', '20s']);
    const client = new TensormemClient(daemon.tcpAddress, { deadlineMs: 60_000 });
    const healthProto = loadPackageDefinition(loadSync(join(ROOT, 'node_modules/grpc-health-check/proto/health/v1/health.proto'), { enums: String })) as any;
    const health = new healthProto.grpc.health.v1.Health(daemon.tcpAddress, credentials.createInsecure());
    const STREAMS = 15;
    try {
      const watchErrors: TensormemClientError[] = [];
      const updates = new Set<number>();
      for (let i = 0; i < STREAMS; i++) client.watchMemory(100, () => updates.add(i), (error) => watchErrors.push(error));
      const keepAliveErrors: TensormemClientError[][] = [];
      for (let i = 0; i < STREAMS; i++) {
        const lease = await client.openLease({ clientName: `trainer ${i}` });
        const errors: TensormemClientError[] = [];
        keepAliveErrors.push(errors);
        lease.startKeepAlive(100, { onError: (error) => errors.push(error) });
      }
      const healthSeen: string[][] = [];
      const healthErrors: Array<{ code: number }> = [];
      for (let i = 0; i < STREAMS; i++) {
        const seen: string[] = [];
        healthSeen.push(seen);
        const watch = health.Watch({ service: '' });
        watch.on('data', (reply: { status: string }) => seen.push(reply.status));
        watch.on('error', (error: { code: number }) => healthErrors.push(error));
      }
      await expect.poll(() => updates.size + healthSeen.filter((seen) => seen.length > 0).length, { timeout: 10_000 }).toBe(2 * STREAMS);
      // Every KeepAlive stream open in the daemon before the drain (startKeepAlive opens it in the
      // background): on a loaded runner SIGTERM came before some had, and they saw no SHUTTING_DOWN.
      const metricsAddress = daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string;
      await expect
        .poll(async () => (await fetch(`http://${metricsAddress}/metrics`)).text(), { timeout: 15_000, interval: 50 })
        .toContain(`tensormem_tenant_streams{tenant="default"} ${STREAMS}`);
      expect((await client.listLeases()).length).toBe(STREAMS);
      expect(daemon.otherStderr).toEqual([]);
      expect(await daemon.stop('SIGTERM')).toBe(0);
      expect(daemon.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: true });
      expect(watchErrors.map((error) => error.reason)).toEqual(Array(STREAMS).fill('SHUTTING_DOWN'));
      expect(keepAliveErrors.map((errors) => errors[0]?.reason)).toEqual(Array(STREAMS).fill('SHUTTING_DOWN'));
      await expect.poll(() => healthErrors.length, { timeout: 5_000 }).toBe(STREAMS);
      expect(healthSeen.every((seen) => seen.join() === 'SERVING,NOT_SERVING')).toBe(true);
      expect(healthErrors.every((error) => error.code === status.UNAVAILABLE)).toBe(true);
      expect(daemon.otherStderr).toEqual([]);
    } finally {
      health.close();
      client.close();
      await daemon.stop();
    }
  });

  it('lets a transfer in flight finish within --shutdown-timeout although the drain ended its lease\'s KeepAlive and the lease TTL passes meanwhile', async () => {
    // The drain ends KeepAlive streams at once, so no lease is renewed while it lasts: a lease whose TTL
    // ran out during the drain was swept, and a PUT still under way failed (LEASE_EXPIRED) instead of finishing.
    const { daemon, client, upload, connected } = await daemonWithDataPlaneSocket(['--lease-ttl', '1s', '--reclaim-interval', '100ms', '--shutdown-timeout', '10s'], 30_000);
    try {
      const lease = await client.openLease();
      const keepAliveErrors: TensormemClientError[] = [];
      lease.startKeepAlive(200, { onError: (error) => keepAliveErrors.push(error) });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
      let answer = '';
      upload.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      upload.on('error', () => undefined);
      await connected;
      upload.write(`PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nContent-Length: 4096\r\n\r\n${'x'.repeat(100)}`);
      await sleep(300);
      daemon.child.kill('SIGTERM');
      await expect.poll(() => keepAliveErrors.some((error) => error.reason === 'SHUTTING_DOWN'), { timeout: 5_000 }).toBe(true);
      // Well past the lease's 1 s TTL, well within --shutdown-timeout.
      await sleep(2_500);
      expect(daemon.logs.filter((entry) => entry.event === 'lease_expired')).toEqual([]);
      upload.write('y'.repeat(4096 - 100));
      await expect.poll(() => answer, { timeout: 5_000 }).toContain('\r\n\r\n{');
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
      expect(answer).toContain('"bytes_written":4096');
      expect(await daemon.exited).toBe(0);
      expect(daemon.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: true, freedBytes: 4096 });
    } finally {
      upload.destroy();
      client.close();
      await daemon.stop();
    }
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('cuts the drain short on a second signal (SIGTERM, then %s): calls in flight are cut, every lease is freed, "stopped" says drained: false', async (second) => {
    // Before: the handlers were once(), so a second SIGTERM killed the daemon by the default action in
    // the middle of its drain (exit by signal, no "stopped" line, leases never freed in order), and a
    // Ctrl-C after a SIGTERM was ignored: the drain went on for the whole --shutdown-timeout.
    const { daemon, client, upload, connected } = await daemonWithDataPlaneSocket(['--shutdown-timeout', '30s'], 60_000);
    try {
      const lease = await client.openLease();
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1 << 20] });
      const metadata = new Metadata();
      metadata.set('authorization', `Bearer ${lease.token}`);
      // A gRPC WriteArray stream and a data plane PUT, both half sent: each holds the drain.
      const writeEnded = new Promise<ServiceError | null>((resolve) => {
        const stream = client.arrays.WriteArray(metadata, (error: ServiceError | null) => resolve(error));
        stream.write({ header: { array_id: array.array_id, offset: 0 } });
        stream.write({ chunk: Buffer.alloc(1000, 1) });
      });
      upload.on('error', () => undefined);
      const uploadClosed = new Promise((resolve) => upload.once('close', resolve));
      await connected;
      upload.write(`PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nContent-Length: ${1 << 20}\r\n\r\n${'x'.repeat(100)}`);
      await sleep(300);
      daemon.child.kill('SIGTERM');
      await expect.poll(() => daemon.logs.some((entry) => entry.event === 'draining'), { timeout: 5_000 }).toBe(true);
      await sleep(300);
      const signalledAt = Date.now();
      daemon.child.kill(second);
      const exit = await Promise.race([daemon.exited, sleep(10_000).then(() => 'still draining 10 s after the second signal')]);
      expect(exit).toBe(0);
      expect(Date.now() - signalledAt).toBeLessThan(5_000);
      // The cut call's status says why (drain-cut-status.test.ts): CANCELLED would say the client cancelled it.
      expect((await writeEnded)?.code).toBe(status.UNAVAILABLE);
      await uploadClosed;
      expect(daemon.logs.find((entry) => entry.event === 'drain_cut')).toMatchObject({ reason: second });
      const stopped = daemon.logs.find((entry) => entry.event === 'stopped') as { drained: boolean; freedBytes: number; liveChunks: { device: number; host: number } };
      expect(stopped).toMatchObject({ drained: false, freedBytes: 1 << 20 });
      expect([stopped.liveChunks.device, stopped.liveChunks.host]).toEqual([0, 0]);
    } finally {
      upload.destroy();
      client.close();
      await daemon.stop('SIGKILL');
    }
  });

  it('after a cut drain, waits for the copies still running before it frees their chunks and exits: "stopped" counts no live chunk', async () => {
    // Before: a second SIGTERM during a DuplicateArray (or any copy on the addon's threads) logged
    // "stopped" with the chunks that copy pinned still live (liveChunks.device 2 for two DuplicateArray
    // calls of 256 MiB) and exited while the copy still ran. The daemon's one libuv thread is held
    // (threadpool-hold.cjs) so that the copy is still to run when the drain is cut.
    const folder = mkdtempSync(join(tmpdir(), 'tensormem-hold-'));
    const fifo = join(folder, 'hold');
    execFileSync('mkfifo', [fifo]);
    const daemon = await startDaemon(['--async-copy-threshold', '16K', '--shutdown-timeout', '30s'], {
      UV_THREADPOOL_SIZE: '1',
      NODE_OPTIONS: `--require ${join(__dirname, '../helpers/threadpool-hold.cjs')}`,
      TENSORMEM_TEST_HOLD_FIFO: fifo,
    });
    const client = new TensormemClient(daemon.tcpAddress, { deadlineMs: 60_000 });
    try {
      const lease = await client.openLease();
      const source = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1 << 20] });
      daemon.child.kill('SIGUSR2');
      while (!existsSync(`${fifo}.held`)) await sleep(5);
      const duplicate = lease.duplicate(source.array_id).then(() => 'copied', (error: TensormemClientError) => `${status[error.code]}/${error.reason}`);
      // The target is allocated, then its copy queued behind the held thread.
      await expect.poll(async () => (await client.memoryInfo()).devices[0].used_bytes, { timeout: 5_000 }).toBe(2 << 20);
      daemon.child.kill('SIGTERM');
      await expect.poll(() => daemon.logs.some((entry) => entry.event === 'draining'), { timeout: 5_000 }).toBe(true);
      daemon.child.kill('SIGTERM');
      await expect.poll(() => daemon.logs.find((entry) => entry.event === 'drain_waiting_for_copies' || entry.event === 'stopped')?.event, { timeout: 10_000 }).toBeDefined();
      // Lets the held thread go: the copy runs, and its chunks are freed (had the daemon not waited, the
      // "stopped" line is out already, and its exit waits for the thread).
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      expect(await daemon.exited).toBe(0);
      expect(await duplicate).toBe('UNAVAILABLE/SHUTTING_DOWN');
      const stopped = daemon.logs.find((entry) => entry.event === 'stopped') as { drained: boolean; freedBytes: number; liveChunks: { device: number; host: number } };
      expect(stopped).toMatchObject({ drained: false, freedBytes: 2 << 20 });
      expect([stopped.liveChunks.device, stopped.liveChunks.host]).toEqual([0, 0]);
      expect(daemon.logs.filter((entry) => (entry.level as number) >= 50)).toEqual([]);
    } finally {
      client.close();
      await daemon.stop('SIGKILL');
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('exits on SIGTERM after whoever read its stderr has gone (writes to a closed pipe fail)', async () => {
    const daemon = await startDaemon(['--log-level', 'info', '--shutdown-timeout', '1s']);
    const client = new TensormemClient(daemon.tcpAddress);
    const lease = await client.openLease({ clientName: 'orphaned' });
    await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024] });
    // A stream that never ends keeps the daemon draining until --shutdown-timeout.
    const stopWatching = client.watchMemory(100, () => undefined);
    daemon.child.kill('SIGTERM');
    for (let i = 0; i < 100 && !daemon.logs.some((entry) => entry.event === 'draining'); i++) await sleep(20);
    expect(daemon.logs.some((entry) => entry.event === 'draining')).toBe(true);
    // As when `tensormemd 2>&1 | tee log` loses its tee while it drains: the last lines, written as it exits, meet EPIPE.
    daemon.child.stderr!.destroy();
    const exit = await Promise.race([daemon.exited, sleep(8000).then(() => 'still running 8 s after SIGTERM')]);
    stopWatching();
    client.close();
    if (exit !== 0) daemon.child.kill('SIGKILL');
    expect(exit).toBe(0);
  });

  it('prints every flag in --help and names the flag of a bad value', async () => {
    const help = await runTensormemd(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--maxbytes', '--device-reserve', '--host-maxbytes', '--maxphysicalbytes', '--backend', '--emulated-device', '--mirror', '--lease-ttl', '--reclaim-interval', '--listen', '--chunk-bytes', '--max-message-bytes']) {
      expect(help.stdout).toContain(flag);
    }
    expect(help.stdout).toContain('org.bytedeco.javacpp.maxbytes');
    const bad = await runTensormemd(['--maxbytes', '12Q']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Expected a size like 8G, 512MiB, 1048576 or 80% for --maxbytes but received "12Q"');
    const tooBig = await runTensormemd(['--backend', 'host', '--emulated-device', '2G', '--maxbytes', '3G', '--listen', '127.0.0.1:0']);
    expect(tooBig.code).toBe(1);
    expect(tooBig.stderr).toContain('--maxbytes');
    const small = await runTensormemd(['--backend', 'host', '--emulated-device', '1G', '--listen', '127.0.0.1:0']);
    expect(small.code).toBe(1);
    expect(small.stderr).toContain('--allow-small-device');
    expect(small.stderr).toContain('(1.00 GiB), set by --emulated-device 1G, under the 2 GiB minimum');
    const smallFromEnv = await runTensormemd(['--backend', 'host', '--listen', '127.0.0.1:0'], { ...process.env, TENSORMEM_EMULATED_DEVICE: '1G' });
    expect(smallFromEnv.code).toBe(1);
    expect(smallFromEnv.stderr).toContain('set by --emulated-device (from TENSORMEM_EMULATED_DEVICE) 1G');
  });

  it('answers --help and --version whatever the environment or the config file holds (their refusal says "Run tensormemd --help")', async () => {
    const env = { ...process.env, TENSORMEM_MAXBYTES: '12Q', TENSORMEM_CONFIG: '/nonexistent/tensormemd.yaml' };
    const refused = await runTensormemd(['--backend', 'host'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Run tensormemd --help for the flags.');
    const help = await runTensormemd(['--help'], env);
    expect([help.code, help.stderr]).toEqual([0, '']);
    expect(help.stdout).toContain('--maxbytes SIZE');
    const version = await runTensormemd(['--version'], env);
    expect([version.code, version.stderr]).toEqual([0, '']);
    expect(version.stdout).toMatch(/^tensormemd \d+\.\d+\.\d+/);
    // The command line itself is still checked: an unknown flag beside --help is refused.
    expect((await runTensormemd(['--help', '--bogus'], env)).code).toBe(2);
  });

  it.each([
    [['--emulated-device', '1G', '--allow-small-device'], "--maxbytes is 0 bytes on device 0 (tensormem emulated device, 1.00 GiB), derived as the device's 1.00 GiB minus --device-reserve 1.00 GiB (the default for a device under 16 GiB)", 'Fix: --device-reserve 256M (a smaller reserve), or --maxbytes 768M.'],
    [['--device-reserve', '100%'], '--device-reserve 2.00 GiB ("100%", set by --device-reserve)', 'Fix: --device-reserve 1G (a smaller reserve), or --maxbytes 1G.'],
    [['--maxbytes', '0%'], '"0%" set by --maxbytes', 'Fix: --maxbytes 1G.'],
    [['--host-maxbytes', '0'], '--host-maxbytes is 0 bytes ("0", set by --host-maxbytes)', 'Fix: --host-maxbytes 25% (the default share of RAM).'],
  ])('refuses to start with a cap of 0 (%j), naming the flag, where the 0 came from and what works', async (flags, from, fix) => {
    const refused = await startDaemon(flags).then(
      async (daemon) => {
        await daemon.stop();
        return 'started';
      },
      (error: Error) => error.message,
    );
    expect(refused).toContain('tensormemd exited with 1 before listening');
    expect(refused).toContain(from);
    expect(refused).toContain(fix);
  });

  it('starts with the working values those refusals suggest, and with --maxphysicalbytes 0 (no process cap)', async () => {
    for (const flags of [['--emulated-device', '1G', '--allow-small-device', '--device-reserve', '256M'], ['--maxphysicalbytes', '0']]) {
      const daemon = await startDaemon(flags);
      const client = new TensormemClient(daemon.tcpAddress);
      try {
        const lease = await client.openLease({ clientName: 'caps' });
        await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256] });
        await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256], placement: 'PLACEMENT_HOST_ONLY' });
        await lease.close();
      } finally {
        client.close();
        await daemon.stop();
      }
    }
  });
  it('warns at start about a TENSORMEM_ variable that looks like a flag but is not (a typo would be ignored)', async () => {
    const daemon = await startDaemon([], { TENSORMEM_MAX_BYTES: '1G' });
    try {
      const warning = daemon.logs.find((entry) => entry.event === 'env_misspelled');
      expect(warning).toMatchObject({ level: 40, name: 'TENSORMEM_MAX_BYTES', meant: 'TENSORMEM_MAXBYTES' });
      expect(warning!.msg).toBe('TENSORMEM_MAX_BYTES is not a tensormemd variable and is ignored; did you mean TENSORMEM_MAXBYTES?');
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});
