/**
 * CUDA IPC: a device allocation exported by one process (exportIpcHandle) and opened by a second
 * process (openIpcHandle, test/gpu/ipc-peer.cjs) is the same memory, both ways; closing the second
 * process's mapping leaves the exporter's memory alone. The contract checks of openIpcHandle run on
 * every machine.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/native/addon';
import { cudaDaemonPerTest, fakeOnlyNote, isFakeCuda, probeCuda, skipNote } from './cuda-device';

const MiB = 1024 * 1024;
const PEER = join(__dirname, 'ipc-peer.cjs');
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const cuda = probeCuda();

interface PeerReport {
  sha256: string;
  kind: string;
  bytes: number;
  liveDevice: number;
}

/** Runs test/gpu/ipc-peer.cjs on device 0; `range` is the [offset, length] it reads or writes (default: all `bytes`). */
function runPeer(mode: 'read' | 'write', ipcHandle: Buffer, bytes: number, range?: [number, number]): PeerReport {
  const args = [PEER, mode, '0', ipcHandle.toString('hex'), String(bytes), ...(range ? range.map(String) : [])];
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
  expect(result.status, `ipc-peer ${mode} failed: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as PeerReport;
}

describe('openIpcHandle contract (every machine)', () => {
  it('is UNSUPPORTED on the host backend and checks the handle length first', () => {
    const host = createBackend('host', { deviceCapacityBytes: 16 * MiB });
    expect(() => host.openIpcHandle(0, Buffer.alloc(64), MiB)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
    expect(() => host.openIpcHandle(0, Buffer.alloc(63), MiB)).toThrow(/Expected 64 bytes for ipcHandle but received 63/);
    expect(() => host.openIpcHandle(0, Buffer.alloc(64), 0)).toThrow(/bytes/);
    expect(host.liveChunks().device).toBe(0);
  });
});

describe.skipIf(!cuda.backend)(`CUDA IPC between two processes${skipNote(cuda)}`, () => {
  const backend = cuda.backend!;
  const held: number[] = [];
  afterEach(() => {
    for (const handle of held.splice(0)) backend.free(handle);
    expect(backend.liveChunks().device).toBe(0);
  });

  it('a second process reads the bytes written here, through the exported handle', () => {
    const size = 32 * MiB + 123;
    const chunk = backend.allocDevice(0, size);
    held.push(chunk);
    const data = randomBytes(size);
    backend.write(chunk, 0, data);
    const ipcHandle = backend.exportIpcHandle(chunk);
    expect(ipcHandle).toHaveLength(64);

    const report = runPeer('read', ipcHandle, size);
    expect(report).toEqual({ sha256: sha256(data), kind: 'device', bytes: size, liveDevice: 0 });
  });

  it('bytes the second process writes are here, and its closed mapping leaves this allocation intact', () => {
    const size = 8 * MiB;
    const chunk = backend.allocDevice(0, size);
    held.push(chunk);
    backend.fill(chunk, 0, size, 0);
    const report = runPeer('write', backend.exportIpcHandle(chunk), size);

    const back = Buffer.alloc(size);
    backend.read(chunk, 0, back);
    expect(sha256(back)).toBe(report.sha256);
    expect(back.equals(Buffer.alloc(size))).toBe(false);
    // Still this process's memory after the peer exited: writable and readable as before.
    backend.fill(chunk, 0, size, 7);
    backend.read(chunk, 0, back);
    expect(back.every((byte) => byte === 7)).toBe(true);
  });

});

describe.skipIf(!cuda.backend)(`ExportArray of a device array through the daemon${skipNote(cuda)}`, () => {
  const start = cudaDaemonPerTest();

  it('a gRPC client writes an array, ExportArray hands its CUDA IPC handle to a second process, which reads the same bytes; bytes it writes come back after SyncArray', async () => {
    const { client } = await start(['--maxbytes', '1G']);
    const lease = await client.openLease({ clientName: 'gpu-ipc-export' });
    const before = await client.memoryInfo();
    const size = 16 * MiB + 321;
    const data = randomBytes(size);
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], device: 0 });
    expect(await lease.write(array.array_id, data)).toBe(size);
    // Reading makes the host mirror current, so the read after the peer's write sees it only through SyncArray.
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));

    const exported = await lease.exportArray(array.array_id, { side: 'EXPORT_SIDE_DEVICE', map: false });
    expect(exported.shm).toBeUndefined();
    const region = exported.cudaIpc!;
    expect(region.handle).toHaveLength(64);
    expect([region.device, region.length]).toEqual([0, size]);
    expect(region.offset + region.length).toBeLessThanOrEqual(region.regionBytes);
    expect(exported.array.device_exportable).toBe(true);
    // A second export is the same allocation: no second move.
    expect((await lease.exportArray(array.array_id, { side: 'EXPORT_SIDE_DEVICE', map: false })).moved).toBe(false);

    const read = runPeer('read', region.handle, region.regionBytes, [region.offset, region.length]);
    expect(read).toEqual({ sha256: sha256(data), kind: 'device', bytes: region.regionBytes, liveDevice: 0 });

    const written = runPeer('write', region.handle, region.regionBytes, [region.offset, region.length]);
    expect(written.sha256).not.toBe(sha256(data));
    await lease.sync(array.array_id, 'SYNC_DIRECTION_TO_HOST');
    expect(sha256(await lease.read(array.array_id))).toBe(written.sha256);

    await lease.free(array.array_id);
    const after = await client.memoryInfo();
    expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
    await lease.close();
  });
});

describe.skipIf(!isFakeCuda())(`ExportArray where the system has no CUDA IPC${fakeOnlyNote('a real GPU with CUDA IPC cannot be made to refuse it')}`, () => {
  const start = cudaDaemonPerTest();

  it('answers FAILED_PRECONDITION pointing to the host side, which works, and gives every byte back', async () => {
    // FAKE_CUDA_IPC_UNSUPPORTED: cudaIpcGetMemHandle returns cudaErrorNotSupported, as under WSL.
    const { client } = await start(['--maxbytes', '1G'], { FAKE_CUDA_IPC_UNSUPPORTED: '1' });
    const lease = await client.openLease({ clientName: 'gpu-no-ipc' });
    const before = await client.memoryInfo();
    const data = randomBytes(MiB + 7);
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [data.length], device: 0 });
    await lease.write(array.array_id, data);

    const refused = await lease.exportArray(array.array_id, { side: 'EXPORT_SIDE_DEVICE', map: false }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 9 }); // FAILED_PRECONDITION, not INTERNAL
    expect((refused as Error).message).toContain('CUDA IPC is not supported on device 0 (cudaIpcGetMemHandle: cudaErrorNotSupported)');
    expect((refused as Error).message).toContain(`export the host side (EXPORT_SIDE_HOST) of array ${array.array_id} instead`);

    const host = await lease.exportArray(array.array_id, { side: 'EXPORT_SIDE_HOST' });
    expect(sha256(host.bytes!)).toBe(sha256(data));
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));

    await lease.free(array.array_id);
    const after = await client.memoryInfo();
    expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
    await lease.close();
  });
});
