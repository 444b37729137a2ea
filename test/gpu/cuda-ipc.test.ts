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
import { probeCuda, skipNote } from './cuda-device';

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

function runPeer(mode: 'read' | 'write', ipcHandle: Buffer, bytes: number): PeerReport {
  const result = spawnSync(process.execPath, [PEER, mode, '0', ipcHandle.toString('hex'), String(bytes)], { encoding: 'utf8', timeout: 60_000 });
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

  it.todo('a gRPC client writes an array, ExportArray hands its CUDA IPC handle to a second process, which reads the same bytes (needs the ExportArray RPC)');
});
