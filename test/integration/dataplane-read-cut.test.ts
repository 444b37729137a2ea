/**
 * A typed client read over the HTTP data plane that the daemon cuts short because another call changed
 * the array meanwhile (FreeArray, CloseLease, a workspace cycle, from another connection). After its 200
 * the daemon can only close the connection, and the client answered UNAVAILABLE ("the answer ended
 * after N of M bytes"), a code that says "retry", where the same read over ReadArray fails
 * FAILED_PRECONDITION or UNAUTHENTICATED (LEASE_EXPIRED). The read now fails as ReadArray does; a
 * connection that fails by itself with the array intact is finished over gRPC, and one cut because the
 * daemon is gone is UNAVAILABLE.
 *
 * A proxy between the client and the data plane holds the daemon's answer back once its first bytes
 * have come, so the other call lands while the GET is mid-body whatever the machine's speed.
 */
import { randomBytes } from 'node:crypto';
import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;

/** A TCP proxy that stops reading the daemon's answer at its first bytes until `resume()` (or cuts both sides with `cut()`). */
async function holdingProxy(target: URL): Promise<{ port: number; answerBegan: Promise<void>; resume(): void; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let began!: () => void;
  const answerBegan = new Promise<void>((resolve) => (began = resolve));
  let upstream: Socket | undefined;
  const server: Server = createServer((down) => {
    const up = createConnection({ host: target.hostname, port: Number(target.port) });
    upstream = up;
    for (const socket of [down, up]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    down.pipe(up);
    up.once('data', () => {
      up.pause();
      began();
    });
    up.pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    answerBegan,
    resume: () => upstream?.resume(),
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('a data plane read cut by the daemon for another call\'s change fails as ReadArray would', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let other: TensormemClient;
  let dataAddress: URL;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '512M', '--host-maxbytes', '512M', '--pool-chunk', '64M', '--data-listen', '127.0.0.1:0']);
    dataAddress = new URL(daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string);
    client = new TensormemClient(daemon.tcpAddress);
    other = new TensormemClient(daemon.tcpAddress);
  });

  /** Leases a test opened, closed after it even when it failed, so that the next test starts from nothing held. */
  const opened: LeaseSession[] = [];
  const openLease = async () => {
    const lease = await client.openLease();
    opened.push(lease);
    return lease;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((lease) => lease.close().catch(() => undefined)));
  });

  afterAll(async () => {
    client?.close();
    other?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  /** Starts reading `length` bytes of `arrayId` through the proxy, runs `meanwhile` once the answer began, then lets the rest through. */
  async function readAcross(lease: LeaseSession, arrayId: string, length: number, meanwhile: (proxy: Awaited<ReturnType<typeof holdingProxy>>) => Promise<unknown>): Promise<{ error: TensormemClientError; session: LeaseSession }> {
    const proxy = await holdingProxy(dataAddress);
    try {
      const session = new LeaseSession(client, lease.lease, { host: '127.0.0.1', port: proxy.port });
      const reading = session.read(arrayId, 0, length).then(
        () => undefined,
        (error: TensormemClientError) => error,
      );
      await proxy.answerBegan;
      await meanwhile(proxy);
      proxy.resume();
      const error = await reading;
      expect(error).toBeInstanceOf(TensormemClientError);
      return { error: error!, session };
    } finally {
      await proxy.close();
    }
  }

  async function expectNothingHeld(): Promise<void> {
    await expect.poll(async () => {
      const info = await other.memoryInfo();
      return [Number(info.devices[0].used_bytes), Number(info.host!.used_bytes)];
    }).toEqual([0, 0]);
  }

  it.each(['PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY'] as const)('FreeArray from another connection (%s): FAILED_PRECONDITION "was freed", and the data plane stays in use', async (placement) => {
    const lease = await openLease();
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB], placement })).array_id;
    const { error, session } = await readAcross(lease, arrayId, 64 * MiB, () => new LeaseSession(other, lease.lease).free(arrayId));
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.reason).toBe('FAILED_PRECONDITION');
    expect(error.details).toMatch(new RegExp(`^array ${arrayId} was freed \\(the data plane GET was cut: data plane 127\\.0\\.0\\.1:\\d+: the answer ended after \\d+ of ${64 * MiB} bytes\\)$`));
    expect(error.errorMetadata).toEqual({ array_id: arrayId });
    expect(session.dataPlane).toBeDefined();
    await lease.close();
    await expectNothingHeld();
  });

  it('CloseLease from another connection: UNAUTHENTICATED, LEASE_EXPIRED, saying why', async () => {
    const lease = await openLease();
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB] })).array_id;
    const { error } = await readAcross(lease, arrayId, 64 * MiB, () => new LeaseSession(other, lease.lease).close());
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(error.reason).toBe('LEASE_EXPIRED');
    expect(error.details).toMatch(new RegExp(`^lease ${lease.leaseId} was closed by CloseLease: open a new lease \\(the data plane GET was cut: .* the answer ended after \\d+ of ${64 * MiB} bytes\\)$`));
    expect(error.errorMetadata).toMatchObject({ lease_id: lease.leaseId, close_reason: 'closed' });
    await expectNothingHeld();
  });

  it('its workspace moved to a new cycle from another connection: FAILED_PRECONDITION, ARRAY_OUT_OF_SCOPE', async () => {
    const lease = await openLease();
    const workspaceId = (await lease.createWorkspace('w', { initial_size: 64 * MiB } as never)).workspace_id;
    await lease.enterWorkspace(workspaceId);
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [48 * MiB], workspaceId })).array_id;
    const { error } = await readAcross(lease, arrayId, 48 * MiB, async () => {
      const mover = new LeaseSession(other, lease.lease);
      await mover.leaveWorkspace(workspaceId);
      await mover.enterWorkspace(workspaceId);
    });
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.reason).toBe('ARRAY_OUT_OF_SCOPE');
    expect(error.details).toMatch(/^Cannot read array: Array outdated workspace pointer from workspace w .* \(the data plane GET was cut: .* the answer ended after \d+ of 50331648 bytes\)$/s);
    await lease.close();
    await expectNothingHeld();
  });

  it('a connection cut with the array intact: the rest is read over gRPC into the same Buffer, every byte exact', async () => {
    const lease = await openLease();
    const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB] })).array_id;
    const bytes = randomBytes(64 * MiB);
    await lease.write(arrayId, bytes);
    for (const [offset, length] of [
      [0, 64 * MiB],
      [12345, 40 * MiB],
    ]) {
      const proxy = await holdingProxy(dataAddress);
      try {
        const session = new LeaseSession(client, lease.lease, { host: '127.0.0.1', port: proxy.port });
        const reading = session.read(arrayId, offset, length);
        await proxy.answerBegan;
        proxy.cut();
        const data = await reading;
        expect(data.byteLength).toBe(length);
        expect(data.equals(bytes.subarray(offset, offset + length))).toBe(true);
        expect(session.transfers).toEqual({ http: 0, grpc: 1 });
        // A cut answer is no connection failure: the next large transfer tries the data plane again.
        expect(session.dataPlaneRetryAt).toBe(0);
      } finally {
        await proxy.close();
      }
    }
    await lease.close();
    await expectNothingHeld();
  });
});

describe('a data plane read cut because the daemon is gone', () => {
  it('is UNAVAILABLE within seconds, not resumed or held', async () => {
    const daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '256M', '--data-listen', '127.0.0.1:0']);
    const client = new TensormemClient(daemon.tcpAddress);
    const proxy = await holdingProxy(new URL(daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string));
    try {
      const lease = await client.openLease();
      const arrayId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true })).array_id;
      const session = new LeaseSession(client, lease.lease, { host: '127.0.0.1', port: proxy.port });
      const reading = session.read(arrayId, 0, 64 * MiB).then(
        () => undefined,
        (error: TensormemClientError) => error,
      );
      await proxy.answerBegan;
      await daemon.stop('SIGKILL');
      const killed = Date.now();
      proxy.cut();
      const error = await reading;
      expect(error).toBeInstanceOf(TensormemClientError);
      expect(error!.code).toBe(status.UNAVAILABLE);
      expect(error!.details).toMatch(/^data plane 127\.0\.0\.1:\d+: /);
      expect(Date.now() - killed).toBeLessThan(4000);
      expect(session.transfers).toEqual({ http: 0, grpc: 0 });
    } finally {
      client.close();
      await proxy.close();
    }
  });
});
