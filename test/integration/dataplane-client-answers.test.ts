/**
 * The data plane client (getArray, putArray) given answers that HTTP servers and proxies send and the
 * daemon never does: interim 1xx answers before the final one, framing the daemon never uses
 * (duplicate, folded or malformed Content-Length, Transfer-Encoding), a 200 to a PUT without
 * bytes_written, a range answer of another length. A scripted TCP server stands in for the data plane.
 */
import { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DataPlaneConnectionError, DataPlaneHttpError, getArray, putArray } from '../../src/dataplane/data-plane-client';
import { DataPlaneConnections } from '../../src/dataplane/data-plane-connections';
import { afterHead, answerWith, readPut, scriptedServer } from '../helpers/scripted-server';

type Server = Awaited<ReturnType<typeof scriptedServer>>;

describe('the data plane client given answers of other HTTP servers', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });
  async function serve(onConnection: (socket: Socket) => void): Promise<Server> {
    const server = await scriptedServer(onConnection);
    servers.push(server);
    return server;
  }

  it('skips interim answers other than 100 (103 Early Hints, 102 Processing) and reads the final one', async () => {
    for (const interim of ['HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n', 'HTTP/1.1 102 Processing\r\n\r\n']) {
      const server = await serve(answerWith(`${interim}HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd`));
      expect((await getArray(server.endpoint, 't', 'a')).toString(), interim).toBe('abcd');
      expect((await getArray(server.endpoint, 't', 'a', 0, 4)).toString(), interim).toBe('abcd');
    }
    // 101 switches the connection to another protocol, which no request here asked for.
    const upgraded = await serve(answerWith('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
    const error = await getArray(upgraded.endpoint, 't', 'a').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DataPlaneConnectionError);
    expect((error as Error).message).toMatch(/HTTP 101 Switching Protocols to a request that asked for no upgrade/);
  });

  it('a PUT sends its body after a 100 that follows a 103, and reads the final answer after it', async () => {
    let body = '';
    const server = await serve((socket) =>
      readPut(
        socket,
        () => socket.write('HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n'),
        (received) => {
          body = received;
          if (body.length === 4) socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n{"bytes_written":4}');
        },
      ),
    );
    expect(await putArray(server.endpoint, 't', 'a', Buffer.from('wxyz'))).toBe(4);
    expect(body).toBe('wxyz');
  });

  it('a PUT whose Expect: 100-continue gets no answer (a server or proxy that ignores it) sends its body after 1 s, as curl does, not after the stall timeout', async () => {
    let body = '';
    let headAt = 0;
    let bodyAt = 0;
    const server = await serve((socket) =>
      readPut(
        socket,
        () => (headAt = Date.now()),
        (received) => {
          body = received;
          if (bodyAt === 0) bodyAt = Date.now();
          if (body.length === 4) socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n{"bytes_written":4}');
        },
      ),
    );
    expect(await putArray(server.endpoint, 't', 'a', Buffer.from('wxyz'), 0, { stallTimeoutMs: 10_000 })).toBe(4);
    expect(body).toBe('wxyz');
    expect(bodyAt - headAt).toBeGreaterThanOrEqual(900);
    expect(bodyAt - headAt).toBeLessThan(5000);
  });

  it('keeps the connection of a keep-alive answer that came after a 103 for the next transfer', async () => {
    const server = await serve(answerWith('HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\nKeep-Alive: timeout=5\r\n\r\nabcd'));
    const connections = new DataPlaneConnections();
    try {
      await getArray(server.endpoint, 't', 'a', 0, 0, undefined, { connections });
      expect(connections.idleCount).toBe(1);
    } finally {
      connections.close();
    }
  });

  /** What getArray (to the end) gives for `answer`: the body as text, or the error. */
  async function getAnswered(answer: string, end = false): Promise<string | Error> {
    const server = await serve(answerWith(answer, end));
    return getArray(server.endpoint, 't', 'a', 0, 0, undefined, { stallTimeoutMs: 2000 }).then(
      (data) => data.toString('latin1'),
      (error: unknown) => error as Error,
    );
  }

  it('reads a Content-Length sent twice with one value, or folded onto a second line (obs-fold), as that length', async () => {
    for (const head of ['Content-Length: 4\r\nContent-Length: 4', 'Content-Length: 4, 4', 'Content-Length:\r\n 4', 'content-length:4']) {
      expect(await getAnswered(`HTTP/1.1 200 OK\r\n${head}\r\n\r\nabcd`), head).toBe('abcd');
    }
  });

  it('an answer whose Content-Length is not one decimal number, or that is framed otherwise (chunked, until close), is another server\'s, never a body of a made-up length', async () => {
    const answers: Array<[string, RegExp]> = [
      ['Content-Length: +4\r\n\r\nabcd', /Content-Length "\+4" is not one decimal number/],
      ['Content-Length: 0x4\r\n\r\nabcd', /Content-Length "0x4" is not one decimal number/],
      ['Content-Length: 4.0\r\n\r\nabcd', /Content-Length "4\.0" is not one decimal number/],
      ['Content-Length: 4e0\r\n\r\nabcd', /Content-Length "4e0" is not one decimal number/],
      ['Content-Length: \r\n\r\nabcd', /Content-Length "" is not one decimal number/],
      ['Content-Length: 4\r\nContent-Length: 2\r\n\r\nabcd', /Content-Length "4, 2" is not one decimal number/],
      ['Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n', /Transfer-Encoding "chunked": a body framed otherwise than by Content-Length/],
      ['Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4\r\nabcd\r\n0\r\n\r\n', /Transfer-Encoding "chunked": a body framed otherwise than by Content-Length/],
      ['Connection: close\r\n\r\nabcd', /HTTP 200 without a Content-Length/],
    ];
    for (const [rest, message] of answers) {
      const error = await getAnswered(`HTTP/1.1 200 OK\r\n${rest}`, true);
      expect(error, rest).toBeInstanceOf(DataPlaneConnectionError);
      expect((error as Error).message, rest).toMatch(message);
    }
  });

  it('a status line that is not HTTP/1.x and three digits, and a head past 64 KiB, are another server\'s answer (sent another way)', async () => {
    for (const answer of ['HTTP/1.1 2000 OK\r\nContent-Length: 4\r\n\r\nabcd', `HTTP/1.1 200 OK\r\nX-Padding: ${'p'.repeat(70 * 1024)}`]) {
      const error = await getAnswered(answer);
      expect(error, answer.slice(0, 20)).toBeInstanceOf(DataPlaneConnectionError);
    }
  });

  it('a 304 or 204 has no body, whatever its Content-Length says: not waited for until the stall timeout', async () => {
    for (const status of ['304 Not Modified', '204 No Content']) {
      const started = Date.now();
      const error = await getAnswered(`HTTP/1.1 ${status}\r\nContent-Length: 4\r\n\r\n`);
      expect(error, status).toBeInstanceOf(DataPlaneConnectionError);
      expect((error as Error).message, status).toMatch(new RegExp(`HTTP ${status.slice(0, 3)} without the daemon's JSON error`));
      expect(Date.now() - started, status).toBeLessThan(1000);
    }
  });

  it('a range answered with another length is OUT_OF_RANGE only when it is the daemon\'s clip at the array\'s end; any other is another server\'s answer', async () => {
    // The daemon clips a range that passes the end: 206 from the offset to the last byte, of the array's size.
    const clipped = await serve(answerWith('HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-3/4\r\nContent-Length: 2\r\n\r\ncd'));
    const outOfRange = await getArray(clipped.endpoint, 't', 'a', 2, 4).catch((error: unknown) => error);
    expect(outOfRange).toBeInstanceOf(DataPlaneHttpError);
    expect((outOfRange as DataPlaneHttpError).body).toMatchObject({ status: 'OUT_OF_RANGE', message: 'length: 4 bytes at offset 2 pass the end of array a (4 bytes)' });
    const answers = [
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ncd', // a whole "array" of 2 bytes, though a range was asked
      'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nabcdefgh', // a Range ignored
      'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-9/100\r\nContent-Length: 8\r\n\r\nabcdefgh', // longer than asked
      'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-3/100\r\nContent-Length: 2\r\n\r\ncd', // short, not at the end
      'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1/2\r\nContent-Length: 2\r\n\r\ncd', // another range
      'HTTP/1.1 206 Partial Content\r\nContent-Length: 2\r\n\r\ncd', // no Content-Range
    ];
    for (const answer of answers) {
      const server = await serve(answerWith(answer));
      const error = await getArray(server.endpoint, 't', 'a', 2, 4).catch((caught: unknown) => caught);
      expect(error, answer).toBeInstanceOf(DataPlaneConnectionError);
      expect((error as Error).message, answer).toMatch(/a read of 4 bytes at offset 2 of array a was answered HTTP 20[06] with \d+ bytes.*not the daemon's answer/);
    }
  });

  it('a range answered with the asked length is checked by its Content-Range: another start, none, a multipart body, or a 200 to a range from a later offset is another server\'s answer', async () => {
    const bytes = (count: number) => 'x'.repeat(count);
    const wrong: Array<[string, number, number, string]> = [
      ['bytes 0-99 for 100-199', 100, 100, `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-99/1000\r\nContent-Length: 100\r\n\r\n${bytes(100)}`],
      ['no Content-Range', 100, 100, `HTTP/1.1 206 Partial Content\r\nContent-Length: 100\r\n\r\n${bytes(100)}`],
      ['multipart/byteranges', 100, 100, `HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=b\r\nContent-Length: 100\r\n\r\n${bytes(100)}`],
      ['a last byte past the total', 100, 100, `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-199/150\r\nContent-Length: 100\r\n\r\n${bytes(100)}`],
      ['a Content-Range of another length than the body', 100, 100, `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-149/1000\r\nContent-Length: 100\r\n\r\n${bytes(100)}`],
      ['a 200 (the whole array, from byte 0) to a range at 100', 100, 100, `HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n${bytes(100)}`],
      ['to the end: bytes 0-899 for 100-', 100, 0, `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-899/1000\r\nContent-Length: 900\r\n\r\n${bytes(900)}`],
      ['to the end: a 200 of the whole array', 100, 0, `HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${bytes(1000)}`],
      ['to the end: bytes 100-499 of 1000, short of the end', 100, 0, `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-499/1000\r\nContent-Length: 400\r\n\r\n${bytes(400)}`],
    ];
    for (const [name, offset, length, answer] of wrong) {
      const server = await serve(answerWith(answer));
      const error = await getArray(server.endpoint, 't', 'a', offset, length).catch((caught: unknown) => caught);
      expect(error, name).toBeInstanceOf(DataPlaneConnectionError);
      expect((error as Error).message, name).toMatch(new RegExp(`a read of ${length === 0 ? 'the rest' : `${length} bytes`} at offset ${offset} of array a was answered HTTP 20[06] with \\d+ bytes.*not the daemon's answer`));
    }
    // The daemon's answers, and a range whose total is unknown (RFC 9110 §14.4: "*"), are taken.
    const right: Array<[string, number, number, string]> = [
      ['bytes 100-199', 100, 100, `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-199/1000\r\nContent-Length: 100\r\n\r\n${bytes(100)}`],
      ['bytes 100-199/*', 100, 100, `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-199/*\r\nContent-Length: 100\r\n\r\n${bytes(100)}`],
      ['to the end: bytes 100-999/1000', 100, 0, `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-999/1000\r\nContent-Length: 900\r\n\r\n${bytes(900)}`],
      ['a 200 to a range from byte 0', 0, 100, `HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n${bytes(100)}`],
    ];
    for (const [name, offset, length, answer] of right) {
      const server = await serve(answerWith(answer));
      expect((await getArray(server.endpoint, 't', 'a', offset, length)).byteLength, name).toBe(length || 900);
    }
  });

  it('a PUT refused part-way through its body (the server answers, then closes or resets while the client still sends) reports that answer, not the write\'s EPIPE or ECONNRESET', async () => {
    const MiB = 1024 * 1024;
    const refusal = JSON.stringify({ code: 413, status: 'RESOURCE_EXHAUSTED', reason: 'QUOTA_EXCEEDED', message: 'body too large', metadata: { field: 'body' } });
    for (const close of ['destroy', 'reset', 'end'] as const) {
      let bodyBytes = 0;
      const server = await serve((socket) => {
        let answered = false;
        readPut(
          socket,
          () => socket.write('HTTP/1.1 100 Continue\r\n\r\n'),
          (received) => {
            bodyBytes = received.length;
            if (answered || received.length < MiB) return;
            answered = true;
            socket.write(`HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${refusal.length}\r\n\r\n${refusal}`);
            // destroy with the body unread sends a reset at once; end closes our side only.
            if (close === 'destroy') socket.destroy();
            else if (close === 'reset') setTimeout(() => socket.resetAndDestroy(), 20);
            else socket.end();
          },
        );
      });
      const error = await putArray(server.endpoint, 't', 'a', Buffer.alloc(64 * MiB, 1)).catch((caught: unknown) => caught);
      expect(bodyBytes, close).toBeGreaterThanOrEqual(MiB);
      expect(bodyBytes, close).toBeLessThan(64 * MiB);
      expect(error, close).toBeInstanceOf(DataPlaneHttpError);
      expect((error as DataPlaneHttpError).body, close).toMatchObject({ code: 413, reason: 'QUOTA_EXCEEDED', message: 'body too large' });
    }
  });

  it('a 200 to a PUT without the daemon\'s bytes_written (a proxy\'s "ok") is another server\'s answer, saying how much of the body went out', async () => {
    for (const body of ['ok', '{"status":"ok"}', '{"bytes_written":"4"}']) {
      const server = await serve((socket) =>
        readPut(
          socket,
          () => socket.write('HTTP/1.1 100 Continue\r\n\r\n'),
          (received) => received.length === 4 && socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
        ),
      );
      const error = await putArray(server.endpoint, 't', 'a', Buffer.from('wxyz')).catch((caught: unknown) => caught);
      expect(error, body).toBeInstanceOf(DataPlaneConnectionError);
      expect((error as DataPlaneConnectionError).bodyBytesSent, body).toBe(4);
      expect((error as Error).message, body).toMatch(/a PUT answered 200 without the daemon's bytes_written/);
    }
  });

  it('does not keep a connection whose answer without a body came with bytes after it (an answer to no request)', async () => {
    const server = await serve(answerWith('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil'));
    const connections = new DataPlaneConnections();
    try {
      expect((await getArray(server.endpoint, 't', 'a', 0, 0, undefined, { connections })).byteLength).toBe(0);
      expect(connections.idleCount).toBe(0);
    } finally {
      connections.close();
    }
  });

  it('does not keep the connection of an error answer without Content-Length (its body runs until the server closes it)', async () => {
    // A proxy's 503 page, framed by the close (RFC 9112 §6.3): its body comes after the head, later.
    const server = await serve((socket) =>
      afterHead(socket, () => {
        socket.write('HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n\r\n');
        setTimeout(() => socket.write('<html>busy</html>'), 200);
      }),
    );
    const connections = new DataPlaneConnections();
    try {
      expect(await getArray(server.endpoint, 't', 'a', 0, 0, undefined, { connections }).catch((error: unknown) => error)).toBeInstanceOf(DataPlaneConnectionError);
      expect(connections.idleCount).toBe(0);
    } finally {
      connections.close();
    }
  });

  it('a 408 on a kept-alive connection (the server timed it out as the request went out) is sent once more on a new connection', async () => {
    let connectionCount = 0;
    const server = await serve((socket) => {
      const connection = ++connectionCount;
      let requests = 0;
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        head += chunk.toString('latin1');
        while (head.includes('\r\n\r\n')) {
          head = head.slice(head.indexOf('\r\n\r\n') + 4);
          requests++;
          if (connection === 1 && requests === 2) socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
          else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 4\r\nKeep-Alive: timeout=5\r\n\r\n${connection}${requests}ab`);
        }
      });
    });
    const connections = new DataPlaneConnections();
    try {
      expect((await getArray(server.endpoint, 't', 'a', 0, 0, undefined, { connections })).toString()).toBe('11ab');
      expect((await getArray(server.endpoint, 't', 'a', 0, 0, undefined, { connections })).toString()).toBe('21ab');
      expect(connections.stats).toEqual({ opened: 2, reused: 1 });
      // On a new connection a 408 is the answer: another server's, sent another way.
      const fresh = await serve(answerWith('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', true));
      expect(await getArray(fresh.endpoint, 't', 'a', 0, 0, undefined, { connections }).catch((error: unknown) => error)).toBeInstanceOf(DataPlaneConnectionError);
    } finally {
      connections.close();
    }
  });

  it('an answer not read into a destination (an error, a PUT\'s 200) past 1 MiB is another server\'s: not collected into memory', async () => {
    const huge = 64 * 1024 * 1024 * 1024;
    const server = await serve(answerWith(`HTTP/1.1 502 Bad Gateway\r\nContent-Length: ${huge}\r\n\r\n<html>`));
    const error = await getArray(server.endpoint, 't', 'a', 0, 0, undefined, { stallTimeoutMs: 2000 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DataPlaneConnectionError);
    expect((error as Error).message).toMatch(new RegExp(`HTTP 502 with a body of ${huge} bytes`));
  });
});
