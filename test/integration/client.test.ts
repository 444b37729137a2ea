/**
 * The typed client (TensormemClient, LeaseSession, the data plane client) against a real daemon:
 * argument checks, exact ranges, deadlines and failures on the HTTP path mapped like gRPC's, free()
 * after a failed FreeArray, close() stopping what it started, KeepAlive reconnection. A few tests put a
 * scripted TCP server in place of the data plane to produce answers the daemon never gives.
 */
import { constants as bufferConstants } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { getArray } from '../../src/dataplane/data-plane-client';
import { DaemonProcess, ROOT, startDaemon } from '../helpers/daemon-process';
import { silentProxy } from '../helpers/silent-proxy';
import { answerWith, scriptedServer } from '../helpers/scripted-server';

const MiB = 1024 * 1024;

async function rejection(promise: Promise<unknown>): Promise<TensormemClientError> {
  try {
    await promise;
  } catch (error) {
    return error as TensormemClientError;
  }
  throw new Error('expected a rejection');
}

describe('the typed client with no daemon', () => {
  it('answers UNAVAILABLE naming the address, without grpc-js\'s empty "Resolution note: " ending', async () => {
    for (const address of [`unix:${join(tmpdir(), `tensormem-none-${process.pid}.sock`)}`, '127.0.0.1:1']) {
      const client = new TensormemClient(address);
      try {
        const error = (await client.memoryInfo().catch((caught: unknown) => caught)) as TensormemClientError;
        expect(error.code).toBe(status.UNAVAILABLE);
        expect(error.details).toContain(address.replace(/^unix:/, ''));
        expect(error.details).not.toContain('Resolution note');
      } finally {
        client.close();
      }
    }
  });
});

describe('the typed client over a real daemon', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '512M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0']);
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: { thresholdBytes: 4096 } });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('read() of a range past the end throws OUT_OF_RANGE over HTTP as over gRPC, never a clipped body', async () => {
    const lease = await client.openLease({ clientName: 'range' });
    expect(lease.dataPlane).toBeDefined();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1.5 * MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true });
    const grpc = await rejection(lease.readGrpc(array.array_id, MiB, MiB));
    expect(grpc).toBeInstanceOf(TensormemClientError);
    expect(grpc.code).toBe(status.OUT_OF_RANGE);

    // This session knows the size: it refuses before any transfer, in ReadArray's words.
    const known = await rejection(lease.read(array.array_id, MiB, MiB));
    expect(known).toBeInstanceOf(TensormemClientError);
    expect([known.code, known.reason, known.details]).toEqual([grpc.code, grpc.reason, grpc.details]);
    expect(lease.transfers.http).toBe(0);
    const pastEnd = await rejection(lease.read(array.array_id, 2 * MiB, MiB));
    expect(pastEnd.code).toBe(status.OUT_OF_RANGE);
    expect(pastEnd.details).toBe((await rejection(lease.readGrpc(array.array_id, 2 * MiB, MiB))).details);

    // A session that does not know the size asks the data plane, which clips the Range: still OUT_OF_RANGE.
    const fresh = new LeaseSession(client, lease.lease, lease.dataPlane);
    const overHttp = await rejection(fresh.read(array.array_id, MiB, MiB));
    expect(overHttp).toBeInstanceOf(TensormemClientError);
    expect([overHttp.code, overHttp.reason, overHttp.details]).toEqual([grpc.code, grpc.reason, grpc.details]);
    expect(fresh.dataPlane).toBeDefined();
    await expect(getArray(lease.dataPlane!, lease.token, array.array_id, 0, 2 * MiB)).rejects.toMatchObject({ name: 'DataPlaneHttpError', body: { status: 'OUT_OF_RANGE' } });
    // An exact range and a read to the end still work.
    expect((await fresh.read(array.array_id, MiB, MiB / 2)).byteLength).toBe(MiB / 2);
    expect((await getArray(lease.dataPlane!, lease.token, array.array_id, MiB)).byteLength).toBe(MiB / 2);
    await lease.close();
  });

  it('write() past the end of an array the session knows is OUT_OF_RANGE before any byte is sent, over gRPC as over HTTP: nothing changes', async () => {
    const lease = await client.openLease({ clientName: 'write-range' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [3 * MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true });
    const data = Buffer.alloc(2 * MiB, 0xab);
    // gRPC in 1 MiB chunks: the daemon refused only the second chunk, after the first had changed [2 MiB, 3 MiB).
    const overGrpc = await rejection(lease.writeGrpc(array.array_id, data, 2 * MiB, MiB));
    expect(overGrpc).toBeInstanceOf(TensormemClientError);
    expect([overGrpc.code, overGrpc.reason, overGrpc.errorMetadata.field]).toEqual([status.OUT_OF_RANGE, 'OUT_OF_RANGE', 'data']);
    expect(overGrpc.details).toBe(`data: ${2 * MiB} bytes at offset ${2 * MiB} pass the end of array ${array.array_id} (${3 * MiB} bytes)`);
    const overWrite = await rejection(lease.write(array.array_id, data, 2 * MiB));
    expect([overWrite.code, overWrite.details]).toEqual([overGrpc.code, overGrpc.details]);
    const pastEnd = await rejection(lease.write(array.array_id, data.subarray(0, 16), 3 * MiB));
    expect([pastEnd.code, pastEnd.errorMetadata.field]).toEqual([status.OUT_OF_RANGE, 'offset']);
    expect(lease.transfers).toEqual({ http: 0, grpc: 0 });
    expect((await lease.read(array.array_id)).every((byte) => byte === 0)).toBe(true);
    // Up to the end exactly is a write like any other.
    expect(await lease.writeGrpc(array.array_id, data.subarray(0, MiB), 2 * MiB)).toBe(MiB);
    await lease.close();
  });

  it('refuses negative, fractional and NaN offsets and lengths with INVALID_ARGUMENT naming them, and sends nothing', async () => {
    const lease = await client.openLease({ clientName: 'arguments' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_HOST_ONLY', zero: true });
    const cases: Array<[string, number, () => Promise<unknown>]> = [
      ['offset', -5, () => lease.write(array.array_id, Buffer.from([1, 2, 3]), -5)],
      ['offset', -5, () => lease.writeGrpc(array.array_id, Buffer.from([1, 2, 3]), -5)],
      ['offset', 2.5, () => lease.write(array.array_id, Buffer.from([1, 2, 3]), 2.5)],
      ['offset', -5, () => lease.read(array.array_id, -5, 4)],
      ['offset', 2.7, () => lease.read(array.array_id, 2.7, 4)],
      ['offset', NaN, () => lease.readGrpc(array.array_id, NaN, 4)],
      ['length', -3, () => lease.read(array.array_id, 0, -3)],
      ['length', 1.5, () => lease.readGrpc(array.array_id, 0, 1.5)],
      ['chunkBytes', 0, () => lease.writeGrpc(array.array_id, Buffer.from([1]), 0, 0)],
    ];
    for (const [field, value, attempt] of cases) {
      const error = await rejection(attempt());
      expect(error).toBeInstanceOf(TensormemClientError);
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.reason).toBe('INVALID_ARGUMENT');
      expect(error.details).toMatch(new RegExp(`^Expected a (non-negative|positive) safe integer for ${field} but received ${String(value).replace('.', '\\.')}$`));
      expect(error.errorMetadata).toEqual({ field });
    }
    expect(lease.transfers).toEqual({ http: 0, grpc: 0 });
    expect([...(await lease.readGrpc(array.array_id))]).toEqual(new Array(16).fill(0));
    await lease.close();
  });

  it('writes a Float32Array (or any typed array, a DataView, a view at an offset) as the bytes it spans, over gRPC and HTTP alike; refuses what is no view', async () => {
    const lease = await client.openLease({ clientName: 'typed-arrays' });
    // 4 floats take gRPC (under thresholdBytes 4096), 4096 floats HTTP; writeGrpc in 5-byte chunks cuts floats in two.
    for (const [count, write] of [
      [4, (id: string, data: ArrayBufferView) => lease.write(id, data)],
      [4096, (id: string, data: ArrayBufferView) => lease.write(id, data)],
      [4096, (id: string, data: ArrayBufferView) => lease.writeGrpc(id, data, 0, 5)],
    ] as const) {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [count], zero: true });
      const weights = Float32Array.from({ length: count }, (_, i) => i + 0.5);
      expect(await write(array.array_id, weights)).toBe(count * 4);
      const back = await lease.read(array.array_id);
      expect(Buffer.compare(back, Buffer.from(weights.buffer))).toBe(0);
    }
    // A view at an offset into a larger buffer, and a DataView: only their own bytes.
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8], zero: true });
    const backing = new ArrayBuffer(64);
    new Uint8Array(backing).fill(7);
    new Uint16Array(backing, 16, 2).set([0x0201, 0x0403]);
    expect(await lease.write(array.array_id, new Uint16Array(backing, 16, 2))).toBe(4);
    expect(await lease.writeGrpc(array.array_id, new DataView(backing, 16, 4), 4)).toBe(4);
    expect([...(await lease.read(array.array_id))]).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
    // Not a view: refused before anything is sent (it wrote nothing and answered 0 before).
    const error = await rejection(lease.write(array.array_id, [1, 2, 3] as unknown as Uint8Array));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toBe('Expected a Uint8Array, Buffer, other typed array or DataView for data but received an Array of 3');
    expect(error.errorMetadata).toEqual({ field: 'data' });
    await lease.close();
  });

  it('a 0-byte write at an offset goes over gRPC even with thresholdBytes 0', async () => {
    const everything = new TensormemClient(daemon.tcpAddress, { dataPlane: { thresholdBytes: 0 } });
    const lease = await everything.openLease({ clientName: 'empty' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64] });
    expect(await lease.write(array.array_id, new Uint8Array(0), 8)).toBe(0);
    expect((await lease.read(array.array_id, 64)).byteLength).toBe(0);
    expect(lease.transfers).toEqual({ http: 0, grpc: 2 });
    expect(await lease.write(array.array_id, new Uint8Array(8), 8)).toBe(8);
    expect(lease.transfers.http).toBe(1);
    await lease.close();
    everything.close();
  });

  it('sessionOf(token): GetArray names the data plane, which the session takes from its first get(), once, under the client\'s rules', async () => {
    const owner = await client.openLease({ clientName: 'token-owner' });
    const array = await owner.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * 1024] });
    const content = randomBytes(array.byte_size);
    // The daemon's answer names the address it logged (and OpenLease gives).
    const dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    const metadata = client.metadata(owner.token);
    const answer = await new Promise<{ data_address: string }>((resolve, reject) => client.arrays.GetArray({ array_id: array.array_id }, metadata, (e, value) => (e ? reject(e) : resolve(value as { data_address: string }))));
    expect(answer.data_address).toBe(dataAddress);

    const session = client.sessionOf(owner.token);
    expect(session.leaseId).toBe('');
    // No get() yet: nothing named the data plane to it.
    expect(session.dataPlane).toBeUndefined();
    expect(await session.write(array.array_id, content)).toBe(content.length);
    expect(session.transfers).toEqual({ http: 0, grpc: 1 });
    await session.get(array.array_id);
    expect(session.dataPlane).toEqual(owner.dataPlane);
    expect(await session.write(array.array_id, content)).toBe(content.length);
    expect((await session.read(array.array_id)).equals(content)).toBe(true);
    // Under the threshold (4096 bytes here): gRPC, as for any session.
    expect((await session.read(array.array_id, 0, 100)).equals(content.subarray(0, 100))).toBe(true);
    expect(session.transfers).toEqual({ http: 2, grpc: 2 });
    // Taken once: a data plane turned off on the session stays off through later get() answers.
    session.dataPlane = undefined;
    await session.get(array.array_id);
    expect(session.dataPlane).toBeUndefined();

    // dataPlane: false keeps every transfer on gRPC, as for openLease's sessions.
    const grpcOnly = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
    try {
      const other = grpcOnly.sessionOf(owner.token);
      await other.get(array.array_id);
      expect(other.dataPlane).toBeUndefined();
      expect((await other.read(array.array_id)).equals(content)).toBe(true);
      expect(other.transfers).toEqual({ http: 0, grpc: 1 });
    } finally {
      grpcOnly.close();
    }
    const error = await rejection(Promise.resolve().then(() => client.sessionOf('')));
    expect([error.code, error.details, error.errorMetadata]).toEqual([status.INVALID_ARGUMENT, 'Expected a lease token for leaseToken but received ""', { field: 'leaseToken' }]);
    await owner.close();
  });

  it('deadlineMs bounds an HTTP transfer: DEADLINE_EXCEEDED, the socket destroyed, no fallback to gRPC', async () => {
    const silent = await scriptedServer(() => {});
    const timed = new TensormemClient(daemon.tcpAddress, { deadlineMs: 500, dataPlane: { thresholdBytes: 4096 } });
    try {
      const lease = await timed.openLease({ clientName: 'deadline' });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true });
      lease.dataPlane = silent.endpoint;
      for (const transfer of [() => lease.read(array.array_id), () => lease.write(array.array_id, Buffer.alloc(MiB))]) {
        const started = Date.now();
        const error = await rejection(transfer());
        expect(error).toBeInstanceOf(TensormemClientError);
        expect(error.code).toBe(status.DEADLINE_EXCEEDED);
        expect(Date.now() - started).toBeGreaterThanOrEqual(450);
        expect(Date.now() - started).toBeLessThan(5000);
      }
      expect(lease.transfers).toEqual({ http: 0, grpc: 0 });
      expect(lease.dataPlane).toEqual(silent.endpoint);
      await lease.close();
    } finally {
      timed.close();
      await silent.close();
    }
  });

  it('a data port that drops connection attempts falls back to gRPC within the connect timeout (at most half the deadline), not DEADLINE_EXCEEDED', async () => {
    // A listener whose accept queue is full: the kernel drops further SYNs, as a firewall would. The
    // child binds with backlog 1 and then never returns to its event loop, so it never accepts.
    const child = spawn(process.execPath, ['-e', "const s = require('net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => { console.log(s.address().port); setTimeout(() => { for (;;); }, 50); });"], { stdio: ['ignore', 'pipe', 'inherit'] });
    const fillers: Socket[] = [];
    const clients: TensormemClient[] = [];
    try {
      const port = Number(await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))));
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (let i = 0; i < 4; i++) fillers.push(connect(port, '127.0.0.1').on('error', () => {}));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const dropping = { host: '127.0.0.1', port };
      const cases: Array<[string, TensormemClient, number]> = [
        ['deadlineMs 4000 (connect timeout 2 s, half of it)', new TensormemClient(daemon.tcpAddress, { deadlineMs: 4000, dataPlane: { thresholdBytes: 4096 } }), 4000],
        ['no deadline, connectTimeoutMs 300', new TensormemClient(daemon.tcpAddress, { dataPlane: { thresholdBytes: 4096, connectTimeoutMs: 300 } }), 2000],
      ];
      for (const [name, timed, within] of cases) {
        clients.push(timed);
        const lease = await timed.openLease({ clientName: 'dropping' });
        const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true });
        lease.dataPlane = dropping;
        const bytes = Buffer.alloc(MiB, 5);
        const started = Date.now();
        expect(await lease.write(array.array_id, bytes), name).toBe(MiB);
        expect(Date.now() - started, name).toBeLessThan(within);
        expect(lease.transfers, name).toEqual({ http: 0, grpc: 1 });
        expect(lease.dataPlaneRetryAt, name).toBeGreaterThan(0);
        expect((await lease.read(array.array_id)).equals(bytes), name).toBe(true);
        // A read that meets the dropping port falls back the same way.
        lease.dataPlane = dropping;
        const readStarted = Date.now();
        expect((await lease.read(array.array_id)).equals(bytes), name).toBe(true);
        expect(Date.now() - readStarted, name).toBeLessThan(within);
        await lease.close();
      }
    } finally {
      child.kill('SIGKILL');
      for (const filler of fillers) filler.destroy();
      for (const timed of clients) timed.close();
    }
  });

  it('a connection made while the event loop was busy past the connect timeout still counts: the transfer stays on HTTP', async () => {
    const busy = new TensormemClient(daemon.tcpAddress, { dataPlane: { thresholdBytes: 4096, connectTimeoutMs: 20 } });
    try {
      const lease = await busy.openLease({ clientName: 'busy' });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true });
      const written = lease.write(array.array_id, Buffer.alloc(MiB, 1));
      const started = Date.now();
      while (Date.now() - started < 200); // the trainer's synchronous work
      expect(await written).toBe(MiB);
      expect(lease.transfers).toEqual({ http: 1, grpc: 0 });
      expect(lease.dataPlane).toBeDefined();
      await lease.close();
    } finally {
      busy.close();
    }
  });

  it('a data plane connection that goes silent (no FIN, no RST: the host lost power) is given up after stallTimeoutMs, not held for good', async () => {
    const silent = new TensormemClient(daemon.tcpAddress, { dataPlane: { thresholdBytes: 4096, stallTimeoutMs: 500 } });
    const servers: Array<{ close(): Promise<void> }> = [];
    try {
      const lease = await silent.openLease({ clientName: 'silent' });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true });
      const bytes = Buffer.alloc(64 * MiB, 7);
      const dataAddress = lease.dataPlane as { host: string; port: number };
      // Before any answer (the request went out, nothing comes back), a GET and a PUT: retried over gRPC.
      for (const transfer of ['write', 'read'] as const) {
        const proxy = await silentProxy(`${dataAddress.host}:${dataAddress.port}`);
        servers.push(proxy);
        proxy.goSilent();
        lease.dataPlane = { host: '127.0.0.1', port: Number(proxy.address.split(':')[1]) };
        const before = { ...lease.transfers };
        const started = Date.now();
        if (transfer === 'write') expect(await lease.write(array.array_id, bytes)).toBe(64 * MiB);
        else expect((await lease.read(array.array_id)).equals(bytes)).toBe(true);
        expect(Date.now() - started, transfer).toBeLessThan(5000);
        expect(lease.transfers, transfer).toEqual({ http: before.http, grpc: before.grpc + 1 });
        expect(lease.dataPlaneRetryAt, transfer).toBeGreaterThan(0);
      }
      // A PUT body the peer stops taking (100 Continue, then nothing read): retried over gRPC too.
      const stopsReading = await scriptedServer((socket) =>
        socket.once('data', () => {
          socket.write('HTTP/1.1 100 Continue\r\n\r\n');
          socket.pause();
        }),
      );
      servers.push(stopsReading);
      lease.dataPlane = stopsReading.endpoint;
      const started = Date.now();
      expect(await lease.write(array.array_id, bytes)).toBe(64 * MiB);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(lease.dataPlaneRetryAt).toBeGreaterThan(0);
      // Silent once a GET's answer began: the rest is read over gRPC from the first byte it lacks (the
      // first 1000 are this server's), and the data plane skipped for the backoff.
      const midAnswer = await scriptedServer(answerWith(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-${MiB - 1}/${64 * MiB}\r\nContent-Length: ${MiB}\r\n\r\n${'x'.repeat(1000)}`));
      servers.push(midAnswer);
      const session = new LeaseSession(silent, lease.lease, midAnswer.endpoint);
      const resumed = await session.read(array.array_id, 0, MiB);
      expect(resumed.subarray(0, 1000).toString()).toBe('x'.repeat(1000));
      expect(resumed.subarray(1000).equals(bytes.subarray(1000, MiB))).toBe(true);
      expect(session.transfers).toEqual({ http: 0, grpc: 1 });
      expect(session.dataPlaneRetryAt).toBeGreaterThan(0);
      // A process blocked past stallTimeoutMs is no stall: what came meanwhile is read before the check.
      const direct = new LeaseSession(silent, lease.lease, dataAddress);
      const reading = direct.read(array.array_id, 0, 64 * MiB);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const blockedAt = Date.now();
      while (Date.now() - blockedAt < 1000); // the trainer's synchronous work
      expect((await reading).equals(bytes)).toBe(true);
      expect(direct.transfers).toEqual({ http: 1, grpc: 0 });
      await lease.close();
    } finally {
      silent.close();
      for (const server of servers) await server.close();
    }
  }, 20_000);

  it('after a data plane connection failure, large transfers use gRPC for a backoff (1 s, doubling with each failure in a row), then the data plane again; a transfer it completes resets it', async () => {
    const lease = await client.openLease({ clientName: 'backoff' });
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB], placement: 'PLACEMENT_HOST_ONLY' })).array_id;
    const target = lease.dataPlane as { host: string; port: number };
    // A data listener (or a proxy in front of it) that restarts: its port refuses, then accepts again.
    const proxy = await silentProxy(`${target.host}:${target.port}`);
    const bytes = randomBytes(2 * MiB);
    const untilRetry = () => new Promise((resolve) => setTimeout(resolve, lease.dataPlaneRetryAt - Date.now() + 5));
    /** Runs `transfer` and gives the wait it set before the data plane is tried again. */
    const backoffAfter = async (transfer: () => Promise<unknown>) => {
      const before = Date.now();
      await transfer();
      const after = Date.now();
      return [lease.dataPlaneRetryAt - before, lease.dataPlaneRetryAt - after];
    };
    try {
      lease.dataPlane = { host: '127.0.0.1', port: Number(proxy.address.split(':')[1]) };
      await proxy.refuse();
      const [longest, shortest] = await backoffAfter(() => lease.write(arrayId, bytes));
      expect(lease.transfers).toEqual({ http: 0, grpc: 1 });
      expect(longest).toBeGreaterThanOrEqual(1000);
      expect(shortest).toBeLessThanOrEqual(1000);
      // Meanwhile the data plane is not tried, though it accepts again.
      await proxy.accept();
      expect((await lease.read(arrayId)).equals(bytes)).toBe(true);
      expect(lease.transfers).toEqual({ http: 0, grpc: 2 });
      expect(proxy.accepted).toBe(0);
      // Refused again when the backoff has passed: the next wait is 2 s.
      await proxy.refuse();
      await untilRetry();
      const [longer, shorter] = await backoffAfter(() => lease.write(arrayId, bytes));
      expect(lease.transfers).toEqual({ http: 0, grpc: 3 });
      expect(longer).toBeGreaterThanOrEqual(2000);
      expect(shorter).toBeLessThanOrEqual(2000);
      // Accepting once that has passed: back on the data plane, the backoff reset.
      await proxy.accept();
      await untilRetry();
      expect(await lease.write(arrayId, bytes)).toBe(2 * MiB);
      expect((await lease.read(arrayId)).equals(bytes)).toBe(true);
      expect(lease.transfers).toEqual({ http: 2, grpc: 3 });
      expect(lease.dataPlaneRetryAt).toBe(0);
      expect(proxy.accepted).toBeGreaterThan(0);
      // Transfers under way together when it fails are one failure: the wait is 1 s again, not 8 s.
      await proxy.refuse();
      const [together] = await backoffAfter(() => Promise.all([0, 1, 2].map(() => lease.read(arrayId, 0, 2 * MiB))));
      expect(lease.transfers).toEqual({ http: 2, grpc: 6 });
      expect(together).toBeGreaterThanOrEqual(1000);
      expect(together).toBeLessThan(2000);
      await lease.close();
    } finally {
      await proxy.close();
    }
  });

  it('a read whose answer is closed mid-body (truncated, reset) is finished over gRPC from the first byte it lacks; a non-JSON error answer (a proxy\'s) falls back to gRPC', async () => {
    const lease = await client.openLease({ clientName: 'midbody' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true });
    // The scripted server's 1000 bytes of 'x', then the zeroed array's own bytes from 1000 on.
    const stitched = Buffer.concat([Buffer.alloc(1000, 'x'), Buffer.alloc(MiB - 1000)]);
    const answers: Array<[string, (socket: Socket) => void, Buffer, { http: number; grpc: number }]> = [
      ['truncated', answerWith(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-${MiB - 1}/${MiB}\r\nContent-Length: ${MiB}\r\n\r\n${'x'.repeat(1000)}`, true), stitched, { http: 0, grpc: 1 }],
      [
        'reset',
        (socket) =>
          socket.once('data', () => {
            socket.write(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-${MiB - 1}/${MiB}\r\nContent-Length: ${MiB}\r\n\r\n${'x'.repeat(1000)}`);
            setTimeout(() => socket.resetAndDestroy(), 50);
          }),
        stitched,
        { http: 0, grpc: 1 },
      ],
      ['502 without JSON', answerWith('HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\nbad gateway', true), Buffer.alloc(MiB), { http: 0, grpc: 1 }],
    ];
    for (const [name, onConnection, expected, transfers] of answers) {
      const server = await scriptedServer(onConnection);
      try {
        const session = new LeaseSession(client, lease.lease, server.endpoint);
        expect((await session.read(array.array_id, 0, MiB)).equals(expected), name).toBe(true);
        expect(session.transfers, name).toEqual(transfers);
        // A cut answer is no connection failure; an answer that is not the daemon's is.
        expect(session.dataPlaneRetryAt > 0, name).toBe(name === '502 without JSON');
        if (name === '502 without JSON') {
          // A PUT too (nginx answers 413 past client_max_body_size): written over gRPC.
          const writer = new LeaseSession(client, lease.lease, server.endpoint);
          expect(await writer.write(array.array_id, Buffer.alloc(MiB, 3))).toBe(MiB);
          expect(writer.transfers).toEqual({ http: 0, grpc: 1 });
          expect((await lease.readGrpc(array.array_id)).equals(Buffer.alloc(MiB, 3))).toBe(true);
          await lease.writeGrpc(array.array_id, Buffer.alloc(MiB));
        }
      } finally {
        await server.close();
      }
    }
    await lease.close();
  });

  it('getArray into a buffer too small fails at once with a RangeError, without reading the body', async () => {
    // The server announces 64 MiB and sends none of it: a client that waits for the body never settles.
    const server = await scriptedServer(answerWith(`HTTP/1.1 200 OK\r\nContent-Length: ${64 * MiB}\r\n\r\n`));
    try {
      const into = Buffer.alloc(MiB);
      const outcome = getArray(server.endpoint, 'token', 'arr-x', 0, 0, into);
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still pending'), 3000).unref());
      const error = await Promise.race([outcome.then(() => 'resolved', (e: Error) => e), timeout]);
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toBe(`getArray: the destination holds ${MiB} bytes; the answer for array arr-x has ${64 * MiB}`);
    } finally {
      await server.close();
    }
  });

  it('free() unmaps an exported array even when FreeArray fails (the lease was evicted)', async () => {
    const lease = await client.openLease({ clientName: 'free-fails' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
    const exported = await lease.exportArray(array.array_id, { writable: true });
    expect(exported.bytes?.byteLength).toBe(MiB);
    expect(client.mappings.size).toBe(1);
    await client.evictLease(lease.leaseId);
    expect((await rejection(lease.free(array.array_id))).code).toBe(status.UNAUTHENTICATED);
    expect(client.mappings.size).toBe(0);
    expect(exported.bytes!.byteLength).toBe(0);
  });

  it('does not remember the sizes of workspace arrays (the daemon retires them without a FreeArray)', async () => {
    const lease = await client.openLease({ clientName: 'sizes' });
    const sizes = (lease as unknown as { arraySizes: Map<string, number> }).arraySizes;
    const plain = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [16] });
    expect(sizes.has(plain.array_id)).toBe(true);
    const workspace = await lease.createWorkspace('LOOP_WS', { initial_size: 0, learning_policy: 'LEARNING_POLICY_FIRST_LOOP' });
    for (let cycle = 0; cycle < 5; cycle++) {
      await lease.enterWorkspace(workspace.workspace_id);
      await Promise.all(Array.from({ length: 40 }, () => lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [16] })));
      await lease.leaveWorkspace(workspace.workspace_id);
    }
    expect(sizes.size).toBe(1);
    await lease.free(plain.array_id);
    expect(sizes.size).toBe(0);
    await lease.close();
  });

  it('reopens a KeepAlive stream that dropped, reporting the failure to onError, so the lease does not expire', async () => {
    const [host, port] = [daemon.tcpAddress.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(daemon.tcpAddress)![1])];
    const links = new Set<() => void>();
    const proxy = await scriptedServer((socket) => {
      const upstream = connect(port, host);
      socket.pipe(upstream).pipe(socket);
      const kill = () => {
        socket.destroy();
        upstream.destroy();
      };
      upstream.on('error', kill);
      upstream.on('close', kill);
      socket.on('close', kill);
      links.add(kill);
    });
    const proxied = new TensormemClient(`127.0.0.1:${proxy.endpoint.port}`);
    try {
      const lease = await proxied.openLease({ clientName: 'keepalive', ttlSeconds: 2 });
      const errors: TensormemClientError[] = [];
      lease.startKeepAlive(300, { onError: (error) => errors.push(error) });
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (const kill of links) kill(); // one network blip
      await new Promise((resolve) => setTimeout(resolve, 4000)); // twice the TTL
      expect(errors.length).toBeGreaterThan(0);
      expect(errors[0]).toBeInstanceOf(TensormemClientError);
      expect(errors[0].code).toBe(status.UNAVAILABLE);
      expect((await client.listLeases()).map((l) => l.lease_id)).toContain(lease.leaseId);
      expect((await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })).array_id).toMatch(/^arr-/);
      await lease.close();
    } finally {
      proxied.close();
      await proxy.close();
    }
  });

  it('renew(ttlSeconds) sets the session\'s TTL, so that startKeepAlive() without an interval renews within the new one', async () => {
    const lease = await client.openLease({ clientName: 'renew-shorter', ttlSeconds: 30 });
    try {
      // The lease's TTL is 2 s from here; the session had kept 30, and startKeepAlive() renewed every 10 s.
      const renewed = await lease.renew(2);
      expect(renewed.ttl_seconds).toBe(2);
      expect(lease.lease.ttl_seconds).toBe(2);
      expect(lease.lease.expires_at).toEqual(renewed.expires_at);
      // Only OpenLease returns the token (RenewLease's lease has it empty): the session keeps it.
      expect(lease.lease.token).toBe(lease.token);
      const errors: TensormemClientError[] = [];
      lease.startKeepAlive(undefined, { onError: (error) => errors.push(error) });
      await new Promise((resolve) => setTimeout(resolve, 3500));
      expect(errors).toEqual([]);
      // The keep-alive's answers move expires_at on.
      expect(Number(lease.lease.expires_at!.seconds)).toBeGreaterThan(Number(renewed.expires_at!.seconds));
      expect((await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })).array_id).toMatch(/^arr-/);
    } finally {
      await lease.close();
    }
  });

  it('calls after close() reject with CANCELLED, over gRPC and the data plane alike, and send nothing', async () => {
    const closing = new TensormemClient(daemon.tcpAddress, { dataPlane: { thresholdBytes: 4096 } });
    const lease = await closing.openLease({ clientName: 'after-close', ttlSeconds: 30 });
    expect(lease.dataPlane).toBeDefined();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * 1024], placement: 'PLACEMENT_HOST_ONLY', zero: true });
    closing.close();
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['openLease', () => closing.openLease({ clientName: 'late' })],
      ['listLeases', () => closing.listLeases()],
      ['allocate', () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })],
      ['small write (gRPC)', () => lease.write(array.array_id, Buffer.alloc(16, 0xab))],
      ['large write (data plane)', () => lease.write(array.array_id, Buffer.alloc(64 * 1024, 0xab))],
      ['large read (data plane)', () => lease.read(array.array_id)],
      ['readGrpc', () => lease.readGrpc(array.array_id)],
      ['close', () => lease.close()],
    ];
    for (const [name, invoke] of calls) {
      const error = await rejection(invoke());
      expect(error, name).toBeInstanceOf(TensormemClientError);
      expect(error.code, name).toBe(status.CANCELLED);
    }
    expect(() => lease.startKeepAlive(100)).toThrow(TensormemClientError);
    expect(() => closing.watchMemory(100, () => {})).toThrow(TensormemClientError);
    expect(lease.transfers).toEqual({ http: 0, grpc: 0 });
    expect(closing.closed).toBe(true);
    // Nothing reached the daemon: the array still holds zeros, and the lease is still open.
    const open = new LeaseSession(client, lease.lease);
    expect((await open.read(array.array_id)).equals(Buffer.alloc(64 * 1024))).toBe(true);
    expect(await open.close()).toBeGreaterThan(0);
  });

  it('reports a KeepAlive stream that stops answering (a path that drops packets) to onError before the lease expires, and recovers when it heals', async () => {
    const [host, port] = [daemon.tcpAddress.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(daemon.tcpAddress)![1])];
    // A proxy whose links can be frozen: bytes are held back both ways (no reset, no close), then delivered.
    let frozen = false;
    const flushes = new Set<() => void>();
    const proxy = await scriptedServer((socket) => {
      const upstream = connect(port, host);
      const held: Array<[Socket, Buffer]> = [];
      const forward = (to: Socket) => (chunk: Buffer) => (frozen ? held.push([to, chunk]) : to.write(chunk));
      socket.on('data', forward(upstream));
      upstream.on('data', forward(socket));
      upstream.on('error', () => socket.destroy());
      upstream.on('close', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      flushes.add(() => {
        for (const [to, chunk] of held.splice(0)) to.write(chunk);
      });
    });
    const proxied = new TensormemClient(`127.0.0.1:${proxy.endpoint.port}`);
    try {
      const lease = await proxied.openLease({ clientName: 'keepalive-stall', ttlSeconds: 10 });
      const errors: TensormemClientError[] = [];
      lease.startKeepAlive(200, { onError: (error) => errors.push(error) });
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(errors).toEqual([]);
      frozen = true;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(errors.length).toBe(1); // once per stall, however long it lasts
      expect(errors[0]).toBeInstanceOf(TensormemClientError);
      expect(errors[0].code).toBe(status.DEADLINE_EXCEEDED);
      expect(errors[0].details).toMatch(/KeepAlive stream has not answered/);
      frozen = false;
      for (const flush of flushes) flush();
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await client.listLeases()).map((l) => l.lease_id)).toContain(lease.leaseId);
      expect((await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })).array_id).toMatch(/^arr-/);
      expect(errors.length).toBe(1);
      await lease.close();
    } finally {
      proxied.close();
      await proxy.close();
    }
  });

  it('an onError that stops the keep-alive (or closes the client) on a stall report is no crash', async () => {
    // A child process (an uncaught exception there is its exit code, not this worker's), with a proxy
    // in front of the daemon that stops forwarding bytes: the KeepAlive stream stalls.
    const script = `
      const net = require('net');
      const { TensormemClient } = require(${JSON.stringify(join(ROOT, 'dist', 'src', 'client', 'tensormem-client.js'))});
      const [host, port] = ${JSON.stringify(daemon.tcpAddress)}.split(':');
      let frozen = false;
      const proxy = net.createServer((socket) => {
        const upstream = net.connect(Number(port), host);
        socket.on('data', (chunk) => frozen || upstream.write(chunk));
        upstream.on('data', (chunk) => frozen || socket.write(chunk));
        for (const end of [socket, upstream]) end.on('error', () => {}).on('close', () => { socket.destroy(); upstream.destroy(); });
      });
      proxy.listen(0, '127.0.0.1', async () => {
        const reports = [];
        for (const reaction of ['stopKeepAlive', 'client.close']) {
          const client = new TensormemClient('127.0.0.1:' + proxy.address().port);
          const lease = await client.openLease({ clientName: 'stall-' + reaction, ttlSeconds: 10 });
          lease.startKeepAlive(100, { onError: (error) => { reports.push(reaction + ' ' + error.code); reaction === 'stopKeepAlive' ? lease.stopKeepAlive() : client.close(); } });
          await new Promise((r) => setTimeout(r, 300));
          frozen = true;
          await new Promise((r) => setTimeout(r, 700));
          frozen = false;
          client.close();
        }
        console.log(reports.join(', '));
        proxy.close();
        process.exit(0);
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
    expect(output.trim()).toBe(`stopKeepAlive ${status.DEADLINE_EXCEEDED}, client.close ${status.DEADLINE_EXCEEDED}`);
    expect(code).toBe(0);
  });

  it('a busy event loop is no KeepAlive stall: an answer that came while the process was blocked is not reported', async () => {
    const lease = await client.openLease({ clientName: 'keepalive-busy', ttlSeconds: 10 });
    const errors: TensormemClientError[] = [];
    lease.startKeepAlive(100, { onError: (error) => errors.push(error) });
    try {
      await new Promise((resolve) => setTimeout(resolve, 250));
      // The trainer's synchronous work: 250 ms blocks (2.5 intervals), with one turn of the event loop
      // between them. Each renewal's answer arrives during a block and waits to be read; the renewal
      // timer, late, runs before it is.
      for (let block = 0; block < 8; block++) {
        const started = Date.now();
        while (Date.now() - started < 250);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(errors.map((error) => error.details)).toEqual([]);
      expect((await client.listLeases()).map((l) => l.lease_id)).toContain(lease.leaseId);
    } finally {
      await lease.close();
    }
  });

  it('a deadlineMs past 2^31 - 1 ms (setTimeout\'s limit) or Infinity is no deadline: calls and HTTP transfers run, with no timer warnings', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      for (const deadlineMs of [30 * 24 * 3600 * 1000, Infinity]) {
        const patient = new TensormemClient(daemon.tcpAddress, { deadlineMs, dataPlane: { thresholdBytes: 4096 } });
        try {
          const lease = await patient.openLease({ clientName: 'patient' });
          const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY', waitForMemory: true, deadlineMs });
          const bytes = Buffer.alloc(MiB, 7);
          expect(await lease.write(array.array_id, bytes)).toBe(MiB);
          expect((await lease.read(array.array_id)).equals(bytes)).toBe(true);
          expect(lease.transfers).toEqual({ http: 2, grpc: 0 });
          await lease.close();
        } finally {
          patient.close();
        }
      }
      // The data plane client itself, given such a deadline directly.
      const lease = await client.openLease({ clientName: 'patient-http' });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true });
      for (const deadline of [Date.now() + 30 * 24 * 3600 * 1000, Infinity]) expect((await getArray(lease.dataPlane!, lease.token, array.array_id, 0, 0, undefined, { deadline })).byteLength).toBe(MiB);
      await lease.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a large read over gRPC holds its body once in the client, not its chunks and their join as well', async () => {
    // In a process of its own, so that its resident set is the read's alone. 128 MiB through ReadArray
    // (the data plane off, as with TLS): gathering the chunks and joining them took 2.1 times that.
    const size = 128 * MiB;
    const script = `
      const { TensormemClient } = require(${JSON.stringify(join(ROOT, 'dist', 'src', 'client', 'tensormem-client.js'))});
      (async () => {
        const client = new TensormemClient(${JSON.stringify(daemon.tcpAddress)}, { dataPlane: false });
        const lease = await client.openLease({ clientName: 'grpc-read-memory' });
        const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [${size}], placement: 'PLACEMENT_HOST_ONLY' });
        const pattern = Buffer.alloc(${MiB});
        for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) & 255;
        for (let offset = 0; offset < ${size}; offset += pattern.length) await lease.write(array.array_id, pattern, offset);
        const before = process.memoryUsage.rss();
        let peak = before;
        const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 2);
        const back = await lease.read(array.array_id);
        peak = Math.max(peak, process.memoryUsage.rss());
        clearInterval(sampler);
        let same = back.length === ${size};
        for (let offset = 0; same && offset < ${size}; offset += pattern.length) same = back.subarray(offset, offset + pattern.length).equals(pattern);
        console.log(JSON.stringify({ same, grpc: lease.transfers.grpc, grownBytes: peak - before }));
        await lease.close();
        client.close();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    expect(await new Promise<number | null>((resolve) => child.once('close', resolve)), output).toBe(0);
    const { same, grpc, grownBytes } = JSON.parse(output) as { same: boolean; grpc: number; grownBytes: number };
    expect(same).toBe(true);
    expect(grpc).toBe(size / MiB + 1);
    expect(grownBytes).toBeLessThan(1.5 * size);
  });

  it('close() stops keep-alives and watchMemory streams, so the process exits by itself', async () => {
    const script = `
      const { TensormemClient } = require(${JSON.stringify(join(ROOT, 'dist', 'src', 'client', 'tensormem-client.js'))});
      (async () => {
        const client = new TensormemClient(${JSON.stringify(daemon.tcpAddress)});
        const kept = await client.openLease({ clientName: 'exit-kept', ttlSeconds: 5 });
        kept.startKeepAlive(200);
        const closed = await client.openLease({ clientName: 'exit-closed', ttlSeconds: 5 });
        closed.startKeepAlive(200);
        let infos = 0;
        client.watchMemory(100, () => infos++);
        await new Promise((r) => setTimeout(r, 400));
        await closed.close();
        client.close();
        console.log('closed', infos > 0);
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 8000).unref())]);
    if (code === 'still running') child.kill('SIGKILL');
    expect(code).toBe(0);
    expect(output.trim()).toBe('closed true');
  });
});

describe('the typed client and reads larger than one Buffer', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  const GiB = 1024 * MiB;

  beforeAll(async () => {
    // A 4 GiB + 4 KiB array that is never touched: emulated device memory is mapped lazily (no scrub).
    daemon = await startDaemon(['--emulated-device', '5G', '--maxbytes', '5G', '--maxphysicalbytes', '0', '--scrub', 'off', '--data-listen', '127.0.0.1:0']);
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: { thresholdBytes: 4096 } });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('a read past LeaseSession.maxReadBytes (buffer.constants.MAX_LENGTH) is RESOURCE_EXHAUSTED at once over either transport, never a RangeError or a crash after reading it all', async () => {
    const lease = await client.openLease({ clientName: 'huge' });
    const size = 4 * GiB + 4096;
    // MAX_LENGTH is 4 GiB on Node.js 20 and 2^53 - 1 on 22 and later, past any array: there the limit
    // is lowered to Node.js 20's (the same checks on the same paths).
    expect(LeaseSession.maxReadBytes).toBe(bufferConstants.MAX_LENGTH);
    const saved = LeaseSession.maxReadBytes;
    LeaseSession.maxReadBytes = Math.min(saved, 4 * GiB);
    onTestFinished(() => {
      LeaseSession.maxReadBytes = saved;
    });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size] });
    const grpcOnly = new LeaseSession(client, lease.lease);
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['read to the end, size known (data plane)', () => lease.read(array.array_id)],
      ['read to the end, size known (gRPC)', () => grpcOnly.get(array.array_id).then(() => grpcOnly.read(array.array_id))],
      ['read with a length over the limit', () => grpcOnly.read(array.array_id, 0, size)],
      ['readGrpc with a length over the limit', () => lease.readGrpc(array.array_id, 0, size)],
    ];
    for (const [name, invoke] of cases) {
      const started = Date.now();
      const error = await rejection(invoke());
      expect(error, name).toBeInstanceOf(TensormemClientError);
      expect(error.code, name).toBe(status.RESOURCE_EXHAUSTED);
      expect(error.details, name).toMatch(/does not fit in one Buffer/);
      expect(Date.now() - started, name).toBeLessThan(2000);
    }
    expect(lease.transfers).toEqual({ http: 0, grpc: 0 });
    await lease.close();
  });

  it('a ReadArray stream to the end of an array whose size the session does not know is cancelled once it passes the limit', async () => {
    const lease = await client.openLease({ clientName: 'huge-stream' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], zero: true });
    const saved = LeaseSession.maxReadBytes;
    LeaseSession.maxReadBytes = 2 * MiB;
    try {
      const unknowing = new LeaseSession(client, lease.lease); // has not seen the array's size: reads to the end over gRPC
      const error = await rejection(unknowing.read(array.array_id));
      expect(error).toBeInstanceOf(TensormemClientError);
      expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(error.details).toMatch(/more than 2097152 bytes .* does not fit in one Buffer/);
      expect((await unknowing.read(array.array_id, 0, 2 * MiB)).byteLength).toBe(2 * MiB);
    } finally {
      LeaseSession.maxReadBytes = saved;
    }
    expect((await lease.read(array.array_id)).byteLength).toBe(4 * MiB);
    await lease.close();
  });
});
