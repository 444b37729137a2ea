/**
 * The addon's client-side mapping of shared-memory objects (mapSharedMemory / unmapSharedMemory), over
 * objects made by a host backend's named host chunks, as ExportArray hands them out.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { addonPath, createBackend, loadAddon } from '../../src/native/addon';
import type { NativeBackend } from '../../src/native/backend';
import { newShmName, shmPath } from '../../src/memory/shm-names';

describe('mapSharedMemory', () => {
  const addon = loadAddon();
  let backend: NativeBackend;
  const chunks: number[] = [];

  afterEach(() => {
    for (const handle of chunks.splice(0)) backend.free(handle);
  });

  function sharedChunk(bytes: number): { handle: number; name: string } {
    backend ??= createBackend('host', { deviceCapacityBytes: 1 << 20 });
    const name = newShmName();
    const handle = backend.allocHost(bytes, { shmName: name });
    chunks.push(handle);
    return { handle, name };
  }

  it('maps the whole object without a copy: writes on either side are seen by the other', () => {
    const { handle, name } = sharedChunk(8192);
    backend.write(handle, 100, Buffer.from('from the daemon'));
    const mapping = addon.mapSharedMemory(name, true);
    expect(mapping.byteLength).toBe(8192);
    expect(Buffer.from(mapping, 100, 15).toString()).toBe('from the daemon');
    Buffer.from(mapping).write('from the client', 5000);
    const back = Buffer.alloc(15);
    backend.read(handle, 5000, back);
    expect(back.toString()).toBe('from the client');
    expect(addon.unmapSharedMemory(mapping)).toBe(true);
  });

  it('unmap detaches the ArrayBuffer (views read as empty) and is answered false the second time', () => {
    const { name } = sharedChunk(4096);
    const mapping = addon.mapSharedMemory(name, false);
    const view = Buffer.from(mapping, 0, 4096);
    expect(view.length).toBe(4096);
    expect(addon.unmapSharedMemory(mapping)).toBe(true);
    expect(mapping.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(addon.unmapSharedMemory(mapping)).toBe(false);
    expect(addon.unmapSharedMemory(new ArrayBuffer(16))).toBe(false);
  });

  it('a mapping stays valid after the name is unlinked (the chunk freed), and the name cannot be opened again', () => {
    const { handle, name } = sharedChunk(4096);
    backend.fill(handle, 0, 4096, 0x5a);
    const mapping = addon.mapSharedMemory(name, false);
    backend.free(chunks.pop()!);
    expect(existsSync(shmPath(name))).toBe(false);
    expect(new Uint8Array(mapping).every((byte) => byte === 0x5a)).toBe(true);
    expect(() => addon.mapSharedMemory(name, false)).toThrow(expect.objectContaining({ code: 'SYSTEM_ERROR', errno: constants.errno.ENOENT, message: expect.stringContaining('No such file or directory') }));
    addon.unmapSharedMemory(mapping);
  });

  it('a read-only mapping takes a store without crashing, keeps it to itself, and still shows the owner\'s later writes elsewhere', () => {
    const { handle, name } = sharedChunk(8192);
    backend.fill(handle, 0, 8192, 0x11);
    const mapping = addon.mapSharedMemory(name, false);
    const view = new Uint8Array(mapping);
    // A store into PROT_READ memory was a SIGSEGV that killed the process.
    view[0] = 0x99;
    backend.read(handle, 0, view.subarray(100, 104));
    expect(view[0]).toBe(0x99);
    const owner = Buffer.alloc(1);
    backend.read(handle, 0, owner);
    expect(owner[0]).toBe(0x11);
    // The second page was never written here: the owner's write shows through.
    backend.write(handle, 5000, Buffer.from([0x42]));
    expect(view[5000]).toBe(0x42);
    expect(addon.unmapSharedMemory(mapping)).toBe(true);
  });

  it('unmap during an async copy from the mapping detaches it now and unmaps it when the copy ends', () => {
    // munmap ran at once, under the copy reading the mapping on a worker thread (SIGSEGV). In a child:
    // it crashed.
    const script = `
      const fs = require('fs');
      const addon = { exports: {} };
      process.dlopen(addon, ${JSON.stringify(addonPath())});
      const backend = addon.exports.createBackend('host', { deviceCapacityBytes: 1048576 });
      const N = 32 * 1048576;
      const name = '/tensormem-unmap-async-' + process.pid;
      const src = backend.allocHost(N, { shmName: name });
      backend.fill(src, 0, N, 0x3c);
      const dst = backend.allocHost(N);
      const mapped = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((line) => line.includes(name)).length;
      const mapping = addon.exports.mapSharedMemory(name, false);
      const before = mapped();
      const writing = backend.writeAsync(dst, 0, new Uint8Array(mapping, 4096));
      const unmapped = addon.exports.unmapSharedMemory(mapping);
      const report = { before, unmapped, detached: mapping.byteLength === 0, during: mapped() };
      writing.then(() => {
        const out = Buffer.alloc(N - 4096);
        backend.read(dst, 0, out);
        backend.free(src);
        backend.free(dst);
        process.stdout.write(JSON.stringify({ ...report, after: mapped(), copied: out.every((b) => b === 0x3c) }));
      });`;
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(result.status, `child failed: ${result.stderr}`).toBe(0);
    // The chunk's own mapping and the client's; the client's goes when the copy ends.
    expect(JSON.parse(result.stdout)).toEqual({ before: 2, unmapped: true, detached: true, during: 2, after: 0, copied: true });
  });

  // ArrayBuffer.prototype.transfer() is Node 22+.
  it.skipIf(typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer !== 'function')(
    'a mapping moved by transfer() stays mapped while the new ArrayBuffer lives, though the one it came from is collected',
    () => {
      // transfer() moves the memory without a copy and detaches the mapping's ArrayBuffer, which
      // unmapSharedMemory then no longer finds; the unmap follows the memory, not that object.
      const script = `
        const fs = require('fs');
        const addon = { exports: {} };
        process.dlopen(addon, ${JSON.stringify(addonPath())});
        const name = '/tensormem-transfer-' + process.pid;
        fs.writeFileSync('/dev/shm' + name, Buffer.alloc(1048576, 0x5e));
        const mapped = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((line) => line.includes(name)).length;
        let collected = false;
        const registry = new FinalizationRegistry(() => { collected = true; });
        let moved = (() => {
          const mapping = addon.exports.mapSharedMemory(name, true);
          registry.register(mapping, 'mapping');
          const moved = new Uint8Array(mapping.transfer());
          moved[0] = 1;
          return { moved, unmapped: addon.exports.unmapSharedMemory(mapping) };
        })();
        fs.unlinkSync('/dev/shm' + name);
        let tries = 0;
        (function collect() {
          global.gc();
          if (!collected && ++tries < 50) return setTimeout(collect, 10);
          const report = { unmapped: moved.unmapped, collected, whileMoved: mapped(), bytes: moved.moved[0] + moved.moved[1048575] };
          moved = undefined;
          tries = 0;
          (function check() {
            global.gc();
            if (mapped() !== 0 && ++tries < 50) return setTimeout(check, 10);
            process.stdout.write(JSON.stringify({ ...report, after: mapped() }));
          })();
        })();`;
      const result = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 30_000 });
      expect(result.status, `child failed: ${result.stderr}`).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ unmapped: false, collected: true, whileMoved: 1, bytes: 1 + 0x5e, after: 0 });
    },
  );

  it('refuses bad names and arguments, naming them', () => {
    expect(() => addon.mapSharedMemory('no-slash', false)).toThrow(/for name but received "no-slash"/);
    expect(() => addon.mapSharedMemory('/a/b', false)).toThrow(RangeError);
    expect(() => addon.mapSharedMemory(42 as unknown as string, false)).toThrow(/Expected a string for name/);
    expect(() => addon.mapSharedMemory('/x', 'yes' as unknown as boolean)).toThrow(/Expected a boolean for writable/);
    expect(() => addon.unmapSharedMemory('x' as unknown as ArrayBuffer)).toThrow(/ArrayBuffer/);
  });
});
