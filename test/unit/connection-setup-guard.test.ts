import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChannelCredentials, Server, ServerCredentials, credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { HealthImplementation } from 'grpc-health-check';
import { guardConnectionSetup } from '../../src/service/connection-setup-guard';

const HEALTH_PROTO = join(__dirname, '../../node_modules/grpc-health-check/proto/health/v1/health.proto');
const dir = mkdtempSync(join(tmpdir(), 'tensormem-setup-guard-'));
const file = (name: string) => join(dir, name);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(() => {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', file('key.pem'), '-out', file('cert.pem'));
});

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.forceShutdown();
  for (const socket of sockets.splice(0)) socket.destroy();
});

async function healthServer(tls: boolean): Promise<{ server: Server; port: number; connections: () => number }> {
  const server = new Server();
  servers.push(server);
  new HealthImplementation({ '': 'SERVING' }).addToServer(server);
  const creds = tls ? ServerCredentials.createSsl(null, [{ private_key: readFileSync(file('key.pem')), cert_chain: readFileSync(file('cert.pem')) }]) : ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (error, bound) => (error ? reject(error) : resolve(bound))));
  let count = 0;
  for (const http2Server of (server as any).http2Servers.keys()) http2Server.on('connection', () => count++);
  return { server, port, connections: () => count };
}

function healthClient(port: number, tls: boolean): any {
  const proto = loadPackageDefinition(loadSync(HEALTH_PROTO, { enums: String })) as any;
  const creds: ChannelCredentials = tls ? credentials.createSsl(readFileSync(file('cert.pem'))) : credentials.createInsecure();
  return new proto.grpc.health.v1.Health(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
}

const check = (client: any) => new Promise<string>((resolve, reject) => client.Check({ service: '' }, (error: Error | null, reply: { status: string }) => (error ? reject(error) : resolve(reply.status))));

/** Connects and sends nothing (tls: completes the TLS handshake, then nothing). Resolves once connected; `closed` when the server closed it. */
async function silent(port: number, tls: boolean): Promise<{ closed: Promise<number> }> {
  const started = Date.now();
  const socket = tls ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }) : netConnect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  socket.resume();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  await new Promise<void>((resolve) => socket.once(tls ? 'secureConnect' : 'connect', () => resolve()));
  return { closed };
}

describe.each([false, true])('guardConnectionSetup (tls %s)', (tls) => {
  it('closes a connection that sends no preface within the timeout, and keeps a served one past it', async () => {
    const { server, port, connections } = await healthServer(tls);
    const guard = guardConnectionSetup(server, 300);
    expect(guard.hooked).toBe(1);
    const client = healthClient(port, tls);
    try {
      expect(await check(client)).toBe('SERVING');
      const idle = await silent(port, tls);
      const closedAfter = await Promise.race([idle.closed, sleep(3000).then(() => 'not closed' as const)]);
      expect(closedAfter).not.toBe('not closed');
      expect(closedAfter as number).toBeGreaterThanOrEqual(250);
      await sleep(400);
      // The client's connection was never cut: still one connection from it, served.
      expect(await check(client)).toBe('SERVING');
      expect(connections()).toBe(2);
      expect(guard.pending).toBe(0);
    } finally {
      client.close();
    }
  });

  it('closePending() closes connections being set up at once, and no served one', async () => {
    const { server, port, connections } = await healthServer(tls);
    const guard = guardConnectionSetup(server, 60_000);
    const client = healthClient(port, tls);
    try {
      expect(await check(client)).toBe('SERVING');
      const idle = await silent(port, tls);
      await sleep(100);
      expect(guard.pending).toBe(1);
      guard.closePending();
      expect(await Promise.race([idle.closed, sleep(2000).then(() => 'not closed')])).not.toBe('not closed');
      expect(await check(client)).toBe('SERVING');
      expect(connections()).toBe(2);
    } finally {
      client.close();
    }
  });
});
