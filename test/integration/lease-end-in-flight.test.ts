/**
 * A call under way when its lease ends (CloseLease from elsewhere, an admin's EvictLease, expiry)
 * fails as the lease's token does from then on: UNAUTHENTICATED, reason LEASE_EXPIRED, saying why
 * (README "An ended lease's token"). Before, a WriteArray or ReadArray stream, a data plane PUT and an
 * ExportArray in flight answered FAILED_PRECONDITION "array … was freed" or NOT_FOUND (the client had
 * freed nothing), and a DuplicateArray or SyncArray whose copy was running answered OK with an array already gone.
 * And a trainer killed in the middle of a WriteArray stream is no internal error.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface CallError {
  code: number;
  details: string;
  metadata?: { get(key: string): unknown[] };
}

describe('a call in flight when its lease ends', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '512M', '--host-maxbytes', '512M', '--pool-chunk', '16M', '--async-copy-threshold', '64K', '--data-listen', '127.0.0.1:0']);
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  async function expectNothingHeld(): Promise<void> {
    const info = await client.memoryInfo();
    expect(info.devices[0].used_bytes).toBe(0);
    expect(info.host!.used_bytes).toBe(0);
    const snapshot = await client.memorySnapshot();
    expect(snapshot.pools.flatMap((pool) => pool.segments.flatMap((segment) => segment.blocks.filter((block) => !block.free)))).toEqual([]);
  }

  it('fails a WriteArray stream whose lease is evicted between chunks with LEASE_EXPIRED', async () => {
    const lease = await client.openLease();
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] })).array_id;
    let stream!: ReturnType<typeof client.arrays.WriteArray>;
    const answer = new Promise<CallError>((resolve) => {
      stream = client.arrays.WriteArray(client.metadata(lease.token), (error) => resolve(error ? (error as unknown as CallError) : { code: status.OK, details: '' }));
    });
    stream.write({ header: { array_id: arrayId, offset: 0 } } as never);
    stream.write({ chunk: Buffer.alloc(MiB, 1) });
    await sleep(200);
    await client.evictLease(lease.leaseId);
    stream.write({ chunk: Buffer.alloc(MiB, 2) });
    stream.end();
    const error = await answer;
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(error.details).toBe(`lease ${lease.leaseId} was evicted by an admin: open a new lease`);
    await expectNothingHeld();
  });

  it('fails a ReadArray stream whose lease is closed mid-stream with LEASE_EXPIRED', async () => {
    const lease = await client.openLease();
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB] })).array_id;
    const stream = client.arrays.ReadArray({ array_id: arrayId, offset: 0, length: 0 }, client.metadata(lease.token));
    let received = 0;
    const ended = new Promise<CallError>((resolve) => {
      stream.on('error', (error) => resolve(error as unknown as CallError));
      stream.on('end', () => resolve({ code: status.OK, details: '' }));
    });
    await new Promise<void>((resolve) =>
      stream.once('data', (message: { data: Buffer }) => {
        received += message.data.byteLength;
        stream.pause();
        resolve();
      }),
    );
    // The daemon stops reading the array once flow control holds its messages back.
    await sleep(300);
    await lease.close();
    stream.on('data', (message: { data: Buffer }) => (received += message.data.byteLength));
    stream.resume();
    const error = await ended;
    expect(received).toBeLessThan(64 * MiB);
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(error.details).toBe(`lease ${lease.leaseId} was closed by CloseLease: open a new lease`);
    await expectNothingHeld();
  });

  it('answers a data plane PUT whose lease is evicted mid-body 401 LEASE_EXPIRED', async () => {
    const lease = await client.openLease();
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB] })).array_id;
    const url = new URL(dataAddress);
    const answer = new Promise<{ statusCode: number; body: { reason?: string; message?: string; metadata?: Record<string, string> } }>((resolve, reject) => {
      const put = request(
        { host: url.hostname, port: Number(url.port), method: 'PUT', path: `/v1/arrays/${arrayId}`, headers: { Authorization: `Bearer ${lease.token}`, 'Content-Length': String(8 * MiB) } },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (piece: string) => (text += piece));
          response.on('end', () => resolve({ statusCode: response.statusCode!, body: JSON.parse(text) }));
        },
      );
      put.on('error', reject);
      put.write(Buffer.alloc(MiB, 3));
      void sleep(200)
        .then(() => client.evictLease(lease.leaseId))
        .then(() => put.end(Buffer.alloc(7 * MiB, 4)), reject);
    });
    const { statusCode, body } = await answer;
    expect(statusCode).toBe(401);
    expect(body.reason).toBe('LEASE_EXPIRED');
    expect(body.metadata).toMatchObject({ close_reason: 'evicted', lease_id: lease.leaseId });
    await expectNothingHeld();
  });

  it('does not answer OK to a DuplicateArray whose lease ended during the copy', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const lease = await client.openLease();
      const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [128 * MiB] })).array_id;
      const duplicate = lease.duplicate(arrayId, { placement: 'PLACEMENT_HOST_ONLY' }).then(
        (array) => array,
        (error: unknown) => error,
      );
      // Sent after the DuplicateArray on the same connection: it arrives while the 128 MiB copy runs.
      await client.evictLease(lease.leaseId);
      const error = await duplicate;
      expect(error).toBeInstanceOf(TensormemClientError);
      expect((error as TensormemClientError).code).toBe(status.UNAUTHENTICATED);
      expect((error as TensormemClientError).reason).toBe('LEASE_EXPIRED');
      await expectNothingHeld();
    }
  });

  it('does not answer OK to a SyncArray whose lease ended during the copy', async () => {
    for (const direction of ['SYNC_DIRECTION_TO_HOST', 'SYNC_DIRECTION_TO_DEVICE'] as const) {
      const lease = await client.openLease();
      const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [128 * MiB] })).array_id;
      // A mirror to copy down (TO_DEVICE needs a current one).
      if (direction === 'SYNC_DIRECTION_TO_DEVICE') await lease.sync(arrayId, 'SYNC_DIRECTION_TO_HOST');
      const synced = lease.sync(arrayId, direction).then(
        (array) => array,
        (error: unknown) => error,
      );
      // Sent after the SyncArray on the same connection: it arrives while the 128 MiB copy runs.
      await client.evictLease(lease.leaseId);
      const error = await synced;
      expect(error).toBeInstanceOf(TensormemClientError);
      expect([(error as TensormemClientError).code, (error as TensormemClientError).reason]).toEqual([status.UNAUTHENTICATED, 'LEASE_EXPIRED']);
      await expectNothingHeld();
    }
  });

  it('fails an ExportArray racing CloseLease with LEASE_EXPIRED, never NOT_FOUND', async () => {
    const outcomes = new Set<string>();
    for (let attempt = 0; attempt < 10; attempt++) {
      const lease = await client.openLease();
      // Not exportable: the first export moves 64 MiB into a region of its own, which takes a while.
      const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB], placement: 'PLACEMENT_HOST_ONLY' })).array_id;
      const exported = lease.exportArray(arrayId, { map: false }).then(
        () => 'OK',
        (error: TensormemClientError) => `${status[error.code]} ${error.reason}`,
      );
      await sleep(attempt % 3);
      await lease.close();
      outcomes.add(await exported);
      await expectNothingHeld();
    }
    expect([...outcomes].filter((outcome) => outcome !== 'OK' && outcome !== 'UNAUTHENTICATED LEASE_EXPIRED')).toEqual([]);
  });

  it('logs no internal error when a trainer is SIGKILLed in the middle of a WriteArray stream, and gets everything back', async () => {
    const internalErrors = () => daemon.logs.filter((entry) => entry.msg === 'internal error');
    const before = internalErrors().length;
    for (let attempt = 0; attempt < 5; attempt++) {
      const trainer = spawn(process.execPath, [join(__dirname, '..', 'helpers', 'trainer-process.js'), daemon.tcpAddress, '', String(32 * MiB), '1', 'streaming'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: trainer.stdout! }).once('line', resolve);
        trainer.once('exit', (code) => reject(new Error(`trainer exited with ${code} before streaming`)));
      });
      const leaseId = line.split(' ')[2];
      await sleep(attempt * 4);
      trainer.kill('SIGKILL');
      // release_on_disconnect: the lease goes as soon as the KeepAlive stream drops.
      const killedAt = Date.now();
      while ((await client.listLeases()).some((lease) => lease.lease_id === leaseId) && Date.now() - killedAt < 5000) await sleep(20);
      expect((await client.listLeases()).map((lease) => lease.lease_id)).not.toContain(leaseId);
    }
    await sleep(200);
    expect(internalErrors().slice(before)).toEqual([]);
    await expectNothingHeld();
  });
});
