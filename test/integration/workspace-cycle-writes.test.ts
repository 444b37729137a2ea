/**
 * Copies into an attached array that are queued on the thread pool (at or above --async-copy-threshold)
 * when another call on the lease moves its workspace to the next cycle (LeaveWorkspace +
 * EnterWorkspace), which hands the same bytes to new arrays. The daemon runs with one libuv thread and
 * a large zero fill of a detached array ahead in its queue, so such a copy lands only after the next
 * cycle's arrays were made and written. Those arrays must keep their bytes; the copy fails with
 * ARRAY_OUT_OF_SCOPE (or finished before the cycle moved on).
 * Before: a WriteArray chunk, a data plane PUT piece, an AllocateArray zero fill, a host mirror fill
 * (ReadArray, SyncArray to host) and a SyncArray to the device all landed on the next cycle's arrays.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const KiB = 1024;
const MiB = 1024 * KiB;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const u8 = (n: number, workspaceId: string, zero = false) => ({ dataType: 'DATA_TYPE_UINT8' as const, shape: [n], workspaceId, zero });
/** Below --async-copy-threshold (16 KiB): copied on the event loop, at once. */
const SMALL = 8 * KiB;
/**
 * The zero fill that holds the one libuv thread while a test moves the workspace on: 1.5 GiB, about
 * 160 ms once the pool's memory is resident (the tests after the first reuse it), against 50-90 ms
 * for the rest of a test's steps. (With 1 GiB and a 1 MiB next array, about 110 ms against 70-80 ms:
 * a fresh-clone CI run once saw the fill end first.)
 */
const BLOCKER_BYTES = 1536 * MiB;
/** The next cycle's first array: it lies at A's offset, so a late copy into A lands on it. */
const NEXT_BYTES = 64 * KiB;

/** Bytes of `data` that are not `value`. */
const notAll = (data: Uint8Array, value: number) => data.filter((byte) => byte !== value).length;

describe("copies into an attached array queued across its workspace's next cycle", () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;

  beforeAll(async () => {
    daemon = await startDaemon(
      ['--maxbytes', '1600M', '--host-maxbytes', '1G', '--pool-chunk', '64M', '--async-copy-threshold', '16K', '--data-listen', '127.0.0.1:0'],
      { UV_THREADPOOL_SIZE: '1' },
    );
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
    expect(daemon.logs.filter((entry) => (entry.level as number) >= 50)).toEqual([]);
  });

  /**
   * Opens a lease with a FULL workspace entered, runs `setUp` (the first cycle), then takes the one
   * libuv thread with a BLOCKER_BYTES zero fill of a detached array on another lease, starts `inFlight` (which
   * queues its copy behind the fill), moves the workspace on and runs `nextCycle`, all before the fill
   * ends; then `check` once everything settled. Returns how `inFlight` ended.
   */
  async function acrossCycle<T>(steps: {
    setUp: (lease: LeaseSession, ws: string) => Promise<T>;
    inFlight: (lease: LeaseSession, first: T) => Promise<unknown>;
    nextCycle: (lease: LeaseSession, ws: string) => Promise<() => Promise<void>>;
  }): Promise<string> {
    const lease = await client.openLease();
    const other = await client.openLease();
    try {
      const ws = (await lease.createWorkspace('W', { initial_size: 4 * MiB, learning_policy: 'LEARNING_POLICY_NONE' } as never)).workspace_id;
      await lease.enterWorkspace(ws);
      const first = await steps.setUp(lease, ws);
      let blocked = true;
      const blocker = other.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [BLOCKER_BYTES], zero: true }).finally(() => (blocked = false));
      await sleep(20);
      const outcome = steps.inFlight(lease, first).then(
        () => 'OK',
        (error: Error) => error.message,
      );
      await sleep(20);
      await lease.leaveWorkspace(ws);
      await lease.enterWorkspace(ws);
      const check = await steps.nextCycle(lease, ws);
      // Otherwise the copy in flight could have landed before the next cycle began: nothing tested.
      expect(blocked, 'the 1.5 GiB fill ended before the next cycle was written').toBe(true);
      await blocker;
      const result = await outcome;
      await check();
      if (result !== 'OK') expect(result).toContain('ARRAY_OUT_OF_SCOPE');
      return result;
    } finally {
      await other.close();
      await lease.close();
    }
  }

  /**
   * The next cycle's first array, NEXT_BYTES at A's offset, written with `value` SMALL bytes at a time
   * (each on the event loop); checked to still hold it.
   */
  async function nextArrayKeeps(lease: LeaseSession, ws: string, value: number): Promise<() => Promise<void>> {
    const b = await lease.allocate(u8(NEXT_BYTES, ws));
    await lease.writeGrpc(b.array_id, Buffer.alloc(NEXT_BYTES, value), 0, SMALL);
    return async () => expect(notAll(await lease.readGrpc(b.array_id), value)).toBe(0);
  }

  it('a WriteArray chunk', async () => {
    await acrossCycle({
      setUp: (lease, ws) => lease.allocate(u8(MiB, ws)),
      inFlight: (lease, a) => lease.writeGrpc(a.array_id, Buffer.alloc(MiB, 0xaa), 0, MiB),
      nextCycle: (lease, ws) => nextArrayKeeps(lease, ws, 0x11),
    });
  }, 60_000);

  it('a data plane PUT piece', async () => {
    await acrossCycle({
      setUp: (lease, ws) => lease.allocate(u8(MiB, ws)),
      inFlight: (lease, a) => put(lease.token, a.array_id, Buffer.alloc(MiB, 0xaa)),
      nextCycle: (lease, ws) => nextArrayKeeps(lease, ws, 0x11),
    });
  }, 60_000);

  it('an AllocateArray zero fill', async () => {
    await acrossCycle({
      setUp: async () => undefined,
      inFlight: (lease) => lease.allocate({ ...u8(MiB, ''), zero: true }),
      nextCycle: (lease, ws) => nextArrayKeeps(lease, ws, 0x11),
    });
  }, 60_000);

  /**
   * A's host mirror is made at the workspace's host offset 0 and filled from A's device bytes: in the
   * next cycle, device offset 0 is B1's and host offset 0 is B2's mirror (B2 lies after B1 on the device).
   */
  async function mirrorFillKeepsNextMirror(fill: (lease: LeaseSession, a: { array_id: string }) => Promise<unknown>): Promise<void> {
    await acrossCycle({
      setUp: async (lease, ws) => {
        const a = await lease.allocate(u8(MiB, ws));
        await lease.writeGrpc(a.array_id, Buffer.alloc(MiB, 0xaa), 0, SMALL);
        return a;
      },
      inFlight: fill,
      nextCycle: async (lease, ws) => {
        const b1 = await lease.allocate(u8(MiB, ws));
        await lease.writeGrpc(b1.array_id, Buffer.alloc(MiB, 0x22), 0, SMALL);
        const b2 = await lease.allocate(u8(SMALL, ws));
        await lease.writeGrpc(b2.array_id, Buffer.alloc(SMALL, 0x33));
        // B2's mirror, at host offset 0, filled now (on the event loop).
        expect(notAll(await lease.readGrpc(b2.array_id), 0x33)).toBe(0);
        return async () => {
          expect(notAll(await lease.readGrpc(b2.array_id), 0x33)).toBe(0);
          expect(notAll(await lease.readGrpc(b1.array_id), 0x22)).toBe(0);
        };
      },
    });
  }

  it('a host mirror fill (ReadArray)', async () => {
    // The read itself answers A's bytes or ARRAY_OUT_OF_SCOPE, never the next cycle's.
    await mirrorFillKeepsNextMirror(async (lease, a) => expect(notAll(await lease.readGrpc(a.array_id), 0xaa)).toBe(0));
  }, 60_000);

  it('a host mirror fill (SyncArray to the host)', async () => {
    await mirrorFillKeepsNextMirror((lease, a) => lease.sync(a.array_id, 'SYNC_DIRECTION_TO_HOST'));
  }, 60_000);

  it('a SyncArray to the device', async () => {
    await acrossCycle({
      setUp: async (lease, ws) => {
        const a = await lease.allocate(u8(MiB, ws));
        await lease.writeGrpc(a.array_id, Buffer.alloc(MiB, 0xaa), 0, SMALL);
        // A's mirror, at host offset 0, current.
        await lease.readGrpc(a.array_id, 0, 16);
        return a;
      },
      inFlight: (lease, a) => lease.sync(a.array_id, 'SYNC_DIRECTION_TO_DEVICE'),
      nextCycle: async (lease, ws) => {
        // B at device offset 0, written a small chunk at a time (each on the event loop), no mirror yet.
        const b = await lease.allocate(u8(MiB, ws));
        await lease.writeGrpc(b.array_id, Buffer.alloc(MiB, 0x44), 0, SMALL);
        return async () => expect(notAll(await lease.readGrpc(b.array_id), 0x44)).toBe(0);
      },
    });
  }, 60_000);

  it('a copy into an attached array checks before each slice: a zero fill under way stops once the cycle moved on', async () => {
    const lease = await client.openLease();
    try {
      const size = 512 * MiB;
      const ws = (await lease.createWorkspace('S', { initial_size: size + MiB, learning_policy: 'LEARNING_POLICY_NONE' } as never)).workspace_id;
      await lease.enterWorkspace(ws);
      // Zeroed on the event loop a slice at a time, the other calls below running in between.
      const allocation = lease.allocate(u8(size, ws, true));
      const [, , b] = await Promise.all([lease.leaveWorkspace(ws), lease.enterWorkspace(ws), lease.allocate(u8(size, ws))]);
      // B's last MiB, which A's fill reaches last (one slice, on the event loop).
      await lease.writeGrpc(b.array_id, Buffer.alloc(MiB, 0x55), size - MiB, MiB);
      const a = await allocation;
      expect(notAll(await lease.readGrpc(b.array_id, size - MiB, MiB), 0x55)).toBe(0);
      // Made in the last cycle: out of scope, and retired.
      await expect(lease.readGrpc(a.array_id, 0, 16)).rejects.toThrow(/ARRAY_OUT_OF_SCOPE/);
    } finally {
      await lease.close();
    }
  }, 60_000);

  /** A raw HTTP PUT of `body` at offset 0; resolves on 200, rejects with the answer's body otherwise. */
  function put(token: string, arrayId: string, body: Buffer): Promise<void> {
    const url = new URL(dataAddress);
    return new Promise((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: Number(url.port), method: 'PUT', path: `/v1/arrays/${arrayId}`, headers: { Authorization: `Bearer ${token}`, 'Content-Length': body.byteLength } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${res.statusCode} ${Buffer.concat(chunks).toString()}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
});
