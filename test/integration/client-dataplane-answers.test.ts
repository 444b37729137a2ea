/**
 * The typed client's read() given data plane answers the daemon never gives, and the data plane
 * backoff with transfers under way together: a scripted TCP server stands in for the data plane (a
 * proxy's answer) in front of a real daemon's gRPC. A read's answer whose length is not what the
 * session knows of the array.
 */
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { answerWith, scriptedServer } from '../helpers/scripted-server';

const MiB = 1024 * 1024;

describe('the typed client given data plane answers the daemon never gives', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '128M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0']);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  /** A lease with one 1 MiB host array of random bytes (written over gRPC). */
  async function arrayOfRandomBytes(name: string): Promise<{ lease: LeaseSession; arrayId: string; bytes: Buffer }> {
    const lease = await client.openLease({ clientName: name });
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
        const session = new LeaseSession(client, lease.lease, server.endpoint);
        await session.get(arrayId); // the session learns the array's size: a read to the end is large
        const data = await session.read(arrayId).catch((error: unknown) => error);
        expect(data, name).toBeInstanceOf(Buffer);
        expect((data as Buffer).equals(bytes), name).toBe(true);
        expect(session.transfers, name).toEqual({ http: 0, grpc: 1 });
        // Another server's answer, as a non-JSON error is: the data plane is skipped for a while.
        expect(session.dataPlaneRetryAt, name).toBeGreaterThan(Date.now());
      } finally {
        await server.close();
      }
    }
    await lease.close();
  });
});
