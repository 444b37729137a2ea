/**
 * gRPC listeners facing connections that never become HTTP/2 sessions: a TCP connection that sends no
 * TLS ClientHello, a TLS connection that sends no HTTP/2 preface, a unix socket connection that sends
 * nothing. Each is closed 10 s after its connect (before, each was held for good, or 120 s without a
 * ClientHello, a file descriptor each), served clients stay, and SIGTERM does not wait for them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const dir = mkdtempSync(join(tmpdir(), 'tensormem-grpc-setup-'));
const file = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function makeCertificates(): void {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=tensormem test CA', '-keyout', file('ca.key'), '-out', file('ca.pem'));
  writeFileSync(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=server', '-keyout', file('server.key'), '-out', file('server.csr'));
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-out', file('server.pem'), '-extfile', file('server.ext'));
}

function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

/** A connection that sends nothing; `closed` resolves when the daemon has closed it. */
interface Silent {
  socket: Socket;
  closed: Promise<void>;
}

function watch(socket: Socket): Silent {
  socket.on('error', () => {});
  socket.resume(); // what the daemon sends (its SETTINGS on the unix socket) is read and dropped
  const closed = new Promise<void>((resolve) => {
    socket.once('end', () => resolve());
    socket.once('close', () => resolve());
  });
  return { socket, closed };
}

async function tcpSilent(address: string): Promise<Silent> {
  const { host, port } = hostPort(address);
  const socket = netConnect(port, host);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return watch(socket);
}

async function unixSilent(unixAddress: string): Promise<Silent> {
  const socket = netConnect(unixAddress.slice('unix:'.length));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return watch(socket);
}

/** TLS handshake done (ALPN h2), then nothing: no HTTP/2 preface. */
async function tlsNoPreface(address: string): Promise<Silent> {
  const { host, port } = hostPort(address);
  const socket = tlsConnect({ host, port, ca: readFileSync(file('ca.pem')), servername: 'localhost', ALPNProtocols: ['h2'] });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  expect(socket.alpnProtocol).toBe('h2');
  return watch(socket);
}

const within = <T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> => Promise.race([promise, sleep(ms).then(() => 'timeout' as const)]);

describe('gRPC connections that never send their HTTP/2 preface', () => {
  let daemon: DaemonProcess | undefined;
  const held: Socket[] = [];

  beforeAll(() => makeCertificates());

  afterEach(async () => {
    for (const socket of held.splice(0)) socket.destroy();
    await daemon?.stop('SIGKILL');
    daemon = undefined;
  });

  const startTls = () => startDaemon(['--tls-cert', file('server.pem'), '--tls-key', file('server.key')]);

  it('are closed 10 s after their connect (TLS, no ClientHello; TLS, no preface; unix socket), and their descriptors with them; a served client stays', async () => {
    daemon = await startTls();
    const pid = daemon.child.pid!;
    const client = new TensormemClient(daemon.tcpAddress, { tls: { ca: readFileSync(file('ca.pem')), serverName: 'localhost' }, deadlineMs: 5000 });
    try {
      await client.memoryInfo();
      await sleep(200);
      const before = openFds(pid);
      const started = Date.now();
      const silent = [
        ...(await Promise.all(Array.from({ length: 5 }, () => tcpSilent(daemon!.tcpAddress)))),
        ...(await Promise.all(Array.from({ length: 5 }, () => tlsNoPreface(daemon!.tcpAddress)))),
        ...(await Promise.all(Array.from({ length: 5 }, () => unixSilent(daemon!.unixAddress)))),
      ];
      held.push(...silent.map((s) => s.socket));
      await sleep(300);
      expect(openFds(pid)).toBeGreaterThanOrEqual(before + 15);

      const results = await Promise.all(silent.map((s) => within(s.closed.then(() => Date.now() - started), 14_000)));
      for (const result of results) {
        expect(result).not.toBe('timeout');
        expect(result as number).toBeGreaterThanOrEqual(9_000);
      }
      await sleep(300);
      expect(openFds(pid)).toBe(before);
      // The client connected before, idle for those 10 s, still has its connection and is served on it.
      await client.memoryInfo();
      expect(openFds(pid)).toBe(before);
    } finally {
      client.close();
    }
  }, 30_000);

  it('do not hold SIGTERM: the drain ends at once, drained', async () => {
    daemon = await startTls();
    const silent = [await tcpSilent(daemon.tcpAddress), await tlsNoPreface(daemon.tcpAddress), await unixSilent(daemon.unixAddress)];
    held.push(...silent.map((s) => s.socket));
    await sleep(300);
    const signalled = Date.now();
    const code = await daemon.stop('SIGTERM');
    const tookMs = Date.now() - signalled;
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(3_000); // --shutdown-timeout is 10 s
    expect(daemon.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: true });
  }, 20_000);
});
