/**
 * A dedicated block (an exportable array's, or one an export moved) is a chunk of its own, whole pages,
 * handed out whole by ExportArray (a CUDA IPC handle, a shared-memory region). cudaMalloc does not clear
 * memory the process freed before, so past the array's bytes lies whatever that memory held last,
 * another tenant's included: with --scrub those tails are zeroed. The backend here dirties every new
 * chunk as recycled device memory would be.
 */
import { describe, expect, it } from 'vitest';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import type { BackendName, NativeBackend } from '../../src/native/backend';
import { MiB } from '../../src/units';

const DEDICATED = { dedicated: true };
const OWNER = { leaseId: 'lease-b', tenant: 'b' };

/** The host backend, with every new chunk full of 0xEE (what recycled device memory would hold); `name` as it says (a 'cuda' one stands for a GPU). */
function dirtyBackend(name: BackendName = 'host'): NativeBackend {
  const backend = createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 });
  const dirty = (handle: number): number => {
    backend.fill(handle, 0, backend.chunkInfo(handle).bytes, 0xee);
    return handle;
  };
  const overrides: Partial<NativeBackend> = {
    name,
    allocDevice: (device: number, bytes: number) => dirty(backend.allocDevice(device, bytes)),
    allocHost: (bytes: number, options?: Parameters<NativeBackend['allocHost']>[1]) => dirty(backend.allocHost(bytes, options)),
  };
  return new Proxy(backend, {
    get: (target, name) => {
      if (name in overrides) return overrides[name as keyof NativeBackend];
      const value = Reflect.get(target, name) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function manager(scrub: boolean, backendName?: BackendName): { memory: MemoryManager; backend: NativeBackend } {
  const backend = dirtyBackend(backendName);
  return { backend, memory: new MemoryManager(backend, givenLimits([32 * MiB], 32 * MiB), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: MiB, scrub }, new PhysicalMemoryGuard(0)) };
}

/** The bytes of `block` past its first `bytes`, read from its chunk. */
function tail(backend: NativeBackend, block: { chunkHandle: number; offset: number; bytes: number }, bytes: number): Buffer {
  const out = Buffer.alloc(block.bytes - bytes);
  backend.read(block.chunkHandle, block.offset + bytes, out);
  return out;
}

describe('dedicated blocks under --scrub', () => {
  it('hold zeros past the requested bytes, on the device and in host memory', () => {
    const { memory, backend } = manager(true);
    const device = memory.allocateDevice(0, 100, OWNER, DEDICATED);
    const host = memory.allocateHost(100, OWNER, 'host_only', DEDICATED);
    expect(device.bytes).toBe(4096);
    expect(tail(backend, device, 100).every((byte) => byte === 0)).toBe(true);
    expect(tail(backend, host, 100).every((byte) => byte === 0)).toBe(true);
    memory.deallocateDevice(0, device);
    memory.deallocateHost(host, 'host_only');
    memory.release();
  });

  it('are left as the backend gave them with --scrub off (the dirty backend is what it claims)', () => {
    const { memory, backend } = manager(false);
    const device = memory.allocateDevice(0, 100, OWNER, DEDICATED);
    expect(tail(backend, device, 100).every((byte) => byte === 0xee)).toBe(true);
    memory.deallocateDevice(0, device);
    memory.release();
  });
});

describe('a dedicated device block on the cuda backend', () => {
  // The CUDA C++ Programming Guide (Interprocess Communication): cudaMalloc may sub-allocate a small
  // allocation from a larger block, and the IPC handle of it then shares that entire block, other
  // allocations in it included ("information disclosure between processes"); only allocations of a
  // 2 MiB aligned size are shared alone. A 4 KiB exportable array's handle reached the neighbouring
  // exportable arrays of any tenant.
  it('is a whole 2 MiB cudaMalloc, zeroed past the array under --scrub, so its IPC handle maps nothing else', () => {
    const { memory, backend } = manager(true, 'cuda');
    expect(memory.deviceFootprint(0, 100, DEDICATED)).toBe(2 * MiB);
    const small = memory.allocateDevice(0, 100, OWNER, DEDICATED);
    const large = memory.allocateDevice(0, 3 * MiB, OWNER, DEDICATED);
    expect([small.bytes, backend.chunkInfo(small.chunkHandle).bytes]).toEqual([2 * MiB, 2 * MiB]);
    expect([large.bytes, backend.chunkInfo(large.chunkHandle).bytes]).toEqual([4 * MiB, 4 * MiB]);
    expect(tail(backend, small, 100).every((byte) => byte === 0)).toBe(true);
    // Host regions are POSIX shared memory, mapped by the page: they stay whole pages.
    const host = memory.allocateHost(100, OWNER, 'host_only', DEDICATED);
    expect(host.bytes).toBe(4096);
    // Pool blocks are not exported: their rounding is the pool's.
    const pooled = memory.allocateDevice(0, 100, OWNER);
    expect(pooled.bytes).toBe(256);
    for (const block of [small, large, pooled]) memory.deallocateDevice(0, block);
    memory.deallocateHost(host, 'host_only');
    memory.release();
  });
});
