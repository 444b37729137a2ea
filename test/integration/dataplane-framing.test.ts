/**
 * The data plane's request line and head framing against RFC 9112 and the README, over raw sockets to a
 * real daemon process: each refusal comes at once with its exact status (never a silent cut at the 5 s
 * head deadline), and leaves the pools and the connection count as they were. Then chunked request
 * bodies (RFC 9112 §7.1): curl's upload from a pipe, and the framing's edges over raw sockets.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createConnection } from 'node:net';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cHex } from '../../src/crc32c';
import type { LeaseSession } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';

interface RawAnswer {
  text: string;
  /** From the connect to the server's close. */
  ms: number;
}

/**
 * Writes `request` on a new connection to the data plane at `base` (a list: each part in a write of its
 * own, 50 ms apart) and collects every byte until the server closes it.
 */
function rawHttp(base: string, request: string | Buffer | Array<string | Buffer>): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = createConnection({ host: url.hostname, port: Number(url.port) }, async () => {
      socket.setNoDelay(true);
      for (const [index, part] of (Array.isArray(request) ? request : [request]).entries()) {
        if (index > 0) await new Promise((resolve) => setTimeout(resolve, 50));
        if (!socket.destroyed) socket.write(part);
      }
    });
    let text = '';
    const timer = setTimeout(() => reject(new Error(`the server did not close the connection in 10 s; so far:\n${text}`)), 10_000);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ms: Date.now() - started });
    });
  });
}

const statusLine = (answer: RawAnswer) => answer.text.split('\r\n')[0];
const jsonBody = (answer: RawAnswer) => JSON.parse(answer.text.slice(answer.text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;

/** What the daemon holds: pool bytes and blocks in use, open data plane connections (from /metrics). */
async function holdings(statusBase: string): Promise<string[]> {
  const text = await (await fetch(`${statusBase}/metrics`)).text();
  return text.split('\n').filter((line) => /^tensormem_(pool_used_bytes|pool_live_blocks|data_plane_connections) /.test(line.replace(/\{[^}]*\}/, '')));
}

/**
 * holdings() once no data plane connection is open (polled for up to 2 s: the daemon sees the close of
 * a raw request's connection after the client does), else the last seen: a steady "before" reading.
 */
async function settledHoldings(statusBase: string): Promise<string[]> {
  let seen = await holdings(statusBase);
  for (let i = 0; i < 40 && !seen.includes('tensormem_data_plane_connections 0'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    seen = await holdings(statusBase);
  }
  return seen;
}

/** holdings() once they are `expected` again (polled for up to 2 s: the daemon sees a connection's close after the client does), else the last seen. */
async function holdingsBack(statusBase: string, expected: string[]): Promise<string[]> {
  let seen = await holdings(statusBase);
  for (let i = 0; i < 40 && JSON.stringify(seen) !== JSON.stringify(expected); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    seen = await holdings(statusBase);
  }
  return seen;
}

describe('data plane request framing over a real daemon', () => {
  const t = daemonForTests(['--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '8M', '--data-listen', '127.0.0.1:0']);
  const dataAddress = () => t.daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;

  it('a head whose lines end in a bare LF is 400 at once (README: a LF not in a CRLF is malformed), not cut with no answer at the 5 s head deadline', async () => {
    const lease = await t.client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64] });
    const before = await settledHoldings(t.statusBase);
    // As `printf 'GET ... HTTP/1.1\nHost: x\n\n' | nc` sends it: no CRLF CRLF ever comes.
    const allBare = await rawHttp(dataAddress(), `GET /v1/arrays/${array.array_id} HTTP/1.1\nHost: x\nAuthorization: Bearer ${lease.token}\n\n`);
    expect(statusLine(allBare)).toBe('HTTP/1.1 400 Bad Request');
    expect(jsonBody(allBare)).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', metadata: { field: 'request line' } });
    expect(allBare.ms).toBeLessThan(2_000);
    // One bare LF after a good request line: the header it ends is named.
    const oneBare = await rawHttp(dataAddress(), `GET /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\n\r\n`);
    expect(statusLine(oneBare)).toBe('HTTP/1.1 400 Bad Request');
    expect(jsonBody(oneBare)).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', metadata: { field: 'Host' } });
    expect(oneBare.ms).toBeLessThan(2_000);
    // A bare CR followed by more bytes is malformed as well, without waiting for a CRLF CRLF.
    const bareCr = await rawHttp(dataAddress(), `GET /v1/arrays/${array.array_id} HTTP/1.1\rHost: x\r\r`);
    expect(statusLine(bareCr)).toBe('HTTP/1.1 400 Bad Request');
    expect(bareCr.ms).toBeLessThan(2_000);
    // Split over several reads: a CR that ends one read is judged by the byte that starts the next.
    const split = await rawHttp(dataAddress(), [`GET /v1/arrays/${array.array_id} HTTP/1.1\r`, '\nHost: x\r', 'X-Next: 1']);
    expect(statusLine(split)).toBe('HTTP/1.1 400 Bad Request');
    expect(jsonBody(split)).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', metadata: { field: 'Host' } });
    expect(split.ms).toBeLessThan(2_000);
    const splitGood = await rawHttp(dataAddress(), [`HEAD /v1/arrays/${array.array_id} HTTP/1.1\r`, `\nHost: x\r`, `\nAuthorization: Bearer ${lease.token}\r\nConnection: close\r`, '\n\r', '\n']);
    expect(statusLine(splitGood)).toBe('HTTP/1.1 200 OK');
    // Bare line breaks before a request are still allowed (RFC 9112 §2.2).
    const leading = await rawHttp(dataAddress(), `\n\r\n\nHEAD /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nConnection: close\r\n\r\n`);
    expect(statusLine(leading)).toBe('HTTP/1.1 200 OK');
    expect(await holdingsBack(t.statusBase, before)).toEqual(before);
    await lease.close();
  });

  it('a request line over the 16 KiB head limit is 414 URI Too Long (RFC 9112 §3: MUST), a header section over it 431', async () => {
    const lease = await t.client.openLease();
    const before = await settledHoldings(t.statusBase);
    const longTarget = `/v1/arrays/${'a'.repeat(20_000)}`;
    const whole = await rawHttp(dataAddress(), `GET ${longTarget} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\n\r\n`);
    expect(statusLine(whole)).toBe('HTTP/1.1 414 URI Too Long');
    expect(jsonBody(whole)).toMatchObject({ code: 414, status: 'RESOURCE_EXHAUSTED', reason: 'REQUEST_HEAD_TOO_LARGE', metadata: { field: 'request line' } });
    // Refused once it passes the limit, its end not awaited.
    const endless = await rawHttp(dataAddress(), `GET ${longTarget}`);
    expect(statusLine(endless)).toBe('HTTP/1.1 414 URI Too Long');
    expect(endless.ms).toBeLessThan(2_000);
    // A target just under the limit is no 414: it is read, and its id is unknown.
    const underLimit = await rawHttp(dataAddress(), `GET /v1/arrays/${'a'.repeat(15_000)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nConnection: close\r\n\r\n`);
    expect(statusLine(underLimit)).toBe('HTTP/1.1 404 Not Found');
    const headers = await rawHttp(dataAddress(), `GET /v1/arrays/x HTTP/1.1\r\nHost: x\r\n${'X-Pad: aaaaaaaa\r\n'.repeat(1_500)}\r\n`);
    expect(statusLine(headers)).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(jsonBody(headers)).toMatchObject({ code: 431, status: 'RESOURCE_EXHAUSTED', reason: 'REQUEST_HEAD_TOO_LARGE' });
    expect(await holdingsBack(t.statusBase, before)).toEqual(before);
    await lease.close();
  });

  it('reads a request line by RFC 9112 §3: a target byte that is not visible ASCII is 400; HTTP/1.2 is served as HTTP/1.1 (RFC 9110 §2.5)', async () => {
    const lease = await t.client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64] });
    const headers = `Host: x\r\nAuthorization: Bearer ${lease.token}\r\nConnection: close\r\n\r\n`;
    // A higher minor version of HTTP/1 is served as HTTP/1.1: keep-alive by default, 100-continue honoured.
    const newer = await rawHttp(dataAddress(), [
      `PUT /v1/arrays/${array.array_id} HTTP/1.2\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n`,
      'abcd',
      `GET /v1/arrays/${array.array_id} HTTP/1.2\r\n${headers.replace('Connection: close\r\n', 'Connection: close\r\nRange: bytes=0-3\r\n')}`,
    ]);
    expect(newer.text.match(/HTTP\/1\.1 \d{3} [^\r]*/g)).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK', 'HTTP/1.1 206 Partial Content']);
    expect(newer.text.endsWith('abcd')).toBe(true);
    // Refusals from here on leave the pools as the GET above left them (with its host mirror).
    const before = await settledHoldings(t.statusBase);
    // A raw é (0xE9 in Latin-1), a control byte, DEL: none is a URI character (they are sent percent-encoded).
    for (const bad of ['\xe9', '\x01', '\x7f']) {
      const answer = await rawHttp(dataAddress(), Buffer.from(`GET /v1/arrays/${array.array_id}${bad} HTTP/1.1\r\n${headers}`, 'latin1'));
      expect(statusLine(answer), JSON.stringify(bad)).toBe('HTTP/1.1 400 Bad Request');
      expect(jsonBody(answer)).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', metadata: { field: 'request line' } });
    }
    // Percent-encoded, the same bytes are a target like any other: an id no array has.
    const encoded = await rawHttp(dataAddress(), `GET /v1/arrays/${array.array_id}%C3%A9 HTTP/1.1\r\n${headers}`);
    expect(statusLine(encoded)).toBe('HTTP/1.1 404 Not Found');
    expect(await holdingsBack(t.statusBase, before)).toEqual(before);
    await lease.close();
  });

  it('an HTTP/1.1 request with no Host, two Host lines or an invalid Host is 400 naming Host (RFC 9112 §3.2: MUST), and a PUT so refused writes nothing', async () => {
    const lease = await t.client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4] });
    expect(await lease.write(array.array_id, Buffer.from('good'))).toBe(4);
    // Read once first: the read makes the array's host mirror, which is not the refusals' doing.
    expect((await lease.readGrpc(array.array_id)).toString('latin1')).toBe('good');
    const before = await settledHoldings(t.statusBase);
    const put = (hostLines: string, version = '1.1') =>
      rawHttp(dataAddress(), `PUT /v1/arrays/${array.array_id} HTTP/${version}\r\n${hostLines}Authorization: Bearer ${lease.token}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nBADD`);
    for (const hostLines of ['', 'Host: a\r\nHost: b\r\n', 'Host: x\r\nhost: x\r\n', 'Host: a b\r\n', 'Host: x/y\r\n', 'Host: x:80x\r\n']) {
      const answer = await put(hostLines);
      expect(statusLine(answer), JSON.stringify(hostLines)).toBe('HTTP/1.1 400 Bad Request');
      expect(jsonBody(answer)).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', metadata: { field: 'Host' } });
    }
    expect((await lease.readGrpc(array.array_id)).toString('latin1')).toBe('good');
    expect(await holdingsBack(t.statusBase, before)).toEqual(before);
    // An HTTP/1.0 request needs none; an empty Host (a target with no authority), a name, an address and an IPv6 literal, each with or without a port, are hosts.
    expect(statusLine(await put('', '1.0'))).toBe('HTTP/1.1 200 OK');
    for (const host of ['', 'localhost', 'tensormem.example:7071', '127.0.0.1:7071', '[::1]:7071', '[::1]']) {
      expect(statusLine(await put(`Host: ${host}\r\n`)), host).toBe('HTTP/1.1 200 OK');
    }
    await lease.close();
  });
});

/** Body `data` in chunked framing (RFC 9112 §7.1), in chunks of `chunkBytes`, then the last chunk and no trailers. */
/** `data` in chunks of `chunkBytes`, then the last chunk and `trailers` (trailer lines, each ending in CRLF). */
function chunked(data: Buffer | string, chunkBytes: number, trailers = ''): Buffer {
  const bytes = Buffer.from(data);
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.byteLength; at += chunkBytes) {
    const piece = bytes.subarray(at, at + chunkBytes);
    parts.push(Buffer.from(`${piece.byteLength.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`0\r\n${trailers}\r\n`));
  return Buffer.concat(parts);
}

/** The answers in `text`, split by their Content-Length. */
function answersOf(text: string): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const answers: Array<{ status: number; headers: Record<string, string>; body: string }> = [];
  for (let at = 0; at < text.length; ) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) throw new Error(`not an answer head at byte ${at}: ${JSON.stringify(text.slice(at, at + 200))}`);
    const [line, ...lines] = text.slice(at, headEnd).split('\r\n');
    const headers: Record<string, string> = {};
    for (const header of lines) headers[header.slice(0, header.indexOf(':')).toLowerCase()] = header.slice(header.indexOf(':') + 1).trim();
    const length = Number(headers['content-length'] ?? 0);
    answers.push({ status: Number(line.split(' ')[1]), headers, body: text.slice(headEnd + 4, headEnd + 4 + length) });
    at = headEnd + 4 + length;
  }
  return answers;
}

describe('chunked PUT bodies (Transfer-Encoding: chunked) over a real daemon', () => {
  const t = daemonForTests(['--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '8M', '--data-listen', '127.0.0.1:0']);
  const dataAddress = () => t.daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
  /**
   * Runs `test` with a new lease, then closes it and checks that every byte it held came back to the
   * pools, whatever was refused mid-body (and no data plane connection is left open).
   */
  const withLease = async (test: (lease: LeaseSession) => Promise<void>) => {
    const before = await settledHoldings(t.statusBase);
    const lease = await t.client.openLease();
    await test(lease);
    await lease.close();
    expect(await holdingsBack(t.statusBase, before)).toEqual(before);
  };
  const putHead = (arrayId: string, token: string, extra = '') => `PUT /v1/arrays/${arrayId} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n${extra}`;

  it('curl -T - from a pipe (a chunked upload) writes the whole body; a short one from offset 0 writes what came; a long one is refused', async (context) => {
    const curlVersion = await new Promise<boolean>((resolve) => execFile('curl', ['--version'], (error) => resolve(!error)));
    if (!curlVersion) {
      context.skip('curl is not installed (apt-get install curl)');
      return;
    }
    await withLease(async (lease) => {
      const size = 3 * 1024 * 1024;
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], zero: true });
      const neighbour = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], zero: true });
      const url = `${dataAddress()}/v1/arrays/${array.array_id}`;
      /** `producer | curl -T - …`: curl reads the body from its stdin, a pipe, so it cannot know the length. */
      const curlFromPipe = (data: Buffer, headers: string[] = []) =>
        new Promise<{ code: string; body: string; verbose: string }>((resolve, reject) => {
          const args = ['-sS', '-v', '-T', '-', '-H', `Authorization: Bearer ${lease.token}`, ...headers.flatMap((header) => ['-H', header]), '-w', '\n%{http_code}', url];
          const child = spawn('curl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
          child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
          child.on('error', reject);
          child.on('close', () => {
            const cut = out.lastIndexOf('\n');
            resolve({ body: out.slice(0, cut), code: out.slice(cut + 1), verbose: err });
          });
          // In pieces, as a producer writes them.
          child.stdin.on('error', () => undefined);
          for (let at = 0; at < data.byteLength; at += 100_000) child.stdin.write(data.subarray(at, at + 100_000));
          child.stdin.end();
        });
      const data = randomBytes(size);
      const whole = await curlFromPipe(data, [`X-Tensormem-Crc32c: ${crc32cHex(crc32c(data))}`]);
      expect(whole.verbose).toMatch(/Transfer-Encoding: chunked/i);
      expect(whole.code, whole.body).toBe('200');
      expect(JSON.parse(whole.body)).toEqual({ array_id: array.array_id, offset: 0, bytes_written: size });
      expect((await lease.readGrpc(array.array_id)).equals(data)).toBe(true);
      // Shorter than the array with no Content-Range: written from offset 0, as a Content-Length PUT of that length is; bytes_written says so.
      const head = randomBytes(1000);
      const short = await curlFromPipe(head);
      expect(short.code, short.body).toBe('200');
      expect(JSON.parse(short.body)).toEqual({ array_id: array.array_id, offset: 0, bytes_written: 1000 });
      expect((await lease.readGrpc(array.array_id)).equals(Buffer.concat([head, data.subarray(1000)]))).toBe(true);
      // Longer than the array: refused at its first byte past the end, naming both numbers; nothing past the end is written.
      const long = await curlFromPipe(Buffer.alloc(size + 1, 7));
      expect(long.code, long.body).toBe('400');
      const refusal = JSON.parse(long.body) as { status: string; message: string; metadata: Record<string, string> };
      expect(refusal.status).toBe('INVALID_ARGUMENT');
      expect(refusal.metadata.field).toBe('body');
      expect(refusal.message).toContain(String(size));
      const soFar = /(\d+) bytes so far/.exec(refusal.message);
      expect(Number(soFar?.[1]), refusal.message).toBeGreaterThan(size);
      expect((await lease.readGrpc(neighbour.array_id)).equals(Buffer.alloc(4096))).toBe(true);
    });
  });

  it('decodes chunk-size lines split over reads, chunk extensions, trailers and a zero-length body, keeps the connection for the next request', async () => {
    await withLease(async (lease) => {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [32], zero: true });
      const get = `GET /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nConnection: close\r\n\r\n`;
      // Each part a write of its own, 50 ms apart: a size line cut after its first digit, after its CR, an extension cut, the data's CRLF cut.
      const split = await rawHttp(dataAddress(), [
        `${putHead(array.array_id, lease.token)}\r\n1`,
        '0\r',
        '\nabcdefghijklmnop\r',
        '\n4;name="quoted;value";other',
        '=x\r\nqrst\r\n0\r\nX-Trailer: dropped\r\nX-Other: too\r\n\r',
        `\n${get}`,
      ]);
      const [put, back] = answersOf(split.text);
      expect(put.status, split.text).toBe(200);
      expect(JSON.parse(put.body)).toEqual({ array_id: array.array_id, offset: 0, bytes_written: 20 });
      expect(put.headers.connection).toBe('keep-alive');
      expect(back.status).toBe(200);
      expect(back.body).toBe(`abcdefghijklmnopqrst${'\0'.repeat(12)}`);
      // A zero-length body ("0" then the empty trailer section) writes nothing, and the next pipelined request on the socket is read right.
      const empty = await rawHttp(dataAddress(), `${putHead(array.array_id, lease.token)}\r\n0\r\n\r\n${get}`);
      const [emptyPut, emptyBack] = answersOf(empty.text);
      expect(JSON.parse(emptyPut.body)).toEqual({ array_id: array.array_id, offset: 0, bytes_written: 0 });
      expect(emptyBack.body).toBe(`abcdefghijklmnopqrst${'\0'.repeat(12)}`);
      // Content-Length beside it is refused (RFC 9112 §6.3: a server MAY; a front proxy framing by the length would read another request boundary), writing nothing.
      const both = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, 'Content-Range: bytes 28-31/32\r\nContent-Length: 2\r\n')}\r\n`), chunked('WXYZ', 3), Buffer.from(get)]));
      expect(answersOf(both.text).map((answer) => answer.status)).toEqual([400]);
      expect(jsonBody(both)).toMatchObject({ reason: 'MALFORMED_REQUEST', metadata: { field: 'Content-Length' } });
      // Content-Range places it; its length must be what arrives.
      const ranged = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, 'Content-Range: bytes 28-31/32\r\n')}\r\n`), chunked('WXYZ', 3), Buffer.from(get)]));
      const rangedAnswers = answersOf(ranged.text);
      expect(rangedAnswers).toHaveLength(2);
      expect(JSON.parse(rangedAnswers[0].body)).toEqual({ array_id: array.array_id, offset: 28, bytes_written: 4 });
      expect(rangedAnswers[1].body).toBe(`abcdefghijklmnopqrst${'\0'.repeat(8)}WXYZ`);
    });
  });

  it('checks X-Tensormem-Crc32c over the whole chunked body, and honours Expect: 100-continue', async () => {
    await withLease(async (lease) => {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000], zero: true });
      const data = randomBytes(1000);
      const good = await rawHttp(dataAddress(), [`${putHead(array.array_id, lease.token, `X-Tensormem-Crc32c: ${crc32cHex(crc32c(data))}\r\nExpect: 100-continue\r\nConnection: close\r\n`)}\r\n`, chunked(data, 77)]);
      expect(good.text.match(/HTTP\/1\.1 \d{3} [^\r]*/g)).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
      expect(good.text).toContain(`X-Tensormem-Crc32c: ${crc32cHex(crc32c(data))}`);
      const bad = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, `X-Tensormem-Crc32c: ${crc32cHex((crc32c(data) ^ 1) >>> 0)}\r\nConnection: close\r\n`)}\r\n`), chunked(data, 300)]));
      expect(statusLine(bad)).toBe('HTTP/1.1 400 Bad Request');
      expect(jsonBody(bad)).toMatchObject({ reason: 'CHECKSUM_MISMATCH', metadata: { received_crc32c: crc32cHex(crc32c(data)), bytes: '1000' } });
    });
  });

  /** Runs `test` with a new lease (withLease), a zeroed array of `size` bytes in it, random data of that size, and the data's CRC-32C and a wrong one as 8 hex digits. */
  const withChecksummedData = (size: number, test: (lease: LeaseSession, array: { array_id: string }, data: Buffer, right: string, wrong: string) => Promise<void>) =>
    withLease(async (lease) => {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], zero: true });
      const data = randomBytes(size);
      await test(lease, array, data, crc32cHex(crc32c(data)), crc32cHex((crc32c(data) ^ 1) >>> 0));
    });

  it('checks X-Tensormem-Crc32c sent as a trailer the head announces as the header is: a match is 200 and echoed, a mismatch the same 400 CHECKSUM_MISMATCH; an unannounced one is 400', async () => {
    await withChecksummedData(1000, async (lease, array, data, right, wrong) => {
      const get = `GET /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nConnection: close\r\n\r\n`;
      const announce = 'Trailer: X-Tensormem-Crc32c\r\n';
      // A match, the trailer split over reads: 200 with the CRC echoed, and the connection read on.
      const framed = chunked(data, 77, `X-Other: dropped\r\nx-tensormem-crc32c: ${right}\r\n`).toString('latin1');
      const cut = framed.length - 12;
      const good = await rawHttp(dataAddress(), [Buffer.from(`${putHead(array.array_id, lease.token, announce)}\r\n${framed.slice(0, cut)}`, 'latin1'), Buffer.from(`${framed.slice(cut)}${get}`, 'latin1')]);
      const [goodPut, goodBack] = answersOf(good.text);
      expect(goodPut.status, good.text).toBe(200);
      expect(JSON.parse(goodPut.body)).toEqual({ array_id: array.array_id, offset: 0, bytes_written: 1000 });
      expect(goodPut.headers['x-tensormem-crc32c']).toBe(right);
      expect(goodPut.headers.connection).toBe('keep-alive');
      expect(Buffer.from(goodBack.body, 'latin1').equals(data)).toBe(true);
      // Announced in a list of two Trailer lines, in base64 (as the header may be): the same.
      const base64 = Buffer.alloc(4);
      base64.writeUInt32BE(crc32c(data));
      const announced = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, 'Trailer: X-Other\r\nTrailer: ,x-tensormem-CRC32C\r\nConnection: close\r\n')}\r\n`), chunked(data, 300, `X-Tensormem-Crc32c: ${base64.toString('base64')}\r\n`)]));
      expect(statusLine(announced), announced.text).toBe('HTTP/1.1 200 OK');
      expect(announced.text).toContain(`X-Tensormem-Crc32c: ${right}`);
      // A mismatch: the very answer a header mismatch gets (status, reason, JSON body), and the range holds the bytes received.
      const other = randomBytes(1000);
      const byTrailer = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, `${announce}Connection: close\r\n`)}\r\n`), chunked(other, 300, `X-Tensormem-Crc32c: ${wrong}\r\n`)]));
      expect(statusLine(byTrailer), byTrailer.text).toBe('HTTP/1.1 400 Bad Request');
      expect(jsonBody(byTrailer)).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', reason: 'CHECKSUM_MISMATCH', metadata: { field: 'X-Tensormem-Crc32c', expected_crc32c: wrong, received_crc32c: crc32cHex(crc32c(other)), bytes: '1000' } });
      expect(answersOf(byTrailer.text)[0].headers['x-tensormem-crc32c']).toBeUndefined();
      expect((await lease.readGrpc(array.array_id)).equals(other)).toBe(true);
      const byHeader = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, `X-Tensormem-Crc32c: ${wrong}\r\nConnection: close\r\n`)}\r\n`), chunked(other, 300)]));
      expect(jsonBody(byTrailer)).toEqual(jsonBody(byHeader));
      // In a Content-Range PUT too.
      const ranged = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, `${announce}Content-Range: bytes 500-999/1000\r\nConnection: close\r\n`)}\r\n`), chunked(data.subarray(500), 64, `X-Tensormem-Crc32c: ${right}\r\n`)]));
      expect(jsonBody(ranged)).toMatchObject({ reason: 'CHECKSUM_MISMATCH', metadata: { offset: '500', bytes: '500', received_crc32c: crc32cHex(crc32c(data.subarray(500))) } });
      // Not announced (no Trailer header, or one naming other fields): no CRC was computed as the bytes
      // came, so the trailer is refused naming the field and its value, right or wrong, never taken as checked; the range holds the bytes.
      for (const head of ['', 'Trailer: X-Other\r\n']) {
        for (const crc of [right, wrong]) {
          const unannounced = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, `${head}Connection: close\r\n`)}\r\n`), chunked(data, 300, `X-Tensormem-Crc32c: ${crc}\r\n`)]));
          expect(statusLine(unannounced), unannounced.text).toBe('HTTP/1.1 400 Bad Request');
          const refusal = jsonBody(unannounced) as { status: string; reason: string; message: string; metadata: Record<string, string> };
          expect(refusal).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'INVALID_ARGUMENT', metadata: { field: 'X-Tensormem-Crc32c' } });
          expect(refusal.message).toContain(crc);
          expect(refusal.message).toContain('Trailer: X-Tensormem-Crc32c');
          expect((await lease.readGrpc(array.array_id)).equals(data)).toBe(true);
          await lease.writeGrpc(array.array_id, other);
        }
      }
    });
  });

  it('a CRC in both the header and the trailer must agree (400 naming X-Tensormem-Crc32c and both values otherwise); a malformed trailer value is 400 naming the field and value', async () => {
    await withChecksummedData(100, async (lease, array, data, right, wrong) => {
      const put = (header: string | undefined, trailers: string) =>
        rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, `${header === undefined ? '' : `X-Tensormem-Crc32c: ${header}\r\n`}Trailer: X-Tensormem-Crc32c\r\nConnection: close\r\n`)}\r\n`), chunked(data, 40, trailers)]));
      // The same value in both (in either form): checked once.
      const same = await put(right.toUpperCase(), `X-Tensormem-Crc32c: ${right}\r\n`);
      expect(statusLine(same), same.text).toBe('HTTP/1.1 200 OK');
      // Different values: refused, whichever one the bytes match.
      for (const [header, trailer] of [[right, wrong], [wrong, right]]) {
        const differ = await put(header, `X-Tensormem-Crc32c: ${trailer}\r\n`);
        expect(statusLine(differ), differ.text).toBe('HTTP/1.1 400 Bad Request');
        const refusal = jsonBody(differ) as { status: string; reason: string; message: string; metadata: Record<string, string> };
        expect(refusal).toMatchObject({ status: 'INVALID_ARGUMENT', metadata: { field: 'X-Tensormem-Crc32c' } });
        expect(refusal.reason).not.toBe('CHECKSUM_MISMATCH');
        expect(refusal.message).toContain(header);
        expect(refusal.message).toContain(trailer);
      }
      // A malformed value, and two trailer lines (read as one list, as two header lines are): 400 naming the field and the value.
      for (const [trailers, seen] of [
        ['X-Tensormem-Crc32c: nothex!!\r\n', 'nothex!!'],
        [`X-Tensormem-Crc32c: ${right}\r\nX-Tensormem-Crc32c: ${right}\r\n`, `${right}, ${right}`],
      ]) {
        const malformed = await put(undefined, trailers);
        expect(statusLine(malformed), malformed.text).toBe('HTTP/1.1 400 Bad Request');
        const refusal = jsonBody(malformed) as { status: string; message: string; metadata: Record<string, string> };
        expect(refusal).toMatchObject({ status: 'INVALID_ARGUMENT', metadata: { field: 'X-Tensormem-Crc32c' } });
        expect(refusal.message).toContain(seen);
      }
    });
  });

  it('an announced X-Tensormem-Crc32c trailer that never comes is 400 (a chunked body that ends without it, or a Content-Length body, which has no trailers), never an unchecked 200', async () => {
    await withChecksummedData(100, async (lease, array, data, right) => {
      const other = randomBytes(100);
      // Chunked, announced, ended without it: the bytes are written (as any refused write keeps them), the answer says they went unchecked.
      const missing = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, 'Trailer: X-Tensormem-Crc32c\r\nConnection: close\r\n')}\r\n`), chunked(data, 40, 'X-Other: 1\r\n')]));
      expect(statusLine(missing), missing.text).toBe('HTTP/1.1 400 Bad Request');
      const refusal = jsonBody(missing) as { status: string; message: string; metadata: Record<string, string> };
      expect(refusal).toMatchObject({ status: 'INVALID_ARGUMENT', metadata: { field: 'X-Tensormem-Crc32c' } });
      expect(refusal.message).toContain('100 bytes at offset 0');
      expect((await lease.readGrpc(array.array_id)).equals(data)).toBe(true);
      // With the header as well it is the header's check.
      const withHeader = await rawHttp(dataAddress(), Buffer.concat([Buffer.from(`${putHead(array.array_id, lease.token, `X-Tensormem-Crc32c: ${right}\r\nTrailer: X-Tensormem-Crc32c\r\nConnection: close\r\n`)}\r\n`), chunked(data, 40)]));
      expect(statusLine(withHeader), withHeader.text).toBe('HTTP/1.1 200 OK');
      // Announced on a Content-Length body: refused from the head, naming Trailer and its value, before any byte is written.
      const contentLength = (extra: string) =>
        rawHttp(dataAddress(), Buffer.concat([Buffer.from(`PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nContent-Length: 100\r\n${extra}Connection: close\r\n\r\n`), other]));
      const lengthBody = await contentLength('Trailer: X-Other, X-Tensormem-Crc32c\r\n');
      expect(statusLine(lengthBody), lengthBody.text).toBe('HTTP/1.1 400 Bad Request');
      const lengthRefusal = jsonBody(lengthBody) as { message: string; metadata: Record<string, string> };
      expect(lengthRefusal.metadata.field).toBe('Trailer');
      expect(lengthRefusal.message).toContain('X-Other, X-Tensormem-Crc32c');
      expect((await lease.readGrpc(array.array_id)).equals(data)).toBe(true);
      const lengthWithHeader = await contentLength(`Trailer: X-Tensormem-Crc32c\r\nX-Tensormem-Crc32c: ${crc32cHex(crc32c(other))}\r\n`);
      expect(statusLine(lengthWithHeader), lengthWithHeader.text).toBe('HTTP/1.1 200 OK');
      expect((await lease.readGrpc(array.array_id)).equals(other)).toBe(true);
    });
  });

  it("Node's http.request with addTrailers (X-Tensormem-Crc32c in the trailer of a chunked PUT) gets its bytes checked", async () => {
    await withChecksummedData(200_000, async (lease, array, data, right, wrong) => {
      const url = new URL(`${dataAddress()}/v1/arrays/${array.array_id}`);
      const putWithTrailer = (crc: string) =>
        new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
          const request = httpRequest(url, { method: 'PUT', agent: false, headers: { Authorization: `Bearer ${lease.token}`, Trailer: 'X-Tensormem-Crc32c' } }, (response) => {
            let body = '';
            response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
            response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body }));
          });
          request.on('error', reject);
          for (let at = 0; at < data.byteLength; at += 50_000) request.write(data.subarray(at, at + 50_000));
          request.addTrailers({ 'X-Tensormem-Crc32c': crc });
          request.end();
        });
      const good = await putWithTrailer(right);
      expect(good.status, good.body).toBe(200);
      expect(good.headers['x-tensormem-crc32c']).toBe(right);
      const bad = await putWithTrailer(wrong);
      expect(bad.status, bad.body).toBe(400);
      expect(JSON.parse(bad.body)).toMatchObject({ reason: 'CHECKSUM_MISMATCH', metadata: { received_crc32c: crc32cHex(crc32c(data)), bytes: '200000' } });
    });
  });

  it('malformed chunked framing is 400 naming Transfer-Encoding or body and the value seen, and closes the connection', async () => {
    await withLease(async (lease) => {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64], zero: true });
      const cases: Array<[string, string, string]> = [
        ['zz\r\nabcd\r\n0\r\n\r\n', 'Transfer-Encoding', 'zz'],
        ['-4\r\nabcd\r\n0\r\n\r\n', 'Transfer-Encoding', '-4'],
        ['4\nabcd\r\n0\r\n\r\n', 'Transfer-Encoding', '4\\n'],
        ['20000000000001\r\nabcd', 'Transfer-Encoding', '20000000000001'],
        ['4\r\nabcdXY0\r\n\r\n', 'body', 'XY'],
        [`4;${'e'.repeat(5000)}\r\nabcd\r\n0\r\n\r\n`, 'Transfer-Encoding', 'eeee'],
        [`4\r\nabcd\r\n0\r\n${'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(1000)}\r\n`, 'Transfer-Encoding', 'trailer'],
        ['4\r\nabcd\r\n0\r\nno colon\r\n\r\n', 'Transfer-Encoding', 'no colon'],
      ];
      for (const [body, field, seen] of cases) {
        const answer = await rawHttp(dataAddress(), `${putHead(array.array_id, lease.token)}\r\n${body}HEAD /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\n\r\n`);
        expect(answer.text.match(/HTTP\/1\.1 \d{3} [^\r]*/g), JSON.stringify(body.slice(0, 40))).toEqual(['HTTP/1.1 400 Bad Request']);
        expect(answer.text).toContain('Connection: close');
        const refusal = jsonBody(answer) as { reason: string; message: string; metadata: Record<string, string> };
        expect(refusal.metadata.field, refusal.message).toBe(field);
        expect(refusal.message).toContain(seen);
        expect(answer.ms).toBeLessThan(2_000);
      }
      // A Transfer-Encoding that is chunked after another coding is not decoded (the daemon undoes no gzip): 501 naming it (RFC 9112 §6.1).
      const gzip = await rawHttp(dataAddress(), `PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`);
      expect(statusLine(gzip)).toBe('HTTP/1.1 501 Not Implemented');
      expect(jsonBody(gzip)).toMatchObject({ status: 'UNIMPLEMENTED', reason: 'UNSUPPORTED_TRANSFER_CODING', metadata: { field: 'Transfer-Encoding', coding: 'gzip' } });
      expect((jsonBody(gzip) as { message: string }).message).toContain('gzip, chunked');
      expect((await lease.readGrpc(array.array_id)).subarray(4).equals(Buffer.alloc(60))).toBe(true);
      // Malformed framing after two good chunks: their bytes stay written (README: a refused chunked body keeps what it wrote), none after.
      const midway = await rawHttp(dataAddress(), `${putHead(array.array_id, lease.token, 'Content-Range: bytes 8-23/64\r\n')}\r\n4\r\nWXYZ\r\n4\r\nwxyz\r\nzz\r\n4\r\nlost\r\n0\r\n\r\n`);
      expect(statusLine(midway)).toBe('HTTP/1.1 400 Bad Request');
      expect(jsonBody(midway)).toMatchObject({ reason: 'MALFORMED_REQUEST', metadata: { field: 'Transfer-Encoding' } });
      expect((await lease.readGrpc(array.array_id)).subarray(8, 24).toString('latin1')).toBe(`WXYZwxyz${'\0'.repeat(8)}`);
    });
  });

  it('a chunked body past the array (or its Content-Range) is refused at its first byte past the end, naming both numbers; a short one with Content-Range is refused too', async () => {
    await withLease(async (lease) => {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [256], zero: true });
      const neighbour = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [256], zero: true });
      // The body never ends: the refusal comes as the first byte past the end arrives, not at the end of the body.
      const past = await rawHttp(dataAddress(), [`${putHead(array.array_id, lease.token)}\r\n${chunked('a'.repeat(256), 100).subarray(0, -5).toString('latin1')}`, '1\r\nb\r\n', '100\r\n']);
      expect(statusLine(past)).toBe('HTTP/1.1 400 Bad Request');
      const pastBody = jsonBody(past) as { status: string; message: string; metadata: Record<string, string> };
      expect(pastBody).toMatchObject({ status: 'INVALID_ARGUMENT', metadata: { field: 'body' } });
      expect(pastBody.message).toContain('256');
      expect(pastBody.message).toContain('257');
      expect((await lease.readGrpc(array.array_id)).toString('latin1')).toBe('a'.repeat(256));
      expect((await lease.readGrpc(neighbour.array_id)).equals(Buffer.alloc(256))).toBe(true);
      // A piece that crosses the end: what fits is written, nothing past it.
      const crossing = await rawHttp(dataAddress(), `${putHead(array.array_id, lease.token, 'Content-Range: bytes 250-255/256\r\n')}\r\n8\r\nBCDEFGHI\r\n0\r\n\r\n`);
      expect(statusLine(crossing)).toBe('HTTP/1.1 400 Bad Request');
      expect((jsonBody(crossing) as { message: string }).message).toMatch(/6\b[\s\S]*8\b/);
      expect((await lease.readGrpc(neighbour.array_id)).equals(Buffer.alloc(256))).toBe(true);
      // Shorter than its Content-Range: the range's length is what the client said it sends.
      const short = await rawHttp(dataAddress(), `${putHead(array.array_id, lease.token, 'Content-Range: bytes 0-9/256\r\n')}\r\n4\r\nabcd\r\n0\r\n\r\n`);
      expect(statusLine(short)).toBe('HTTP/1.1 400 Bad Request');
      expect(jsonBody(short)).toMatchObject({ metadata: { field: 'body' } });
      expect((jsonBody(short) as { message: string }).message).toMatch(/10 bytes[\s\S]*4 bytes/);
    });
  });
});
