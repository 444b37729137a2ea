/**
 * Copies into an attached array that are queued on the thread pool (at or above --async-copy-threshold)
 * when another call on the lease moves its workspace to the next cycle (LeaveWorkspace +
 * EnterWorkspace), which hands the same bytes to new arrays. The daemon runs with one libuv thread,
 * held by the test (threadpool-hold.cjs) while such a copy is queued, so the copy lands only after the
 * next cycle's arrays were made and written. Those arrays must keep their bytes; the copy fails with
 * ARRAY_OUT_OF_SCOPE (or finished before the cycle moved on).
 * (Until the test held the thread itself, a 1.5 GiB zero fill of another array held it: on a faster
 * machine the fill ended before the next cycle was written, and the test failed every time.)
 * Before: a WriteArray chunk, a data plane PUT piece, an AllocateArray zero fill, a host mirror fill
 * (ReadArray, SyncArray to host) and a SyncArray to the device all landed on the next cycle's arrays.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const KiB = 1024;
const MiB = 1024 * KiB;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const u8 = (n: number, workspaceId: string, zero = false) => ({ dataType: 'DATA_TYPE_UINT8' as const, shape: [n], workspaceId, zero });
/** Below --async-copy-threshold (16 KiB): copied on the event loop, at once. */
const SMALL = 8 * KiB;
const HOLD = join(__dirname, '../helpers/threadpool-hold.cjs');
/** The next cycle's first array: it lies at A's offset, so a late copy into A lands on it. */
const NEXT_BYTES = 64 * KiB;

/** Bytes of `data` that are not `value`. */
const notAll = (data: Uint8Array, value: number) => data.filter((byte) => byte !== value).length;

describe("copies into an attached array queued across its workspace's next cycle", () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;
  const folder = mkdtempSync(join(tmpdir(), 'tensormem-hold-'));
  const fifo = join(folder, 'hold');

  beforeAll(async () => {
    execFileSync('mkfifo', [fifo]);
    daemon = await startDaemon(
      ['--maxbytes', '1600M', '--host-maxbytes', '1G', '--pool-chunk', '64M', '--async-copy-threshold', '16K', '--data-listen', '127.0.0.1:0'],
      { UV_THREADPOOL_SIZE: '1', NODE_OPTIONS: `--require ${HOLD}`, TENSORMEM_TEST_HOLD_FIFO: fifo },
    );
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
    expect(daemon.logs.filter((entry) => (entry.level as number) >= 50)).toEqual([]);
    rmSync(folder, { recursive: true, force: true });
  });

  /** Takes the daemon's one libuv thread (threadpool-hold.cjs); returns once the hold is queued. */
  async function holdThreadPool(): Promise<void> {
    rmSync(`${fifo}.held`, { force: true });
    daemon.child.kill('SIGUSR2');
    while (!existsSync(`${fifo}.held`)) await sleep(5);
    // The pool's thread, idle, picks the open up at once.
    await sleep(20);
  }

  /** Lets the held thread go; fails when nothing held it any more (the hold ended on its own). */
  function releaseThreadPool(): void {
    // Non-blocking: ENXIO when no reader waits on the FIFO, rather than waiting for one.
    const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    closeSync(fd);
  }

  /**
   * Opens a lease with a FULL workspace entered, runs `setUp` (the first cycle), then holds the one
   * libuv thread, starts `inFlight` (which queues its copy behind the hold), moves the workspace on and
   * runs `nextCycle`, all before letting the thread go; then `check` once everything settled. Returns
   * how `inFlight` ended.
   */
  async function acrossCycle<T>(steps: {
    setUp: (lease: LeaseSession, ws: string) => Promise<T>;
    inFlight: (lease: LeaseSession, first: T) => Promise<unknown>;
    nextCycle: (lease: LeaseSession, ws: string) => Promise<() => Promise<void>>;
  }): Promise<string> {
    const lease = await client.openLease();
    try {
      const ws = (await lease.createWorkspace('W', { initial_size: 4 * MiB, learning_policy: 'LEARNING_POLICY_NONE' } as never)).workspace_id;
      await lease.enterWorkspace(ws);
      const first = await steps.setUp(lease, ws);
      await holdThreadPool();
      const outcome = steps.inFlight(lease, first).then(
        () => 'OK',
        (error: Error) => error.message,
      );
      await sleep(20);
      await lease.leaveWorkspace(ws);
      await lease.enterWorkspace(ws);
      const check = await steps.nextCycle(lease, ws);
      // Throws (ENXIO) when the hold had ended: then the copy in flight could have landed before the next
      // cycle began, and nothing was tested.
      releaseThreadPool();
      const result = await outcome;
      await check();
      if (result !== 'OK') expect(result).toContain('ARRAY_OUT_OF_SCOPE');
      return result;
    } finally {
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
