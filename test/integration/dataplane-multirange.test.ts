/**
 * A data plane GET of several byte ranges on a real daemon process: `206 multipart/byteranges` (RFC 9110
 * §14.6), checked byte by byte against what was written, with node:http, a raw socket (the Content-Length
 * frames the next answer on the same connection) and curl; which ranges are dropped, refused or served
 * alone; and a reader that goes away mid-body leaves no view of pool memory lent.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createConnection } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { transferBytes } from '../helpers/transfer-bytes';

const MiB = 1024 * 1024;
/** Small pieces, so that a range is lent and sent as several views, with the socket's back-pressure between them. */
const CHUNK_BYTES = 64 * 1024;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(base: string, path: string, headers: Record<string, string>, method = 'GET'): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: Number(url.port), method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const bearer = (lease: LeaseSession) => ({ Authorization: `Bearer ${lease.token}` });

/** [first, last] inclusive, as a Range header writes them. */
type Inclusive = [number, number];

/** The multipart/byteranges body RFC 9110 §14.6 and RFC 2046 §5.1.1 spell out for `ranges` of `data`. */
function expectedMultipart(boundary: string, data: Buffer, ranges: Inclusive[]): Buffer {
  const pieces: Buffer[] = [];
  for (const [index, [first, last]] of ranges.entries()) {
    const head = `${index === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${first}-${last}/${data.byteLength}\r\n\r\n`;
    pieces.push(Buffer.from(head, 'latin1'), data.subarray(first, last + 1));
  }
  pieces.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'));
  return Buffer.concat(pieces);
}

/** The boundary of a multipart/byteranges Content-Type; fails on any other type. */
function boundaryOf(contentType: unknown): string {
  const match = /^multipart\/byteranges; boundary=([0-9a-f]+)$/.exec(String(contentType));
  expect(match, String(contentType)).not.toBeNull();
  return match![1];
}

describe('a GET of several byte ranges over a real daemon', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;
  let metricsAddress: string;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '256M', '--pool-chunk', '128M', '--chunk-bytes', String(CHUNK_BYTES), '--data-listen', '127.0.0.1:0']);
    client = new TensormemClient(daemon.tcpAddress);
    const listening = daemon.logs.find((entry) => entry.event === 'listening')!;
    dataAddress = listening.dataAddress as string;
    metricsAddress = listening.metricsAddress as string;
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  /** An array of `size` random bytes, written over the data plane. */
  async function filled(lease: LeaseSession, size: number): Promise<{ arrayId: string; data: Buffer }> {
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size] })).array_id;
    const data = randomBytes(size);
    await lease.write(arrayId, data);
    return { arrayId, data };
  }

  it('answers 206 multipart/byteranges whose every byte is what was written, in the order listed, each answer with a boundary of its own', async () => {
    const lease = await client.openLease();
    const size = MiB + 3;
    const { arrayId, data } = await filled(lease, size);
    // Several pieces per range (CHUNK_BYTES), a suffix, a range clipped at the end, one listed before an earlier one, two overlapping.
    const header = `bytes=0-9,20-29,-5,${size - 100}-${size + 1000},1000-200999,100-199,150-160`;
    const ranges: Inclusive[] = [[0, 9], [20, 29], [size - 5, size - 1], [size - 100, size - 1], [1000, 200999], [100, 199], [150, 160]];
    const readBefore = await transferBytes(`http://${metricsAddress}`, 'data_plane', 'read');
    const answer = await get(dataAddress, `/v1/arrays/${arrayId}`, { ...bearer(lease), Range: header });
    expect(answer.status).toBe(206);
    const boundary = boundaryOf(answer.headers['content-type']);
    expect(boundary.length).toBeGreaterThanOrEqual(24);
    expect(answer.headers['content-range']).toBeUndefined();
    expect(answer.headers['accept-ranges']).toBe('bytes');
    expect(answer.headers['x-tensormem-data-type']).toBe('DATA_TYPE_UINT8');
    const expected = expectedMultipart(boundary, data, ranges);
    expect(answer.headers['content-length']).toBe(String(expected.byteLength));
    expect(answer.body.byteLength).toBe(expected.byteLength);
    expect(answer.body.equals(expected)).toBe(true);
    // The transfer counters count the array's bytes sent, not the part heads.
    expect(await transferBytes(`http://${metricsAddress}`, 'data_plane', 'read')).toBe(readBefore + ranges.reduce((total, [first, last]) => total + last - first + 1, 0));

    const again = await get(dataAddress, `/v1/arrays/${arrayId}`, { ...bearer(lease), Range: 'bytes=0-9,20-29' });
    const otherBoundary = boundaryOf(again.headers['content-type']);
    expect(otherBoundary).not.toBe(boundary);
    expect(again.body.equals(expectedMultipart(otherBoundary, data, [[0, 9], [20, 29]]))).toBe(true);
    await lease.close();
  });

  it('frames the multipart body exactly by its Content-Length: the next answer on the same connection follows it intact', async () => {
    const lease = await client.openLease();
    const { arrayId, data } = await filled(lease, 4096);
    const url = new URL(dataAddress);
    const auth = `Authorization: Bearer ${lease.token}\r\n`;
    const request =
      `GET /v1/arrays/${arrayId} HTTP/1.1\r\nHost: x\r\n${auth}Range: bytes=4000-,0-0,  10-19\r\n\r\n` +
      `GET /v1/arrays/${arrayId} HTTP/1.1\r\nHost: x\r\n${auth}Range: bytes=7-8\r\nConnection: close\r\n\r\n`;
    const received = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = createConnection({ host: url.hostname, port: Number(url.port) }, () => socket.write(request));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    const firstHeadEnd = received.indexOf('\r\n\r\n') + 4;
    const firstHead = received.subarray(0, firstHeadEnd).toString('latin1');
    expect(firstHead).toMatch(/^HTTP\/1\.1 206 Partial Content\r\n/);
    const boundary = boundaryOf(/\r\nContent-Type: ([^\r]*)\r\n/.exec(firstHead)![1]);
    const expected = expectedMultipart(boundary, data, [[4000, 4095], [0, 0], [10, 19]]);
    expect(Number(/\r\nContent-Length: (\d+)\r\n/.exec(firstHead)![1])).toBe(expected.byteLength);
    expect(received.subarray(firstHeadEnd, firstHeadEnd + expected.byteLength).equals(expected)).toBe(true);
    const second = received.subarray(firstHeadEnd + expected.byteLength);
    const secondHeadEnd = second.indexOf('\r\n\r\n') + 4;
    const secondHead = second.subarray(0, secondHeadEnd).toString('latin1');
    expect(secondHead).toMatch(/^HTTP\/1\.1 206 Partial Content\r\n/);
    expect(secondHead).toContain('\r\nContent-Range: bytes 7-8/4096\r\n');
    expect(secondHead).toContain('\r\nContent-Type: application/octet-stream\r\n');
    expect(second.subarray(secondHeadEnd).equals(data.subarray(7, 9))).toBe(true);
    await lease.close();
  });

  it('drops ranges that select no byte: one left is a plain 206, none left is 416 with Content-Range bytes */SIZE', async () => {
    const lease = await client.openLease();
    const { arrayId, data } = await filled(lease, 1000);
    const path = `/v1/arrays/${arrayId}`;
    const single = await get(dataAddress, path, { ...bearer(lease), Range: 'bytes=5000-,10-19,-0,1000-1001' });
    expect(single.status).toBe(206);
    expect(single.headers['content-type']).toBe('application/octet-stream');
    expect(single.headers['content-range']).toBe('bytes 10-19/1000');
    expect(single.headers['content-length']).toBe('10');
    expect(single.body.equals(data.subarray(10, 20))).toBe(true);

    const none = await get(dataAddress, path, { ...bearer(lease), Range: 'bytes=1000-,5000-6000,-0' });
    expect(none.status).toBe(416);
    expect(none.headers['content-range']).toBe('bytes */1000');
    expect(JSON.parse(none.body.toString('utf8'))).toMatchObject({ status: 'OUT_OF_RANGE', metadata: { field: 'Range' }, message: expect.stringContaining('none of the 3 ranges') });
    await lease.close();
  });

  it('refuses more than 64 ranges, or a byte in more than two of them, with 400 naming Range and the numbers', async () => {
    const lease = await client.openLease();
    const { arrayId, data } = await filled(lease, 1000);
    const path = `/v1/arrays/${arrayId}`;
    const many = Array.from({ length: 65 }, (_, index) => `${index * 10}-${index * 10 + 1}`);
    const tooMany = await get(dataAddress, path, { ...bearer(lease), Range: `bytes=${many.join(',')}` });
    expect(tooMany.status).toBe(400);
    expect(JSON.parse(tooMany.body.toString('utf8'))).toMatchObject({ status: 'INVALID_ARGUMENT', metadata: { field: 'Range', ranges: '65', max_ranges: '64' }, message: expect.stringMatching(/65 ranges.*64/) });

    const sixtyFour = await get(dataAddress, path, { ...bearer(lease), Range: `bytes=${many.slice(0, 64).join(',')}` });
    expect(sixtyFour.status).toBe(206);
    const ranges = many.slice(0, 64).map((range) => range.split('-').map(Number) as Inclusive);
    expect(sixtyFour.body.equals(expectedMultipart(boundaryOf(sixtyFour.headers['content-type']), data, ranges))).toBe(true);

    const three = await get(dataAddress, path, { ...bearer(lease), Range: 'bytes=0-99,50-59,-990' });
    expect(three.status).toBe(400);
    expect(JSON.parse(three.body.toString('utf8'))).toMatchObject({ metadata: { field: 'Range', overlapping_ranges: '3', max_overlapping_ranges: '2' }, message: expect.stringContaining('byte 50 is in 3 of the ranges') });
    await lease.close();
  });

  it('HEAD and If-Range ignore a Range of several ranges as they ignore one: 200 with the whole array', async () => {
    const lease = await client.openLease();
    const { arrayId, data } = await filled(lease, 1000);
    const path = `/v1/arrays/${arrayId}`;
    const head = await get(dataAddress, path, { ...bearer(lease), Range: 'bytes=0-9,20-29' }, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('1000');
    expect(head.headers['content-type']).toBe('application/octet-stream');
    const ifRange = await get(dataAddress, path, { ...bearer(lease), Range: 'bytes=0-9,20-29', 'If-Range': '"v1"' });
    expect(ifRange.status).toBe(200);
    expect(ifRange.body.equals(data)).toBe(true);
    await lease.close();
  });

  it('works with curl -r 0-9,20-29', async (context) => {
    const curl = await promisify(execFile)('curl', ['--version']).catch(() => undefined);
    if (!curl) {
      context.skip('curl is not installed');
      return;
    }
    const lease = await client.openLease();
    const { arrayId, data } = await filled(lease, 100);
    const result = await promisify(execFile)('curl', ['-sS', '-H', `Authorization: Bearer ${lease.token}`, '-r', '0-9,20-29', '-w', '%{http_code} %{content_type}', '-o', '-', `${dataAddress}/v1/arrays/${arrayId}`], { encoding: 'buffer' });
    const written = result.stdout;
    const trailer = /(\d{3}) (multipart\/byteranges; boundary=[0-9a-f]+)$/.exec(written.toString('latin1'))!;
    expect(trailer[1]).toBe('206');
    const body = written.subarray(0, written.byteLength - trailer[0].length);
    expect(body.equals(expectedMultipart(boundaryOf(trailer[2]), data, [[0, 9], [20, 29]]))).toBe(true);
    await lease.close();
  });

  it('a reader that goes away mid-body of a multipart GET leaves no view lent: the array frees and its memory comes back', async () => {
    const lease = await client.openLease();
    const before = await client.memoryInfo();
    const size = 64 * MiB;
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size] })).array_id;
    await lease.write(arrayId, Buffer.alloc(size, 7));
    const url = new URL(dataAddress);
    // Cut in the second part: its first bytes have come, then the reader stops reading until the
    // daemon's pieces wait on the socket (views lent, not yet taken), and goes away.
    const received = await new Promise<number>((resolve, reject) => {
      let bytes = 0;
      let cut = false;
      const req = httpRequest({ host: url.hostname, port: Number(url.port), method: 'GET', path: `/v1/arrays/${arrayId}`, headers: { ...bearer(lease), Range: `bytes=0-${MiB - 1},${2 * MiB}-` }, agent: false }, (res) => {
        if (res.statusCode !== 206) reject(new Error(`expected 206, got ${res.statusCode}`));
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.byteLength;
          if (bytes <= 2 * MiB || cut) return;
          cut = true;
          res.pause();
          setTimeout(() => {
            req.destroy();
            resolve(bytes);
          }, 300);
        });
      });
      req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
      req.end();
    });
    expect(received).toBeLessThan(size);
    // The daemon serves on, then the array frees to nothing: no view of it is still lent.
    const again = await get(dataAddress, `/v1/arrays/${arrayId}`, { ...bearer(lease), Range: 'bytes=0-0,-1' });
    expect(again.status).toBe(206);
    await lease.free(arrayId);
    await expect.poll(async () => {
      const info = await client.memoryInfo();
      return [info.devices[0].used_bytes - before.devices[0].used_bytes, info.host!.used_bytes - before.host!.used_bytes];
    }, { timeout: 5000 }).toEqual([0, 0]);
    await lease.close();
  });
});
