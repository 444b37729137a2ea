/**
 * ExportArray over a real daemon (host backend): shared-memory regions read and written from this
 * process and from a second one, their names and modes, their lifetimes (FreeArray, CloseLease, a
 * SIGKILLed trainer's expired lease, a SIGKILLed daemon's leftovers), isolation between leases, and
 * the memory accounting of the one-time move into an array's own region.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { existsSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { shmPath } from '../../src/memory/shm-names';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;
const EXPORT_PROCESS = join(__dirname, '..', 'helpers', 'export-process.js');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function rejection(promise: Promise<unknown>): Promise<TensormemClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the call should have failed').toBeInstanceOf(TensormemClientError);
  return error as TensormemClientError;
}

/** sha256 of [offset, offset + length) of the object, read by a second process through its own mapping. */
async function readInChildProcess(name: string, offset: number, length: number): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [EXPORT_PROCESS, 'read', name, String(offset), String(length)]);
  const match = /^sha256 ([0-9a-f]{64})$/m.exec(stdout);
  if (!match) throw new Error(`unexpected output from the reader: ${stdout}`);
  return match[1];
}

describe('ExportArray over a real daemon', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let other: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '24M', '--pool-chunk', '8M', '--reclaim-interval', '200ms']);
    client = new TensormemClient(daemon.tcpAddress);
    other = new TensormemClient(daemon.unixAddress);
  });

  afterAll(async () => {
    client?.close();
    other?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('exports a HOST_ONLY array as an unguessable 0600 shared-memory region, read byte-identical here and in a second process', async () => {
    const lease = await client.openLease({ clientName: 'export-host-only' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY' });
    const data = randomBytes(MiB);
    await lease.write(array.array_id, data);
    const before = await client.memoryInfo();

    const first = await lease.exportArray(array.array_id);
    expect(first.moved).toBe(true);
    expect(first.cudaIpc).toBeUndefined();
    const region = first.shm!;
    // 128 random bits, and the daemon's pid so that a restarted daemon can find a dead one's leftovers.
    expect(region.name).toMatch(new RegExp(`^/tensormem-${daemon.child.pid}-[0-9a-f]{16}-[0-9a-f]{32}$`));
    expect(region).toMatchObject({ offset: 0, length: MiB, regionBytes: MiB });
    const stat = statSync(shmPath(region.name));
    expect(stat.mode & 0o777).toBe(0o600);
    expect(stat.size).toBe(MiB);
    expect(sha256(first.bytes!)).toBe(sha256(data));
    expect(await readInChildProcess(region.name, region.offset, region.length)).toBe(sha256(data));

    // The move changed where the bytes live, not how many are counted.
    const after = await client.memoryInfo();
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
    expect(after.host!.host_only_bytes).toBe(before.host!.host_only_bytes);
    expect(first.array.held_bytes).toBe(MiB);
    expect(first.array.host_exportable).toBe(true);

    // Later exports hand out the same region, mapped once in this process.
    const mapped = client.mappings.size;
    const second = await lease.exportArray(array.array_id);
    expect(second.moved).toBe(false);
    expect(second.shm!.name).toBe(region.name);
    expect(second.bytes!.buffer).toBe(first.bytes!.buffer);
    expect(client.mappings.size).toBe(mapped);

    // A HOST_ONLY mapping is the array itself: writes through it are what ReadArray returns, no sync.
    const writable = await lease.exportArray(array.array_id, { writable: true });
    const update = randomBytes(4096);
    update.copy(writable.bytes!, 12_345);
    expect(sha256(await lease.read(array.array_id, 12_345, 4096))).toBe(sha256(update));
    // And gRPC writes show in the mapping.
    await lease.write(array.array_id, Buffer.alloc(100, 0xab), 500_000);
    expect(first.bytes!.subarray(500_000, 500_100).every((byte) => byte === 0xab)).toBe(true);

    // FreeArray unlinks the name and (through this client) unmaps it: the views read as empty.
    await lease.free(array.array_id);
    expect(existsSync(shmPath(region.name))).toBe(false);
    expect(first.bytes!.length).toBe(0);
    expect((await client.memoryInfo()).host!.used_bytes).toBe(before.host!.used_bytes - MiB);
    const gone = await rejection(lease.exportArray(array.array_id));
    expect(gone.code).toBe(status.NOT_FOUND);
    expect(gone.reason).toBe('ARRAY_NOT_FOUND');
    await lease.close();
  });

  it("exports a device array's host mirror: current at export, writes through the mapping reach the device after SyncArray TO_DEVICE", async () => {
    const lease = await client.openLease({ clientName: 'export-mirror' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256, 1024] });
    const data = randomBytes(MiB);
    await lease.write(array.array_id, data);
    expect((await lease.get(array.array_id)).has_host_mirror).toBe(false);

    const exported = await lease.exportArray(array.array_id, { side: 'EXPORT_SIDE_HOST', writable: true });
    // It had no mirror: the mirror is made in its own region and filled from the device, nothing moved.
    expect(exported.moved).toBe(false);
    expect(exported.array).toMatchObject({ has_host_mirror: true, host_valid: true, host_exportable: true, device_exportable: false });
    expect(sha256(exported.bytes!)).toBe(sha256(data));
    expect(await readInChildProcess(exported.shm!.name, exported.shm!.offset, exported.shm!.length)).toBe(sha256(data));

    // WriteArray writes through to the (current) mirror, so the mapping follows it.
    await lease.write(array.array_id, Buffer.alloc(64, 0x11), 4096);
    expect(exported.bytes!.subarray(4096, 4160).every((byte) => byte === 0x11)).toBe(true);

    // Written through the mapping: the device still has the old bytes until SyncArray TO_DEVICE.
    const update = randomBytes(MiB);
    update.copy(exported.bytes!);
    const stale = await lease.duplicate(array.array_id); // DuplicateArray copies from the device
    expect(sha256(await lease.read(stale.array_id))).not.toBe(sha256(update));
    await lease.sync(array.array_id, 'SYNC_DIRECTION_TO_DEVICE');
    const copy = await lease.duplicate(array.array_id);
    expect(sha256(await lease.read(copy.array_id))).toBe(sha256(update));

    // Device-side changes other than WriteArray (a DuplicateArray into it is one) need SyncArray TO_HOST.
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(update)); // ReadArray reads the mirror

    // A device array whose mirror a read made (in a pool block): its export moves the mirror, one copy.
    const read = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    const readBytes = randomBytes(4096);
    await lease.write(read.array_id, readBytes);
    expect(sha256(await lease.read(read.array_id))).toBe(sha256(readBytes));
    expect(await lease.get(read.array_id)).toMatchObject({ has_host_mirror: true, host_exportable: false });
    const movedMirror = await lease.exportArray(read.array_id, { side: 'EXPORT_SIDE_HOST' });
    expect(movedMirror.moved).toBe(true);
    expect(sha256(movedMirror.bytes!)).toBe(sha256(readBytes));
    const name = exported.shm!.name;
    await lease.close();
    expect(existsSync(shmPath(name)), 'CloseLease unlinks the name').toBe(false);
  });

  it('arrays allocated exportable need no move; regions are whole pages, counted as such', async () => {
    const lease = await client.openLease({ clientName: 'export-exportable' });
    const before = await client.memoryInfo();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000], placement: 'PLACEMENT_HOST_ONLY', exportable: true, zero: true });
    expect(array.host_exportable).toBe(true);
    expect(array.held_bytes).toBe(4096);
    expect((await client.memoryInfo()).host!.used_bytes - before.host!.used_bytes).toBe(4096);
    const exported = await lease.exportArray(array.array_id);
    expect(exported.moved).toBe(false);
    expect(exported.shm).toMatchObject({ offset: 0, length: 1000, regionBytes: 4096 });
    expect(exported.bytes!.length).toBe(1000);
    expect(exported.bytes!.every((byte) => byte === 0)).toBe(true);
    // A device array allocated exportable: its (lazy) mirror is made in its own region by the first export, no move.
    const device = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000], exportable: true, zero: true });
    expect(device.has_host_mirror).toBe(false);
    const mirror = await lease.exportArray(device.array_id, { side: 'EXPORT_SIDE_HOST' });
    expect(mirror.moved).toBe(false);
    expect(mirror.array).toMatchObject({ has_host_mirror: true, host_valid: true, host_exportable: true });
    expect((await lease.exportArray(device.array_id, { side: 'EXPORT_SIDE_HOST' })).moved).toBe(false);
    await lease.free(device.array_id);
    // A non-exportable array of the same size takes 1024 bytes (256-byte units) until its first export.
    const pooled = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000], placement: 'PLACEMENT_HOST_ONLY' });
    expect(pooled.held_bytes).toBe(1024);
    expect((await lease.exportArray(pooled.array_id)).array.held_bytes).toBe(4096);
    expect(await lease.close()).toBe(8192);
    expect((await client.memoryInfo()).host!.used_bytes).toBe(before.host!.used_bytes);
  });

  it('a move during a chunked write and reads loses no byte: copies wait for the move, the move for copies in flight', async () => {
    const lease = await client.openLease({ clientName: 'export-concurrent' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    const data = randomBytes(8 * MiB);
    // 512 KiB chunks: each above the async-copy threshold, so each runs off the event loop.
    const writing = lease.write(array.array_id, data, 0, 512 * 1024);
    const exports = [lease.exportArray(array.array_id), lease.exportArray(array.array_id)];
    const reads = [lease.read(array.array_id), lease.read(array.array_id)];
    await writing;
    const [first, second] = await Promise.all(exports);
    await Promise.all(reads);
    expect([first.moved, second.moved].sort()).toEqual([false, true]);
    expect(second.shm!.name).toBe(first.shm!.name);
    expect(sha256(first.bytes!)).toBe(sha256(data));
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));
    expect((await lease.get(array.array_id)).held_bytes).toBe(8 * MiB);
    await lease.close();
  });

  it("another lease cannot export (or learn of) an array: NOT_FOUND, as for ids that never existed", async () => {
    const owner = await client.openLease({ clientName: 'export-owner' });
    const intruder = await other.openLease({ clientName: 'export-intruder' });
    const array = await owner.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY' });
    const error = await rejection(intruder.exportArray(array.array_id));
    expect(error.code).toBe(status.NOT_FOUND);
    expect(error.reason).toBe('ARRAY_NOT_FOUND');
    const never = await rejection(intruder.exportArray('arr-000000000000000000000000'));
    expect(never.code).toBe(status.NOT_FOUND);
    const withoutId = (message: string) => message.replace(/"arr-[0-9a-f]+"/, '"…"');
    expect(withoutId(never.details)).toBe(withoutId(error.details));
    // The refused export made no region.
    expect((await owner.get(array.array_id)).host_exportable).toBe(false);
    await owner.close();
    await intruder.close();
  });

  it('an export racing FreeArray answers NOT_FOUND, one racing CloseLease LEASE_EXPIRED (not INTERNAL), and leaves no region behind', async () => {
    const internalErrorsBefore = daemon.logs.filter((entry) => entry.msg === 'internal error').length;
    for (const placement of ['PLACEMENT_HOST_ONLY', 'PLACEMENT_DEVICE'] as const) {
      for (const ending of ['free', 'close'] as const) {
        const lease = await client.openLease({ clientName: `export-race-${ending}` });
        // 2 MiB: the move's copy is above the async-copy threshold, so the free arrives while it runs.
        const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB], placement });
        const exporting = lease.exportArray(array.array_id, { side: 'EXPORT_SIDE_HOST', map: false });
        const ended = ending === 'free' ? lease.free(array.array_id) : lease.close();
        const outcome = await exporting.then(
          (exported) => exported,
          (error: unknown) => error,
        );
        await ended;
        if (outcome instanceof TensormemClientError) {
          // The lease's end answers as the ended lease's token does (README "An ended lease's token").
          expect(outcome.code, `${placement}, ${ending}: ${outcome.details}`).toBe(ending === 'free' ? status.NOT_FOUND : status.UNAUTHENTICATED);
          expect(outcome.reason).toBe(ending === 'free' ? 'ARRAY_NOT_FOUND' : 'LEASE_EXPIRED');
        } else {
          // The export won the race: its region is unlinked with the array.
          expect(existsSync(shmPath((outcome as { shm: { name: string } }).shm.name))).toBe(false);
        }
        if (ending === 'free') await lease.close();
      }
    }
    expect(daemon.logs.filter((entry) => entry.msg === 'internal error').length).toBe(internalErrorsBefore);
  });

  it('an export mapped here racing free() rejects with a TensormemClientError (NOT_FOUND naming the region), not the addon\'s plain Error, and keeps no mapping', async () => {
    const lease = await client.openLease({ clientName: 'export-map-race' });
    const outcomes = new Set<string>();
    for (let attempt = 0; attempt < 10; attempt++) {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
      // FreeArray unlinks the name before the client maps what ExportArray answered.
      const [exported] = await Promise.allSettled([lease.exportArray(array.array_id), lease.free(array.array_id)]);
      if (exported.status === 'fulfilled') {
        outcomes.add('exported');
        continue;
      }
      const error = exported.reason as TensormemClientError;
      expect(error).toBeInstanceOf(TensormemClientError);
      expect(error.code).toBe(status.NOT_FOUND);
      expect(error.details).toMatch(new RegExp(`^exportArray of array ${array.array_id}: shm_open of shared-memory object "/tensormem-[^"]+" failed: No such file or directory`));
      expect(error.errorMetadata).toEqual({ array_id: array.array_id, shm_name: expect.stringMatching(/^\/tensormem-/) });
      outcomes.add('NOT_FOUND');
    }
    expect(outcomes.has('NOT_FOUND')).toBe(true);
    expect(client.mappings.size).toBe(0);
    await lease.close();
  });

  // ArrayBuffer.prototype.transfer() is Node 22+; on Node 20 nothing a caller can do detaches the mapping.
  it.skipIf(typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer !== 'function')(
    "a caller's bytes.buffer.transfer() (Node 22+) moves the mapping out of the client's cache: the next export maps the region again, and free() leaves the moved bytes readable",
    async () => {
      const lease = await client.openLease({ clientName: 'export-transfer' });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8192], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
      const first = await lease.exportArray(array.array_id, { writable: true });
      first.bytes!.fill(3);
      // Moves the memory, not a copy: the caller's new ArrayBuffer is the mapping now.
      const moved = new Uint8Array((first.bytes!.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer());
      expect(first.bytes!.byteLength).toBe(0);
      moved[0] = 9;

      const second = await lease.exportArray(array.array_id, { writable: true });
      expect(second.bytes!.byteLength).toBe(8192);
      expect(second.bytes![0]).toBe(9);
      expect(second.bytes!.subarray(1).every((byte) => byte === 3)).toBe(true);
      expect((await lease.read(array.array_id))[0]).toBe(9);

      // The client cannot unmap what the caller took; the memory stays mapped with that ArrayBuffer.
      await lease.free(array.array_id);
      expect(client.mappings.size).toBe(0);
      expect(second.bytes!.byteLength).toBe(0);
      expect(moved.byteLength).toBe(8192);
      expect(moved[0]).toBe(9);
      await lease.close();
    },
  );

  it('write() from an exported array\'s bytes while that array is freed sends every byte (gRPC and data plane); the view reads as empty after', async () => {
    const withDataPlane = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '160M', '--data-listen', '127.0.0.1:0']);
    try {
      for (const dataPlane of [false, undefined] as const) {
        // Small gRPC chunks: the free lands between two of them.
        const trainer = new TensormemClient(withDataPlane.tcpAddress, dataPlane === false ? { dataPlane: false, chunkBytes: 256 * 1024 } : {});
        const lease = await trainer.openLease({ clientName: 'write-from-export' });
        const source = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [48 * MiB], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
        const target = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [48 * MiB], placement: 'PLACEMENT_HOST_ONLY', zero: true });
        const { bytes } = await lease.exportArray(source.array_id, { writable: true });
        bytes!.fill(5);
        const writing = lease.write(target.array_id, bytes!);
        await sleep(2);
        await lease.free(source.array_id);
        // The bytes were detached under the transfer: WriteArray ended early and resolved to the bytes
        // sent so far; the PUT stopped sending its body and waited for the daemon's stall timeout.
        expect(await writing).toBe(48 * MiB);
        expect(lease.transfers).toEqual(dataPlane === false ? { http: 0, grpc: 1 } : { http: 1, grpc: 0 });
        expect(bytes!.byteLength).toBe(0);
        expect((await lease.read(target.array_id)).every((byte) => byte === 5)).toBe(true);
        expect(trainer.mappings.size).toBe(0);
        await lease.close();
        trainer.close();
      }
    } finally {
      expect(await withDataPlane.stop()).toBe(0);
    }
  }, 30_000);

  it('refuses what it cannot export, with the field and reason, changing nothing', async () => {
    const lease = await client.openLease({ clientName: 'export-refusals' });
    const device = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    // The host backend's emulated device memory cannot be opened by a CUDA program.
    for (const side of ['EXPORT_SIDE_DEVICE', 'EXPORT_SIDE_UNSPECIFIED'] as const) {
      const error = await rejection(lease.exportArray(device.array_id, { side }));
      expect(error.code).toBe(status.FAILED_PRECONDITION);
      expect(error.details).toContain('CUDA IPC needs the cuda backend');
    }
    expect((await lease.get(device.array_id)).has_host_mirror).toBe(false);

    const host = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], placement: 'PLACEMENT_HOST_ONLY' });
    const wrongSide = await rejection(lease.exportArray(host.array_id, { side: 'EXPORT_SIDE_DEVICE' }));
    expect(wrongSide.code).toBe(status.INVALID_ARGUMENT);
    expect(wrongSide.details).toContain('for side');

    // An attached array lives in its workspace's buffer.
    const ws = await lease.createWorkspace('EXPORT_WS', { initial_size: MiB, mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY', learning_policy: 'LEARNING_POLICY_NONE' });
    await lease.enterWorkspace(ws.workspace_id);
    const attached = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    const inWorkspace = await rejection(lease.exportArray(attached.array_id));
    expect(inWorkspace.code).toBe(status.FAILED_PRECONDITION);
    expect(inWorkspace.details).toContain('DuplicateArray it with detached = true');
    const exportableInWorkspace = await rejection(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], exportable: true }));
    expect(exportableInWorkspace.code).toBe(status.INVALID_ARGUMENT);
    expect(exportableInWorkspace.details).toContain('for exportable');
    await lease.leaveWorkspace(ws.workspace_id);
    // A device array attached to a FULL workspace: refused for being attached, not sent to
    // EXPORT_SIDE_HOST by the host backend's CUDA IPC refusal, only to be refused there for being attached.
    const fullWs = await lease.createWorkspace('EXPORT_FULL_WS', { initial_size: MiB, learning_policy: 'LEARNING_POLICY_NONE' });
    await lease.enterWorkspace(fullWs.workspace_id);
    const attachedDevice = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    const deviceInWorkspace = await rejection(lease.exportArray(attachedDevice.array_id));
    expect(deviceInWorkspace.code).toBe(status.FAILED_PRECONDITION);
    expect(deviceInWorkspace.details).toContain('is attached to workspace "EXPORT_FULL_WS" and cannot be exported');
    expect(deviceInWorkspace.details).not.toContain('CUDA IPC');
    await lease.leaveWorkspace(fullWs.workspace_id);
    await lease.destroyWorkspace(fullWs.workspace_id);

    // The move needs room for both copies for a moment; without it, RESOURCE_EXHAUSTED and nothing moved.
    const before = await client.memoryInfo();
    const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [14 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    const bigData = randomBytes(14 * MiB);
    await lease.write(big.array_id, bigData);
    const full = await rejection(lease.exportArray(big.array_id));
    expect(full.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(full.reason).toBe('HOST_OUT_OF_MEMORY');
    expect((await lease.get(big.array_id)).host_exportable).toBe(false);
    expect(sha256(await lease.read(big.array_id))).toBe(sha256(bigData));
    expect((await client.memoryInfo()).host!.used_bytes - before.host!.used_bytes).toBe(14 * MiB);
    await lease.close();
  });

  it('a region whose name another process unlinked is refused on re-export, naming it, instead of handing out a name no one can open', async () => {
    // Python's multiprocessing.shared_memory (before 3.13) unlinks a name it merely attached to when its
    // process exits; any process of the daemon's user can do the same.
    const lease = await client.openLease({ clientName: 'export-unlinked' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
    const data = randomBytes(4096);
    await lease.write(array.array_id, data);
    const first = await lease.exportArray(array.array_id);
    const name = first.shm!.name;
    unlinkSync(shmPath(name));

    const again = await rejection(lease.exportArray(array.array_id));
    expect(again.code).toBe(status.FAILED_PRECONDITION);
    expect(again.details).toContain(name);
    expect(again.details).toContain('unlinked');
    expect(again.errorMetadata).toEqual({ array_id: array.array_id, shm_name: name });
    // Nothing changed: the array keeps its bytes and its region, and frees cleanly.
    const info = await lease.get(array.array_id);
    expect(info.host_exportable).toBe(true);
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));
    await lease.free(array.array_id);
    await lease.close();
  });

  it("a SIGKILLed trainer's exported region is unlinked when its lease expires", async () => {
    const child = spawn(process.execPath, [EXPORT_PROCESS, 'trainer', daemon.tcpAddress], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`trainer exited with ${code} before exporting`)));
      });
      const [, leaseId, name, digest] = line.split(' ');
      expect(digest).toBe(sha256(Buffer.alloc(MiB, 9)));
      expect(existsSync(shmPath(name))).toBe(true);
      child.kill('SIGKILL');
      // The trainer's TTL is 2 s; the sweep runs every 200 ms.
      // The lease_expired line comes through the daemon's stdout, which this process may read after it
      // sees the name gone (the line is written once the close, the unlink included, is done): wait for both.
      const expired = () => daemon.logs.find((entry) => entry.event === 'lease_expired' && entry.leaseId === leaseId);
      const deadline = Date.now() + 5_000;
      while ((existsSync(shmPath(name)) || !expired()) && Date.now() < deadline) await sleep(100);
      expect(existsSync(shmPath(name)), `the region of expired lease ${leaseId} should be unlinked`).toBe(false);
      expect(expired()).toMatchObject({ arrays: 1, freedBytes: MiB });
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('shared-memory names of a SIGKILLed daemon', () => {
  it('are removed by the next daemon at start, and only those of dead daemons', async () => {
    const first = await startDaemon(['--host-maxbytes', '16M']);
    const live = await startDaemon(['--host-maxbytes', '16M']);
    const names: string[] = [];
    try {
      for (const daemon of [first, live]) {
        const client = new TensormemClient(daemon.tcpAddress);
        const lease = await client.openLease({ clientName: 'leftovers', ttlSeconds: 600 });
        const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
        names.push((await lease.exportArray(array.array_id, { map: false })).shm!.name);
        client.close();
      }
      first.child.kill('SIGKILL');
      await first.exited;
      expect(existsSync(shmPath(names[0])), 'SIGKILL runs no cleanup: the name stays behind').toBe(true);

      const next = await startDaemon(['--host-maxbytes', '16M']);
      try {
        expect(existsSync(shmPath(names[0])), 'the dead daemon’s name is removed').toBe(false);
        expect(existsSync(shmPath(names[1])), 'a live daemon’s name is left alone').toBe(true);
        // Only a daemon's start-up sweep unlinks a dead daemon's names. Test files run in parallel, so a
        // daemon another file starts at the same moment may sweep it first: then `next` logs nothing.
        const removed = next.logs.find((entry) => entry.event === 'stale_shm_removed') as { names?: string[] } | undefined;
        expect(removed?.names ?? []).not.toContain(names[1]);
        // One round trip, so that the daemon is past start-up (its SIGTERM handler installed) before it is stopped.
        const probe = new TensormemClient(next.tcpAddress);
        await probe.memoryInfo();
        probe.close();
      } finally {
        expect(await next.stop()).toBe(0);
      }
    } finally {
      first.child.kill('SIGKILL');
      expect(await live.stop()).toBe(0);
    }
    // A daemon stopped normally unlinks its names at exit.
    expect(existsSync(shmPath(names[1]))).toBe(false);
  });
});
