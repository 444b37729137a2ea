/**
 * The typed client's read() given data plane answers the daemon never gives, and the data plane
 * backoff with transfers under way together: a scripted TCP server stands in for the data plane (a
 * proxy's answer, one held back, one cut short) in front of a real daemon's gRPC. A read's answer
 * whose length is not what the session knows of the array, an error answer cut mid-body, a resume
 * over ReadArray answered short, a deadline that passes while the resume's first byte is awaited, and
 * a transfer begun before a data plane failure that completes after it, or before lease.dataPlane
 * was set to another endpoint.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { status } from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { afterHead, answerWith, scriptedServer } from '../helpers/scripted-server';
import { silentProxy } from '../helpers/silent-proxy';

const MiB = 1024 * 1024;

describe('the typed client given data plane answers the daemon never gives', () => {
  const setup = daemonForTests(['--maxbytes', '64M', '--host-maxbytes', '128M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0']);

  /** A lease with one 1 MiB host array of random bytes (written over gRPC). */
  async function arrayOfRandomBytes(name: string): Promise<{ lease: LeaseSession; arrayId: string; bytes: Buffer }> {
    const lease = await setup.client.openLease({ clientName: name });
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY' })).array_id;
    const bytes = randomBytes(MiB);
    await lease.writeGrpc(arrayId, bytes);
    return { lease, arrayId, bytes };
  }

  it('a read to the end answered 200 with more or fewer bytes than the array has (not the daemon\'s answer) is read over gRPC, not a raw RangeError or a short Buffer', async () => {
    const { lease, arrayId, bytes } = await arrayOfRandomBytes('answer-length');
    const answers: Array<[string, string]> = [
      ['larger', `HTTP/1.1 200 OK\r\nContent-Length: ${2 * MiB}\r\n\r\n`],
      ['shorter', `HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(1000)}`],
    ];
    for (const [name, answer] of answers) {
      const server = await scriptedServer(answerWith(answer));
      try {
        const session = new LeaseSession(setup.client, lease.lease, server.endpoint);
        await session.get(arrayId); // the session learns the array's size: a read to the end is large
        const data = await session.read(arrayId).catch((error: unknown) => error);
        expect(data, name).toBeInstanceOf(Buffer);
        expect((data as Buffer).equals(bytes), name).toBe(true);
        expect(session.transfers, name).toEqual({ http: 0, grpc: 1 });
        // Another server's answer, as a non-JSON error is: the data plane is skipped for a while.
        expect(session.dataPlaneRetryAt, name).toBeGreaterThan(0);
      } finally {
        await server.close();
      }
    }
    await lease.close();
  });

  it('a read of a length answered 200/206 with another length that is not the daemon\'s clip at the end is read over gRPC with the backoff set, not a made-up OUT_OF_RANGE', async () => {
    const { lease, arrayId, bytes } = await arrayOfRandomBytes('range-length');
    for (const answer of [
      'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(1000),
      `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-999/${4 * MiB}\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(1000)}`,
    ]) {
      const server = await scriptedServer(answerWith(answer));
      try {
        const session = new LeaseSession(setup.client, lease.lease, server.endpoint);
        const data = await session.read(arrayId, 0, MiB).catch((error: unknown) => error);
        expect(data, answer.slice(0, 30)).toBeInstanceOf(Buffer);
        expect((data as Buffer).equals(bytes)).toBe(true);
        expect(session.transfers).toEqual({ http: 0, grpc: 1 });
        expect(session.dataPlaneRetryAt).toBeGreaterThan(0);
      } finally {
        await server.close();
      }
    }
    await lease.close();
  });

  it('a read of a range answered 206 with the asked length but another Content-Range (a proxy\'s bytes 0-N for N-2N) is read over gRPC, not taken as the asked bytes', async () => {
    const lease = await setup.client.openLease({ clientName: 'range-start' });
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB], placement: 'PLACEMENT_HOST_ONLY' })).array_id;
    const bytes = randomBytes(2 * MiB);
    await lease.writeGrpc(arrayId, bytes);
    const server = await scriptedServer(answerWith(Buffer.concat([Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-${MiB - 1}/${2 * MiB}\r\nContent-Length: ${MiB}\r\n\r\n`), bytes.subarray(0, MiB)])));
    try {
      const session = new LeaseSession(setup.client, lease.lease, server.endpoint);
      const data = await session.read(arrayId, MiB, MiB);
      expect(data.equals(bytes.subarray(MiB)), 'the bytes read are those asked for, not the first MiB').toBe(true);
      expect(session.transfers).toEqual({ http: 0, grpc: 1 });
      expect(session.dataPlaneRetryAt).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
    await lease.close();
  });

  it('a write answered 200 without the daemon\'s bytes_written (a proxy\'s) is written again over gRPC, not UNAVAILABLE', async () => {
    const { lease, arrayId } = await arrayOfRandomBytes('put-not-daemon');
    const server = await scriptedServer((socket: Socket) => {
      let seen = 0;
      socket.on('data', (chunk: Buffer) => {
        if (seen === 0) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        seen += chunk.byteLength;
        if (seen >= MiB) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    try {
      const session = new LeaseSession(setup.client, lease.lease, server.endpoint);
      const written = randomBytes(MiB);
      expect(await session.write(arrayId, written)).toBe(MiB);
      expect(session.transfers).toEqual({ http: 0, grpc: 1 });
      expect(session.dataPlaneRetryAt).toBeGreaterThan(0);
      expect((await lease.readGrpc(arrayId)).equals(written)).toBe(true);
    } finally {
      await server.close();
    }
    await lease.close();
  });

  it('a read whose answer stalls mid-body (no byte for stallTimeoutMs) is finished over gRPC from the first byte it lacks, and the data plane is skipped for the backoff', async () => {
    const { lease, arrayId, bytes } = await arrayOfRandomBytes('stalled-read');
    const stalling = new TensormemClient(setup.daemon.tcpAddress, { dataPlane: { stallTimeoutMs: 300 } });
    // The daemon's first 1000 bytes, then nothing, the connection left open (a proxy or path that hung).
    const server = await scriptedServer(answerWith(Buffer.concat([Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-${MiB - 1}/${MiB}\r\nContent-Length: ${MiB}\r\n\r\n`), bytes.subarray(0, 1000)])));
    try {
      const session = new LeaseSession(stalling, lease.lease, server.endpoint);
      const started = Date.now();
      const data = await session.read(arrayId, 0, MiB);
      expect(data.equals(bytes)).toBe(true);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(session.transfers).toEqual({ http: 0, grpc: 1 });
      expect(session.dataPlaneRetryAt).toBeGreaterThan(0);
    } finally {
      stalling.close();
      await server.close();
    }
    await lease.close();
  });

  it('a read whose error answer is cut mid-body (a proxy\'s 502 page) is read whole over gRPC: none of the Buffer is taken as read from that page', async () => {
    const { lease, arrayId, bytes } = await arrayOfRandomBytes('error-cut');
    const server = await scriptedServer(answerWith(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n${'<'.repeat(500)}`, true));
    try {
      const session = new LeaseSession(setup.client, lease.lease, server.endpoint);
      const data = await session.read(arrayId, 0, MiB);
      expect(data.subarray(0, 500).equals(bytes.subarray(0, 500))).toBe(true);
      expect(data.equals(bytes)).toBe(true);
      expect(session.transfers).toEqual({ http: 0, grpc: 1 });
    } finally {
      await server.close();
    }
    await lease.close();
  });

  it('a read whose answer of another length than the array\'s is cut mid-body (a proxy\'s 200 page closed early) is read whole over gRPC: none of the Buffer is taken from that page', async () => {
    const { lease, arrayId, bytes } = await arrayOfRandomBytes('other-length-cut');
    // Reads to the end (the session knows the array's 1 MiB) answered with a 2,000-byte body of which
    // 1,000 come before the close. (A read of a length is refused another length before its body.)
    for (const [name, answer] of [
      ['200', `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2000\r\n\r\n${'<'.repeat(1000)}`],
      ['206', `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1999/2000\r\nContent-Length: 2000\r\n\r\n${'<'.repeat(1000)}`],
    ] as const) {
      const server = await scriptedServer(answerWith(answer, true));
      try {
        const session = new LeaseSession(setup.client, lease.lease, server.endpoint);
        await session.get(arrayId); // the session learns the array's size: a read to the end is large
        const data = await session.read(arrayId);
        expect(data.subarray(0, 1000).equals(bytes.subarray(0, 1000)), name).toBe(true);
        expect(data.equals(bytes), name).toBe(true);
        expect(session.transfers, name).toEqual({ http: 0, grpc: 1 });
        // Another server's answer, as when it is not cut: the data plane is skipped for a while.
        expect(session.dataPlaneRetryAt, name).toBeGreaterThan(0);
      } finally {
        await server.close();
      }
    }
    await lease.close();
  });

  /**
   * A client whose ReadArray calls of more than `longerThan` bytes end, without an error, after
   * `keep` bytes of the first message: a daemon (or a gRPC proxy) that answers short.
   */
  function shortAnsweringClient(longerThan: number, keep: number): TensormemClient {
    const shortClient = new TensormemClient(setup.daemon.tcpAddress);
    const readArray = shortClient.arrays.ReadArray.bind(shortClient.arrays) as (...args: unknown[]) => EventEmitter & { cancel(): void };
    (shortClient.arrays as unknown as { ReadArray: unknown }).ReadArray = (request: { length: number }, ...rest: unknown[]) => {
      const stream = readArray(request, ...rest);
      if (request.length <= longerThan) return stream;
      const short = Object.assign(new EventEmitter(), { cancel: () => stream.cancel() });
      stream.on('error', () => {}); // the cancel below
      stream.once('data', (message: { data: Buffer }) => {
        stream.cancel();
        short.emit('data', { data: message.data.subarray(0, keep) });
        short.emit('end');
      });
      return short;
    };
    return shortClient;
  }

  it('a cut read whose resume over ReadArray is answered short fails UNAVAILABLE saying so, never returning bytes it did not read', async () => {
    const { lease, arrayId } = await arrayOfRandomBytes('resume-short');
    const truncated = await scriptedServer(answerWith(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-${MiB - 1}/${MiB}\r\nContent-Length: ${MiB}\r\n\r\n${'x'.repeat(1000)}`, true));
    // The rest answered short; then the first byte answered empty (nothing at all of the rest is read).
    for (const [name, longerThan, keep, got, of] of [
      ['rest', 1, 100, 100, MiB - 1001],
      ['first byte', 0, 0, 0, 1],
    ] as const) {
      const shortClient = shortAnsweringClient(longerThan, keep);
      try {
        const session = new LeaseSession(shortClient, lease.lease, truncated.endpoint);
        const error = (await session.read(arrayId, 0, MiB).catch((caught: unknown) => caught)) as TensormemClientError;
        expect(error, name).toBeInstanceOf(TensormemClientError);
        expect(error.code, name).toBe(status.UNAVAILABLE);
        expect(error.details, name).toMatch(new RegExp(`ReadArray of the rest of array ${arrayId} from byte ${name === 'rest' ? 1001 : 1000} answered ${got} of ${of} bytes \\(the data plane GET was cut: .*the answer ended after 1000 of ${MiB} bytes\\)$`));
      } finally {
        shortClient.close();
      }
    }
    await truncated.close();
    await lease.close();
  });

  it('a cut read whose deadline passes while its first missing byte is awaited over gRPC is DEADLINE_EXCEEDED, not UNAVAILABLE', async () => {
    const { lease, arrayId } = await arrayOfRandomBytes('resume-deadline');
    const grpcProxy = await silentProxy(setup.daemon.tcpAddress);
    const truncated = await scriptedServer(answerWith(`HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-${MiB - 1}/${MiB}\r\nContent-Length: ${MiB}\r\n\r\n${'x'.repeat(1000)}`, true));
    const slowClient = new TensormemClient(grpcProxy.address, { deadlineMs: 1500 });
    try {
      await slowClient.memoryInfo(); // connected through the proxy before it goes silent
      grpcProxy.goSilent();
      const session = new LeaseSession(slowClient, lease.lease, truncated.endpoint);
      const started = Date.now();
      const error = (await session.read(arrayId, 0, MiB).catch((caught: unknown) => caught)) as TensormemClientError;
      expect(error).toBeInstanceOf(TensormemClientError);
      expect(error.code).toBe(status.DEADLINE_EXCEEDED);
      expect(error.details).toMatch(/the data plane GET was cut: .*the answer ended after 1000 of 1048576 bytes/);
      expect(Date.now() - started).toBeLessThan(4000);
    } finally {
      slowClient.close();
      await grpcProxy.close();
      await truncated.close();
    }
    await lease.close();
  });

  const BAD_GATEWAY = 'HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\nbad gateway';

  /** A data plane whose first connection is answered `held` once `release()` is called; every later one a proxy's HTML 502. */
  async function heldFirstAnswer(held: string): Promise<{ server: Awaited<ReturnType<typeof scriptedServer>>; firstHead: Promise<void>; release(): void }> {
    let connections = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let firstHeadIn!: () => void;
    const firstHead = new Promise<void>((resolve) => (firstHeadIn = resolve));
    const server = await scriptedServer((socket: Socket) => {
      if (++connections === 1) {
        afterHead(socket, () => {
          firstHeadIn();
          void released.then(() => socket.write(held));
        });
      } else answerWith(BAD_GATEWAY, true)(socket);
    });
    return { server, firstHead, release };
  }

  it('a transfer begun before a data plane failure that completes after it does not end the backoff that failure set', async () => {
    const { lease, arrayId } = await arrayOfRandomBytes('stale-success');
    const conflict = JSON.stringify({ code: 409, status: 'FAILED_PRECONDITION', reason: 'FAILED_PRECONDITION', message: 'the daemon\'s JSON error', metadata: {} });
    for (const held of [
      `HTTP/1.1 200 OK\r\nContent-Length: ${MiB}\r\n\r\n${'y'.repeat(MiB)}`,
      `HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: ${conflict.length}\r\n\r\n${conflict}`,
    ]) {
      const { server, firstHead, release } = await heldFirstAnswer(held);
      try {
        const session = new LeaseSession(setup.client, lease.lease, server.endpoint);
        const first = session.read(arrayId, 0, MiB).catch((error: unknown) => error);
        await firstHead;
        await session.read(arrayId, 0, MiB); // a 502: over gRPC, and the data plane skipped for 1 s
        const retryAt = session.dataPlaneRetryAt;
        expect(retryAt).toBeGreaterThan(Date.now());
        release();
        await first;
        expect(session.transfers.grpc).toBe(1);
        expect(session.dataPlaneRetryAt).toBe(retryAt);
      } finally {
        await server.close();
      }
    }
    await lease.close();
  });

  it('setting lease.dataPlane: a transfer under way to the endpoint it replaced that fails afterwards does not set the backoff for the new one', async () => {
    const { lease, arrayId, bytes } = await arrayOfRandomBytes('moved');
    const daemonDataPlane = lease.dataPlane!;
    const old = await heldFirstAnswer(BAD_GATEWAY);
    try {
      const session = new LeaseSession(setup.client, lease.lease, old.server.endpoint);
      const first = session.read(arrayId, 0, MiB);
      await old.firstHead;
      session.dataPlane = daemonDataPlane; // the data plane moved
      old.release();
      expect((await first).equals(bytes)).toBe(true); // the old endpoint's 502: read over gRPC
      expect(session.dataPlaneRetryAt).toBe(0);
      expect((await session.read(arrayId, 0, MiB)).equals(bytes)).toBe(true);
      expect(session.transfers).toEqual({ http: 1, grpc: 1 });
    } finally {
      await old.server.close();
    }
    await lease.close();
  });

  it('a read whose Buffer this process cannot allocate (V8\'s "Array buffer allocation failed") is RESOURCE_EXHAUSTED naming the bytes, over HTTP and gRPC, not a raw RangeError', async () => {
    const { lease, arrayId } = await arrayOfRandomBytes('no-memory');
    const huge = 3 * 1024 * MiB; // under buffer.constants.MAX_LENGTH: only the memory for it is missing
    const allocUnsafe = Buffer.allocUnsafe.bind(Buffer);
    const spy = vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((size: number) => {
      if (size === huge) throw new RangeError('Array buffer allocation failed');
      return allocUnsafe(size);
    });
    try {
      // A session that has not seen the array's size: the daemon would answer OUT_OF_RANGE, once asked.
      const session = new LeaseSession(setup.client, lease.lease, lease.dataPlane);
      for (const [name, read] of [
        ['read', () => session.read(arrayId, 0, huge)],
        ['readGrpc', () => session.readGrpc(arrayId, 0, huge)],
      ] as const) {
        const error = (await read().catch((caught: unknown) => caught)) as TensormemClientError;
        expect(error, name).toBeInstanceOf(TensormemClientError);
        expect(error.code, name).toBe(status.RESOURCE_EXHAUSTED);
        expect(error.details, name).toBe(`a read of ${huge} bytes of array ${arrayId}: this process could not allocate a Buffer that large (Array buffer allocation failed): read it in ranges`);
        expect(error.errorMetadata, name).toEqual({ field: 'length' });
      }
      expect(session.transfers).toEqual({ http: 0, grpc: 0 });
    } finally {
      spy.mockRestore();
    }
    await lease.close();
  });
});
