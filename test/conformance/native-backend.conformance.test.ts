/**
 * One suite for every native backend (STYLE.md practice 8): the same cases run against each backend
 * this machine can create. A backend that cannot be created is skipped with its reason in the suite's
 * title (e.g. "cuda backend — skipped: CUDA_ERROR cudaErrorInsufficientDriver: ..."), never passed
 * vacuously.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addonBuildInfo, createBackend } from '../../src/native/addon';
import type { BackendName, NativeBackend, NativeErrorCode } from '../../src/native/backend';

const KiB = 1024;
const MiB = 1024 * KiB;

type NativeErrorLike = Error & { code?: string; cudaError?: string };

function thrownBy(fn: () => unknown): NativeErrorLike {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as NativeErrorLike;
  }
  throw new Error('expected the call to throw, but it returned');
}

function expectCode(fn: () => unknown, code: NativeErrorCode, message?: RegExp): void {
  const error = thrownBy(fn);
  expect(error.code, error.message).toBe(code);
  if (message) expect(error.message).toMatch(message);
}

/** A directory for mapFile's files, removed (with whatever a failing case left) after the suite. */
const mapFileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensormem-conformance-mapfile-'));
afterAll(() => fs.rmSync(mapFileDir, { recursive: true, force: true }));
let mapFileCounter = 0;
/** `text` matched literally inside a RegExp. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
function uniqueFilePath(): string {
  mapFileCounter += 1;
  return path.join(mapFileDir, `chunk-${mapFileCounter}.bin`);
}

async function expectRejectCode(promise: Promise<unknown>, code: NativeErrorCode): Promise<void> {
  const error = await promise.then(
    () => {
      throw new Error('expected the promise to reject, but it resolved');
    },
    (reason: unknown) => reason as NativeErrorLike,
  );
  expect(error.code, error.message).toBe(code);
}

function describeError(error: unknown): string {
  const e = error as NativeErrorLike;
  return [e.code, e.cudaError && !e.message.includes(e.cudaError) ? e.cudaError : undefined, e.message].filter(Boolean).join(' ');
}

interface BackendCandidate {
  name: BackendName;
  create: () => NativeBackend;
  /** Why the backend cannot be created on this machine; undefined when it can. */
  skipReason?: string;
}

function probe(name: BackendName, create: () => NativeBackend): BackendCandidate {
  try {
    create();
    return { name, create };
  } catch (error) {
    return { name, create, skipReason: describeError(error) };
  }
}

const HOST_CAPACITY_BYTES = 256 * MiB;
const candidates: BackendCandidate[] = [
  probe('host', () => createBackend('host', { deviceCapacityBytes: HOST_CAPACITY_BYTES })),
  probe('cuda', () => createBackend('cuda')),
];

let shmCounter = 0;
function uniqueShmName(): string {
  shmCounter += 1;
  return `/tensormem-conformance-${process.pid}-${Date.now()}-${shmCounter}`;
}

describe.each(candidates.map((candidate) => [candidate.name, candidate] as const))('%s backend', (_name, candidate) => {
  describe.skipIf(candidate.skipReason !== undefined)(`conformance${candidate.skipReason ? ` — skipped: ${candidate.skipReason}` : ''}`, () => {
    let backend: NativeBackend;

    beforeEach(() => {
      backend = candidate.create();
    });

    afterEach(() => {
      // Every case frees what it allocates: the addon's own count must be back to zero.
      expect(backend.liveChunks()).toEqual({ device: 0, host: 0, deviceBytes: 0, hostBytes: 0 });
    });

    /** A device chunk on device 0 and a host chunk, each `bytes` long. */
    function deviceAndHost(bytes: number): Array<{ kind: 'device' | 'host'; handle: number }> {
      return [
        { kind: 'device', handle: backend.allocDevice(0, bytes) },
        { kind: 'host', handle: backend.allocHost(bytes) },
      ];
    }

    it('names itself and reports sane device memory', () => {
      expect(backend.name).toBe(candidate.name);
      expect(backend.deviceCount()).toBeGreaterThanOrEqual(1);
      const info = backend.deviceInfo(0);
      expect(info.index).toBe(0);
      expect(info.name.length).toBeGreaterThan(0);
      expect(Number.isSafeInteger(info.totalBytes) && info.totalBytes > 0).toBe(true);
      expect(info.freeBytes).toBeGreaterThanOrEqual(0);
      expect(info.freeBytes).toBeLessThanOrEqual(info.totalBytes);
      expect(info.computeCapability).toMatch(candidate.name === 'cuda' ? /^\d+\.\d+$/ : /^emulated$/);
      expectCode(() => backend.deviceInfo(backend.deviceCount()), 'OUT_OF_BOUNDS');
    });

    it('reports chunks and their live totals', () => {
      const device = backend.allocDevice(0, 3 * KiB);
      const host = backend.allocHost(5 * KiB);
      expect(backend.chunkInfo(device)).toEqual({ handle: device, kind: 'device', device: 0, bytes: 3 * KiB });
      expect(backend.chunkInfo(host)).toEqual({ handle: host, kind: 'host', device: -1, bytes: 5 * KiB });
      expect(backend.liveChunks()).toEqual({ device: 1, host: 1, deviceBytes: 3 * KiB, hostBytes: 5 * KiB });
      backend.free(device);
      backend.free(host);
    });

    it('round-trips bytes exactly (sync)', () => {
      const payload = randomBytes(MiB + 7);
      for (const { kind, handle } of deviceAndHost(2 * MiB)) {
        backend.write(handle, 4099, payload);
        const back = Buffer.alloc(payload.length);
        backend.read(handle, 4099, back);
        expect(back.equals(payload), kind).toBe(true);
        backend.free(handle);
      }
    });

    it('round-trips bytes exactly (async)', async () => {
      const payload = randomBytes(4 * MiB);
      for (const { kind, handle } of deviceAndHost(8 * MiB)) {
        await backend.writeAsync(handle, MiB, payload);
        const back = Buffer.alloc(payload.length);
        await backend.readAsync(handle, MiB, back);
        expect(back.equals(payload), kind).toBe(true);
        backend.free(handle);
      }
    });

    it('copies between chunks in every direction, sync and async', async () => {
      const bytes = 256 * KiB;
      const payload = randomBytes(bytes);
      const device = backend.allocDevice(0, 2 * bytes);
      const otherDevice = backend.allocDevice(0, bytes);
      const host = backend.allocHost(2 * bytes);
      const otherHost = backend.allocHost(bytes);
      backend.write(host, 0, payload);
      backend.copy(device, bytes, host, 0, bytes); // host → device
      await backend.copyAsync(otherDevice, 0, device, bytes, bytes); // device → device
      backend.copy(otherHost, 0, otherDevice, 0, bytes); // device → host
      await backend.copyAsync(host, bytes, otherHost, 0, bytes); // host → host
      const back = Buffer.alloc(bytes);
      backend.read(host, bytes, back);
      expect(back.equals(payload)).toBe(true);
      for (const handle of [device, otherDevice, host, otherHost]) backend.free(handle);
    });

    it('fills exactly the requested range (sync and async)', async () => {
      for (const { kind, handle } of deviceAndHost(64 * KiB)) {
        backend.fill(handle, 0, 64 * KiB, 0x11);
        backend.fill(handle, 100, 1000, 0xab);
        await backend.fillAsync(handle, 2000, 3000, 0xcd);
        const back = Buffer.alloc(64 * KiB);
        backend.read(handle, 0, back);
        const expected = Buffer.alloc(64 * KiB, 0x11);
        expected.fill(0xab, 100, 1100);
        expected.fill(0xcd, 2000, 5000);
        expect(back.equals(expected), kind).toBe(true);
        backend.free(handle);
      }
    });

    it('fills and copies on every device, from the main thread and the thread pool, whichever device was used last', async () => {
      // The CUDA runtime's current device is per host thread: each operation must make its chunk's device
      // current on the thread that runs it. Devices are visited last to first, then first to last.
      const count = backend.deviceCount();
      const bytes = 64 * KiB;
      const chunks = Array.from({ length: count }, (_, device) => backend.allocDevice(device, bytes));
      const order = [...chunks.keys()].reverse().concat([...chunks.keys()]);
      const expected = chunks.map((_, device) => {
        const content = Buffer.alloc(bytes, device + 1);
        content.fill(0xf0 + device, 1000, 1100);
        content.fill(0xe0 + device, 2000, 2010);
        return content;
      });
      for (const device of order) {
        backend.fill(chunks[device], 0, bytes, device + 1);
        await backend.fillAsync(chunks[device], 1000, 100, 0xf0 + device);
        await backend.writeAsync(chunks[device], 2000, Buffer.alloc(10, 0xe0 + device));
      }
      for (const device of order) {
        const back = Buffer.alloc(bytes);
        await backend.readAsync(chunks[device], 0, back);
        expect(back.equals(expected[device]), `device ${device}`).toBe(true);
      }
      // Device to the next device (itself when there is one) and back, sync then async.
      for (const device of order) {
        const next = (device + 1) % count;
        backend.copy(chunks[next], 32 * KiB, chunks[device], 0, 4 * KiB);
        await backend.copyAsync(chunks[device], 40 * KiB, chunks[next], 32 * KiB, 4 * KiB);
        const back = Buffer.alloc(4 * KiB);
        backend.read(chunks[device], 40 * KiB, back);
        expect(back.equals(expected[device].subarray(0, 4 * KiB)), `device ${device} → ${next} → ${device}`).toBe(true);
      }
      for (const handle of chunks) backend.free(handle);
    });

    it('refuses out-of-bounds ranges and writes nothing', async () => {
      const size = 4 * KiB;
      for (const { kind, handle } of deviceAndHost(size)) {
        const other = backend.allocHost(size);
        backend.fill(handle, 0, size, 0x5a);
        const oob: Array<[string, () => unknown]> = [
          ['write past the end', () => backend.write(handle, size - 1, Buffer.alloc(2, 1))],
          ['write at offset = size', () => backend.write(handle, size, Buffer.alloc(1, 1))],
          ['write at a huge offset', () => backend.write(handle, Number.MAX_SAFE_INTEGER, Buffer.alloc(1, 1))],
          ['read past the end', () => backend.read(handle, 1, Buffer.alloc(size))],
          ['fill past the end', () => backend.fill(handle, 1, size, 1)],
          ['fill with a huge length', () => backend.fill(handle, 1, Number.MAX_SAFE_INTEGER, 1)],
          ['copy into past the end', () => backend.copy(handle, 1, other, 0, size)],
          ['copy from past the end', () => backend.copy(other, 0, handle, size, 1)],
        ];
        for (const [what, call] of oob) {
          const error = thrownBy(call);
          expect(error.code, `${kind}: ${what}: ${error.message}`).toBe('OUT_OF_BOUNDS');
        }
        expect(thrownBy(oob[0][1]).message).toMatch(new RegExp(`offset ${size - 1}.*length 2.*${size} bytes of chunk ${handle}`));
        await expectRejectCode(backend.writeAsync(handle, size - 1, Buffer.alloc(2, 1)), 'OUT_OF_BOUNDS');
        await expectRejectCode(backend.fillAsync(handle, size, 1, 1), 'OUT_OF_BOUNDS');
        await expectRejectCode(backend.copyAsync(other, 1, handle, 0, size), 'OUT_OF_BOUNDS');
        const dst = Buffer.alloc(2, 0x77);
        await expectRejectCode(backend.readAsync(handle, size - 1, dst), 'OUT_OF_BOUNDS');
        expect([...dst]).toEqual([0x77, 0x77]);
        // Nothing was written anywhere.
        const back = Buffer.alloc(size);
        backend.read(handle, 0, back);
        expect(back.every((byte) => byte === 0x5a), kind).toBe(true);
        // Ranges that end exactly at the chunk's end are fine, as is length 0 at the end.
        backend.write(handle, size - 2, Buffer.alloc(2, 1));
        backend.read(handle, size, Buffer.alloc(0));
        backend.free(handle);
        backend.free(other);
      }
    });

    it('makes a freed handle invalid for every operation', async () => {
      for (const { kind, handle } of deviceAndHost(KiB)) {
        backend.free(handle);
        const calls: Array<[string, () => unknown]> = [
          ['free', () => backend.free(handle)],
          ['chunkInfo', () => backend.chunkInfo(handle)],
          ['write', () => backend.write(handle, 0, Buffer.alloc(1))],
          ['read', () => backend.read(handle, 0, Buffer.alloc(1))],
          ['fill', () => backend.fill(handle, 0, 1, 0)],
          ['copy', () => backend.copy(handle, 0, handle, 1, 1)],
          ['exportIpcHandle', () => backend.exportIpcHandle(handle)],
        ];
        for (const [what, call] of calls) {
          const error = thrownBy(call);
          expect(error.code, `${kind}: ${what} after free: ${error.message}`).toBe('INVALID_HANDLE');
        }
        await expectRejectCode(backend.readAsync(handle, 0, Buffer.alloc(1)), 'INVALID_HANDLE');
      }
    });

    it('refuses a device allocation larger than the device with OUT_OF_MEMORY', () => {
      const info = backend.deviceInfo(0);
      const error = thrownBy(() => backend.allocDevice(0, info.totalBytes + 64 * MiB));
      expect(error.code, error.message).toBe('OUT_OF_MEMORY');
      expect(error.message).toMatch(/device 0/);
      // The refusal leaves the backend usable.
      const handle = backend.allocDevice(0, MiB);
      backend.free(handle);
    });

    it('is safe to free while async operations are in flight', async () => {
      const bytes = 32 * MiB;
      const payload = randomBytes(bytes);
      const [device, host] = deviceAndHost(bytes);
      backend.write(host.handle, 0, payload);
      const copying = backend.copyAsync(device.handle, 0, host.handle, 0, bytes);
      const back = Buffer.alloc(bytes);
      const reading = backend.readAsync(host.handle, 0, back);
      backend.free(device.handle);
      backend.free(host.handle);
      expectCode(() => backend.chunkInfo(device.handle), 'INVALID_HANDLE');
      await Promise.all([copying, reading]);
      expect(back.equals(payload)).toBe(true);
    });

    it('lends views of host chunk memory, no copy, and keeps a viewed chunk until the view is released', () => {
      const payload = randomBytes(MiB);
      const handle = backend.allocHost(MiB);
      backend.write(handle, 0, payload);
      const view = backend.hostView(handle, 4096, 64 * KiB);
      const second = backend.hostView(handle, 4096, 64 * KiB);
      expect(Buffer.from(view.buffer, view.byteOffset, view.byteLength).equals(payload.subarray(4096, 4096 + 64 * KiB))).toBe(true);
      // A view is the chunk's memory itself: a write to the chunk shows through it.
      backend.fill(handle, 4096, 16, 0xee);
      expect([...view.subarray(0, 16)]).toEqual(new Array(16).fill(0xee));
      // Freed while viewed: the handle is gone at once, the memory stays until the last view goes.
      backend.free(handle);
      expectCode(() => backend.chunkInfo(handle), 'INVALID_HANDLE');
      expect(backend.liveChunks()).toMatchObject({ host: 1, hostBytes: MiB });
      backend.releaseView(view);
      expect(view.byteLength).toBe(0);
      expect(backend.liveChunks()).toMatchObject({ host: 1, hostBytes: MiB });
      expect(() => backend.releaseView(view)).toThrow(/not released yet/);
      expect(() => backend.releaseView(new Uint8Array(8))).toThrow(TypeError);
      backend.releaseView(second);
      expect(backend.liveChunks()).toMatchObject({ host: 0, hostBytes: 0 });
    });

    it('refuses views of device chunks and of ranges outside a host chunk, pinning nothing', () => {
      const [device, host] = deviceAndHost(4096);
      expectCode(() => backend.hostView(device.handle, 0, 16), 'UNSUPPORTED', /device memory/);
      expectCode(() => backend.hostView(host.handle, 4000, 100), 'OUT_OF_BOUNDS', /offset 4000 \+ length 100 exceeds the 4096 bytes/);
      expectCode(() => backend.hostView(987654, 0, 1), 'INVALID_HANDLE');
      backend.free(device.handle);
      backend.free(host.handle);
    });

    it('maps shared-memory host chunks as 0600 objects and unlinks them on free', () => {
      const name = uniqueShmName();
      const handle = backend.allocHost(MiB, { shmName: name });
      const file = `/dev/shm${name}`;
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const payload = randomBytes(4096);
      backend.write(handle, MiB - 4096, payload);
      expect(fs.readFileSync(file).subarray(MiB - 4096).equals(payload)).toBe(true);
      // The shared chunk works with device copies like any host chunk.
      const device = backend.allocDevice(0, 4096);
      backend.copy(device, 0, handle, MiB - 4096, 4096);
      const back = Buffer.alloc(4096);
      backend.read(device, 0, back);
      expect(back.equals(payload)).toBe(true);
      backend.free(device);
      backend.free(handle);
      expect(fs.existsSync(file)).toBe(false);
    });

    it('maps a file as a host chunk whose contents persist in the file across free and re-map', async () => {
      const file = uniqueFilePath();
      const size = 64 * KiB;
      const created = backend.mapFile(file, { createBytes: size, deleteOnFree: false });
      expect(created.bytes).toBe(size);
      expect(backend.chunkInfo(created.handle)).toEqual({ handle: created.handle, kind: 'host', device: -1, bytes: size, filePath: file });
      expect(backend.liveChunks()).toEqual({ device: 0, host: 1, deviceBytes: 0, hostBytes: size });
      const stat = fs.statSync(file);
      expect(stat.size).toBe(size);
      expect(stat.mode & 0o777).toBe(0o600);
      // A new file is zeros.
      const zeros = Buffer.alloc(size, 0xff);
      backend.read(created.handle, 0, zeros);
      expect(zeros.every((byte) => byte === 0)).toBe(true);
      // Sync and async writes and fills, and a copy from a device chunk, all land in the file.
      const head = randomBytes(1000);
      const tail = randomBytes(3000);
      backend.write(created.handle, 0, head);
      await backend.writeAsync(created.handle, size - tail.length, tail);
      backend.fill(created.handle, 2000, 100, 0xab);
      await backend.fillAsync(created.handle, 3000, 50, 0xcd);
      const fromDevice = randomBytes(4 * KiB);
      const device = backend.allocDevice(0, 4 * KiB);
      backend.write(device, 0, fromDevice);
      await backend.copyAsync(created.handle, 8 * KiB, device, 0, 4 * KiB);
      const expected = Buffer.alloc(size);
      head.copy(expected, 0);
      tail.copy(expected, size - tail.length);
      expected.fill(0xab, 2000, 2100);
      expected.fill(0xcd, 3000, 3050);
      fromDevice.copy(expected, 8 * KiB);
      // MAP_SHARED: the file shows the writes while the chunk is still mapped.
      expect(fs.readFileSync(file).equals(expected)).toBe(true);
      backend.free(created.handle);
      // Not deleteOnFree: the file outlives the chunk, with its contents.
      expect(fs.readFileSync(file).equals(expected)).toBe(true);

      // createBytes 0 maps the existing file as it is, at its own length.
      const again = backend.mapFile(file, { createBytes: 0, deleteOnFree: false });
      expect(again.bytes).toBe(size);
      expect(again.handle).not.toBe(created.handle);
      const back = Buffer.alloc(size);
      await backend.readAsync(again.handle, 0, back);
      expect(back.equals(expected)).toBe(true);
      // ...and copies from it to a device chunk like any host chunk.
      backend.copy(device, 0, again.handle, 0, 4 * KiB);
      const onDevice = Buffer.alloc(4 * KiB);
      backend.read(device, 0, onDevice);
      expect(onDevice.equals(expected.subarray(0, 4 * KiB))).toBe(true);
      backend.free(again.handle);
      backend.free(device);
      expect(fs.existsSync(file)).toBe(true);
      fs.unlinkSync(file);
    });

    it('re-creates an existing file as createBytes zero bytes', () => {
      const file = uniqueFilePath();
      fs.writeFileSync(file, Buffer.alloc(128 * KiB, 0x33));
      const shrunk = backend.mapFile(file, { createBytes: 16 * KiB, deleteOnFree: false });
      expect(shrunk.bytes).toBe(16 * KiB);
      expect(fs.statSync(file).size).toBe(16 * KiB);
      const back = Buffer.alloc(16 * KiB, 0xff);
      backend.read(shrunk.handle, 0, back);
      expect(back.every((byte) => byte === 0)).toBe(true);
      backend.write(shrunk.handle, 0, Buffer.alloc(16 * KiB, 0x44));
      backend.free(shrunk.handle);
      // Growing works the same way, and again the old contents are gone.
      const grown = backend.mapFile(file, { createBytes: 256 * KiB, deleteOnFree: false });
      expect(grown.bytes).toBe(256 * KiB);
      expect(fs.readFileSync(file).equals(Buffer.alloc(256 * KiB))).toBe(true);
      backend.free(grown.handle);
      fs.unlinkSync(file);
    });

    it('deletes the file on free only with deleteOnFree', () => {
      const kept = uniqueFilePath();
      const deleted = uniqueFilePath();
      const keptChunk = backend.mapFile(kept, { createBytes: 8 * KiB, deleteOnFree: false });
      const deletedChunk = backend.mapFile(deleted, { createBytes: 8 * KiB, deleteOnFree: true });
      expect(fs.existsSync(deleted)).toBe(true);
      backend.write(deletedChunk.handle, 0, Buffer.from('temporary'));
      expect(fs.readFileSync(deleted).subarray(0, 9).toString()).toBe('temporary');
      backend.free(keptChunk.handle);
      backend.free(deletedChunk.handle);
      expect(fs.existsSync(kept)).toBe(true);
      expect(fs.existsSync(deleted)).toBe(false);
      // deleteOnFree applies to an existing file mapped as it is, too.
      const existing = backend.mapFile(kept, { createBytes: 0, deleteOnFree: true });
      backend.free(existing.handle);
      expect(fs.existsSync(kept)).toBe(false);
    });

    it('refuses to map a missing or empty file with SYSTEM_ERROR naming the path, and leaves nothing behind', () => {
      const missing = uniqueFilePath();
      expectCode(() => backend.mapFile(missing, { createBytes: 0, deleteOnFree: true }), 'SYSTEM_ERROR',
        new RegExp(`"${literal(missing)}".*No such file or directory \\(errno \\d+\\)`));
      expect(fs.existsSync(missing)).toBe(false);
      const empty = uniqueFilePath();
      fs.writeFileSync(empty, Buffer.alloc(0));
      expectCode(() => backend.mapFile(empty, { createBytes: 0, deleteOnFree: true }), 'SYSTEM_ERROR', new RegExp(`"${literal(empty)}".*empty`));
      // A refused mapping never unlinks, deleteOnFree or not.
      expect(fs.existsSync(empty)).toBe(true);
      fs.unlinkSync(empty);
      const inMissingDir = path.join(mapFileDir, 'no-such-dir', 'chunk.bin');
      expectCode(() => backend.mapFile(inMissingDir, { createBytes: KiB, deleteOnFree: false }), 'SYSTEM_ERROR',
        new RegExp(`"${literal(inMissingDir)}".*No such file or directory`));
      expectCode(() => backend.mapFile(mapFileDir, { createBytes: 0, deleteOnFree: false }), 'SYSTEM_ERROR', new RegExp(`"${literal(mapFileDir)}"`));
      expect(backend.liveChunks()).toEqual({ device: 0, host: 0, deviceBytes: 0, hostBytes: 0 });
    });

    it('bounds-checks a mapped file chunk like any chunk', async () => {
      const file = uniqueFilePath();
      const size = 64 * KiB;
      const { handle } = backend.mapFile(file, { createBytes: size, deleteOnFree: true });
      const other = backend.allocHost(size);
      backend.fill(handle, 0, size, 0x5a);
      const oob: Array<[string, () => unknown]> = [
        ['write past the end', () => backend.write(handle, size - 1, Buffer.alloc(2, 1))],
        ['read past the end', () => backend.read(handle, 1, Buffer.alloc(size))],
        ['fill past the end', () => backend.fill(handle, size, 1, 1)],
        ['copy into past the end', () => backend.copy(handle, 1, other, 0, size)],
        ['copy from past the end', () => backend.copy(other, 0, handle, size, 1)],
      ];
      for (const [what, call] of oob) {
        const error = thrownBy(call);
        expect(error.code, `${what}: ${error.message}`).toBe('OUT_OF_BOUNDS');
      }
      expect(thrownBy(oob[0][1]).message).toMatch(new RegExp(`offset ${size - 1}.*length 2.*${size} bytes of chunk ${handle}`));
      await expectRejectCode(backend.writeAsync(handle, size, Buffer.alloc(1, 1)), 'OUT_OF_BOUNDS');
      await expectRejectCode(backend.readAsync(handle, size - 1, Buffer.alloc(2)), 'OUT_OF_BOUNDS');
      // Nothing was written: neither in the chunk nor in the file.
      expect(fs.readFileSync(file).every((byte) => byte === 0x5a)).toBe(true);
      backend.free(other);
      backend.free(handle);
      expectCode(() => backend.read(handle, 0, Buffer.alloc(1)), 'INVALID_HANDLE');
      expect(fs.existsSync(file)).toBe(false);
    });

    it('keeps a mapped file chunk freed during an async write until the write ends, then deletes the file', async () => {
      const file = uniqueFilePath();
      const bytes = 32 * MiB;
      const { handle } = backend.mapFile(file, { createBytes: bytes, deleteOnFree: true });
      const payload = randomBytes(bytes);
      const writing = backend.writeAsync(handle, 0, payload);
      backend.free(handle);
      expectCode(() => backend.chunkInfo(handle), 'INVALID_HANDLE');
      // Still held and counted while the write runs (or until its completion is processed).
      expect(backend.liveChunks()).toEqual({ device: 0, host: 1, deviceBytes: 0, hostBytes: bytes });
      expect(fs.existsSync(file)).toBe(true);
      await writing;
      expect(fs.existsSync(file)).toBe(false);
    });

    it('exports CUDA IPC handles only for cuda device chunks', () => {
      const [device, host] = deviceAndHost(MiB);
      expectCode(() => backend.exportIpcHandle(host.handle), 'UNSUPPORTED');
      if (candidate.name === 'cuda') {
        const ipc = backend.exportIpcHandle(device.handle);
        expect(Buffer.isBuffer(ipc)).toBe(true);
        expect(ipc.length).toBe(64);
      } else {
        expectCode(() => backend.exportIpcHandle(device.handle), 'UNSUPPORTED');
      }
      backend.free(device.handle);
      backend.free(host.handle);
    });
  });
});

describe('cuda backend availability', () => {
  // Is an NVIDIA driver here? /proc/driver/nvidia/version alone is not enough: under gVisor (and in some
  // containers) it is missing while the GPU works, so /dev/nvidiactl counts too, and so does a cuda
  // backend that the probe above created. The "no driver" case must never run against a working GPU.
  const cudaStarted = candidates.some((candidate) => candidate.name === 'cuda' && candidate.skipReason === undefined);
  const driverLoaded = cudaStarted || fs.existsSync('/proc/driver/nvidia/version') || fs.existsSync('/dev/nvidiactl');
  const builtWithCuda = addonBuildInfo().cuda;

  it.runIf(builtWithCuda && !driverLoaded)('fails createBackend("cuda") with CUDA_ERROR and a readable message where there is no driver', () => {
    const error = thrownBy(() => createBackend('cuda'));
    expect(error.code, error.message).toBe('CUDA_ERROR');
    expect(error.cudaError).toMatch(/^cudaError[A-Za-z]+$/);
    expect(error.message).toMatch(new RegExp(`^CUDA backend unavailable: ${error.cudaError}: \\S`));
    // The addon stays usable after the failure.
    const host = createBackend('host', { deviceCapacityBytes: MiB });
    host.free(host.allocDevice(0, KiB));
  });

  it.runIf(builtWithCuda && driverLoaded)('creates the cuda backend where a driver is loaded', () => {
    let backend: NativeBackend | undefined;
    try {
      backend = createBackend('cuda');
    } catch (error) {
      // A driver without a visible device (e.g. CUDA_VISIBLE_DEVICES="") is still a clean CUDA_ERROR.
      expect((error as NativeErrorLike).code).toBe('CUDA_ERROR');
      return;
    }
    expect(backend.deviceCount()).toBeGreaterThanOrEqual(1);
  });

  it.runIf(!builtWithCuda)('fails createBackend("cuda") with UNSUPPORTED when the addon was built without CUDA', () => {
    expectCode(() => createBackend('cuda'), 'UNSUPPORTED', /built without CUDA.*npx cmake-js rebuild --directory native --out build/);
  });
});
