/**
 * A data plane PUT whose lease ends while its body is still arriving (the client stalled, or is slow):
 * no byte of it can be written any more, yet the connection waited for the rest of the body until
 * --data-stall-timeout (60 s here) while a GET of an ended lease is cut ENDED_READ_GRACE_MS after the
 * end. The PUT is answered once its lease ends, UNAUTHENTICATED (401) LEASE_EXPIRED with close_reason,
 * as a write after the end is, and the connection closed.
 */
import { createConnection, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { ENDED_READ_GRACE_MS } from '../../src/service/array-service';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a stalled data plane PUT of a lease that ends', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;

  beforeAll(async () => {
    // A long --data-stall-timeout: the test ends long before it could cut anything.
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0', '--data-stall-timeout', '60s']);
    client = new TensormemClient(daemon.tcpAddress);
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it.each(['Content-Length', 'chunked'])('answers 401 LEASE_EXPIRED with close_reason once the lease ends, and closes the connection (a %s body)', async (framing) => {
    const lease = await client.openLease({ clientName: 'stalled-writer' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB], zero: true });
    const url = new URL(dataAddress);
    let received = '';
    let answered: number | undefined;
    let ended: number | undefined;
    const socket: Socket = createConnection({ host: url.hostname, port: Number(url.port) }, () => {
      // A chunked body is one chunk of the whole array's size here.
      const framingLines = framing === 'chunked' ? `Transfer-Encoding: chunked\r\n\r\n${(16 * MiB).toString(16)}\r\n` : `Content-Length: ${16 * MiB}\r\n\r\n`;
      socket.write(`PUT /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\n${framingLines}`);
      // Half the body, then nothing.
      socket.write(Buffer.alloc(8 * MiB, 7));
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      answered ??= performance.now();
    });
    socket.on('end', () => (ended ??= performance.now()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await sleep(500);
    expect(received).toBe('');

    await lease.close();
    const leaseEnded = performance.now();
    while (ended === undefined && performance.now() - leaseEnded < ENDED_READ_GRACE_MS + 3000) await sleep(50);
    expect(answered, `no answer ${Math.round(performance.now() - leaseEnded)} ms after the lease ended (the PUT waits for --data-stall-timeout)`).toBeDefined();
    expect(answered! - leaseEnded).toBeLessThan(ENDED_READ_GRACE_MS);
    expect(ended, 'the daemon did not end the connection after its answer').toBeDefined();
    expect(received).toMatch(/^HTTP\/1\.1 401 /);
    expect(received).toMatch(/\r\nConnection: close\r\n/i);
    const body = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as { reason: string; metadata: Record<string, string> };
    expect(body.reason).toBe('LEASE_EXPIRED');
    expect(body.metadata.close_reason).toBe('closed');
    // The rest of the body is dropped, not written nor taken for a next request.
    socket.end(Buffer.alloc(8 * MiB, 7));
    await closed;
    expect(received.match(/HTTP\/1\.1 /g)).toHaveLength(1);
  }, 30_000);
});
