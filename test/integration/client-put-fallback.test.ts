/**
 * A typed-client write whose data plane PUT is cut mid-body (a proxy in front of the data plane resets
 * the connection once part of the body went through) is sent again over gRPC. The daemon wrote what it
 * received of the PUT into the array as it came (README "Data plane", Checksum), so when that gRPC
 * write fails too, the error must say that part of the range may already hold the new bytes: a
 * refusal such as TOO_MANY_STREAMS ("WriteArray was refused") otherwise reads as "nothing changed".
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { getArray } from '../../src/dataplane/data-plane-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { tcpProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { failure } from '../helpers/thrown';

const MiB = 1024 * 1024;

/** A TCP proxy to `target` that resets both sides once more than `cutAfter` bytes came from the client. */
function cuttingProxy(target: { host: string; port: number }, cutAfter: number): Promise<TcpProxy> {
  return tcpProxy(target, () => {
    let fromClient = 0;
    return (bytes, up, down) => {
      fromClient += bytes.byteLength;
      if (fromClient <= cutAfter) {
        up.write(bytes);
        return;
      }
      down.resetAndDestroy();
      up.resetAndDestroy();
    };
  });
}

/** How many bytes of `bytes` are `value`. */
function countOf(bytes: Buffer, value: number): number {
  let count = 0;
  for (const byte of bytes) if (byte === value) count++;
  return count;
}

describe('a write whose data plane PUT is cut mid-body', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataPlane: { host: string; port: number };

  beforeAll(async () => {
    // One stream per tenant: a KeepAlive stream open makes every WriteArray a refusal.
    daemon = await startDaemon(['--data-listen', '127.0.0.1:0', '--max-tenant-streams', '1']);
    client = new TensormemClient(daemon.tcpAddress);
    const probe = await client.openLease();
    dataPlane = probe.dataPlane as { host: string; port: number };
    await probe.close();
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  async function zeroedArray(bytes: number): Promise<{ lease: LeaseSession; arrayId: string }> {
    const lease = await client.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], placement: 'PLACEMENT_HOST_ONLY', zero: true });
    return { lease, arrayId: array.array_id };
  }

  it('is written whole over gRPC, counted once, and the lease stays on gRPC until its data plane backoff ends', async () => {
    const proxy = await cuttingProxy(dataPlane, 3 * MiB);
    try {
      const { lease, arrayId } = await zeroedArray(8 * MiB);
      lease.dataPlane = proxy.endpoint;
      expect(await lease.write(arrayId, Buffer.alloc(8 * MiB, 0xff))).toBe(8 * MiB);
      expect(lease.transfers).toEqual({ http: 0, grpc: 1 });
      expect(lease.dataPlaneRetryAt).toBeGreaterThan(0);
      expect(countOf(await getArray(dataPlane, lease.token, arrayId), 0xff)).toBe(8 * MiB);
      await lease.close();
    } finally {
      await proxy.close();
    }
  });

  it('says, when the gRPC write is refused too, that part of the range may hold the new bytes', async () => {
    const proxy = await cuttingProxy(dataPlane, 3 * MiB);
    const { lease, arrayId } = await zeroedArray(8 * MiB);
    try {
      lease.startKeepAlive(1000);
      // The KeepAlive stream counts once the daemon has it: until then an empty WriteArray goes through.
      await expect.poll(() => lease.writeGrpc(arrayId, Buffer.alloc(0)).then(() => 'written', (e: TensormemClientError) => e.reason), { timeout: 5000 }).toBe('TOO_MANY_STREAMS');
      lease.dataPlane = proxy.endpoint;
      const offset = 4096;
      const error = await failure(lease.write(arrayId, Buffer.alloc(8 * MiB - offset, 0xff), offset));
      expect(error).toBeInstanceOf(TensormemClientError);
      expect([error.code, error.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'TOO_MANY_STREAMS']);
      const sent = Number(error.errorMetadata.data_plane_bytes_sent);
      expect(error.details).toContain(`the data plane PUT tried first was cut after ${sent} bytes of its body went out`);
      expect(error.details).toContain(`bytes ${offset} to ${offset + sent - 1} of array ${arrayId} may hold part of the new data`);
      // What the cut PUT left: part of the range changed, none of it past what the error names.
      lease.stopKeepAlive();
      const now = await getArray(dataPlane, lease.token, arrayId);
      const changed = countOf(now, 0xff);
      expect(changed).toBeGreaterThan(0);
      expect(changed).toBeLessThanOrEqual(sent);
      expect(countOf(now.subarray(0, offset), 0xff)).toBe(0);
      expect(countOf(now.subarray(offset + sent), 0xff)).toBe(0);
    } finally {
      lease.stopKeepAlive();
      await lease.close();
      await proxy.close();
    }
  });
});
