/**
 * The HTTP data plane of a real daemon process: raw HTTP requests (node:http), real curl, and the
 * typed client choosing HTTP for large transfers and gRPC for small ones or when HTTP is unreachable.
 * Shutdown with a GET in flight is checked on a daemon process and on one in this process.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, IncomingMessage, request as httpRequest } from 'node:http';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { loadConfig } from '../../src/config/config';
import { startDaemon as startInProcess } from '../../src/daemon';
import { crc32c, crc32cHex } from '../../src/crc32c';
import { ERROR_REASONS } from '../../src/errors';
import { loadAddon } from '../../src/native/addon';
import { DaemonProcess, runTensormemd, startDaemon, waitForLog } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): Record<string, unknown>;
}

/** One HTTP request to the data plane at `base` ("http://HOST:PORT" or "unix:PATH"). */
function http(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array): Promise<HttpAnswer> {
  const target = base.startsWith('unix:') ? { socketPath: base.slice('unix:'.length) } : { host: new URL(base).hostname, port: Number(new URL(base).port) };
  return new Promise((resolve, reject) => {
    const req = httpRequest({ ...target, method, path, headers: body ? { 'Content-Length': String(body.byteLength), ...headers } : headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const data = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: res.headers, body: data, json: () => JSON.parse(data.toString('utf8')) as Record<string, unknown> });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const bearer = (lease: LeaseSession) => ({ Authorization: `Bearer ${lease.token}` });

/** Writes `request` as it is on one TCP connection to `base` and collects every byte until the server closes it. */
function rawHttp(base: string, request: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: url.hostname, port: Number(url.port) }, () => socket.write(request));
    let text = '';
    const timer = setTimeout(() => reject(new Error(`the server did not close the connection; so far:\n${text}`)), 10_000);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}

/** The answers in `text`, split by their Content-Length (so a wrong one shows as a garbled next answer). */
function parseAnswers(text: string): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const answers: Array<{ status: number; headers: Record<string, string>; body: string }> = [];
  let at = 0;
  while (at < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) throw new Error(`not an answer head at byte ${at}: ${JSON.stringify(text.slice(at, at + 200))}`);
    const [statusLine, ...lines] = text.slice(at, headEnd).split('\r\n');
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
    if (!status) throw new Error(`not a status line at byte ${at}: ${JSON.stringify(statusLine.slice(0, 200))}`);
    const headers: Record<string, string> = {};
    for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
    const length = Number(headers['content-length'] ?? 0);
    answers.push({ status: Number(status[1]), headers, body: text.slice(headEnd + 4, headEnd + 4 + length) });
    at = headEnd + 4 + length;
  }
  return answers;
}

describe('HTTP data plane over a real daemon', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;
  let dataDir: string;
  let unixDaemon: DaemonProcess;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tensormem-dataplane-test-'));
    [daemon, unixDaemon] = await Promise.all([
      startDaemon(['--maxbytes', '256M', '--host-maxbytes', '256M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0']),
      startDaemon(['--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '8M', '--data-listen', `unix:${join(dataDir, 'data.sock')}`]),
    ]);
    client = new TensormemClient(daemon.tcpAddress);
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
    expect(await unixDaemon?.stop()).toBe(0);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('binds port 0, logs the address, and hands it out in OpenLease and GetConfig', async () => {
    expect(dataAddress).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(dataAddress).not.toMatch(/:0$/);
    const lease = await client.openLease();
    expect(lease.dataPlane).toEqual({ host: '127.0.0.1', port: Number(new URL(dataAddress).port) });
    const config = await client.config();
    expect(JSON.stringify(config)).toContain('data-listen');
    await lease.close();
    // The CRC that checks uploads: the addon's, the CPU's instruction where it has one (every x86-64 CPU since 2008 has SSE4.2).
    const listening = daemon.logs.find((entry) => entry.event === 'listening')!;
    expect(listening.dataCrc32c).toBe(loadAddon().crc32cImplementation());
    if (process.arch === 'x64') expect(listening.dataCrc32c).toBe('sse4.2');
  });

  it('PUT then GET round-trips bytes exactly; Range reads answer 206; HEAD gives the size', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [3, 1024, 1024] });
    const data = randomBytes(12 * MiB);
    const put = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, bearer(lease), data);
    expect(put.status).toBe(200);
    expect(put.json()).toEqual({ array_id: array.array_id, offset: 0, bytes_written: 12 * MiB });

    const get = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, bearer(lease));
    expect(get.status).toBe(200);
    expect(get.headers['content-length']).toBe(String(12 * MiB));
    expect(get.headers['x-tensormem-data-type']).toBe('DATA_TYPE_FLOAT32');
    expect(get.headers['x-tensormem-shape']).toBe('3,1024,1024');
    expect(sha256(get.body)).toBe(sha256(data));
    // The same bytes over gRPC: one array, two transports.
    expect(sha256(await lease.readGrpc(array.array_id))).toBe(sha256(data));

    const ranged = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, { ...bearer(lease), Range: 'bytes=5000003-5001002' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes 5000003-5001002/${12 * MiB}`);
    expect(ranged.body.equals(data.subarray(5000003, 5001003))).toBe(true);
    const suffix = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, { ...bearer(lease), Range: 'bytes=-10' });
    expect(suffix.status).toBe(206);
    expect(suffix.body.equals(data.subarray(12 * MiB - 10))).toBe(true);
    const past = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, { ...bearer(lease), Range: `bytes=${12 * MiB}-` });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${12 * MiB}`);
    expect(past.json()).toMatchObject({ code: 416, status: 'OUT_OF_RANGE', reason: 'OUT_OF_RANGE', metadata: { field: 'Range' } });

    const head = await http(dataAddress, 'HEAD', `/v1/arrays/${array.array_id}`, bearer(lease));
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(12 * MiB));
    expect(head.body.byteLength).toBe(0);

    // The GETs made the host mirror current: a second PUT (written inline, piece by piece, from the
    // connection's read buffer) must reach both the device side and the mirror.
    const second = randomBytes(12 * MiB);
    expect((await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, bearer(lease), second)).status).toBe(200);
    expect(sha256((await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, bearer(lease))).body)).toBe(sha256(second));
    expect(sha256(await lease.readGrpc(array.array_id))).toBe(sha256(second));
    await lease.close();
  });

  it('HEAD ignores Range (RFC 9110 §14.2): 200 with the whole length, whatever the range, satisfiable or not', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    for (const range of ['bytes=0-9', 'bytes=-10', 'bytes=5000-', 'bytes=0-1,3-4', 'bytes=x']) {
      const head = await http(dataAddress, 'HEAD', `/v1/arrays/${array.array_id}`, { ...bearer(lease), Range: range });
      expect({ range, status: head.status }).toEqual({ range, status: 200 });
      expect(head.headers['content-length']).toBe('4096');
      expect(head.headers['accept-ranges']).toBe('bytes');
      expect(head.headers['content-range']).toBeUndefined();
    }
    await lease.close();
  });

  it('PUT with Content-Range writes at the offset and leaves the rest alone', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], zero: true });
    const patch = Buffer.from('tensormem data plane');
    const put = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, { ...bearer(lease), 'Content-Range': `bytes 1000-${1000 + patch.length - 1}/4096` }, patch);
    expect(put.status).toBe(200);
    expect(put.json()).toMatchObject({ offset: 1000, bytes_written: patch.length });
    const expected = Buffer.alloc(4096);
    patch.copy(expected, 1000);
    expect((await lease.readGrpc(array.array_id)).equals(expected)).toBe(true);
    await lease.close();
  });

  it('refuses a missing or wrong token with 401 and another lease\'s array with 404, like an unknown id', async () => {
    const owner = await client.openLease();
    const other = await client.openLease();
    const array = await owner.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64] });
    const missing = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`);
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(missing.json()).toMatchObject({ code: 401, status: 'UNAUTHENTICATED', reason: 'UNAUTHENTICATED', message: 'missing lease token: send "Authorization: Bearer <token>" (the token OpenLease returned; tensormemctl: --token or $TENSORMEM_TOKEN)' });
    const wrong = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, { Authorization: 'Bearer not-a-token' }, Buffer.alloc(8));
    expect(wrong.status).toBe(401);

    const foreign = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, bearer(other));
    const unknown = await http(dataAddress, 'GET', '/v1/arrays/arr-000000000000000000000000', bearer(other));
    expect(foreign.status).toBe(404);
    expect(foreign.json()).toMatchObject({ code: 404, status: 'NOT_FOUND', reason: 'ARRAY_NOT_FOUND' });
    expect(unknown.status).toBe(404);
    expect(Object.keys(foreign.json())).toEqual(Object.keys(unknown.json()));
    const foreignPut = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, bearer(other), Buffer.alloc(64, 1));
    expect(foreignPut.status).toBe(404);
    expect((await owner.readGrpc(array.array_id)).includes(1)).toBe(false);

    const noEndpoint = await http(dataAddress, 'GET', '/v2/nothing', bearer(owner));
    expect(noEndpoint.status).toBe(404);
    expect(noEndpoint.json()).toMatchObject({ code: 404, status: 'NOT_FOUND', reason: 'NOT_FOUND', metadata: { path: '/v2/nothing' } });
    const post = await http(dataAddress, 'POST', `/v1/arrays/${array.array_id}`, bearer(owner), Buffer.alloc(1));
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('PUT, GET, HEAD');
    // Every reason these answers carry is one of the catalogue a client's ErrorReason is typed from.
    for (const answer of [missing, wrong, foreign, unknown, foreignPut, noEndpoint, post]) expect(ERROR_REASONS).toContain(answer.json().reason);
    await owner.close();
    await other.close();
  });

  it('checks X-Tensormem-Crc32c: a match is 200, a mismatch 400 CHECKSUM_MISMATCH with nothing reported written', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB], zero: true });
    const data = randomBytes(2 * MiB);
    const good = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, { ...bearer(lease), 'X-Tensormem-Crc32c': crc32cHex(crc32c(data)) }, data);
    expect(good.status).toBe(200);
    expect(good.headers['x-tensormem-crc32c']).toBe(crc32cHex(crc32c(data)));

    const before = await client.memoryInfo();
    const infoBefore = await lease.get(array.array_id);
    const other = randomBytes(2 * MiB);
    const bad = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, { ...bearer(lease), 'X-Tensormem-Crc32c': crc32cHex((crc32c(other) ^ 1) >>> 0) }, other);
    expect(bad.status).toBe(400);
    const body = bad.json();
    expect(body, JSON.stringify(body)).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', reason: 'CHECKSUM_MISMATCH' });
    expect(body).not.toHaveProperty('bytes_written');
    expect((body.metadata as Record<string, string>).received_crc32c).toBe(crc32cHex(crc32c(other)));
    // Nothing was allocated or counted; the array's state flags are as before. Its range holds what
    // was received (documented: rewrite the range), exactly as after a failed gRPC WriteArray.
    const after = await client.memoryInfo();
    expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
    const infoAfter = await lease.get(array.array_id);
    expect([infoAfter.host_valid, infoAfter.device_valid, infoAfter.has_host_mirror]).toEqual([infoBefore.host_valid, infoBefore.device_valid, infoBefore.has_host_mirror]);

    const malformed = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, { ...bearer(lease), 'X-Tensormem-Crc32c': 'nothex!!' }, Buffer.alloc(4));
    expect(malformed.status).toBe(400);
    expect(malformed.json()).toMatchObject({ metadata: { field: 'X-Tensormem-Crc32c' } });
    await lease.close();
  });

  it('refuses a body past the array end with 416 and writes nothing', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000], zero: true });
    const oversize = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, bearer(lease), Buffer.alloc(1001, 7));
    expect(oversize.status).toBe(416);
    expect(oversize.json()).toMatchObject({ status: 'OUT_OF_RANGE', metadata: { field: 'Content-Length' } });
    const pastEnd = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, { ...bearer(lease), 'Content-Range': 'bytes 990-1009/*' }, Buffer.alloc(20, 7));
    expect(pastEnd.status).toBe(416);
    const mismatch = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, { ...bearer(lease), 'Content-Range': 'bytes 0-9/*' }, Buffer.alloc(20, 7));
    expect(mismatch.status).toBe(400);
    expect((await lease.readGrpc(array.array_id)).equals(Buffer.alloc(1000))).toBe(true);
    await lease.close();
  });

  it('a write whose range passes 2^53 is OUT_OF_RANGE over HTTP as over gRPC, its positions exact', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], zero: true });
    // lease.write refuses a range past the end of an array it knows before sending; a session of the
    // same lease that knows no size sends it, so that the data plane's own check is what answers.
    const unaware = new LeaseSession(client, lease.lease, lease.dataPlane);
    // The last byte, offset + 1 MiB - 1, is past 2^53: as a Number sum it rounds (2^53 - 1 + 2^20 - 1 to ...568).
    for (const offset of [2 ** 53 - MiB + 5, Number.MAX_SAFE_INTEGER]) {
      const known = (await lease.write(array.array_id, Buffer.alloc(MiB, 7), offset).catch((e: unknown) => e)) as TensormemClientError;
      expect(known.code, String(offset)).toBe(status.OUT_OF_RANGE);
      expect(known.details, String(offset)).toContain(`offset ${offset} is at or past the end of array ${array.array_id} (${4 * MiB} bytes)`);
      const error = await unaware.write(array.array_id, Buffer.alloc(MiB, 7), offset).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, String(offset)).toBeInstanceOf(TensormemClientError);
      expect((error as TensormemClientError).code, String(offset)).toBe(status.OUT_OF_RANGE);
      expect((error as TensormemClientError).details, String(offset)).toContain(`bytes ${offset}-${BigInt(offset) + BigInt(MiB) - 1n}/*`);
    }
    expect(lease.transfers).toEqual({ http: 0, grpc: 0 });
    expect(unaware.transfers).toEqual({ http: 0, grpc: 0 });
    const farPastTheEnd = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, { ...bearer(lease), 'Content-Range': 'bytes 18446744073709551616-18446744073709551617/*' }, Buffer.alloc(2, 7));
    expect(farPastTheEnd.status).toBe(416);
    expect(farPastTheEnd.json()).toMatchObject({ status: 'OUT_OF_RANGE', metadata: { field: 'Content-Range' } });
    expect((await lease.readGrpc(array.array_id)).equals(Buffer.alloc(4 * MiB))).toBe(true);
    await lease.close();
  });

  it('a Range that selects no byte of a 0-byte array is 416 with Content-Range bytes */0; a last position of any length is clipped', async () => {
    const lease = await client.openLease();
    const empty = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [0] });
    const suffix = await http(dataAddress, 'GET', `/v1/arrays/${empty.array_id}`, { ...bearer(lease), Range: 'bytes=-5' });
    expect(suffix.status).toBe(416);
    expect(suffix.headers['content-range']).toBe('bytes */0');
    expect(suffix.headers['x-tensormem-shape']).toBeUndefined();
    // HEAD ignores Range (RFC 9110 §14.2): what a GET without one answers.
    const head = await http(dataAddress, 'HEAD', `/v1/arrays/${empty.array_id}`, { ...bearer(lease), Range: 'bytes=-5' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('0');
    const whole = await http(dataAddress, 'GET', `/v1/arrays/${empty.array_id}`, bearer(lease));
    expect(whole.status).toBe(200);
    expect(whole.headers['content-length']).toBe('0');

    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
    const data = Buffer.from('0123456789abcdef');
    expect((await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, bearer(lease), data)).status).toBe(200);
    const clipped = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, { ...bearer(lease), Range: 'bytes=4-99999999999999999' });
    expect(clipped.status).toBe(206);
    expect(clipped.headers['content-range']).toBe('bytes 4-15/16');
    expect(clipped.body.toString('latin1')).toBe('456789abcdef');
    const farStart = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, { ...bearer(lease), Range: 'bytes=99999999999999999-' });
    expect(farStart.status).toBe(416);
    expect(farStart.headers['content-range']).toBe('bytes */16');
    // Another unit is ignored (RFC 9110 §14.2): the whole array.
    const otherUnit = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, { ...bearer(lease), Range: 'items=0-1' });
    expect(otherUnit.status).toBe(200);
    expect(otherUnit.body.toString('latin1')).toBe('0123456789abcdef');
    await lease.close();
  });

  it('evaluates If-Match / If-None-Match (412 and nothing written, 304 for GET) and ignores a Range under If-Range, having no validators', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8] });
    const path = `/v1/arrays/${array.array_id}`;
    expect((await http(dataAddress, 'PUT', path, bearer(lease), Buffer.from('original'))).status).toBe(200);
    expect((await lease.readGrpc(array.array_id)).toString('latin1')).toBe('original');
    const before = await client.memoryInfo();
    // A conditional write whose condition is false (an entity tag the daemon never issued; "only if
    // absent" of an array that exists) writes nothing: 412, with or without 100-continue.
    for (const [field, value, headers] of [
      ['If-Match', '"v1"', {}],
      ['If-Match', 'W/"v1", "v2"', { 'Content-Range': 'bytes 3-5/*' }],
      ['If-None-Match', '*', { Expect: '100-continue' }],
    ] as const) {
      const refused = await http(dataAddress, 'PUT', path, { ...bearer(lease), ...headers, [field]: value }, Buffer.from(headers['Content-Range'] ? 'XYZ' : 'OVERWRIT'));
      expect(refused.status, `${field}: ${value}`).toBe(412);
      expect(refused.json(), `${field}: ${value}`).toMatchObject({ code: 412, status: 'FAILED_PRECONDITION', reason: 'PRECONDITION_FAILED', metadata: { field, value } });
      expect(refused.json()).not.toHaveProperty('bytes_written');
    }
    expect((await lease.readGrpc(array.array_id)).toString('latin1')).toBe('original');
    const after = await client.memoryInfo();
    expect([after.host!.used_bytes, after.devices[0].used_bytes]).toEqual([before.host!.used_bytes, before.devices[0].used_bytes]);
    // Conditions that hold: the write goes ahead.
    expect((await http(dataAddress, 'PUT', path, { ...bearer(lease), 'If-Match': '*' }, Buffer.from('ifmatch*'))).status).toBe(200);
    expect((await http(dataAddress, 'PUT', path, { ...bearer(lease), 'If-None-Match': '"v1"' }, Buffer.from('nonematc'))).status).toBe(200);
    expect((await lease.readGrpc(array.array_id)).toString('latin1')).toBe('nonematc');
    // GET and HEAD: If-None-Match: * is 304 with no body; a failed If-Match is 412.
    for (const method of ['GET', 'HEAD']) {
      const notModified = await http(dataAddress, method, path, { ...bearer(lease), 'If-None-Match': '*' });
      expect(notModified.status, method).toBe(304);
      expect(notModified.body.byteLength, method).toBe(0);
      expect((await http(dataAddress, method, path, { ...bearer(lease), 'If-Match': '"v1"' })).status, method).toBe(412);
    }
    // If-Range names a validator the daemon never sent, so it cannot match: the whole array, not the range.
    const ifRange = await http(dataAddress, 'GET', path, { ...bearer(lease), Range: 'bytes=0-1', 'If-Range': '"v1"' });
    expect(ifRange.status).toBe(200);
    expect(ifRange.headers['content-range']).toBeUndefined();
    expect(ifRange.body.toString('latin1')).toBe('nonematc');
    // Another lease's array stays 404 whatever the conditions: they are evaluated only for the caller's own arrays.
    const other = await client.openLease();
    expect((await http(dataAddress, 'PUT', path, { ...bearer(other), 'If-Match': '"v1"' }, Buffer.from('x'))).status).toBe(404);
    await other.close();
    await lease.close();
  });

  it('answers a PUT whose Transfer-Encoding has a coding besides chunked 501 naming the coding (RFC 9112 §6.1); with Content-Length beside it, 400 naming Content-Length (RFC 9112 §6.3)', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16], zero: true });
    for (const [lengthLine, status, field] of [['', 501, 'Transfer-Encoding'], ['Content-Length: 4\r\n', 400, 'Content-Length']] as const) {
      const text = await rawHttp(
        dataAddress,
        `PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\n${lengthLine}Transfer-Encoding: gzip, chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
      );
      const [answer] = parseAnswers(text);
      expect(answer.status, field).toBe(status);
      const body = JSON.parse(answer.body) as { message: string; metadata: Record<string, string> };
      expect(body.metadata, field).toEqual(status === 501 ? { field, coding: 'gzip' } : { field });
      expect(body.message, field).toContain('Transfer-Encoding');
      expect(body.message, field).toContain('"gzip, chunked"');
    }
    expect((await lease.readGrpc(array.array_id)).equals(Buffer.alloc(16))).toBe(true);
    await lease.close();
  });

  it('refuses a PUT without Content-Length (curl -X PUT with no data) with 400 naming Content-Length, writes nothing, and serves the next request', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16], zero: true });
    const text = await rawHttp(
      dataAddress,
      `PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\n\r\n` +
        `GET /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nConnection: close\r\n\r\n`,
    );
    const [refused, next] = parseAnswers(text);
    expect(refused.status).toBe(400);
    const body = JSON.parse(refused.body) as { reason: string; message: string; metadata: Record<string, string> };
    expect(body.metadata).toEqual({ field: 'Content-Length' });
    expect(body.message).toContain('Content-Length');
    expect(body.message).toContain('(none)');
    expect(next.status).toBe(200);
    expect(Buffer.from(next.body, 'latin1').equals(Buffer.alloc(16))).toBe(true);
    await lease.close();
  });

  it('a PUT whose client ends its side of the connection mid-body is answered 400 (body shorter than Content-Length), and keeps what arrived', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16], zero: true });
    const url = new URL(dataAddress);
    // Half-close after 3 of 10 body bytes: the client can still read the answer.
    const text = await new Promise<string>((resolve, reject) => {
      const socket = createConnection({ host: url.hostname, port: Number(url.port) }, () =>
        socket.end(`PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nContent-Length: 10\r\n\r\nabc`),
      );
      let received = '';
      const timer = setTimeout(() => reject(new Error(`no close; so far: ${received}`)), 10_000);
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(received);
      });
    });
    const [answer] = parseAnswers(text);
    expect(answer.status).toBe(400);
    expect(answer.headers.connection).toBe('close');
    const body = JSON.parse(answer.body) as { status: string; message: string; metadata: Record<string, string> };
    expect(body.status).toBe('INVALID_ARGUMENT');
    expect(body.metadata).toEqual({ field: 'body' });
    expect(body.message).toContain('10 bytes (Content-Length)');
    expect(body.message).toContain('3 bytes');
    expect((await lease.readGrpc(array.array_id)).subarray(0, 4).toString('latin1')).toBe('abc\0');
    await lease.close();
  });

  it('answers 404 for a freed array', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [256] });
    await lease.free(array.array_id);
    const put = await http(dataAddress, 'PUT', `/v1/arrays/${array.array_id}`, bearer(lease), Buffer.alloc(256));
    expect(put.status).toBe(404);
    expect(put.json()).toMatchObject({ reason: 'ARRAY_NOT_FOUND' });
    expect((await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, bearer(lease))).status).toBe(404);
    await lease.close();
  });

  it('serves concurrent transfers on several leases byte-exactly', async () => {
    const sessions = await Promise.all(Array.from({ length: 4 }, () => client.openLease()));
    const payloads = sessions.map(() => randomBytes(6 * MiB + 123));
    const arrays = await Promise.all(sessions.map((lease) => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [6 * MiB + 123] })));
    await Promise.all(sessions.map((lease, i) => lease.write(arrays[i].array_id, payloads[i])));
    const back = await Promise.all(sessions.map((lease, i) => lease.read(arrays[i].array_id)));
    back.forEach((data, i) => expect(sha256(data)).toBe(sha256(payloads[i])));
    for (const lease of sessions) {
      expect(lease.transfers).toEqual({ http: 2, grpc: 0 });
      await lease.close();
    }
  });

  it('the typed client uses HTTP for large transfers, gRPC for small ones, and falls back when HTTP is unreachable', async () => {
    const lease = await client.openLease();
    const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [3 * MiB] });
    const small = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000] });
    const bigData = randomBytes(3 * MiB);
    expect(await lease.write(big.array_id, bigData)).toBe(3 * MiB);
    expect(await lease.write(small.array_id, Buffer.alloc(1000, 9))).toBe(1000);
    expect(lease.transfers).toEqual({ http: 1, grpc: 1 });
    expect(sha256(await lease.read(big.array_id))).toBe(sha256(bigData));
    expect((await lease.read(big.array_id, 100, 2 * MiB)).equals(bigData.subarray(100, 100 + 2 * MiB))).toBe(true);
    expect((await lease.read(small.array_id)).equals(Buffer.alloc(1000, 9))).toBe(true);
    expect(lease.transfers).toEqual({ http: 3, grpc: 2 });

    // HTTP errors keep the gRPC code and reason.
    const error = await lease.write(big.array_id, randomBytes(2 * MiB), 2 * MiB).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TensormemClientError);
    expect((error as TensormemClientError).code).toBe(status.OUT_OF_RANGE);
    expect(lease.transfers.http).toBe(3);

    // A data plane that does not answer: the transfer goes over gRPC and HTTP is not tried again before
    // dataPlaneRetryAt (1 s on).
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const port = (probe.address() as { port: number }).port;
        probe.close(() => resolve(port));
      });
    });
    lease.dataPlane = { host: '127.0.0.1', port: closedPort };
    const again = randomBytes(3 * MiB);
    expect(await lease.write(big.array_id, again)).toBe(3 * MiB);
    expect(lease.dataPlaneRetryAt).toBeGreaterThan(0);
    expect(sha256(await lease.read(big.array_id))).toBe(sha256(again));
    expect(lease.transfers).toEqual({ http: 3, grpc: 4 });
    await lease.close();

    const grpcOnly = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
    const plain = await grpcOnly.openLease();
    const array = await plain.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB] });
    await plain.write(array.array_id, randomBytes(2 * MiB));
    expect(plain.transfers).toEqual({ http: 0, grpc: 1 });
    await plain.close();
    grpcOnly.close();
  });

  it('serves over a unix socket (--data-listen unix:PATH) to the typed client', async () => {
    // Both sockets are mode 0660 (README: the user and its group), whatever the umask: no other local user connects.
    for (const socketPath of [join(dataDir, 'data.sock'), unixDaemon.unixAddress.slice('unix:'.length)]) {
      const stat = statSync(socketPath);
      expect(stat.isSocket(), socketPath).toBe(true);
      expect((stat.mode & 0o777).toString(8), socketPath).toBe('660');
    }
    const unixClient = new TensormemClient(unixDaemon.unixAddress);
    const lease = await unixClient.openLease();
    expect(lease.dataPlane).toEqual({ path: join(dataDir, 'data.sock') });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] });
    const data = randomBytes(4 * MiB);
    await lease.write(array.array_id, data);
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));
    expect(lease.transfers).toEqual({ http: 2, grpc: 0 });
    await lease.close();
    unixClient.close();
  });

  it('works with curl for PUT and ranged GET (TCP and unix socket)', async (context) => {
    const curl = await promisify(execFile)('curl', ['--version']).catch(() => undefined);
    if (!curl) {
      context.skip('curl is not installed (apt-get install curl)');
      return;
    }
    const run = (args: string[]) => promisify(execFile)('curl', ['-sS', ...args], { encoding: 'buffer', maxBuffer: 64 * MiB });
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-curl-'));
    try {
      const lease = await client.openLease();
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [3 * MiB] });
      const file = join(dir, 'data.bin');
      const data = randomBytes(3 * MiB);
      writeFileSync(file, data);
      const url = `${dataAddress}/v1/arrays/${array.array_id}`;
      const put = await run(['-X', 'PUT', '-H', `Authorization: Bearer ${lease.token}`, '-H', `X-Tensormem-Crc32c: ${crc32cHex(crc32c(data))}`, '--data-binary', `@${file}`, '-w', '\n%{http_code}', url]);
      const [putBody, putCode] = put.stdout.toString('utf8').split('\n');
      expect(putCode).toBe('200');
      expect(JSON.parse(putBody)).toMatchObject({ bytes_written: 3 * MiB });
      await run(['-H', `Authorization: Bearer ${lease.token}`, '-o', join(dir, 'back.bin'), url]);
      expect(sha256(readFileSync(join(dir, 'back.bin')))).toBe(sha256(data));
      const ranged = await run(['-H', `Authorization: Bearer ${lease.token}`, '-r', '100-199', url]);
      expect(ranged.stdout.equals(data.subarray(100, 200))).toBe(true);
      const denied = await run(['-H', 'Authorization: Bearer wrong', '-w', '\n%{http_code}', url]);
      expect(denied.stdout.toString('utf8').split('\n').pop()).toBe('401');
      await lease.close();

      const unixLease = await new TensormemClient(unixDaemon.unixAddress).openLease();
      const small = await unixLease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
      const socket = join(dataDir, 'data.sock');
      await run(['--unix-socket', socket, '-X', 'PUT', '-H', `Authorization: Bearer ${unixLease.token}`, '--data-binary', 'abcdefghijklmnop', `http://localhost/v1/arrays/${small.array_id}`]);
      const back = await run(['--unix-socket', socket, '-H', `Authorization: Bearer ${unixLease.token}`, `http://localhost/v1/arrays/${small.array_id}`]);
      expect(back.stdout.toString('latin1')).toBe('abcdefghijklmnop');
      await unixLease.close();
      unixLease.client.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tells a pooling client how long an idle connection is kept, so that Node\'s agent does not reuse one the daemon is closing', async () => {
    // Node's http.globalAgent keeps an idle socket 5 s, as long as the daemon keeps the connection: a
    // request sent right at 5 s went out on a connection the daemon had just closed ("socket hang up").
    const agent = new Agent({ keepAlive: true, timeout: 5000 });
    const lease = await client.openLease();
    try {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64] });
      const target = { host: new URL(dataAddress).hostname, port: Number(new URL(dataAddress).port), path: `/v1/arrays/${array.array_id}`, headers: bearer(lease), agent };
      const get = () =>
        new Promise<{ status: number; headers: IncomingMessage['headers']; at: number }>((resolve, reject) => {
          httpRequest(target, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, at: Date.now() }));
          })
            .on('error', reject)
            .end();
        });
      const first = await get();
      expect(first.headers['keep-alive']).toBe('timeout=5');
      // The agent acts on the hint a second early; then the event loop is kept busy past the daemon's
      // 5 s, so that its close is not read before the next request goes out, as under load.
      await new Promise((resolve) => setTimeout(resolve, 4500));
      while (Date.now() - first.at < 5400) {
        // busy
      }
      expect((await get()).status).toBe(200);
    } finally {
      agent.destroy();
      await lease.close();
    }
  });
});

describe('a GET of a workspace array whose lease closes while it is sent', () => {
  it('sends only the array\'s own bytes, never memory the pool has given to another lease meanwhile', async () => {
    const daemon = await startDaemon(['--maxbytes', '200M', '--host-maxbytes', '200M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const url = new URL(daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string);
      const size = 64 * MiB;
      const a = await client.openLease({ clientName: 'A' });
      const workspace = await a.createWorkspace('W', { initial_size: size, allocation_policy: 'ALLOCATION_POLICY_STRICT', learning_policy: 'LEARNING_POLICY_NONE' });
      await a.enterWorkspace(workspace.workspace_id);
      const array = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], workspaceId: workspace.workspace_id });
      await a.write(array.array_id, Buffer.alloc(size, 0xaa));
      // A reader that takes a little, then stops: the GET holds the workspace's mirror on the socket.
      const socket = createConnection({ host: url.hostname, port: Number(url.port) });
      const chunks: Buffer[] = [];
      let received = 0;
      let holding = true;
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        if (holding && received > 64 * 1024) socket.pause();
      });
      const closed = new Promise((resolve) => socket.on('close', resolve));
      socket.write(`GET /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.token}\r\nConnection: close\r\n\r\n`);
      for (let i = 0; i < 100 && received <= 64 * 1024; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      await a.close();
      // Another lease takes host memory and fills it: the pool must not have given it A's buffer yet.
      const b = await client.openLease({ clientName: 'B' });
      const other = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: 'PLACEMENT_HOST_ONLY' });
      await b.write(other.array_id, Buffer.alloc(size, 0x5b));
      holding = false;
      socket.resume();
      await closed;
      const all = Buffer.concat(chunks);
      const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
      expect(all.subarray(0, 15).toString()).toBe('HTTP/1.1 200 OK');
      // The GET stops where the freed array can lend no more (the connection is cut), but every byte
      // it sent is A's: the pieces already on the socket kept their memory until the socket had them.
      expect(body.length).toBeGreaterThan(64 * 1024);
      expect(body.length).toBeLessThanOrEqual(size);
      expect(body.filter((byte) => byte !== 0xaa).length).toBe(0);
      await b.close();
      // Once the GET has ended, the workspace's memory is back: only nothing is held.
      const info = await client.memoryInfo();
      expect(info.host!.used_bytes).toBe(0);
      expect(info.devices[0].used_bytes).toBe(0);
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('a GET refused after its range was checked', () => {
  // 32 MiB of host memory: a 64 MiB device array has no room for the host mirror a GET reads through.
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '128M', '--host-maxbytes', '32M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0']);
    client = new TensormemClient(daemon.tcpAddress);
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('no host memory for the mirror: 507 framed by its own JSON body, without the GET\'s headers, and the connection serves on', async () => {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [16 * MiB] });
    const auth = `Authorization: Bearer ${lease.token}\r\n`;
    const text = await rawHttp(
      dataAddress,
      `GET /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\n${auth}Range: bytes=0-1048575\r\n\r\n` +
        `HEAD /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`,
    );
    const answers = parseAnswers(text);
    expect(answers.map((answer) => answer.status)).toEqual([507, 200]);
    const [refused, head] = answers;
    expect(refused.headers['content-type']).toBe('application/json');
    expect(refused.headers['content-length']).toBe(String(Buffer.byteLength(refused.body)));
    expect(refused.headers['content-range']).toBeUndefined();
    expect(refused.headers['x-tensormem-data-type']).toBeUndefined();
    expect(refused.headers['x-tensormem-shape']).toBeUndefined();
    expect(refused.headers['accept-ranges']).toBeUndefined();
    expect(refused.headers.connection).toBe('keep-alive');
    expect(JSON.parse(refused.body)).toMatchObject({ code: 507, status: 'RESOURCE_EXHAUSTED', reason: 'HOST_OUT_OF_MEMORY' });
    expect(head.headers['content-length']).toBe(String(64 * MiB));
    expect(head.headers['x-tensormem-shape']).toBe(String(16 * MiB));

    // The typed client gets the daemon's error, not a short body.
    const error = await lease.read(array.array_id).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TensormemClientError);
    expect((error as TensormemClientError).code).toBe(status.RESOURCE_EXHAUSTED);
    expect(lease.transfers).toEqual({ http: 0, grpc: 0 });
    expect(lease.dataPlane).toBeDefined();
    await lease.close();
  });
});

describe('--data-listen validation', () => {
  it('refuses a malformed address and a non-loopback one in open mode, naming the flag', async () => {
    const bad = await runTensormemd(['--backend', 'host', '--emulated-device', '2G', '--listen', '127.0.0.1:0', '--data-listen', 'nowhere']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--data-listen');
    expect(bad.stderr).toContain('nowhere');
    const exposed = await runTensormemd(['--backend', 'host', '--emulated-device', '2G', '--listen', '127.0.0.1:0', '--data-listen', '0.0.0.0:0']);
    expect(exposed.code).not.toBe(0);
    expect(exposed.stderr).toMatch(/open mode.*--data-listen/);
  });

  it('with --data-listen off OpenLease has no data address and the client stays on gRPC', async () => {
    const plain = await startDaemon(['--data-listen', 'off']);
    const plainClient = new TensormemClient(plain.tcpAddress);
    try {
      const lease = await plainClient.openLease();
      expect(lease.dataPlane).toBeUndefined();
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB] });
      await lease.write(array.array_id, Buffer.alloc(2 * MiB, 1));
      expect(lease.transfers).toEqual({ http: 0, grpc: 1 });
      await lease.close();
    } finally {
      plainClient.close();
      expect(await plain.stop()).toBe(0);
    }
  });
});

describe('a GET sends views of pool memory, not copies', () => {
  // One 256 MiB host pool chunk, so that a freed array's bytes are the first a new array of the same
  // size gets, unless a GET still sending them holds them.
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '512M', '--pool-chunk', '256M', '--data-listen', '127.0.0.1:0']);
    client = new TensormemClient(daemon.tcpAddress);
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('an array freed while its GET is on the socket keeps its bytes until the socket has them; the reader never sees the next array', async () => {
    const lease = await client.openLease();
    const before = await client.memoryInfo();
    const size = 64 * MiB;
    const first = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: 'PLACEMENT_HOST_ONLY' });
    await lease.write(first.array_id, Buffer.alloc(size, 0xaa));

    // A reader that stops reading at once: the server's pieces wait on the socket.
    const url = new URL(dataAddress);
    const received: Buffer[] = [];
    let resume!: () => void;
    const ended = new Promise<{ bytes: number; complete: boolean }>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: Number(url.port), method: 'GET', path: `/v1/arrays/${first.array_id}`, headers: bearer(lease), agent: false }, (res) => {
        expect(res.statusCode).toBe(200);
        res.pause();
        resume = () => res.resume();
        res.on('data', (chunk: Buffer) => received.push(chunk));
        res.on('end', () => resolve({ bytes: received.reduce((n, c) => n + c.byteLength, 0), complete: true }));
        res.on('aborted', () => resolve({ bytes: received.reduce((n, c) => n + c.byteLength, 0), complete: false }));
        res.on('error', () => resolve({ bytes: received.reduce((n, c) => n + c.byteLength, 0), complete: false }));
      });
      req.on('error', reject);
      req.end();
    });
    await expect.poll(() => resume !== undefined).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const logged = daemon.logs.length;
    await lease.free(first.array_id);
    const second = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: 'PLACEMENT_HOST_ONLY' });
    await lease.write(second.array_id, Buffer.alloc(size, 0x55));
    resume();
    const outcome = await ended;
    // The client's own doing, as for ReadArray: at debug, not a warning any client could repeat at will.
    await expect.poll(() => daemon.logs.slice(logged).find((entry) => entry.event === 'data_plane_failed')).toMatchObject({ level: 20, method: 'GET', reason: 'FAILED_PRECONDITION' });
    expect(daemon.logs.slice(logged).filter((entry) => (entry.level as number) >= 40)).toEqual([]);

    // Cut short (the array was freed mid-body), and every byte that did arrive is the first array's.
    expect(outcome.complete).toBe(false);
    expect(outcome.bytes).toBeGreaterThan(0);
    expect(outcome.bytes).toBeLessThan(size);
    const body = Buffer.concat(received);
    expect(body.indexOf(0x55)).toBe(-1);
    expect(body.every((byte) => byte === 0xaa)).toBe(true);

    // Once the connection is gone the first array's bytes are given back: only the second is held.
    await expect.poll(async () => (await client.memoryInfo()).host!.host_only_bytes - before.host!.host_only_bytes, { timeout: 5000 }).toBe(size);
    await lease.free(second.array_id);
    const after = await client.memoryInfo();
    expect(after.host!.host_only_bytes).toBe(before.host!.host_only_bytes);
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
    await lease.close();
  });

  it('a reader that goes away mid-GET leaves nothing held: the array frees and its bytes come back', async () => {
    const lease = await client.openLease();
    const before = await client.memoryInfo();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB] });
    await lease.write(array.array_id, Buffer.alloc(64 * MiB, 7));
    const url = new URL(dataAddress);
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: Number(url.port), method: 'GET', path: `/v1/arrays/${array.array_id}`, headers: bearer(lease), agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
      req.end();
    });
    // The daemon carries on: the same array reads back whole, then frees to nothing.
    const again = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, bearer(lease));
    expect(again.status).toBe(200);
    expect(again.body.byteLength).toBe(64 * MiB);
    expect(again.body.every((byte) => byte === 7)).toBe(true);
    await lease.free(array.array_id);
    await expect.poll(async () => {
      const info = await client.memoryInfo();
      return [info.devices[0].used_bytes - before.devices[0].used_bytes, info.host!.used_bytes - before.host!.used_bytes];
    }, { timeout: 5000 }).toEqual([0, 0]);
    await lease.close();
  });
});

describe('--data-stall-timeout cuts a transfer that stops moving', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0', '--data-stall-timeout', '500ms']);
    client = new TensormemClient(daemon.tcpAddress);
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('a PUT whose body stops arriving is cut with no answer, keeps the bytes it wrote, and the array frees whole', async () => {
    expect(JSON.stringify(await client.config())).toContain('data-stall-timeout');
    const lease = await client.openLease();
    const before = await client.memoryInfo();
    const size = 4 * MiB;
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], zero: true });
    const url = new URL(dataAddress);
    const sent = Buffer.alloc(64 * 1024, 0x5a);
    const started = Date.now();
    const { answer, closedAfterMs } = await new Promise<{ answer: string; closedAfterMs: number }>((resolve) => {
      const socket = createConnection({ host: url.hostname, port: Number(url.port) }, () => {
        socket.write(`PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nContent-Length: ${size}\r\n\r\n`);
        socket.write(sent);
      });
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ answer, closedAfterMs: Date.now() - started }));
    });
    expect(answer).toBe('');
    expect(closedAfterMs).toBeGreaterThanOrEqual(450);
    await expect.poll(() => daemon.logs.some((entry) => entry.event === 'data_plane_stalled' && entry.method === 'PUT')).toBe(true);

    // The connection is gone, not the daemon: the array answers, holds the 64 KiB written and zeros after.
    const back = await http(dataAddress, 'GET', `/v1/arrays/${array.array_id}`, bearer(lease));
    expect(back.status).toBe(200);
    expect(back.body.subarray(0, sent.byteLength).equals(sent)).toBe(true);
    expect(back.body.subarray(sent.byteLength).every((byte) => byte === 0)).toBe(true);
    await lease.free(array.array_id);
    const after = await client.memoryInfo();
    expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
    await lease.close();
  });

  it('logs a burst of stalled requests as one line a 10 s with their count, and cuts the client URL it quotes', async () => {
    // A tenant can stall as many requests as it opens connections: each was a warning quoting its whole
    // URL (up to the 16 KiB head), 12 KB a line here, at will.
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
    const url = new URL(dataAddress);
    const longPath = `/v1/arrays/${array.array_id}?pad=${'a'.repeat(12_000)}`;
    const seen = daemon.logs.length;
    const stalls = 20;
    await Promise.all(
      Array.from({ length: stalls }, () =>
        new Promise<void>((resolve) => {
          const socket = createConnection({ host: url.hostname, port: Number(url.port) }, () =>
            socket.write(`PUT ${longPath} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nContent-Length: ${MiB}\r\n\r\nabc`),
          );
          socket.on('error', () => undefined);
          socket.on('close', () => resolve());
        }),
      ),
    );
    const stalledLines = () => daemon.logs.slice(seen).filter((entry) => entry.event === 'data_plane_stalled');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stalledLines().length).toBeLessThanOrEqual(1);
    // Those held back come in the line at the end of the interval: every stall is counted once.
    await expect.poll(() => stalledLines().reduce((sum, entry) => sum + (entry.stalled as number), 0), { timeout: 12_000, interval: 200 }).toBe(stalls);
    expect(stalledLines().length).toBeLessThanOrEqual(2);
    for (const entry of stalledLines()) expect((entry.url as string).length).toBeLessThan(300);
    await lease.close();
  }, 30_000);

  it('refuses a malformed --data-stall-timeout, naming the flag and the value', async () => {
    const result = await runTensormemd(['--data-stall-timeout', 'soon']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('data-stall-timeout');
    expect(result.stderr).toContain('soon');
  });
});

describe('shutdown with a data plane GET in flight', () => {
  /**
   * A GET whose reader reads nothing, so that the daemon's pieces (views of the array's host block)
   * wait on the socket; resolves once the answer's head has arrived and the daemon has had time to
   * fill the socket. `ended()` then reads the rest (what the daemon sent before it cut the connection)
   * and resolves to the answer's status and whether its body came whole.
   */
  async function stalledGet(dataAddress: string, lease: LeaseSession, arrayId: string): Promise<{ ended(): Promise<{ status: number; complete: boolean }> }> {
    const url = new URL(dataAddress);
    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: Number(url.port), method: 'GET', path: `/v1/arrays/${arrayId}`, headers: bearer(lease), agent: false }, (res) => {
        res.pause();
        res.on('error', () => undefined);
        resolve(res);
      });
      req.on('error', reject);
      req.end();
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    return {
      ended: () =>
        new Promise((resolve) => {
          const outcome = () => resolve({ status: answer.statusCode!, complete: answer.complete });
          if (answer.closed) outcome();
          answer.on('close', outcome);
          answer.resume();
        }),
    };
  }

  /** A daemon with a data plane and `shutdownTimeout`, and a stalledGet of a 64 MiB HOST_ONLY array on it. */
  async function daemonWithStalledGet(shutdownTimeout: string) {
    const daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '256M', '--data-listen', '127.0.0.1:0', '--shutdown-timeout', shutdownTimeout]);
    const client = new TensormemClient(daemon.tcpAddress);
    const dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    const lease = await client.openLease({ clientName: 'shutdown-get' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    const { ended } = await stalledGet(dataAddress, lease, array.array_id);
    return { daemon, client, ended };
  }

  it('SIGTERM cuts it, waits for its lent views to come back, frees every chunk and exits 0', async () => {
    const { daemon, client, ended } = await daemonWithStalledGet('1s');
    try {

      expect(await daemon.stop('SIGTERM')).toBe(0);
      const outcome = await ended();
      expect(outcome.status).toBe(200);
      expect(outcome.complete).toBe(false);
      const stopped = daemon.logs.find((entry) => entry.event === 'stopped') as { drained: boolean; freedBytes: number; liveChunks: { device: number; host: number } };
      expect(stopped).toBeDefined();
      expect(stopped.drained).toBe(false);
      expect(stopped.freedBytes).toBe(64 * MiB);
      expect(stopped.liveChunks.host).toBe(0);
      expect(stopped.liveChunks.device).toBe(0);
      expect(daemon.logs.some((entry) => entry.event === 'data_plane_not_closed')).toBe(false);
      expect(daemon.logs.find((entry) => entry.event === 'drain_incomplete')).toMatchObject({ dataPlaneCut: 1, dataPlaneDrained: false });
    } finally {
      client.close();
      await daemon.stop('SIGKILL');
    }
  });

  it('a second SIGTERM that cuts it is reported: drain_incomplete counts the data plane request cut', async () => {
    // The cut closed the connection, after which the data plane had nothing left in flight and its close()
    // said drained: drain_incomplete read dataPlaneDrained true and "0 gRPC calls cut", nothing of the GET.
    const { daemon, client, ended } = await daemonWithStalledGet('30s');
    try {

      daemon.child.kill('SIGTERM');
      await waitForLog(daemon, 'draining');
      expect(await daemon.stop('SIGTERM')).toBe(0);
      expect((await ended()).complete).toBe(false);
      const line = daemon.logs.find((entry) => entry.event === 'drain_incomplete');
      expect(line, JSON.stringify(daemon.logs.slice(-4))).toMatchObject({ why: 'SIGTERM cut the drain', grpcCallsCut: 0, dataPlaneCut: 1, dataPlaneDrained: false });
      expect(line!.msg).toContain('0 gRPC calls cut with UNAVAILABLE / SHUTTING_DOWN, 1 data plane request cut;');
      expect(daemon.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: false, liveChunks: { device: 0, host: 0 } });
    } finally {
      client.close();
      await daemon.stop('SIGKILL');
    }
  });

  it('SIGTERM lets a GET whose last pieces are still going out finish within --shutdown-timeout', async () => {
    // 16 MiB in four 4 MiB pieces: all lent at once, so the handler has ended the answer while most of
    // it still waits on the socket for a reader that reads nothing (it was cut at SIGTERM as idle).
    const daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '256M', '--data-listen', '127.0.0.1:0', '--chunk-bytes', '4M', '--shutdown-timeout', '10s']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
      const lease = await client.openLease({ clientName: 'shutdown-get-tail' });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
      // A raw socket that reads nothing (node:http's client reads on into memory however paused).
      const url = new URL(dataAddress);
      const socket = createConnection({ host: url.hostname, port: Number(url.port) });
      socket.pause();
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.on('error', () => undefined);
      socket.write(`GET /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\n\r\n`);
      await new Promise((resolve) => setTimeout(resolve, 300));

      daemon.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.resume();
      await closed;
      const answer = Buffer.concat(chunks);
      const headEnd = answer.indexOf('\r\n\r\n');
      expect(answer.subarray(0, headEnd).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*Content-Length: 16777216\r\n/);
      expect(answer.byteLength - headEnd - 4).toBe(16 * MiB);
      expect(await daemon.exited).toBe(0);
      const stopped = daemon.logs.find((entry) => entry.event === 'stopped') as { drained: boolean; liveChunks: { device: number; host: number } };
      expect(stopped.drained).toBe(true);
      expect(stopped.liveChunks).toMatchObject({ device: 0, host: 0 });
    } finally {
      client.close();
      await daemon.stop('SIGKILL');
    }
  });

  /** A daemon in this process with a data plane, its log lines, and the uncaught exceptions seen meanwhile (stop() removes the listener). */
  async function inProcess(shutdownTimeout: string, level: string) {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const config = loadConfig(['--backend', 'host', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--data-listen', '127.0.0.1:0', '--emulated-device', '2G', '--maxbytes', '256M', '--host-maxbytes', '256M', '--shutdown-timeout', shutdownTimeout], {});
    const daemon = await startInProcess(config, log);
    const client = new TensormemClient(daemon.running.addresses[0]);
    // A late give-back used to throw from a socket write callback, outside any promise.
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    return { daemon, client, lines, uncaught, stopWatchingUncaught: () => process.off('uncaughtException', onUncaught) };
  }

  it('in process: Daemon.shutdown() resolves without throwing and leaves no chunk live', async () => {
    const { daemon, client, lines, uncaught, stopWatchingUncaught } = await inProcess('1s', 'info');
    try {
      const lease = await client.openLease({ clientName: 'shutdown-get-in-process' });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
      const { ended } = await stalledGet(daemon.dataPlane!.address, lease, array.array_id);

      await daemon.shutdown('test');
      const stopped = lines.find((entry) => entry.event === 'stopped') as { liveChunks: { device: number; host: number } };
      expect(stopped.liveChunks.host).toBe(0);
      expect(stopped.liveChunks.device).toBe(0);
      expect((await ended()).complete).toBe(false);
      // Whatever the cut socket still had to call back has run by now.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(uncaught).toEqual([]);
    } finally {
      stopWatchingUncaught();
      client.close();
      await daemon.shutdown('test');
    }
  });

  it('in process: views still lent when close() gives up come back later without a throw, and unpin their chunk', async () => {
    const { daemon, client, lines, uncaught, stopWatchingUncaught } = await inProcess('300ms', 'debug');
    try {
      const lease = await client.openLease({ clientName: 'shutdown-get-deadline' });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
      const { ended } = await stalledGet(daemon.dataPlane!.address, lease, array.array_id);
      // The cut does not land (as if the sockets took past the deadline to close): the views stay out.
      const http1 = daemon.dataPlane!.server as unknown as { closeAllConnections(): void; connections: Set<{ socket: { destroy(): void } }> };
      http1.closeAllConnections = () => undefined;

      await daemon.shutdown('test');
      expect(lines.some((entry) => entry.event === 'data_plane_not_closed')).toBe(true);
      expect((lines.find((entry) => entry.event === 'stopped') as { drained: boolean }).drained).toBe(false);
      // Now the sockets go, after the pools: their views come back to no pool, and nothing throws.
      for (const connection of http1.connections) connection.socket.destroy();
      expect((await ended()).complete).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(uncaught).toEqual([]);
      const backend = (daemon.context.memory as unknown as { backend: { liveChunks(): { device: number; host: number } } }).backend;
      expect(backend.liveChunks()).toMatchObject({ device: 0, host: 0 });
    } finally {
      stopWatchingUncaught();
      client.close();
    }
  });
});
