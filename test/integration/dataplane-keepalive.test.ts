/**
 * The typed client reuses its data plane connections (a pool per TensormemClient, at most 4 idle per
 * endpoint): sequential transfers share one, concurrent ones each have their own, a connection the
 * server closed while idle is not used, one closed just as a request goes out is retried once on a new
 * connection, and client.close() closes them so that a process ends on its own. Connections are
 * counted where they are accepted: by a TCP proxy in front of the daemon's data port (the session's
 * data plane pointed at it), or by the daemon's tensormem_data_plane_connections gauge.
 */
import { spawn } from 'node:child_process';
import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface CountingProxy {
  endpoint: { host: string; port: number };
  /** Connections the proxy has accepted from the client. */
  readonly accepted: number;
  /** Connections open now, client side. */
  readonly open: number;
  /** Destroys every connection's client-facing side (as a server closing its end), and its daemon side. */
  cutAll(): void;
  close(): Promise<void>;
}

/** A TCP proxy to `target` (the daemon's data port) that counts the connections it accepts. */
async function countingProxy(target: string): Promise<CountingProxy> {
  const url = new URL(target);
  const pairs = new Set<[Socket, Socket]>();
  let accepted = 0;
  const server: Server = createServer((down) => {
    accepted++;
    const up = createConnection({ host: url.hostname, port: Number(url.port) });
    const pair: [Socket, Socket] = [down, up];
    pairs.add(pair);
    for (const socket of pair) socket.on('error', () => undefined);
    down.pipe(up);
    up.pipe(down);
    down.on('close', () => {
      pairs.delete(pair);
      up.destroy();
    });
    up.on('close', () => down.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    cutAll() {
      for (const [down, up] of pairs) {
        down.destroy();
        up.destroy();
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function dataAddressOf(logs: Record<string, unknown>[]): string {
  return logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
}

async function metric(statusBase: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${statusBase}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** The metric's value once it is `expected` (polled for up to 2 s; other tests' connections may still be closing), else its last value. */
async function metricBecomes(statusBase: string, name: string, expected: number): Promise<number | undefined> {
  let value = await metric(statusBase, name);
  for (let i = 0; i < 40 && value !== expected; i++) {
    await sleep(50);
    value = await metric(statusBase, name);
  }
  return value;
}

/** Writes `source` and reads it back over the session; checks the bytes. */
async function writeRead(lease: LeaseSession, arrayId: string, source: Buffer): Promise<void> {
  expect(await lease.write(arrayId, source)).toBe(source.byteLength);
  const back = await lease.read(arrayId, 0, source.byteLength);
  expect(back.equals(source)).toBe(true);
}

describe('data plane connection reuse', () => {
  const t = daemonForTests(['--maxbytes', '128M', '--host-maxbytes', '128M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0']);
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A new client and lease whose data plane goes through a counting proxy, with one 1 MiB array. */
  async function throughProxy(arrayBytes = MiB) {
    const proxy = await countingProxy(dataAddressOf(t.daemon.logs));
    cleanups.push(() => proxy.close());
    const client = new TensormemClient(t.daemon.tcpAddress);
    cleanups.push(() => client.close());
    const lease = await client.openLease({ clientName: 'keepalive-test', ttlSeconds: 120 });
    cleanups.push(() => lease.close().catch(() => undefined));
    expect(lease.dataPlane).toBeDefined();
    lease.dataPlane = proxy.endpoint;
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [arrayBytes] });
    return { proxy, client, lease, arrayId: array.array_id };
  }

  it('200 sequential 1 MiB writes and reads through one session use one connection, not 400', async () => {
    const { proxy, lease, arrayId } = await throughProxy();
    const source = Buffer.alloc(MiB);
    for (let i = 0; i < 200; i++) {
      source.fill(i & 0xff);
      await writeRead(lease, arrayId, source);
    }
    expect(lease.transfers).toEqual({ http: 400, grpc: 0 });
    expect(proxy.accepted).toBeLessThanOrEqual(2);
    expect(proxy.open).toBeLessThanOrEqual(1);
  }, 60_000);

  it('a connection the server closed while it sat idle is not used: the next transfer opens another and stays on HTTP', async () => {
    const { proxy, client, lease, arrayId } = await throughProxy();
    const source = Buffer.alloc(MiB, 1);
    await writeRead(lease, arrayId, source);
    expect(client.dataPlaneConnections.idleCount).toBe(1);
    proxy.cutAll();
    await sleep(200);
    expect(client.dataPlaneConnections.idleCount).toBe(0);
    const { opened, reused } = client.dataPlaneConnections.stats;
    await writeRead(lease, arrayId, source.fill(2));
    expect(client.dataPlaneConnections.stats).toEqual({ opened: opened + 1, reused: reused + 1 });
    expect(lease.transfers).toEqual({ http: 4, grpc: 0 });
    expect(lease.dataPlane).toEqual(proxy.endpoint);
  });

  it("past the daemon's 5 s idle timeout the next transfer succeeds on a new connection, the old one closed", async () => {
    const client = new TensormemClient(t.daemon.tcpAddress);
    cleanups.push(() => client.close());
    const lease = await client.openLease({ clientName: 'keepalive-idle', ttlSeconds: 120 });
    cleanups.push(() => lease.close().catch(() => undefined));
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
    const source = Buffer.alloc(MiB, 3);
    await writeRead(lease, array.array_id, source);
    expect(await metricBecomes(t.statusBase, 'tensormem_data_plane_connections', 1)).toBe(1);
    await sleep(5500);
    // The client drops it 1 s before the daemon's announced 5 s; either way it is gone on both sides.
    expect(client.dataPlaneConnections.idleCount).toBe(0);
    expect(await metric(t.statusBase, 'tensormem_data_plane_connections')).toBe(0);
    await writeRead(lease, array.array_id, source.fill(4));
    expect(lease.transfers).toEqual({ http: 4, grpc: 0 });
    expect(client.dataPlaneConnections.stats.opened).toBe(2);
  }, 20_000);

  it('a pooled connection closed by the server just as a write or read goes out is retried once on a new one', async () => {
    const { proxy, client, lease, arrayId } = await throughProxy();
    const source = Buffer.alloc(MiB, 5);
    await writeRead(lease, arrayId, source);
    expect(proxy.accepted).toBe(1);
    // Cut the server's side, then send at once: the client has not read the close yet, takes the
    // idle connection, and its request meets a closed socket.
    proxy.cutAll();
    expect(await lease.write(arrayId, source.fill(6))).toBe(MiB);
    expect(proxy.accepted).toBe(2);
    proxy.cutAll();
    const back = await lease.read(arrayId, 0, MiB);
    expect(back.equals(source)).toBe(true);
    expect(proxy.accepted).toBe(3);
    // Each retry went over HTTP: the data plane was not turned off for the session.
    expect(lease.transfers).toEqual({ http: 4, grpc: 0 });
    expect(lease.dataPlane).toEqual(proxy.endpoint);
    expect(client.dataPlaneConnections.stats).toEqual({ opened: 3, reused: 3 });
  });

  it('concurrent transfers on one session each have their own connection; at most 4 stay idle and are reused', async () => {
    const { proxy, client, lease } = await throughProxy();
    const arrays = await Promise.all(Array.from({ length: 8 }, () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] })));
    const sources = arrays.map((_, i) => Buffer.alloc(MiB, 0x10 + i));
    await Promise.all(arrays.map((array, i) => lease.write(array.array_id, sources[i])));
    expect(proxy.accepted).toBe(8);
    expect(client.dataPlaneConnections.idleCount).toBe(4);
    const backs = await Promise.all(arrays.map((array) => lease.read(array.array_id, 0, MiB)));
    backs.forEach((back, i) => expect(back.equals(sources[i])).toBe(true));
    // 4 idle ones reused, 4 more opened.
    expect(proxy.accepted).toBe(12);
    expect(client.dataPlaneConnections.stats).toEqual({ opened: 12, reused: 4 });
    expect(lease.transfers).toEqual({ http: 16, grpc: 0 });
    await sleep(100);
    expect(proxy.open).toBe(4);
  });
});

describe('client.close() and the data plane pool', () => {
  const t = daemonForTests(['--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0']);

  it('closes the pooled connections at once, so a process that ends without process.exit ends', async () => {
    // The child moves 1 MiB each way over HTTP, closes its client, and reports the daemon's data plane
    // connections 300 ms later (the daemon keeps an idle one 5 s, the client 4 s).
    const script = `
      const { TensormemClient } = require(${JSON.stringify(join(__dirname, '..', '..', 'dist', 'src', 'client', 'tensormem-client'))});
      const gauge = async () => Number((await (await fetch(${JSON.stringify(`${t.statusBase}/metrics`)})).text()).split('\\n').find((l) => l.startsWith('tensormem_data_plane_connections ')).split(' ')[1]);
      (async () => {
        const client = new TensormemClient(${JSON.stringify(t.daemon.tcpAddress)});
        const lease = await client.openLease({ clientName: 'close-test', ttlSeconds: 60 });
        const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [${MiB}] });
        await lease.write(array.array_id, Buffer.alloc(${MiB}, 7));
        await lease.read(array.array_id, 0, ${MiB});
        const open = await gauge();
        await lease.close();
        client.close();
        await new Promise((resolve) => setTimeout(resolve, 300));
        console.log(JSON.stringify({ transfers: lease.transfers, open, afterClose: await gauge() }));
      })();
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    // From the child's report (300 ms after client.close()) to its exit: the process's start and its
    // transfers are not in it, so load on the machine hardly moves it.
    let reportedAt = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n') && reportedAt === 0) reportedAt = Date.now();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    const seconds = (Date.now() - reportedAt) / 1000;
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ transfers: { http: 2, grpc: 0 }, open: 1, afterClose: 0 });
    // Well under the rest of the client's 4 s idle time (3.7 s), which a kept connection would hold it.
    expect(seconds).toBeLessThan(2);
  }, 20_000);
});
