/**
 * The data plane's request line and head framing against RFC 9112 and the README, over raw sockets to a
 * real daemon process: each refusal comes at once with its exact status (never a silent cut at the 5 s
 * head deadline), and leaves the pools and the connection count as they were.
 */
import { createConnection } from 'node:net';
import { describe, expect, it } from 'vitest';
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
