/**
 * --data-max-connections on a real daemon process: connections past the cap are answered 503 and
 * closed, so that one client opening connections without end cannot take the file descriptors (and
 * memory) the daemon's gRPC side needs; the typed client moves a refused transfer over gRPC; TLS
 * handshakes are bounded by the head deadline.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { Socket, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

/** Opens a TCP connection to `base` (http://HOST:PORT) and sends `first` (nothing when undefined); resolves once connected. */
function open(base: string, first?: string): Promise<Socket> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: url.hostname, port: Number(url.port) }, () => {
      if (first !== undefined) socket.write(first);
      resolve(socket);
    });
    sockets.push(socket);
    socket.once('error', reject);
  });
}

/** Everything the server sends on `socket` until it closes it (or 5 s pass), with whether it was a reset. */
function untilClosed(socket: Socket): Promise<{ text: string; reset: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    let reset = false;
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => (reset = true));
    const timer = setTimeout(() => resolve({ text: `${text}(still open after 5 s)`, reset }), 5000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, reset });
    });
  });
}

function dataAddressOf(daemon: DaemonProcess): string {
  return daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
}

/** A /metrics figure; `ca`: the daemon serves TLS (--tls-cert), and so does its metrics listener, with this certificate. */
async function metric(daemon: DaemonProcess, name: string, ca?: Buffer): Promise<number | undefined> {
  const metricsAddress = daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string;
  const text = ca === undefined ? await (await fetch(`http://${metricsAddress}/metrics`)).text() : await httpsText(`https://${metricsAddress}/metrics`, ca);
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** The self-signed certificate a TLS test daemon serves (its own CA). */
const certOf = (dir: string) => readFileSync(join(dir, 'cert.pem'));

function httpsText(url: string, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        response.on('error', reject);
      })
      .on('error', reject);
  });
}

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

describe('--data-max-connections', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0', '--data-max-connections', '4']);
    client = new TensormemClient(daemon.tcpAddress);
    dataAddress = dataAddressOf(daemon);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('answers a connection past the cap 503 TOO_MANY_CONNECTIONS and closes it; gRPC, metrics and the log go on, and a freed place serves again', async () => {
    expect(JSON.stringify(await client.config())).toContain('data-max-connections');
    // Four connections that send nothing (idle) or half a head (slowloris) take every place.
    const held = [await open(dataAddress), await open(dataAddress), await open(dataAddress, 'GET /v1/arrays/x HTTP/1.1\r\nHo'), await open(dataAddress, 'PUT /v1/arrays/x HTTP/1.1\r\n')];
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections')).toBe(4);

    const extra = await open(dataAddress, 'GET /v1/arrays/x HTTP/1.1\r\nHost: x\r\n\r\n');
    const { text, reset } = await untilClosed(extra);
    expect(reset).toBe(false);
    const [head, body] = text.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 503 /);
    expect(head).toContain('Connection: close');
    expect(head).toContain('Content-Type: application/json');
    expect(JSON.parse(body)).toMatchObject({ code: 503, status: 'UNAVAILABLE', reason: 'TOO_MANY_CONNECTIONS', metadata: { max_connections: '4' } });
    expect(JSON.parse(body).message).toContain('--data-max-connections');

    // The held connections are untouched, gRPC serves, and the refusal is counted and logged.
    expect(held.every((socket) => !socket.destroyed)).toBe(true);
    expect((await client.memoryInfo()).devices.length).toBe(1);
    expect(await metric(daemon, 'tensormem_data_plane_connections_refused_total')).toBe(1);
    expect(await metric(daemon, 'tensormem_data_plane_connections')).toBe(4);
    await expect.poll(() => daemon.logs.some((entry) => entry.event === 'data_plane_connections_refused' && entry.max_connections === 4)).toBe(true);

    // One place freed: the next connection is served (404 for a path the data plane does not serve).
    held[0].destroy();
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections')).toBe(3);
    const served = await untilClosed(await open(dataAddress, 'GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    expect(served.text).toMatch(/^HTTP\/1\.1 404 /);
  });

  it('logs the refusals of a burst within the 10 s interval, not only with a next refusal that may never come', async () => {
    const logged = () =>
      daemon.logs.filter((entry) => entry.event === 'data_plane_connections_refused').reduce((sum, entry) => sum + (entry.refused as number), 0);
    // The previous test's connections, destroyed by afterEach, have left the daemon's count (else one of these four could be refused).
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections')).toBe(0);
    for (let i = 0; i < 4; i++) await open(dataAddress);
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections')).toBe(4);
    // A burst right after a line (the first refusal of the daemon, or the previous test's): held back.
    // (At once: the held connections are idle, and the daemon closes idle ones after 5 s.)
    const burst = await Promise.all(Array.from({ length: 5 }, () => open(dataAddress)));
    await Promise.all(burst.map(untilClosed));
    const refused = await metric(daemon, 'tensormem_data_plane_connections_refused_total');
    expect(logged()).toBeLessThan(refused!);
    // Then nothing more is refused; the held-back count still reaches the log once the interval is up.
    await expect.poll(logged, { timeout: 12_000, interval: 250 }).toBe(refused);
  }, 30_000);

  it('the typed client moves a transfer refused for the cap over gRPC, and the next one over HTTP again', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB], zero: true });
    const data = Buffer.alloc(2 * MiB, 0x3c);
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections')).toBe(0);
    for (let i = 0; i < 4; i++) await open(dataAddress);
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections')).toBe(4);
    await lease.write(array.array_id, data);
    expect(lease.transfers).toEqual({ http: 0, grpc: 1 });
    for (const socket of sockets.splice(0)) socket.destroy();
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections')).toBe(0);
    expect((await lease.read(array.array_id)).equals(data)).toBe(true);
    expect(lease.transfers).toEqual({ http: 1, grpc: 1 });
    await lease.close();
  });
});

/** This process's soft open-file limit (the daemon it starts inherits it). */
function softFdLimit(): number {
  const limit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  return Number.isFinite(limit) ? limit : Infinity; // "unlimited"
}

// 1200 client sockets here and 1024 connections in the daemon: a machine whose open-file limit is
// below that (1024 is common) cannot run it.
describe.skipIf(softFdLimit() < 2600)('--data-max-connections default (1024)', () => {
  let daemon: DaemonProcess;

  beforeAll(async () => {
    daemon = await startDaemon(['--data-listen', '127.0.0.1:0']);
  });

  afterAll(async () => {
    expect(await daemon?.stop()).toBe(0);
  });

  it('a client opening connections without end holds 1024 of the daemon\'s descriptors, not one per connection, and a new gRPC client still connects', async () => {
    const dataAddress = dataAddressOf(daemon);
    const pid = daemon.child.pid!;
    const before = openFds(pid);
    const openStart = Date.now();
    const opened = await Promise.all(Array.from({ length: 1200 }, () => open(dataAddress).catch(() => undefined)));
    const openMs = Date.now() - openStart;
    const answers: string[] = [];
    for (const socket of opened) socket?.on('data', (chunk: Buffer) => answers.push(chunk.toString('latin1')));
    const refused = () => metric(daemon, 'tensormem_data_plane_connections_refused_total');
    if (openMs < 4000) {
      await expect.poll(refused, { timeout: 5000 }).toBe(1200 - 1024);
    } else {
      // The connects took nearly the idle timeout (5 s, a loaded machine): accepted connections that sat
      // idle that long were closed, and later connects took their places instead of being refused.
      await expect.poll(refused, { timeout: 5000 }).toBeGreaterThan(0);
      expect(await refused()).toBeLessThanOrEqual(1200 - 1024);
    }
    // At most the cap (idle connections are closed 5 s after they opened: on a slow machine some may be gone by now).
    expect(await metric(daemon, 'tensormem_data_plane_connections')).toBeLessThanOrEqual(1024);
    expect(openFds(pid) - before).toBeLessThanOrEqual(1024 + 16);
    await expect.poll(() => answers.filter((text) => text.startsWith('HTTP/1.1 503 ')).length).toBeGreaterThan(0);
    const fresh = new TensormemClient(daemon.tcpAddress, { deadlineMs: 3000 });
    try {
      expect((await fresh.memoryInfo()).devices.length).toBe(1);
    } finally {
      fresh.close();
    }
  });
});

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

describe.skipIf(!hasPrlimit)('the data plane within a low open-file limit', () => {
  let daemon: DaemonProcess;

  beforeAll(async () => {
    daemon = await startDaemon(['--data-listen', '127.0.0.1:0', '--data-max-connections', '100']);
    execFileSync('prlimit', ['--pid', String(daemon.child.pid), '--nofile=300:300']);
  });

  afterAll(async () => {
    expect(await daemon?.stop()).toBe(0);
  });

  it('400 connections to the data plane leave descriptors for a new gRPC client', async () => {
    const dataAddress = dataAddressOf(daemon);
    const opened = await Promise.all(Array.from({ length: 400 }, () => open(dataAddress).catch(() => undefined)));
    expect(opened.filter((socket) => socket !== undefined).length).toBe(400);
    // Without the cap the daemon took every descriptor it had: grpc-js's connection was accepted and
    // closed at once (UNAVAILABLE: No connection established).
    const fresh = new TensormemClient(daemon.tcpAddress, { deadlineMs: 3000 });
    try {
      expect((await fresh.memoryInfo()).devices.length).toBe(1);
    } finally {
      fresh.close();
    }
    // The cap held: 300 refused, at most 100 open (idle ones close 5 s after they opened, so on a slow
    // machine fewer may be left by now).
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections_refused_total'), { timeout: 5000 }).toBeGreaterThanOrEqual(300);
    expect(await metric(daemon, 'tensormem_data_plane_connections')).toBeLessThanOrEqual(100);
  });
});

describe.skipIf(!hasPrlimit)('--data-max-connections under a low open-file limit', () => {
  it('unset, it is half the limit (GetConfig says so; --max-connections a quarter shared by the listeners), and caps that leave too few descriptors are warned about', async () => {
    const daemon = await startDaemon(['--data-listen', '127.0.0.1:0'], {}, ['prlimit', '--nofile=600:600']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const value = (await client.config()).values.find((entry) => entry.name === 'data-max-connections');
      expect([value?.value, value?.source]).toEqual(['300', 'derived']);
      const opened = await Promise.all(Array.from({ length: 320 }, () => open(dataAddressOf(daemon)).catch(() => undefined)));
      expect(opened.filter((socket) => socket !== undefined).length).toBe(320);
      await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections_refused_total'), { timeout: 5000 }).toBeGreaterThanOrEqual(20);
      expect(daemon.logs.some((entry) => entry.event === 'max_connections_above_open_files')).toBe(false);
      for (const socket of opened) socket?.destroy();
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
    const given = await startDaemon(['--data-listen', '127.0.0.1:0', '--data-max-connections', '1000'], {}, ['prlimit', '--nofile=600:600']);
    try {
      expect(given.logs.find((entry) => entry.event === 'max_connections_above_open_files')).toMatchObject({ data_max_connections: 1000, open_file_limit: 600 });
      // Unset, --max-connections fits a quarter of the limit shared by the two --listen addresses.
      const givenClient = new TensormemClient(given.tcpAddress);
      try {
        const grpcValue = (await givenClient.config()).values.find((entry) => entry.name === 'max-connections');
        expect([grpcValue?.value, grpcValue?.source]).toEqual(['75', 'derived']);
      } finally {
        givenClient.close();
      }
    } finally {
      expect(await given.stop()).toBe(0);
    }
  });
});

describe('TLS data plane', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tensormem-data-tls-'));
  let daemon: DaemonProcess;

  beforeAll(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
    daemon = await startDaemon(['--data-listen', '127.0.0.1:0', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem'), '--data-max-connections', '2']);
  });

  afterAll(async () => {
    expect(await daemon?.stop()).toBe(0);
  });

  it('closes a TCP connection that never starts its TLS handshake after the 5 s head deadline, not node\'s 120 s', async () => {
    const dataAddress = dataAddressOf(daemon).replace('https:', 'http:');
    const started = Date.now();
    const socket = await open(dataAddress);
    socket.setTimeout(0);
    const closed = await new Promise<number>((resolve) => {
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Date.now() - started));
      setTimeout(() => resolve(Infinity), 9000);
    });
    expect(closed).toBeGreaterThanOrEqual(4500);
    expect(closed).toBeLessThan(8000);
  }, 15_000);

  it('counts connections from the TCP connect: one past the cap is closed before its handshake', async () => {
    const dataAddress = dataAddressOf(daemon).replace('https:', 'http:');
    await open(dataAddress);
    await open(dataAddress);
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections', certOf(dir))).toBe(2);
    const extra = await open(dataAddress);
    const { text } = await untilClosed(extra);
    expect(text).toBe('');
    expect(await metric(daemon, 'tensormem_data_plane_connections_refused_total', certOf(dir))).toBe(1);
  });

  it('a client that connects and closes before its handshake (a TCP health check) leaves no socket open in the daemon', async () => {
    const dataAddress = dataAddressOf(daemon).replace('https:', 'http:');
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections', certOf(dir)), { timeout: 8000 }).toBe(0);
    const pid = daemon.child.pid!;
    const before = openFds(pid);
    for (let i = 0; i < 2; i++) (await open(dataAddress)).end();
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections', certOf(dir))).toBe(2);
    // Half-open (allowHalfOpen) and never handshaking: closed at the 5 s head timeout, not kept for good.
    await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections', certOf(dir)), { timeout: 8000, interval: 250 }).toBe(0);
    expect(openFds(pid)).toBeLessThanOrEqual(before);
  }, 20_000);
});

describe('SIGTERM with a TLS data plane connection that never handshakes', () => {
  it('exits at once: the drain cuts the connection instead of waiting for it (without end, once the client had closed its side)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-data-tls-stop-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
    const daemon = await startDaemon(['--data-listen', '127.0.0.1:0', '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
    try {
      const dataAddress = dataAddressOf(daemon).replace('https:', 'http:');
      (await open(dataAddress)).end();
      await open(dataAddress);
      await expect.poll(() => metric(daemon, 'tensormem_data_plane_connections', certOf(dir))).toBe(2);
      const started = Date.now();
      const exit = await Promise.race([daemon.stop(), new Promise<string>((resolve) => setTimeout(() => resolve('still running after 8 s'), 8000))]);
      expect(exit).toBe(0);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      daemon.child.kill('SIGKILL');
    }
  }, 20_000);
});
