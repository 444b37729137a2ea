/**
 * Calls on an array attached to a workspace that are under way when the workspace moves to its next
 * cycle (LeaveWorkspace + EnterWorkspace from another of the client's calls). The next cycle reuses
 * the workspace's buffer from offset 0, so whatever such a call does after the cycle moved on must not
 * touch those bytes: it either finished before, or it fails with ARRAY_OUT_OF_SCOPE.
 * Before: a WriteArray waiting for a mirror fill, or a DuplicateArray into the workspace waiting for
 * its source's export, wrote into the next cycle's array (answering OK), a
 * data plane GET whose pieces were still on a slow socket sent the next cycle's bytes with 200 OK, a
 * ReadArray whose copy ran while the next cycle wrote answered OK with those bytes, and
 * an array whose workspace was destroyed while it was being zeroed stayed in ListArrays for good.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a call on an attached array across a workspace cycle', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '1536M', '--host-maxbytes', '1536M', '--pool-chunk', '64M', '--async-copy-threshold', '64K', '--chunk-bytes', '4M', '--data-listen', '127.0.0.1:0']);
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
    expect(daemon.logs.filter((entry) => (entry.level as number) >= 50)).toEqual([]);
  });

  async function expectNothingHeld(): Promise<void> {
    const info = await client.memoryInfo();
    expect([Number(info.devices[0].used_bytes), Number(info.devices[0].allocation_count), Number(info.host!.used_bytes)]).toEqual([0, 0, 0]);
  }

  it('a WriteArray waiting behind a mirror fill does not write into the next cycle\'s array', async () => {
    const lease = await client.openLease();
    const ws = await lease.createWorkspace('w', { initial_size: 520 * MiB, learning_policy: 'LEARNING_POLICY_NONE' } as never);
    await lease.enterWorkspace(ws.workspace_id);
    const a = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [512 * MiB], workspaceId: ws.workspace_id });
    // The read fills A's host mirror (512 MiB, off the event loop); the write waits for that fill.
    const read = lease.readGrpc(a.array_id, 0, 16);
    await sleep(10);
    const write = lease.writeGrpc(a.array_id, Buffer.alloc(64, 0xaa));
    await sleep(10);
    const results = await Promise.allSettled([
      read,
      write,
      lease.leaveWorkspace(ws.workspace_id),
      lease.enterWorkspace(ws.workspace_id),
      // The next cycle's first array: at offset 0, as A, zeroed.
      lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64], workspaceId: ws.workspace_id, zero: true }),
    ]);
    expect(results.slice(2).map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    const b = (results[4] as PromiseFulfilledResult<{ array_id: string }>).value;
    expect([...(await lease.readGrpc(b.array_id))].filter((byte) => byte !== 0)).toEqual([]);
    for (const result of results.slice(0, 2)) {
      if (result.status === 'rejected') expect((result.reason as Error).message).toContain('ARRAY_OUT_OF_SCOPE');
    }
    await lease.close();
    await expectNothingHeld();
  }, 60_000);

  it('a data plane GET on a slow socket does not send the next cycle\'s bytes as its array\'s', async () => {
    const lease = await client.openLease();
    const ws = await lease.createWorkspace('h', { initial_size: 64 * MiB, learning_policy: 'LEARNING_POLICY_NONE', mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY' } as never);
    await lease.enterWorkspace(ws.workspace_id);
    const size = 16 * MiB;
    const a = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], workspaceId: ws.workspace_id, placement: 'PLACEMENT_HOST_ONLY' });
    await lease.writeGrpc(a.array_id, Buffer.alloc(size, 0xaa));
    // A client that asks for A and does not read yet: the daemon lends its four 4 MiB pieces to the socket.
    const url = new URL(dataAddress);
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.pause();
    socket.write(`GET /v1/arrays/${a.array_id} HTTP/1.1\r\nHost: tensormem\r\nAuthorization: Bearer ${lease.token}\r\n\r\n`);
    await sleep(300);
    await lease.leaveWorkspace(ws.workspace_id);
    await lease.enterWorkspace(ws.workspace_id);
    const b = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], workspaceId: ws.workspace_id, placement: 'PLACEMENT_HOST_ONLY' });
    await lease.writeGrpc(b.array_id, Buffer.alloc(size, 0xbb));
    const chunks: Buffer[] = [];
    socket.on('data', (data: Buffer) => chunks.push(data));
    socket.resume();
    const deadline = Date.now() + 10_000;
    let received = Buffer.alloc(0);
    while (Date.now() < deadline && !socket.destroyed) {
      received = Buffer.concat(chunks);
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd >= 0 && received.length - headEnd - 4 >= size) break;
      await sleep(20);
    }
    socket.destroy();
    received = Buffer.concat(chunks);
    const headEnd = received.indexOf('\r\n\r\n');
    const body = received.subarray(headEnd + 4);
    // A whole answer (200) holds only A's bytes; a cut one (the cycle came first) holds none of B's.
    expect(body.filter((byte) => byte !== 0xaa).length).toBe(0);
    await lease.close();
    await expectNothingHeld();
  }, 60_000);

  it('an array whose workspace is destroyed while it is zeroed is retired with it', async () => {
    const lease = await client.openLease();
    const ws = await lease.createWorkspace('z', { initial_size: 300 * MiB, learning_policy: 'LEARNING_POLICY_NONE' } as never);
    await lease.enterWorkspace(ws.workspace_id);
    const allocation = lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [256 * MiB], workspaceId: ws.workspace_id, zero: true });
    await sleep(10);
    await lease.leaveWorkspace(ws.workspace_id);
    await lease.destroyWorkspace(ws.workspace_id);
    const array = await allocation;
    // As when the allocation came first and the destroy after: gone from ListArrays, out of scope.
    expect(await lease.list()).toEqual([]);
    await expect(lease.readGrpc(array.array_id, 0, 16)).rejects.toThrow(/ARRAY_OUT_OF_SCOPE/);
    await lease.close();
    await expectNothingHeld();
  }, 60_000);

  it('a DuplicateArray into a workspace waiting for its source\'s export does not copy into the next cycle', async () => {
    const lease = await client.openLease();
    const ws = await lease.createWorkspace('d', { initial_size: 260 * MiB, learning_policy: 'LEARNING_POLICY_NONE', mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY' } as never);
    // Detached (allocated before entering the workspace).
    const source = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [256 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    await lease.writeGrpc(source.array_id, Buffer.alloc(64, 0xcc));
    await lease.enterWorkspace(ws.workspace_id);
    // The first export moves the source into a region of its own (256 MiB); the duplicate waits for it.
    const results = await Promise.allSettled([
      lease.exportArray(source.array_id, { map: false }),
      lease.duplicate(source.array_id, { workspaceId: ws.workspace_id }),
      lease.leaveWorkspace(ws.workspace_id),
      lease.enterWorkspace(ws.workspace_id),
      lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64], workspaceId: ws.workspace_id, placement: 'PLACEMENT_HOST_ONLY', zero: true }),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', expect.any(String), 'fulfilled', 'fulfilled', 'fulfilled']);
    const b = (results[4] as PromiseFulfilledResult<{ array_id: string }>).value;
    expect([...(await lease.readGrpc(b.array_id))].filter((byte) => byte !== 0)).toEqual([]);
    if (results[1].status === 'rejected') expect((results[1].reason as Error).message).toContain('ARRAY_OUT_OF_SCOPE');
    await lease.close();
    await expectNothingHeld();
  }, 60_000);
});

describe('a ReadArray copy during which the workspace moves to its next cycle', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    // One 256 MiB chunk: the read's copy runs long enough for the next cycle to write meanwhile.
    daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '1G', '--pool-chunk', '64M', '--async-copy-threshold', '64K', '--max-message-bytes', '600M', '--chunk-bytes', '256M']);
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: false, maxMessageBytes: 600 * MiB });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('fails with ARRAY_OUT_OF_SCOPE rather than answer the next cycle\'s bytes', async () => {
    const lease = await client.openLease();
    const ws = await lease.createWorkspace('r', { initial_size: 257 * MiB, learning_policy: 'LEARNING_POLICY_NONE', mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY' } as never);
    await lease.enterWorkspace(ws.workspace_id);
    const size = 256 * MiB;
    const a = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], workspaceId: ws.workspace_id, placement: 'PLACEMENT_HOST_ONLY', zero: true });
    const read = lease.readGrpc(a.array_id).then(
      (bytes) => `OK, ${bytes.filter((byte) => byte !== 0).length} bytes not A's`,
      (error: Error) => error.message,
    );
    // While the read copies A's 256 MiB: the next cycle, its array B at A's offset, and a write of B's last MiB.
    const [, , b] = await Promise.all([
      lease.leaveWorkspace(ws.workspace_id),
      lease.enterWorkspace(ws.workspace_id),
      lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], workspaceId: ws.workspace_id, placement: 'PLACEMENT_HOST_ONLY' }),
    ]);
    await lease.writeGrpc(b.array_id, Buffer.alloc(MiB, 0xbb), size - MiB);
    const outcome = await read;
    if (!outcome.startsWith('OK')) expect(outcome).toContain('ARRAY_OUT_OF_SCOPE');
    else expect(outcome).toBe("OK, 0 bytes not A's");
    await lease.close();
  }, 60_000);
});
