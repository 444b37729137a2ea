/**
 * The data plane's HTTP/1.1 layer (src/dataplane/http1-server.ts) over real loopback sockets, driven
 * by raw bytes so that framing, keep-alive, pipelining and early answers are exactly what is tested.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressInfo, Socket, connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { BODY_CUT_SHORT, Http1Server, Http1ServerOptions, HttpExchange, MAX_HEAD_BYTES } from '../../src/dataplane/http1-server';
import { bodyReadBytesFor } from '../../src/dataplane/data-plane-server';
import { ERROR_REASONS, TensormemError } from '../../src/errors';

const servers: Http1Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.server.close(() => resolve()));
  }
});

async function listen(handler: (exchange: HttpExchange) => void, options?: Http1ServerOptions): Promise<number> {
  const server = new Http1Server(handler, options);
  servers.push(server);
  await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
  return (server.server.address() as AddressInfo).port;
}

/** A server whose handler is `handler` (by default an empty 200), and how many requests reached it: a refusal from the head calls none. */
async function listenCounting(handler: (exchange: HttpExchange) => void = (exchange) => exchange.end(), options?: Http1ServerOptions): Promise<{ port: number; handled: () => number }> {
  let calls = 0;
  const port = await listen((exchange) => {
    calls++;
    handler(exchange);
  }, options);
  return { port, handled: () => calls };
}

/** Sends `requests` on one connection and collects everything; resolves only when the server ends the connection (a test that expects that waits for it). */
function exchangeRaw(port: number, requests: Array<string | Buffer>, options: { halfClose?: boolean } = {}): Promise<{ text: string }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ port, host: '127.0.0.1' }, () => {
      for (const request of requests) socket.write(request);
      if (options.halfClose) socket.end();
    });
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('end', () => resolve({ text }));
    socket.on('error', reject);
  });
}

/**
 * Writes next() on one connection every `everyMs` (nothing once it returns undefined) until the server
 * closes it, or 3 s pass; resolves to the milliseconds from the call to the close.
 */
function closedAfterTrickle(port: number, everyMs: number, next: () => string | undefined): Promise<number> {
  const started = Date.now();
  return new Promise<number>((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const timer = setInterval(() => {
      const piece = next();
      if (piece !== undefined && !socket.destroyed) socket.write(piece);
    }, everyMs);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve(Date.now() - started);
    });
    setTimeout(() => socket.destroy(), 3000);
  });
}

/** Echo handler: answers with the method, url and the body it read (as text). */
function echo(exchange: HttpExchange): void {
  const pieces: Buffer[] = [];
  exchange
    .readBody((piece) => {
      pieces.push(Buffer.from(piece));
    })
    .then(
      (bytes) => {
        exchange.setHeader('Content-Type', 'text/plain');
        exchange.end(`${exchange.method} ${exchange.url} ${bytes}:${Buffer.concat(pieces).toString('latin1')}`);
      },
      () => exchange.destroy(),
    );
}

/** Status lines in order (a body is not followed by a line break, so they are found by pattern). */
function statusLines(text: string): string[] {
  return text.match(/HTTP\/1\.1 \d{3} [^\r]*/g) ?? [];
}

describe('Http1Server', () => {
  it('sends Date (IMF-fixdate, RFC 9110 §6.6.1) in every answer: a handler\'s, and a refused head\'s', async () => {
    const port = await listen(echo);
    const imfFixdate = /\r\nDate: (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/g;
    const before = Math.floor(Date.now() / 1000) * 1000;
    const served = await exchangeRaw(port, ['GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    const dates = [...served.text.matchAll(imfFixdate)].map((match) => Date.parse(match[0].slice('\r\nDate: '.length, -2)));
    expect(dates).toHaveLength(2);
    for (const date of dates) expect(date >= before && date <= Date.now()).toBe(true);
    const refused = await exchangeRaw(port, ['GET /x HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n']);
    expect(statusLines(refused.text)).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(refused.text.match(imfFixdate)).toHaveLength(1);
  });

  it('reads a Content-Length with leading zeros as the number it is (RFC 9110 §8.6: 1*DIGIT)', async () => {
    const port = await listen(echo);
    const { text } = await exchangeRaw(port, ['PUT /z HTTP/1.1\r\nHost: x\r\nContent-Length: 00000000000000000005\r\nConnection: close\r\n\r\nhello']);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(text).toContain('PUT /z 5:hello');
  });

  it('serves pipelined keep-alive requests in order on one connection, bodies framed by Content-Length', async () => {
    const port = await listen(echo);
    const requests = 'PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\nPUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz';
    const { text } = await exchangeRaw(port, [requests]);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(text).toContain('PUT /a 5:hello');
    expect(text).toContain('GET /b 0:');
    expect(text).toContain('PUT /c 3:xyz');
    expect(text.indexOf('/a 5')).toBeLessThan(text.indexOf('/b 0'));
    expect(text.match(/Connection: keep-alive/g)).toHaveLength(2);
    expect(text).toContain('Connection: close');
  });

  it('accepts an absolute-form request target (RFC 9112 §3.2.2) as its path and query; other targets reach the handler as sent', async () => {
    const port = await listen(echo);
    const requests = [
      'GET http://127.0.0.1:7071/v1/arrays/a%2Db?x=1 HTTP/1.1\r\nHost: 127.0.0.1:7071\r\n\r\n',
      'GET HTTP://Other-Host HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET http://h?q HTTP/1.1\r\nHost: x\r\n\r\n',
      'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ];
    const { text } = await exchangeRaw(port, requests);
    expect(text.match(/(?:GET|OPTIONS) \S+ 0:/g)).toEqual(['GET /v1/arrays/a%2Db?x=1 0:', 'GET / 0:', 'GET /?q 0:', 'OPTIONS * 0:', 'GET /plain 0:']);
  });

  it('hands a body split over many writes to the reader whole, and waits for a reader that returns a promise', async () => {
    const seen: number[] = [];
    const port = await listen((exchange) => {
      let total = 0;
      void exchange
        .readBody(async (piece) => {
          seen.push(piece.byteLength);
          // A slow reader: nothing more may be handed over until this settles.
          const before = total;
          await new Promise((resolve) => setTimeout(resolve, 2));
          expect(total).toBe(before);
          total += piece.byteLength;
        })
        .then((bytes) => exchange.end(`${bytes} ${total}`));
    });
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const pieces = [Buffer.from(`PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n`)];
    for (let at = 0; at < body.byteLength; at += 100_000) pieces.push(body.subarray(at, at + 100_000));
    const { text } = await exchangeRaw(port, pieces);
    expect(text).toContain(`\r\n\r\n${body.byteLength} ${body.byteLength}`);
    expect(seen.reduce((a, b) => a + b, 0)).toBe(body.byteLength);
  });

  it('hands a body over in pieces no larger than bodyReadBytes, and the data plane sizes them below --async-copy-threshold', async () => {
    const seen: number[] = [];
    const port = await listen(
      (exchange) => {
        void exchange
          .readBody((piece) => {
            seen.push(piece.byteLength);
          })
          .then((bytes) => exchange.end(String(bytes)));
      },
      { bodyReadBytes: 32 * 1024 },
    );
    const body = Buffer.alloc(2 * 1024 * 1024, 9);
    const { text } = await exchangeRaw(port, [Buffer.from(`PUT /sized HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n`), body]);
    expect(text).toContain(`\r\n\r\n${body.byteLength}`);
    expect(seen.reduce((a, b) => a + b, 0)).toBe(body.byteLength);
    expect(Math.max(...seen)).toBeLessThanOrEqual(32 * 1024);
    // Pieces below the threshold are copied inline (TensorArray.writeInline); at or above it they would wait on the thread pool.
    expect([256 * 1024, 128 * 1024, 100_000, 1024 * 1024, 1024].map(bodyReadBytesFor)).toEqual([128 * 1024, 64 * 1024, 64 * 1024, 128 * 1024, 16 * 1024]);
  });

  it('sends 100 Continue only when asked, and an early refusal closes the connection after the answer, even with the body in flight', async () => {
    const port = await listen((exchange) => {
      if (exchange.url === '/ok') {
        exchange.writeContinue();
        echo(exchange);
        return;
      }
      exchange.statusCode = 404;
      exchange.end('no');
    });
    const ok = await exchangeRaw(port, ['PUT /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhi']);
    expect(statusLines(ok.text)).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
    // The refusal comes before the body is read: the answer arrives whole, then the connection ends
    // (the rest of the body cannot be told from a next request).
    const refused = await exchangeRaw(port, ['PUT /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n', Buffer.alloc(1_000_000, 1)]);
    expect(statusLines(refused.text)).toEqual(['HTTP/1.1 404 Not Found']);
    expect(refused.text).toContain('Connection: close');
    expect(refused.text.endsWith('\r\n\r\nno')).toBe(true);
  });

  it('ignores Expect: 100-continue in an HTTP/1.0 request: such a client would take the interim answer for its answer', async () => {
    const port = await listen((exchange) => {
      if (exchange.expectsContinue) exchange.writeContinue();
      echo(exchange);
    });
    const http11 = await exchangeRaw(port, ['PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhi']);
    expect(statusLines(http11.text)).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
    const http10 = await exchangeRaw(port, ['PUT /a HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi']);
    expect(statusLines(http10.text)).toEqual(['HTTP/1.1 200 OK']);
    expect(http10.text.endsWith('PUT /a 2:hi')).toBe(true);
  });

  it('an HTTP/1.0 request with Connection: keep-alive, close is answered and the connection closed: close wins, the pipelined request behind it is not read', async () => {
    const port = await listen(echo);
    for (const connection of ['keep-alive, close', 'close, keep-alive']) {
      const { text } = await exchangeRaw(port, [`PUT /a HTTP/1.0\r\nConnection: ${connection}\r\nContent-Length: 2\r\n\r\nhiGET /next HTTP/1.0\r\n\r\n`]);
      expect(statusLines(text), connection).toEqual(['HTTP/1.1 200 OK']);
      expect(text, connection).toContain('Connection: close');
    }
  });

  it('after an early answer, reads and drops what the client still sends, so the client sees no reset', async () => {
    const port = await listen((exchange) => {
      exchange.statusCode = 409;
      exchange.end('refused');
    });
    const outcome = await new Promise<{ text: string; error?: string }>((resolve) => {
      let text = '';
      let error: string | undefined;
      const socket = connect({ port, host: '127.0.0.1' }, () => socket.write('PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\npart'));
      socket.on('data', (chunk) => {
        const first = text === '';
        text += chunk.toString('latin1');
        if (!first) return;
        // The answer is in; the client goes on sending the body it announced, then ends its side.
        let sent = 0;
        const more = () => {
          while (sent < 8) {
            sent++;
            if (!socket.write(Buffer.alloc(1024 * 1024, 2))) return void socket.once('drain', more);
          }
          socket.end();
        };
        more();
      });
      socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      socket.on('close', () => resolve({ text, error }));
    });
    expect(outcome.error).toBeUndefined();
    expect(statusLines(outcome.text)).toEqual(['HTTP/1.1 409 Conflict']);
    expect(outcome.text.endsWith('refused')).toBe(true);
  });

  it('answers a malformed head 400 and an oversized one 431, as JSON, and closes', async () => {
    const { port, handled } = await listenCounting();
    const malformed = await exchangeRaw(port, ['PUT /x HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n']);
    expect(statusLines(malformed.text)).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(JSON.parse(malformed.text.split('\r\n\r\n')[1])).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', message: expect.stringContaining('no colon here'), metadata: { field: 'header line' } });
    // Every 400 for a malformed head names what is at fault in metadata.field, as the data plane's other 400s do.
    const badLine = await exchangeRaw(port, ['GET  /x HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(JSON.parse(badLine.text.split('\r\n\r\n')[1])).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', message: expect.stringContaining('"GET  /x HTTP/1.1"'), metadata: { field: 'request line' } });
    const badLength = await exchangeRaw(port, ['PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n']);
    expect(JSON.parse(badLength.text.split('\r\n\r\n')[1]).message).toContain('Content-Length must be one decimal number, not "12abc"');
    // A number too large to be any array's size is refused as that, not as "not a number".
    const hugeLength = await exchangeRaw(port, ['PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1234567890123456\r\n\r\n']);
    expect(JSON.parse(hugeLength.text.split('\r\n\r\n')[1])).toMatchObject({ code: 400, message: 'Content-Length "1234567890123456" has more than 15 digits: no array holds that many bytes', metadata: { field: 'Content-Length' } });
    const huge = await exchangeRaw(port, [`GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES + 10)}\r\n\r\n`]);
    expect(statusLines(huge.text)).toEqual(['HTTP/1.1 431 Request Header Fields Too Large']);
    expect(JSON.parse(huge.text.split('\r\n\r\n')[1])).toMatchObject({ code: 431, status: 'RESOURCE_EXHAUSTED', reason: 'REQUEST_HEAD_TOO_LARGE' });
    // Both reasons are in the catalogue a client's ErrorReason is typed from (they were sent without being in it).
    expect(ERROR_REASONS).toContain(JSON.parse(malformed.text.split('\r\n\r\n')[1]).reason);
    expect(ERROR_REASONS).toContain(JSON.parse(huge.text.split('\r\n\r\n')[1]).reason);
    // A head that never ends is refused once it passes the limit, without waiting for its end.
    const endless = await exchangeRaw(port, [`GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES + 10)}`]);
    expect(statusLines(endless.text)).toEqual(['HTTP/1.1 431 Request Header Fields Too Large']);
    expect(handled()).toBe(0);
  });

  it('refuses a CR or LF inside a header value (not part of a CRLF line end) with 400 naming the header, and closes', async () => {
    const { port, handled } = await listenCounting(echo);
    // A bare LF that one parser would read as a line end hides a second Content-Length.
    const lf = await exchangeRaw(port, ['PUT /x HTTP/1.1\r\nHost: x\r\nX-Foo: a\nContent-Length: 4\r\nContent-Length: 2\r\n\r\nZZ']);
    expect(statusLines(lf.text)).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(lf.text).toContain('Connection: close');
    const lfBody = JSON.parse(lf.text.split('\r\n\r\n')[1]);
    expect(lfBody).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', metadata: { field: 'X-Foo' } });
    expect(lfBody.message).toContain('X-Foo');
    expect(lfBody.message).toContain(JSON.stringify('a\nContent-Length: 4'));
    const cr = await exchangeRaw(port, ['GET /x HTTP/1.1\r\nHost: x\r\nX-Bar: a\rb\r\n\r\n']);
    expect(statusLines(cr.text)).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(JSON.parse(cr.text.split('\r\n\r\n')[1])).toMatchObject({ metadata: { field: 'X-Bar' } });
    // A CR just before the CRLF is bare too, and the message shows it.
    const crBeforeCrlf = await exchangeRaw(port, ['GET /x HTTP/1.1\r\nHost: x\r\r\n\r\n']);
    expect(statusLines(crBeforeCrlf.text)).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(JSON.parse(crBeforeCrlf.text.split('\r\n\r\n')[1]).message).toContain(JSON.stringify('x\r'));
    expect(handled()).toBe(0);
  });

  it('refuses a Transfer-Encoding whose last coding is not chunked (RFC 9112 §6.3) with 400 naming it, and closes', async () => {
    const { port, handled } = await listenCounting();
    // Chunked twice (RFC 9112 §6.1: MUST NOT) and an empty element after it are refused too, as llhttp refuses them.
    for (const coding of ['gzip', 'chunked, gzip', 'identity', '', ',', 'chunked, chunked', 'chunked,', 'gzip, chunked , ,']) {
      const refused = await exchangeRaw(port, [`GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${coding}\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n`]);
      expect(statusLines(refused.text)).toEqual(['HTTP/1.1 400 Bad Request']);
      expect(refused.text).toContain('Connection: close');
      const body = JSON.parse(refused.text.split('\r\n\r\n')[1]);
      expect(body).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', metadata: { field: 'Transfer-Encoding' } });
      expect(body.message).toContain(JSON.stringify(coding));
    }
    expect(handled()).toBe(0);
  });

  it('answers a transfer coding before chunked (gzip, chunked) 501 naming the coding (RFC 9112 §6.1), one that is no coding 400, and closes; the handler is not called', async () => {
    const { port, handled } = await listenCounting();
    // Empty list elements before it (RFC 9110 §5.6.1.2: a recipient ignores them) are no coding; the first coding not implemented is named.
    for (const [coding, name] of [['gzip, chunked', 'gzip'], ['GZIP,chunked', 'GZIP'], [', gzip , chunked', 'gzip'], ['identity, chunked', 'identity'], ['x-custom;a=1 ; b="q;x", chunked', 'x-custom'], ['deflate, gzip, chunked', 'deflate']]) {
      for (const method of ['PUT', 'GET']) {
        const refused = await exchangeRaw(port, [`${method} /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${coding}\r\n\r\n4\r\nabcd\r\n0\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n`]);
        expect(statusLines(refused.text), coding).toEqual(['HTTP/1.1 501 Not Implemented']);
        expect(refused.text).toContain('Connection: close');
        const body = JSON.parse(refused.text.split('\r\n\r\n')[1]);
        expect(body, coding).toMatchObject({ code: 501, status: 'UNIMPLEMENTED', reason: 'UNSUPPORTED_TRANSFER_CODING', metadata: { field: 'Transfer-Encoding', coding: name } });
        expect(ERROR_REASONS).toContain(body.reason);
        expect(body.message).toContain(JSON.stringify(coding.trim()));
      }
    }
    // Malformed framing stays 400 though a coding is named: chunked not last, chunked twice, beside Content-Length, an element that is no coding.
    for (const [head, field] of [
      ['Transfer-Encoding: gzip', 'Transfer-Encoding'],
      ['Transfer-Encoding: chunked, gzip', 'Transfer-Encoding'],
      ['Transfer-Encoding: gzip, chunked, chunked', 'Transfer-Encoding'],
      ['Transfer-Encoding: gzip, chunked\r\nContent-Length: 9', 'Content-Length'],
      ['Transfer-Encoding: "gzip", chunked', 'Transfer-Encoding'],
      ['Transfer-Encoding: g zip, chunked', 'Transfer-Encoding'],
      ['Transfer-Encoding: gzip;q, chunked', 'Transfer-Encoding'],
      ['Transfer-Encoding: gzip;q="a,b", chunked', 'Transfer-Encoding'],
      ['Transfer-Encoding: gzip\xa0, chunked', 'Transfer-Encoding'],
    ]) {
      const refused = await exchangeRaw(port, [`PUT /x HTTP/1.1\r\nHost: x\r\n${head}\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`]);
      expect(statusLines(refused.text), head).toEqual(['HTTP/1.1 400 Bad Request']);
      expect(JSON.parse(refused.text.split('\r\n\r\n')[1]), head).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', metadata: { field } });
    }
    expect(handled()).toBe(0);
  });

  it('answers a HEAD it refuses from the head (501, 400, 414, 431) with the headers of the JSON body and no body (RFC 9110 §9.3.2), then closes', async () => {
    const { port, handled } = await listenCounting();
    for (const [request, code] of [
      ['HEAD /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
      ['HEAD /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400],
      ['HEAD /x HTTP/1.1\r\nHost: x\r\nBad Header: 1\nX: y\r\n\r\n', 400],
      [`HEAD /${'x'.repeat(MAX_HEAD_BYTES)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
      [`HEAD /x HTTP/1.1\r\nHost: x\r\nX-Long: ${'y'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`, 431],
    ] as const) {
      const refused = await exchangeRaw(port, [request]);
      const [head, body] = refused.text.split('\r\n\r\n');
      expect(head.split('\r\n')[0], request.slice(0, 60)).toMatch(new RegExp(`^HTTP/1.1 ${code} `));
      expect(head).toContain('Connection: close');
      expect(Number(/\r\nContent-Length: (\d+)/.exec(head)?.[1])).toBeGreaterThan(0);
      expect(body, request.slice(0, 60)).toBe('');
    }
    // The same refusals of a GET carry their body.
    const got = await exchangeRaw(port, ['GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n']);
    expect(JSON.parse(got.text.split('\r\n\r\n')[1])).toMatchObject({ code: 501 });
    expect(handled()).toBe(0);
  });

  it('reads a chunked body (RFC 9112 §7.1) to its reader, then the next pipelined request on the same connection', async () => {
    const port = await listen(echo);
    const requests = 'PUT /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n' +
      'PUT /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n' +
      'PUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz';
    // Cut into reads at odd places: inside a size line, between a chunk's data and its CRLF, inside the trailers.
    const cuts = [70, 81, 95, 107, 130];
    const parts = cuts.map((cut, index) => requests.slice(index === 0 ? 0 : cuts[index - 1], cut)).concat(requests.slice(cuts[cuts.length - 1]));
    const { text } = await new Promise<{ text: string }>((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1' }, async () => {
        socket.setNoDelay(true);
        for (const part of parts) {
          socket.write(part);
          await new Promise((done) => setTimeout(done, 15));
        }
      });
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      socket.on('end', () => resolve({ text: received }));
      socket.on('error', reject);
    });
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(text).toContain('PUT /a 11:hello world');
    expect(text).toContain('PUT /b 0:');
    expect(text).toContain('PUT /c 3:xyz');
    expect(text.match(/Connection: keep-alive/g)).toHaveLength(2);
  });

  it('gives the handler the trailer fields named in keptTrailers (any case) once readBody resolves, none before, none of the others, none for a Content-Length body', async () => {
    const seen: Array<{ before: Record<string, string>; after: Record<string, string> }> = [];
    const port = await listen(
      (exchange) => {
        const before = { ...exchange.trailers };
        exchange.readBody(() => undefined).then(
          () => {
            seen.push({ before, after: { ...exchange.trailers } });
            exchange.end('ok');
          },
          () => exchange.destroy(),
        );
      },
      { keptTrailers: ['X-Kept'] },
    );
    await exchangeRaw(port, [
      'PUT /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nx-kept:  one \r\nX-Dropped: 2\r\nX-KEPT: two\r\n\r\n',
      'PUT /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'PUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Kept: header\r\nConnection: close\r\n\r\nab',
    ]);
    expect(seen).toEqual([
      { before: {}, after: { 'x-kept': 'one, two' } },
      { before: {}, after: {} },
      { before: {}, after: {} },
    ]);
  });

  it('refuses Content-Length beside Transfer-Encoding (RFC 9112 §6.3: a server MAY; llhttp does) naming it; chunked in HTTP/1.0 closes the connection after', async () => {
    const { port, handled } = await listenCounting(echo);
    for (const head of ['HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked', 'HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40']) {
      const { text } = await exchangeRaw(port, [`PUT /a ${head}\r\n\r\n4\r\nabcd\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n`]);
      expect(statusLines(text), head).toEqual(['HTTP/1.1 400 Bad Request']);
      expect(JSON.parse(text.split('\r\n\r\n')[1]), head).toMatchObject({ reason: 'MALFORMED_REQUEST', metadata: { field: 'Content-Length' }, message: expect.stringContaining('beside Transfer-Encoding "chunked"') });
    }
    expect(handled()).toBe(0);
    for (const head of ['HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked', 'HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: , chunked']) {
      const { text } = await exchangeRaw(port, [`PUT /a ${head}\r\n\r\n4\r\nabcd\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n`]);
      expect(statusLines(text), head).toEqual(['HTTP/1.1 200 OK']);
      expect(text, head).toContain('PUT /a 4:abcd');
      expect(text, head).toContain('Connection: close');
    }
  });

  it('a chunked body whose framing is malformed fails readBody naming it; the answer closes the connection', async () => {
    let failure: TensormemError | undefined;
    const port = await listen((exchange) => {
      exchange.readBody(() => undefined).then(
        () => exchange.end('read'),
        (error: TensormemError) => {
          failure = error;
          exchange.statusCode = 400;
          exchange.end(error.message);
        },
      );
    });
    const { text } = await exchangeRaw(port, ['PUT /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdefg\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(statusLines(text)).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(text).toContain('Connection: close');
    expect(failure).toBeInstanceOf(TensormemError);
    expect([failure!.reason, failure!.metadata.field]).toEqual(['MALFORMED_REQUEST', 'body']);
  });

  it('a chunked body cut by the client before its last chunk rejects readBody with BODY_CUT_SHORT and the bytes received; a slow reader holds the decoding', async () => {
    let rejected!: (error: unknown) => void;
    const rejection = new Promise<unknown>((resolve) => (rejected = resolve));
    const port = await listen((exchange) => {
      if (exchange.url !== '/cut') {
        let total = 0;
        void exchange
          .readBody(async (piece) => {
            const before = total;
            await new Promise((resolve) => setTimeout(resolve, 1));
            expect(total).toBe(before);
            total += piece.byteLength;
          })
          .then((bytes) => exchange.end(`${bytes} ${total}`));
        return;
      }
      exchange.readBody(() => undefined).catch(rejected);
    });
    const socket = connect({ port, host: '127.0.0.1' }, () => socket.end('PUT /cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef'));
    socket.on('error', () => undefined);
    socket.resume();
    const cut = (await rejection) as { code?: string; bytesReceived?: number; message: string };
    expect([cut.code, cut.bytesReceived]).toEqual([BODY_CUT_SHORT, 6]);
    expect(cut.message).toContain('chunked');
    // Many small chunks in one read to a reader that returns a promise: each is handed over only once the one before has settled.
    const body = Array.from({ length: 200 }, (_, index) => `3\r\n${String(index % 1000).padStart(3, '0')}\r\n`).join('');
    const slow = await exchangeRaw(port, [`PUT /slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}0\r\n\r\n`]);
    expect(slow.text).toContain('\r\n\r\n600 600');
  });

  it('refuses a NUL in a header value (RFC 9110 §5.5) with 400 naming the header, and closes', async () => {
    const { port, handled } = await listenCounting(echo);
    const nul = await exchangeRaw(port, ['GET /x HTTP/1.1\r\nHost: x\r\nX-Label: abc\0def\r\n\r\n']);
    expect(statusLines(nul.text)).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(nul.text).toContain('Connection: close');
    const body = JSON.parse(nul.text.split('\r\n\r\n')[1]);
    expect(body).toMatchObject({ code: 400, reason: 'MALFORMED_REQUEST', metadata: { field: 'X-Label' } });
    expect(body.message).toContain(JSON.stringify('abc\0def'));
    expect(handled()).toBe(0);
  });

  it('refuses another control byte in a header value, and a tab after a Content-Length or Transfer-Encoding (llhttp does), naming the header; OWS is SP and HTAB only', async () => {
    const { port, handled } = await listenCounting(echo);
    const cases: Array<[string, string, string]> = [
      ['X-Label: a\x01b', 'X-Label', 'control byte 0x01'],
      ['X-Label: a\x7fb', 'X-Label', 'control byte 0x7f'],
      ['Transfer-Encoding: chunked\x0b', 'Transfer-Encoding', 'control byte 0x0b'],
      ['Content-Length: 3\t', 'Content-Length', 'a tab after its value "3"'],
      ['Transfer-Encoding: chunked \t', 'Transfer-Encoding', 'a tab after its value "chunked"'],
      // NBSP (0xA0) is obs-text, not whitespace: String.prototype.trim took it for whitespace, and read 3.
      ['Content-Length: 3\xa0', 'Content-Length', 'one decimal number, not "3'],
    ];
    for (const [line, field, message] of cases) {
      const refused = await exchangeRaw(port, [Buffer.from(`PUT /x HTTP/1.1\r\nHost: x\r\n${line}\r\n\r\nabc`, 'latin1')]);
      expect(statusLines(refused.text), line).toEqual(['HTTP/1.1 400 Bad Request']);
      const body = JSON.parse(refused.text.split('\r\n\r\n')[1]);
      expect(body, line).toMatchObject({ reason: 'MALFORMED_REQUEST', metadata: { field } });
      expect(body.message, line).toContain(message);
    }
    expect(handled()).toBe(0);
    // HTAB inside a value, and SP or HTAB before one, are as ever.
    const { text } = await exchangeRaw(port, ['PUT /x HTTP/1.1\r\nHost: x\r\nX-Label: a\tb\r\nContent-Length:\t3 \r\nConnection: close\r\n\r\nabc']);
    expect(text).toContain('PUT /x 3:abc');
  });

  it('end(data) sends the length of data, whatever Content-Length was set before, so the next request is framed right', async () => {
    const port = await listen((exchange) => {
      if (exchange.url === '/refused') {
        // Headers prepared for a 1 MiB answer, then a short one sent instead.
        exchange.setHeader('Content-Length', String(1024 * 1024));
        exchange.statusCode = 507;
        exchange.end('{"code":507}');
        return;
      }
      exchange.end('next');
    });
    const { text } = await exchangeRaw(port, ['GET /refused HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    const [head, rest] = text.split('\r\n\r\n');
    expect(head).toContain('Content-Length: 12\r\n');
    expect(head).toContain('Connection: keep-alive');
    expect(rest.startsWith('{"code":507}HTTP/1.1 200 OK')).toBe(true);
    expect(statusLines(text)).toEqual(['HTTP/1.1 507 Insufficient Storage', 'HTTP/1.1 200 OK']);
    expect(text.endsWith('\r\n\r\nnext')).toBe(true);
  });

  it('clearHeaders drops every header set so far, for an error answer in place of a prepared one', async () => {
    const port = await listen((exchange) => {
      exchange.setHeader('Content-Range', 'bytes 0-1048575/67108864');
      exchange.setHeader('X-Prepared', 'yes');
      exchange.statusCode = 206;
      exchange.clearHeaders();
      exchange.statusCode = 409;
      exchange.setHeader('Content-Type', 'application/json');
      exchange.end('{}');
    });
    const { text } = await exchangeRaw(port, ['GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    expect(text.replace(/^(HTTP\/1\.1 409 Conflict\r\n)Date: [^\r]+\r\n/, '$1')).toBe('HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
  });

  it('cuts a head not complete by headTimeoutMs after its first byte, however steadily it trickles in', async () => {
    const { port, handled } = await listenCounting((exchange) => exchange.end('served'), { headTimeoutMs: 300 });
    const head = `GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: ${'y'.repeat(100)}\r\n\r\n`;
    // One byte every 50 ms: the idle timer (5 s) would never fire, and the head would take 6 s.
    let sent = 0;
    const closedAfterMs = await closedAfterTrickle(port, 50, () => (sent < head.length ? head[sent++] : undefined));
    expect(closedAfterMs).toBeGreaterThanOrEqual(250);
    expect(closedAfterMs).toBeLessThan(2000);
    expect(handled()).toBe(0);
    // A head that arrives whole in time is served.
    const whole = await exchangeRaw(port, ['GET /y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    expect(whole.text.endsWith('\r\n\r\nserved')).toBe(true);
    expect(handled()).toBe(1);
  });

  it('the head deadline runs from the first byte when that is a bare line break: a peer sending only CRLFs is cut too', async () => {
    const port = await listen((exchange) => exchange.end('served'), { headTimeoutMs: 300, keepAliveTimeoutMs: 1000 });
    // A CRLF every 100 ms: each restarts the idle timer, and no head ever begins.
    const closedAfterMs = await closedAfterTrickle(port, 100, () => '\r\n');
    expect(closedAfterMs).toBeGreaterThanOrEqual(250);
    expect(closedAfterMs).toBeLessThan(2000);
    // Line breaks before a head that arrives in time are still allowed.
    const served = await exchangeRaw(port, ['\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    expect(served.text.endsWith('\r\n\r\nserved')).toBe(true);
  });

  it('after an early answer, reads and drops what the client sends for drainTimeoutMs at most, then cuts it', async () => {
    const port = await listen(
      (exchange) => {
        exchange.statusCode = 401;
        exchange.end('refused');
      },
      { drainTimeoutMs: 300 },
    );
    const started = Date.now();
    const outcome = await new Promise<{ text: string; closedAfterMs: number; sentBytes: number }>((resolve) => {
      let text = '';
      let sentBytes = 0;
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => socket.write('PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999\r\n\r\n'));
      // 64 KiB every 20 ms, for as long as the server reads: never idle.
      const timer = setInterval(() => {
        if (socket.destroyed) return;
        socket.write(Buffer.alloc(64 * 1024, 0x41));
        sentBytes += 64 * 1024;
      }, 20);
      socket.on('data', (chunk) => (text += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ text, closedAfterMs: Date.now() - started, sentBytes });
      });
      setTimeout(() => socket.destroy(), 3000);
    });
    expect(statusLines(outcome.text)).toEqual(['HTTP/1.1 401 Unauthorized']);
    expect(outcome.text.endsWith('refused')).toBe(true);
    expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(250);
    expect(outcome.closedAfterMs).toBeLessThan(2000);
  });

  it('an answer ended but not yet taken by the socket when the client resets reads as destroyed at close (the data plane counts it aborted)', async () => {
    // 48 MiB in one write: more than loopback's socket buffers hold while the client reads nothing, so
    // most of it is still in the socket's queue when end() returns and when the client resets.
    const body = Buffer.alloc(48 * 1024 * 1024, 0x41);
    let atClose: boolean | undefined;
    const closed = new Promise<void>((resolve) => {
      void listen((exchange) => {
        exchange.onClose(() => {
          atClose = exchange.destroyed;
          resolve();
        });
        exchange.setHeader('Content-Length', String(body.byteLength));
        exchange.write(body);
        exchange.end();
      }).then((port) => {
        const socket = connect({ port, host: '127.0.0.1' }, () => socket.write('GET /x HTTP/1.1\r\nHost: x\r\n\r\n'));
        socket.on('error', () => undefined);
        socket.once('data', () => setTimeout(() => socket.resetAndDestroy(), 50));
      });
    });
    await closed;
    expect(atClose).toBe(true);
  });

  it('a large answer still going out at the drain deadline is not cut by it: the client gets all of it', async () => {
    const size = 48 * 1024 * 1024;
    const body = Buffer.alloc(size, 0x42);
    const port = await listen(
      (exchange) => {
        // Answered before its (huge) body was read, so the connection drains after this answer.
        exchange.setHeader('Content-Length', String(size));
        exchange.write(body);
        exchange.end();
      },
      { drainTimeoutMs: 600, stallTimeoutMs: 5000 },
    );
    const received = await new Promise<number>((resolve) => {
      let bytes = 0;
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => socket.write('PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n'));
      // The client keeps sending the body it announced, and reads nothing for 1 s: past the deadline.
      const timer = setInterval(() => {
        if (!socket.destroyed) socket.write(Buffer.alloc(16 * 1024));
      }, 10);
      socket.pause();
      setTimeout(() => socket.resume(), 1000);
      // Then it reads at a steady pace, so the end of the answer (in the kernel's buffers when the
      // socket has taken it all) takes it a while: a reset then would destroy it.
      socket.on('data', (chunk) => {
        bytes += chunk.byteLength;
        socket.pause();
        setTimeout(() => socket.resume(), 1);
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        resolve(bytes);
      });
    });
    expect(received).toBeGreaterThan(size);
  });

  it('closes a keep-alive connection idle for keepAliveTimeoutMs, and not one that is busy', async () => {
    const port = await listen((exchange) => exchange.end('ok'), { keepAliveTimeoutMs: 300 });
    const started = Date.now();
    const idle = await exchangeRaw(port, ['GET /a HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(statusLines(idle.text)).toEqual(['HTTP/1.1 200 OK']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2000);
    // Requests 200 ms apart (less than the idle timeout) for 1 s: all served on the one connection.
    const busy = await new Promise<string>((resolve, reject) => {
      let text = '';
      let sent = 0;
      const socket = connect({ port, host: '127.0.0.1' });
      const timer = setInterval(() => {
        sent++;
        socket.write(sent === 5 ? 'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' : 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n');
        if (sent === 5) clearInterval(timer);
      }, 200);
      socket.on('data', (chunk) => (text += chunk.toString('latin1')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(statusLines(busy)).toHaveLength(5);
  });

  it('rejects readBody when the client goes away mid-body, and ends a half-closed connection after its answer', async () => {
    let rejected!: (error: unknown) => void;
    const rejection = new Promise<unknown>((resolve) => (rejected = resolve));
    const port = await listen((exchange) => {
      if (exchange.url === '/half') echo(exchange);
      else exchange.readBody(() => undefined).catch(rejected);
    });
    const socket = connect({ port, host: '127.0.0.1' }, () => {
      socket.write('PUT /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-this');
      setTimeout(() => socket.destroy(), 20);
    });
    socket.on('error', () => undefined);
    // The close arrives as the end of the client's input (a FIN), as a half-close would.
    expect(((await rejection) as NodeJS.ErrnoException).code).toBe(BODY_CUT_SHORT);
    const half = await exchangeRaw(port, ['PUT /half HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc'], { halfClose: true });
    expect(half.text).toContain('PUT /half 3:abc');
  });

  it('cuts a PUT whose body stops arriving for the stall timeout, and not one that keeps trickling (chunked bodies too, between chunks)', async () => {
    const stalled: string[] = [];
    const outcomes = new Map<string, Promise<string>>();
    const port = await listen(
      (exchange) => {
        outcomes.set(
          exchange.url,
          exchange.readBody(() => undefined).then(
            (bytes) => {
              exchange.end(`got ${bytes}`);
              return `read ${bytes}`;
            },
            (error: NodeJS.ErrnoException) => `rejected ${error.code}`,
          ),
        );
      },
      { stallTimeoutMs: 300, onStall: (exchange) => stalled.push(exchange.url) },
    );
    // Stops after 5 of 100 bytes: cut after about 300 ms, the reader rejected, the connection closed.
    const cutAt = Date.now();
    const stoppedAfter = (request: string) =>
      new Promise<number>((resolve) => {
        const socket = connect({ port, host: '127.0.0.1' }, () => socket.write(request));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(Date.now() - cutAt));
      });
    const stoppedClient = stoppedAfter('PUT /stops HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nfirst');
    const stoppedChunked = stoppedAfter('PUT /stops-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n');
    // 10 bytes every 100 ms for 1.2 s: four times the stall timeout in all, never 300 ms without a byte.
    const trickle = (head: string, piece: string, last = '') =>
      new Promise<string>((resolve, reject) => {
        let text = '';
        const socket = connect({ port, host: '127.0.0.1' }, () => {
          socket.write(head);
          let sent = 0;
          const timer = setInterval(() => {
            socket.write(piece);
            if (++sent === 12) {
              clearInterval(timer);
              socket.write(last);
            }
          }, 100);
        });
        socket.on('data', (chunk) => (text += chunk.toString('latin1')));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
    const trickled = trickle('PUT /trickles HTTP/1.1\r\nHost: x\r\nContent-Length: 120\r\nConnection: close\r\n\r\n', '0123456789');
    const trickledChunked = trickle('PUT /trickles-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n', 'a\r\n0123456789\r\n', '0\r\n\r\n');
    const closedAfterMs = await stoppedClient;
    expect(closedAfterMs).toBeGreaterThanOrEqual(250);
    expect(await stoppedChunked).toBeGreaterThanOrEqual(250);
    expect(await outcomes.get('/stops')).toBe('rejected ERR_STREAM_PREMATURE_CLOSE');
    expect(await outcomes.get('/stops-chunked')).toBe('rejected ERR_STREAM_PREMATURE_CLOSE');
    expect(await trickled).toContain('got 120');
    expect(await outcomes.get('/trickles')).toBe('read 120');
    expect(await trickledChunked).toContain('got 120');
    expect(await outcomes.get('/trickles-chunked')).toBe('read 120');
    expect(stalled.sort()).toEqual(['/stops', '/stops-chunked']);
  });

  it('cuts a GET whose reader stops reading for the stall timeout, and tells the exchange it closed', async () => {
    const stalled: string[] = [];
    let closed!: () => void;
    const exchangeClosed = new Promise<void>((resolve) => (closed = resolve));
    const body = Buffer.alloc(64 * 1024 * 1024, 0x42);
    const port = await listen(
      (exchange) => {
        exchange.onClose(closed);
        exchange.setHeader('Content-Length', String(body.byteLength));
        exchange.write(body);
        exchange.end();
      },
      { stallTimeoutMs: 300, onStall: (exchange) => stalled.push(exchange.url) },
    );
    let receivedBytes = 0;
    let reading = true;
    const socket = connect({ port, host: '127.0.0.1' }, () => socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n'));
    socket.on('error', () => undefined);
    // Reads a little, then stops reading: the server's writes back up and no byte moves.
    socket.on('data', (chunk) => {
      receivedBytes += chunk.byteLength;
      if (reading && receivedBytes > 1024 * 1024) {
        reading = false;
        socket.pause();
      }
    });
    const socketClosed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const stopped = Date.now();
    await exchangeClosed;
    // Cut after the stall timeout, not the 5 s keep-alive timeout that follows a whole answer.
    expect(Date.now() - stopped).toBeLessThan(3000);
    expect(stalled).toEqual(['/big']);
    // The reader wakes up: it gets what was already on its way, then the end, never the whole body.
    socket.resume();
    await socketClosed;
    expect(receivedBytes).toBeLessThan(body.byteLength);
  });

  it('closes idle keep-alive connections on closeIdleConnections and leaves a request in progress alone', async () => {
    let release!: () => void;
    const port = await listen((exchange) => {
      if (exchange.url === '/slow') {
        release = () => exchange.end('late');
        return;
      }
      exchange.end('fast');
    });
    const server = servers[0];
    const idle = exchangeRaw(port, ['GET /fast HTTP/1.1\r\nHost: x\r\n\r\n']);
    const slow = exchangeRaw(port, ['GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    await new Promise((resolve) => setTimeout(resolve, 50));
    server.closeIdleConnections();
    const idleResult = await idle;
    expect(idleResult.text).toContain('fast');
    release();
    const slowResult = await slow;
    expect(slowResult.text.endsWith('late')).toBe(true);
  });

  it('reads the next pipelined request only once the socket has taken the answer before it, so a client that never reads cannot queue answers without end', async () => {
    const answer = Buffer.alloc(256 * 1024, 0x61);
    let served = 0;
    const port = await listen((exchange) => {
      served++;
      exchange.end(answer);
    });
    const requests = 200;
    const socket = connect({ port, host: '127.0.0.1' });
    socket.pause();
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /p HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(requests - 1) + 'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 500));
    // 200 answers of 256 KiB are 50 MiB: only what the kernel's buffers hold may have been answered.
    expect(served).toBeLessThan(requests / 4);
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.byteLength));
    socket.resume();
    await new Promise((resolve) => socket.once('close', resolve));
    expect(served).toBe(requests);
    expect(received).toBeGreaterThan(requests * answer.byteLength);
  });

  it('closeIdleConnections leaves a connection whose last answer is still going out: the client gets all of it', async () => {
    const answer = Buffer.alloc(32 * 1024 * 1024, 0x62);
    const port = await listen((exchange) => exchange.end(answer));
    const server = servers[0];
    const socket = connect({ port, host: '127.0.0.1' });
    socket.pause();
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    server.closeIdleConnections();
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.byteLength));
    socket.resume();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(received).toBeGreaterThan(answer.byteLength);
    // Once it is out, the connection is idle and closeIdleConnections ends it.
    server.closeIdleConnections();
    await new Promise((resolve) => socket.once('close', resolve));
  });

  it('speaks the same HTTP/1.1 over TLS (read through data events)', async (context) => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-http1-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
    } catch (error) {
      context.skip(`openssl is needed to make a certificate: ${(error as Error).message}`);
    }
    const cert = readFileSync(join(dir, 'cert.pem'));
    const server = new Http1Server(echo, { tls: { cert, key: readFileSync(join(dir, 'key.pem')) } });
    servers.push(server);
    await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
    const port = (server.server.address() as AddressInfo).port;
    const body = Buffer.alloc(200_000, 0x41);
    const text = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ port, host: '127.0.0.1', ca: cert, servername: 'localhost' }, () => {
        socket.write(`PUT /tls HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n`);
        socket.write(body);
      });
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      socket.on('end', () => resolve(received));
      socket.on('error', reject);
    });
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(text).toContain(`PUT /tls ${body.byteLength}:AAAA`);
    expect(text.endsWith('A'.repeat(100))).toBe(true);
  });
});
