/**
 * The native addon's `host` backend (an emulated device in host RAM) and its loader, on any machine.
 * Backend-independent behaviour is also covered, for every backend this machine can create, by
 * test/conformance/native-backend.conformance.test.ts; this file adds what only the host backend can
 * check exactly (the emulated capacity, several emulated devices, handle numbering, argument errors).
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { afterEach, describe, expect, it } from 'vitest';
import { addonBuildInfo, addonPath, createBackend, loadAddon } from '../../src/native/addon';
import { packageRoot } from '../../src/package-root';
import type { NativeBackend, NativeErrorCode } from '../../src/native/backend';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Runs fn and returns what it threw; fails the test when it did not throw. */
function thrownBy(fn: () => unknown): Error & { code?: string; cudaError?: string } {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as Error & { code?: string };
  }
  throw new Error('expected the call to throw, but it returned');
}

function expectCode(fn: () => unknown, code: NativeErrorCode, message?: RegExp): void {
  const error = thrownBy(fn);
  expect(error.code, error.message).toBe(code);
  if (message) expect(error.message).toMatch(message);
}

async function expectRejectCode(promise: Promise<unknown>, code: NativeErrorCode, message?: RegExp): Promise<void> {
  const error = await promise.then(
    () => {
      throw new Error('expected the promise to reject, but it resolved');
    },
    (reason: unknown) => reason as Error & { code?: string },
  );
  expect(error.code, error.message).toBe(code);
  if (message) expect(error.message).toMatch(message);
}

function shmPath(name: string): string {
  return path.join('/dev/shm', name.slice(1));
}

let shmCounter = 0;
function uniqueShmName(): string {
  shmCounter += 1;
  return `/tensormem-unit-${process.pid}-${Date.now()}-${shmCounter}`;
}

const backends: NativeBackend[] = [];

/** A host backend whose chunks must all be freed by the end of the test (checked in afterEach). */
function hostBackend(deviceCapacityBytes = 64 * MiB, extra: { deviceCount?: number; deviceName?: string } = {}): NativeBackend {
  const backend = createBackend('host', { deviceCapacityBytes, ...extra });
  backends.push(backend);
  return backend;
}

afterEach(() => {
  for (const backend of backends.splice(0)) {
    expect(backend.liveChunks()).toEqual({ device: 0, host: 0, deviceBytes: 0, hostBytes: 0 });
  }
});

describe('addon loader', () => {
  it('finds the package root and the compiled addon from src/native', () => {
    const root = packageRoot();
    expect(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name).toBe('tensormem');
    expect(addonPath()).toBe(path.join(root, 'build', 'Release', 'tensormem_native.node'));
    expect(fs.existsSync(addonPath())).toBe(true);
  });

  it('loads the addon once and reports how it was built', () => {
    expect(loadAddon()).toBe(loadAddon());
    const info = addonBuildInfo();
    expect(typeof info.cuda).toBe('boolean');
    if (info.cuda) {
      expect(info.cudaRuntimeVersion).toBeGreaterThanOrEqual(11000);
    } else {
      expect(info.cudaRuntimeVersion).toBeUndefined();
    }
  });
});

describe('host backend', () => {
  it('describes its emulated devices', () => {
    const backend = hostBackend(8 * MiB, { deviceCount: 2, deviceName: 'emu' });
    expect(backend.name).toBe('host');
    expect(backend.deviceCount()).toBe(2);
    expect(backend.deviceInfo(1)).toEqual({ index: 1, name: 'emu', totalBytes: 8 * MiB, freeBytes: 8 * MiB, computeCapability: 'emulated' });
    expectCode(() => backend.deviceInfo(2), 'OUT_OF_BOUNDS', /device 2 does not exist.*2 device/);
    expectCode(() => backend.allocDevice(2, KiB), 'OUT_OF_BOUNDS');
  });

  it('round-trips bytes exactly through device and host chunks, at any offset', () => {
    const backend = hostBackend();
    const payload = randomBytes(MiB + 3);
    for (const handle of [backend.allocDevice(0, 2 * MiB), backend.allocHost(2 * MiB)]) {
      backend.write(handle, 12345, payload);
      const back = Buffer.alloc(payload.length);
      backend.read(handle, 12345, back);
      expect(back.equals(payload)).toBe(true);
      // A Uint8Array view into a larger buffer reads and writes only its own window.
      const outer = new Uint8Array(64).fill(0xee);
      const window = outer.subarray(8, 24);
      backend.read(handle, 12345, window);
      expect(Buffer.from(window).equals(payload.subarray(0, 16))).toBe(true);
      expect(outer[7]).toBe(0xee);
      expect(outer[24]).toBe(0xee);
      backend.free(handle);
    }
  });

  it('counts device chunks against the emulated capacity and refuses beyond it with the numbers', () => {
    const backend = hostBackend(MiB);
    const first = backend.allocDevice(0, 768 * KiB);
    expect(backend.deviceInfo(0).freeBytes).toBe(256 * KiB);
    expectCode(() => backend.allocDevice(0, 512 * KiB), 'OUT_OF_MEMORY', /cannot allocate 524288 bytes.*capacity 1048576 bytes.*used 786432 bytes.*free 262144 bytes/);
    // A refused allocation leaves nothing behind.
    expect(backend.deviceInfo(0).freeBytes).toBe(256 * KiB);
    expect(backend.liveChunks()).toEqual({ device: 1, host: 0, deviceBytes: 768 * KiB, hostBytes: 0 });
    // Exactly the remaining capacity fits; host chunks do not count against the device.
    const second = backend.allocDevice(0, 256 * KiB);
    expect(backend.deviceInfo(0).freeBytes).toBe(0);
    const host = backend.allocHost(2 * MiB);
    expect(backend.deviceInfo(0).freeBytes).toBe(0);
    backend.free(first);
    expect(backend.deviceInfo(0).freeBytes).toBe(768 * KiB);
    backend.free(second);
    backend.free(host);
    expect(backend.deviceInfo(0).freeBytes).toBe(MiB);
  });

  it('keeps a separate capacity for each emulated device', () => {
    const backend = hostBackend(MiB, { deviceCount: 2 });
    const onZero = backend.allocDevice(0, MiB);
    expectCode(() => backend.allocDevice(0, 1), 'OUT_OF_MEMORY', /emulated device 0/);
    const onOne = backend.allocDevice(1, MiB);
    expect(backend.chunkInfo(onOne)).toEqual({ handle: onOne, kind: 'device', device: 1, bytes: MiB });
    expect(backend.deviceInfo(0).freeBytes).toBe(0);
    expect(backend.deviceInfo(1).freeBytes).toBe(0);
    backend.free(onZero);
    backend.free(onOne);
  });

  it('never reuses a handle number, across frees and across backends', () => {
    const a = hostBackend();
    const b = hostBackend();
    const seen = new Set<number>();
    for (let i = 0; i < 50; i += 1) {
      const handle = (i % 2 === 0 ? a : b).allocHost(4 * KiB);
      expect(Number.isSafeInteger(handle) && handle > 0 && handle <= 0x7fffffff).toBe(true);
      expect(seen.has(handle)).toBe(false);
      seen.add(handle);
      (i % 2 === 0 ? a : b).free(handle);
    }
    // A handle of another backend is not valid here.
    const mine = a.allocHost(KiB);
    expectCode(() => b.chunkInfo(mine), 'INVALID_HANDLE');
    a.free(mine);
  });

  it('rejects arguments C++ cannot represent with TypeError or RangeError', () => {
    const backend = hostBackend();
    const handle = backend.allocHost(KiB);
    const untyped = backend as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => untyped.write(handle, 0, 'text')).toThrow(TypeError);
    expect(() => untyped.write(handle, 0, new Uint16Array(4))).toThrow(/Expected a Uint8Array for src/);
    expect(() => untyped.write(handle, '0', Buffer.alloc(1))).toThrow(TypeError);
    expect(() => backend.write(handle, -1, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => backend.write(handle, 0.5, Buffer.alloc(1))).toThrow(/Expected a non-negative safe integer for offset but received 0.5/);
    expect(() => backend.fill(handle, 0, 1, 256)).toThrow(RangeError);
    expect(() => backend.allocHost(0)).toThrow(RangeError);
    expect(() => untyped.allocHost(KiB, { shmName: 7 })).toThrow(TypeError);
    expect(() => createBackend('host', {} as never)).toThrow(/deviceCapacityBytes/);
    expect(() => createBackend('host', { deviceCapacityBytes: MiB, deviceCount: 0 })).toThrow(RangeError);
    expect(() => createBackend('gpu' as never)).toThrow(TypeError);
    backend.free(handle);
  });

  it('treats unknown, zero and out-of-range handle numbers as INVALID_HANDLE', () => {
    const backend = hostBackend();
    expectCode(() => backend.free(0), 'INVALID_HANDLE');
    expectCode(() => backend.chunkInfo(2 ** 40), 'INVALID_HANDLE');
    expectCode(() => backend.read(0x7ffffff0, 0, Buffer.alloc(1)), 'INVALID_HANDLE');
  });

  it('refuses overlapping copies within one chunk and allows disjoint ones', () => {
    const backend = hostBackend();
    const handle = backend.allocHost(KiB);
    backend.write(handle, 0, Buffer.from('abcdefgh'));
    expectCode(() => backend.copy(handle, 4, handle, 0, 8), 'UNSUPPORTED', /overlapping/);
    backend.copy(handle, 100, handle, 0, 8);
    const back = Buffer.alloc(8);
    backend.read(handle, 100, back);
    expect(back.toString()).toBe('abcdefgh');
    backend.free(handle);
  });

  it('exports no CUDA IPC handles', () => {
    const backend = hostBackend();
    const handle = backend.allocDevice(0, KiB);
    expectCode(() => backend.exportIpcHandle(handle), 'UNSUPPORTED', /cuda backend/);
    backend.free(handle);
  });

  it('keeps a freed chunk alive for every in-flight operation on it, then releases it', async () => {
    const backend = hostBackend(256 * MiB);
    const bytes = 64 * MiB;
    const a = backend.allocDevice(0, bytes);
    const b = backend.allocDevice(0, bytes);
    const payload = randomBytes(bytes);
    backend.write(b, 0, payload);
    const copied = backend.copyAsync(a, 0, b, 0, bytes);
    const read = Buffer.alloc(bytes);
    const reading = backend.readAsync(b, 0, read);
    backend.free(a);
    backend.free(b);
    // Freed for the caller at once...
    expectCode(() => backend.chunkInfo(a), 'INVALID_HANDLE', /freed/);
    expectCode(() => backend.free(b), 'INVALID_HANDLE');
    await expectRejectCode(backend.writeAsync(a, 0, Buffer.alloc(1)), 'INVALID_HANDLE');
    // ...but the memory stays, and is counted, until the operations end.
    expect(backend.liveChunks().device).toBe(2);
    expect(backend.deviceInfo(0).freeBytes).toBe(256 * MiB - 2 * bytes);
    await Promise.all([copied, reading]);
    expect(read.equals(payload)).toBe(true);
    expect(backend.deviceInfo(0).freeBytes).toBe(256 * MiB);
  });

  it('runs many async operations concurrently on one chunk without mixing them up', async () => {
    const backend = hostBackend();
    const handle = backend.allocDevice(0, 64 * KiB);
    const slices = Array.from({ length: 64 }, (_, i) => Buffer.alloc(KiB, i));
    await Promise.all(slices.map((slice, i) => backend.writeAsync(handle, i * KiB, slice)));
    const back = Array.from({ length: 64 }, () => Buffer.alloc(KiB));
    await Promise.all(back.map((slice, i) => backend.readAsync(handle, i * KiB, slice)));
    back.forEach((slice, i) => expect(slice.equals(slices[i]), `slice ${i}`).toBe(true));
    backend.free(handle);
  });

  it('reports async argument errors as rejected promises, not synchronous throws', async () => {
    const backend = hostBackend();
    const handle = backend.allocHost(KiB);
    const untyped = backend as unknown as Record<string, (...args: unknown[]) => Promise<void>>;
    let promise: Promise<void> | undefined;
    expect(() => {
      promise = untyped.writeAsync(handle, 0, 'text');
    }).not.toThrow();
    await expect(promise).rejects.toThrow(TypeError);
    await expectRejectCode(backend.fillAsync(handle, KiB, 1, 0), 'OUT_OF_BOUNDS');
    backend.free(handle);
  });

  it('creates shared-memory chunks as 0600 objects in /dev/shm, visible to other mappers, unlinked on free', () => {
    const backend = hostBackend();
    const name = uniqueShmName();
    const handle = backend.allocHost(64 * KiB, { shmName: name });
    expect(backend.chunkInfo(handle)).toEqual({ handle, kind: 'host', device: -1, bytes: 64 * KiB, shmName: name });
    const stat = fs.statSync(shmPath(name));
    expect(stat.mode & 0o777).toBe(0o600);
    expect(stat.size).toBe(64 * KiB);
    // Writes through the chunk are what another process sees through the object.
    const payload = randomBytes(1000);
    backend.write(handle, 5000, payload);
    expect(fs.readFileSync(shmPath(name)).subarray(5000, 6000).equals(payload)).toBe(true);
    // O_EXCL: an existing name is refused and the existing object is left alone.
    expectCode(() => backend.allocHost(KiB, { shmName: name }), 'SYSTEM_ERROR', /File exists/);
    expect(fs.existsSync(shmPath(name))).toBe(true);
    expectCode(() => backend.allocHost(KiB, { shmName: 'no-leading-slash' }), 'SYSTEM_ERROR', /invalid shared-memory name/);
    backend.free(handle);
    expect(fs.existsSync(shmPath(name))).toBe(false);
  });

  it('unlinks a shared-memory chunk freed while an async write is in flight only when the write ends', async () => {
    const backend = hostBackend();
    const name = uniqueShmName();
    const handle = backend.allocHost(32 * MiB, { shmName: name });
    const writing = backend.writeAsync(handle, 0, Buffer.alloc(32 * MiB, 1));
    backend.free(handle);
    expect(fs.existsSync(shmPath(name))).toBe(true);
    await writing;
    expect(fs.existsSync(shmPath(name))).toBe(false);
  });
});
