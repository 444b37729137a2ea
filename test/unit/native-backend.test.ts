/**
 * The native addon's `host` backend (an emulated device in host RAM) and its loader, on any machine.
 * Backend-independent behaviour is also covered, for every backend this machine can create, by
 * test/conformance/native-backend.conformance.test.ts; this file adds what only the host backend can
 * check exactly (the emulated capacity, several emulated devices, handle numbering, argument errors).
 */
import { spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addonBuildInfo, addonPath, createBackend, loadAddon } from '../../src/native/addon';
import { packageRoot } from '../../src/package-root';
import type { NativeBackend, NativeErrorCode } from '../../src/native/backend';
import { tinyFilesystemPrefix, tinyFilesystemUnavailable } from '../helpers/tiny-filesystem';

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

/** A directory for mapFile's files, removed (with whatever a failing case left) after the file's tests. */
const mapFileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensormem-unit-mapfile-'));
afterAll(() => fs.rmSync(mapFileDir, { recursive: true, force: true }));
let mapFileCounter = 0;
function uniqueFilePath(): string {
  mapFileCounter += 1;
  return path.join(mapFileDir, `chunk-${mapFileCounter}.bin`);
}

/**
 * Runs `body` (JavaScript, with `backend` a fresh host backend of the compiled addon in scope) in a
 * child Node process, optionally through a shell command prefix; returns its stdout, failing on a
 * non-zero exit.
 */
function runInChild(body: string, wrap: (nodeArgs: string[]) => string[] = (args) => [process.execPath, ...args]): string {
  const script = [
    'const addon = { exports: {} };',
    `process.dlopen(addon, ${JSON.stringify(addonPath())});`,
    "const backend = addon.exports.createBackend('host', { deviceCapacityBytes: 1048576 });",
    body,
  ].join('\n');
  const [command, ...args] = wrap(['-e', script]);
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 });
  expect(result.status, `child failed: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/**
 * Why a tiny tmpfs (1 MiB) cannot be mounted in a private mount namespace here (`unshare -m`, needs
 * root or user namespaces), or undefined when it can: the disk-full case needs a disk that fills.
 */
const tinyFsSkipReason = tinyFilesystemUnavailable(mapFileDir);

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
    // shm_open would have stopped at the NUL and made another object than the chunk's name says.
    expectCode(() => backend.allocHost(KiB, { shmName: `${name}-x\0y` }), 'SYSTEM_ERROR', /invalid shared-memory name/);
    expect(fs.existsSync(shmPath(`${name}-x`))).toBe(false);
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

  it('releases a viewed chunk freed meanwhile when the view is garbage-collected unreleased', () => {
    const out = runInChild(
      `
      const handle = backend.allocHost(65536, { shmName: '/tensormem-view-gc-' + process.pid });
      (() => { backend.hostView(handle, 0, 4096); })();
      backend.free(handle);
      const pending = backend.liveChunks().host;
      const shmLeft = require('fs').existsSync('/dev/shm/tensormem-view-gc-' + process.pid);
      // The view's wrap finalizer runs after a GC; give it turns of the event loop to be called.
      let tries = 0;
      (function check() {
        global.gc();
        if (backend.liveChunks().host !== 0 && ++tries < 50) return setTimeout(check, 10);
        console.log(JSON.stringify({ pending, shmLeft, after: backend.liveChunks().host, shmAfter: require('fs').existsSync('/dev/shm/tensormem-view-gc-' + process.pid) }));
      })();
      `,
      (args) => [process.execPath, '--expose-gc', ...args],
    );
    expect(JSON.parse(out)).toEqual({ pending: 1, shmLeft: true, after: 0, shmAfter: false });
  });

  it('keeps a viewed chunk mapped when the backend object is garbage-collected before its view', () => {
    // The object's finalizer released every chunk, those under live views too: reading the view then
    // touched unmapped memory (SIGSEGV). Run in a child so that a crash fails this test, not the runner.
    const name = '/tensormem-view-outlives-' + process.pid;
    const out = runInChild(
      `
      const fs = require('fs');
      const name = ${JSON.stringify(name)};
      let collected = false;
      const registry = new FinalizationRegistry(() => { collected = true; });
      const view = (() => {
        const other = addon.exports.createBackend('host', { deviceCapacityBytes: 1048576 });
        registry.register(other, 'backend');
        const handle = other.allocHost(1048576, { shmName: name });
        other.fill(handle, 0, 1048576, 5);
        return other.hostView(handle, 0, 1048576);
      })();
      let turns = 0;
      (function check() {
        global.gc();
        // A few more turns once the object is gone, for its finalizer to have run.
        if ((!collected || ++turns < 10) && turns < 200) return setTimeout(check, 10);
        const shmWhileViewed = fs.existsSync('/dev/shm' + name);
        let sum = 0;
        for (let i = 0; i < view.length; i += 4096) sum += view[i];
        backend.releaseView(view);
        console.log(JSON.stringify({ collected, shmWhileViewed, sum, shmAfter: fs.existsSync('/dev/shm' + name) }));
      })();
      `,
      (args) => [process.execPath, '--expose-gc', ...args],
    );
    expect(JSON.parse(out)).toEqual({ collected: true, shmWhileViewed: true, sum: 5 * 256, shmAfter: false });
  });

  // ArrayBuffer.prototype.transfer() is Node 22+.
  it.skipIf(typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer !== 'function')(
    "keeps a viewed chunk mapped while an ArrayBuffer that view.buffer.transfer() moved its memory to lives, though the view is released and the chunk freed",
    () => {
      // transfer() moves the memory (no copy) and detaches the view's ArrayBuffer; releaseView() of the
      // view dropped the pin anyway and the free released the chunk under the moved buffer (SIGSEGV
      // on Node 22 and 24). In a child: it crashed.
      const out = runInChild(
        `
        const N = 64 * 1048576;
        const [released, collected] = [0x4d, 0x2e].map((byte) => {
          const handle = backend.allocHost(N);
          backend.fill(handle, 0, N, byte);
          return handle;
        });
        const sum = (buffer) => { let total = 0; for (let i = 0; i < N; i += 4096) total += buffer[i]; return total; };
        // A view released after the move (as any view: once), its chunk freed.
        const view = backend.hostView(released, 0, N);
        let moved = [new Uint8Array(view.buffer.transfer())];
        backend.releaseView(view);
        let second;
        try { backend.releaseView(view); } catch (error) { second = error.constructor.name; }
        backend.free(released);
        const sums = [sum(moved[0])];
        // A view never released, its ArrayBuffer collected, its chunk freed.
        moved.push(new Uint8Array(backend.hostView(collected, 0, N).buffer.transfer()));
        backend.free(collected);
        let tries = 0;
        (function collect() {
          global.gc();
          if (++tries < 20) return setTimeout(collect, 10);
          const whileMoved = backend.liveChunks().host;
          sums.push(sum(moved[1]));
          moved = undefined;
          tries = 0;
          (function check() {
            global.gc();
            if (backend.liveChunks().host !== 0 && ++tries < 50) return setTimeout(check, 10);
            console.log(JSON.stringify({ second, whileMoved, sums, after: backend.liveChunks().host }));
          })();
        })();
        `,
        (args) => [process.execPath, '--expose-gc', ...args],
      );
      expect(JSON.parse(out)).toEqual({ second: 'TypeError', whileMoved: 2, sums: [0x4d * 16384, 0x2e * 16384], after: 0 });
    },
  );

  it('refuses a write or read whose buffer is a view overlapping the chunk range, and allows disjoint ones', async () => {
    // memcpy with overlapping ranges (ASan: memcpy-param-overlap) before the check.
    const backend = hostBackend();
    const handle = backend.allocHost(4096);
    backend.write(handle, 0, Uint8Array.from({ length: 4096 }, (_, i) => i & 255));
    const view = backend.hostView(handle, 0, 4096);
    expectCode(() => backend.write(handle, 10, view.subarray(0, 100)), 'UNSUPPORTED', /overlap .* chunk \d+ \(a view of the same bytes\)/);
    expectCode(() => backend.read(handle, 0, view.subarray(50, 150)), 'UNSUPPORTED', /overlap/);
    expectCode(() => backend.write(handle, 0, view.subarray(0, 100)), 'UNSUPPORTED', /overlap/);
    await expectRejectCode(backend.writeAsync(handle, 99, view.subarray(0, 100)), 'UNSUPPORTED', /overlap/);
    await expectRejectCode(backend.readAsync(handle, 0, view.subarray(99, 199)), 'UNSUPPORTED', /overlap/);
    backend.write(handle, 100, view.subarray(0, 100));
    await backend.readAsync(handle, 1000, view.subarray(0, 100));
    expect(Array.from(view.subarray(0, 4))).toEqual([232, 233, 234, 235]);
    expect(Array.from(view.subarray(100, 104))).toEqual([0, 1, 2, 3]);
    backend.write(handle, 0, view.subarray(0, 0));
    backend.releaseView(view);
    backend.free(handle);
  });

  it('keeps a viewed chunk mapped for an async copy to or from the view when the view is released meanwhile', () => {
    // The Uint8Array kept its ArrayBuffer alive, not the chunk behind it: releaseView() of a view of a
    // freed chunk unmapped it under the copy (SIGSEGV in the worker's memcpy). In a child: it crashed.
    const out = runInChild(`
      const N = 32 * 1048576;
      const [src, dst, viewed, other] = [0, 1, 2, 3].map(() => backend.allocHost(N));
      backend.fill(src, 0, N, 0x6b);
      backend.fill(other, 0, N, 0x21);
      const from = backend.hostView(src, 0, N);
      const into = backend.hostView(viewed, 0, N);
      backend.free(src);
      backend.free(viewed);
      const copies = [backend.writeAsync(dst, 0, from), backend.readAsync(other, 0, into)];
      backend.releaseView(from);
      backend.releaseView(into);
      const during = backend.liveChunks().host;
      Promise.all(copies).then(() => {
        const out = Buffer.alloc(N);
        backend.read(dst, 0, out);
        backend.free(dst);
        backend.free(other);
        process.stdout.write(JSON.stringify({ during, after: backend.liveChunks().host, copied: out.every((b) => b === 0x6b) }));
      });`);
    expect(JSON.parse(out)).toEqual({ during: 4, after: 0, copied: true });
  });

  it('survives worker.terminate() of a worker thread whose async copies are still in flight, and releases its chunks', () => {
    // Settling a copy's promise in an environment that is being torn down fails (no JS may run there);
    // node-addon-api turned that failure into a C++ exception that left its callback: std::terminate
    // aborted the whole process ("terminate called after throwing an instance of 'Napi::Error'").
    const prefix = `/tensormem-worker-end-${process.pid}-`;
    const out = runInChild(`
      const { Worker } = require('worker_threads');
      const fs = require('fs');
      const prefix = ${JSON.stringify(prefix)};
      const code = [
        "const { parentPort, threadId } = require('worker_threads');",
        "const addon = { exports: {} };",
        "process.dlopen(addon, " + JSON.stringify(${JSON.stringify(addonPath())}) + ");",
        "const backend = addon.exports.createBackend('host', { deviceCapacityBytes: 1 << 26 });",
        "const M = 1 << 20;",
        "const a = backend.allocHost(64 * M, { shmName: " + JSON.stringify(prefix) + " + threadId });",
        "const b = backend.allocDevice(0, 64 * M);",
        // Disjoint ranges: no two copies write the same bytes (ThreadSanitizer runs this file too).
        "for (let i = 0; i < 64; i++) backend.copyAsync(b, i * M, a, i * M, M).catch(() => {});",
        "parentPort.postMessage('queued');",
      ].join('\\n');
      let ended = 0;
      const next = () => {
        if (ended === 8) {
          const left = fs.readdirSync('/dev/shm').filter((name) => ('/' + name).startsWith(prefix));
          process.stdout.write(JSON.stringify({ ended, left }));
          return;
        }
        const worker = new Worker(code, { eval: true });
        worker.once('message', () => worker.terminate().then(() => { ended++; next(); }));
      };
      next();`);
    expect(JSON.parse(out)).toEqual({ ended: 8, left: [] });
  });

  it('drops the pins of an async copy that could not be queued because worker.terminate() stopped its environment', () => {
    // worker.terminate() makes N-API calls of that environment fail from another thread, at any point:
    // a writeAsync that had pinned its chunk and the mapSharedMemory mapping it copies from, and then
    // failed to create its promise or work item, kept both pins for ever, so the mapping was never
    // unmapped (it stayed in /proc/self/maps after the worker was gone).
    const name = uniqueShmName();
    const out = runInChild(`
      const { Worker } = require('worker_threads');
      const fs = require('fs');
      const name = ${JSON.stringify(name)};
      const handle = backend.allocHost(65536, { shmName: name });
      const code = [
        "const { parentPort, workerData } = require('worker_threads');",
        "const addon = { exports: {} };",
        "process.dlopen(addon, workerData.addon);",
        "const backend = addon.exports.createBackend('host', { deviceCapacityBytes: 1 << 20 });",
        "const dst = backend.allocHost(65536);",
        "const src = new Uint8Array(addon.exports.mapSharedMemory(workerData.name, true), 0, 64);",
        "parentPort.postMessage('ready');",
        "for (;;) backend.writeAsync(dst, 0, src).catch(() => {});",
      ].join('\\n');
      const mappings = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((line) => line.endsWith(name.slice(1))).length;
      let ended = 0;
      const next = () => {
        if (ended === 20) {
          const workerMappings = mappings() - 1;
          backend.free(handle);
          process.stdout.write(JSON.stringify({ ended, workerMappings }));
          return;
        }
        const worker = new Worker(code, { eval: true, workerData: { addon: ${JSON.stringify(addonPath())}, name } });
        worker.once('message', () => setTimeout(() => worker.terminate().then(() => { ended++; next(); }), 20));
      };
      next();`);
    expect(JSON.parse(out)).toEqual({ ended: 20, workerMappings: 0 });
  });

  it('rejects hostView arguments C++ cannot represent with TypeError or RangeError', () => {
    const backend = hostBackend();
    const handle = backend.allocHost(4096);
    expect(() => backend.hostView(handle, -1, 1)).toThrow(RangeError);
    expect(() => backend.hostView(handle, 0, '8' as never)).toThrow(TypeError);
    expect(() => backend.releaseView('view' as never)).toThrow(/Expected a Uint8Array from hostView\(\) for view/);
    backend.free(handle);
  });

  it('rejects mapFile arguments C++ cannot represent with TypeError or RangeError', () => {
    const backend = hostBackend();
    const untyped = backend as unknown as Record<string, (...args: unknown[]) => unknown>;
    const file = uniqueFilePath();
    const options = { createBytes: KiB, deleteOnFree: true };
    expect(() => untyped.mapFile(7, options)).toThrow(/Expected a string for path/);
    expect(() => untyped.mapFile(Buffer.from(file), options)).toThrow(TypeError);
    expect(() => backend.mapFile('', options)).toThrow(RangeError);
    expect(() => backend.mapFile(`${file}\0suffix`, options)).toThrow(/non-empty string without NUL characters for path/);
    expect(() => untyped.mapFile(file)).toThrow(TypeError);
    expect(() => untyped.mapFile(file, { deleteOnFree: true })).toThrow(/Expected a non-negative safe integer for options.createBytes but received undefined/);
    expect(() => untyped.mapFile(file, { createBytes: '1024', deleteOnFree: true })).toThrow(TypeError);
    expect(() => backend.mapFile(file, { createBytes: -1, deleteOnFree: true })).toThrow(RangeError);
    expect(() => backend.mapFile(file, { createBytes: 1.5, deleteOnFree: true })).toThrow(RangeError);
    expect(() => untyped.mapFile(file, { createBytes: KiB })).toThrow(/Expected a boolean for options.deleteOnFree/);
    expect(() => untyped.mapFile(file, { createBytes: KiB, deleteOnFree: 1 })).toThrow(TypeError);
    // None of them touched the file system.
    expect(fs.existsSync(file)).toBe(false);
  });

  it('maps a file whose length is not a multiple of the page size, at exactly that length', () => {
    const backend = hostBackend();
    const file = uniqueFilePath();
    const contents = randomBytes(5000);
    fs.writeFileSync(file, contents);
    const { handle, bytes } = backend.mapFile(file, { createBytes: 0, deleteOnFree: true });
    expect(bytes).toBe(5000);
    const back = Buffer.alloc(5000);
    backend.read(handle, 0, back);
    expect(back.equals(contents)).toBe(true);
    expectCode(() => backend.read(handle, 4999, Buffer.alloc(2)), 'OUT_OF_BOUNDS', /5000 bytes of chunk/);
    backend.free(handle);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('unlinks on free only the file it mapped, not one created at the same path since', () => {
    const backend = hostBackend();
    const file = uniqueFilePath();
    const { handle } = backend.mapFile(file, { createBytes: 4 * KiB, deleteOnFree: true });
    fs.unlinkSync(file);
    fs.writeFileSync(file, 'someone else');
    backend.free(handle);
    expect(fs.readFileSync(file, 'utf8')).toBe('someone else');
    fs.unlinkSync(file);
  });

  it('refuses createBytes for a file a live chunk maps, leaving the file and that chunk as they are', () => {
    // Truncating it under the first mapping made that chunk's pages past the new end SIGBUS on the next
    // touch (the daemon died reading an MMAP workspace whose file a second workspace had re-created):
    // run in a child so that a crash fails this test instead of the runner.
    const file = uniqueFilePath();
    const out = runInChild(`
      const file = ${JSON.stringify(file)};
      const first = backend.mapFile(file, { createBytes: 65536, deleteOnFree: true });
      backend.fill(first.handle, 0, 65536, 7);
      const attempt = (createBytes) => {
        try {
          return backend.mapFile(file, { createBytes, deleteOnFree: false });
        } catch (error) {
          return { code: error.code, message: error.message };
        }
      };
      const refused = [4096, 1048576, 2 ** 53 - 1].map(attempt);
      const size = require('fs').statSync(file).size;
      const bytes = Buffer.alloc(65536);
      backend.read(first.handle, 0, bytes);
      const shared = attempt(0);
      backend.free(shared.handle);
      backend.free(first.handle);
      const again = attempt(4096);
      backend.free(again.handle);
      process.stdout.write(JSON.stringify({ refused, size, intact: bytes.every((b) => b === 7), sharedBytes: shared.bytes, againBytes: again.bytes, live: backend.liveChunks().host }));`);
    const report = JSON.parse(out);
    for (const refused of report.refused) {
      expect(refused.code, refused.message).toBe('SYSTEM_ERROR');
      expect(refused.message).toMatch(/is mapped by a live chunk of this process/);
    }
    expect(report).toMatchObject({ size: 65536, intact: true, sharedBytes: 65536, againBytes: 4096, live: 0 });
    expect(fs.existsSync(file)).toBe(true); // deleteOnFree was the first chunk's; the last mapping's was not
    fs.unlinkSync(file);
  });

  it('unlinks deleteOnFree files of chunks still live when the process ends, by process.exit() or normally', () => {
    for (const ending of ['process.exit(0);', '']) {
      const deleted = uniqueFilePath();
      const kept = uniqueFilePath();
      const out = runInChild(`
        const a = backend.mapFile(${JSON.stringify(deleted)}, { createBytes: 4096, deleteOnFree: true });
        const b = backend.mapFile(${JSON.stringify(kept)}, { createBytes: 4096, deleteOnFree: false });
        backend.write(b.handle, 0, Buffer.from('kept'));
        process.stdout.write(JSON.stringify(backend.liveChunks()));
        ${ending}`);
      expect(JSON.parse(out), ending).toEqual({ device: 0, host: 2, deviceBytes: 0, hostBytes: 8192 });
      expect(fs.existsSync(deleted), `${ending || 'normal exit'}: deleteOnFree file`).toBe(false);
      expect(fs.readFileSync(kept).subarray(0, 4).toString(), ending).toBe('kept');
      fs.unlinkSync(kept);
    }
  });

  it.skipIf(tinyFsSkipReason !== undefined)(
    `refuses a file larger than the free disk with OUT_OF_MEMORY and leaves nothing behind${tinyFsSkipReason ? ` — skipped: ${tinyFsSkipReason}` : ''}`,
    () => {
      // In a private mount namespace the child sees a 1 MiB tmpfs over mapFileDir.
      const disk = path.join(mapFileDir, 'tiny');
      fs.mkdirSync(disk);
      const out = runInChild(
        `
        const fs = require('fs');
        const dir = ${JSON.stringify(disk)};
        const attempt = (file, createBytes) => {
          try {
            return { result: backend.mapFile(file, { createBytes, deleteOnFree: false }) };
          } catch (error) {
            return { code: error.code, message: error.message };
          }
        };
        const created = attempt(dir + '/new.bin', 8 * 1048576);
        const newExists = fs.existsSync(dir + '/new.bin');
        fs.writeFileSync(dir + '/old.bin', Buffer.alloc(100, 7));
        const recreated = attempt(dir + '/old.bin', 8 * 1048576);
        const oldSize = fs.statSync(dir + '/old.bin').size;
        const live = backend.liveChunks();
        const fits = attempt(dir + '/fits.bin', 256 * 1024);
        backend.free(fits.result.handle);
        process.stdout.write(JSON.stringify({ created, newExists, recreated, oldSize, live, fitsBytes: fits.result.bytes }));`,
        (args) => [...tinyFilesystemPrefix(disk, '1m', '1777'), process.execPath, ...args],
      );
      const report = JSON.parse(out);
      expect(report.created.code, report.created.message).toBe('OUT_OF_MEMORY');
      expect(report.created.message).toMatch(/cannot reserve 8388608 bytes \(8\.00 MiB\) for file ".*new\.bin": the disk is full/);
      expect(report.newExists).toBe(false);
      expect(report.recreated.code, report.recreated.message).toBe('OUT_OF_MEMORY');
      expect(report.oldSize).toBe(0);
      expect(report.live).toEqual({ device: 0, host: 0, deviceBytes: 0, hostBytes: 0 });
      expect(report.fitsBytes).toBe(256 * KiB);
      // The tmpfs was the child's alone: nothing of it shows here.
      expect(fs.readdirSync(disk)).toEqual([]);
    },
  );
});
