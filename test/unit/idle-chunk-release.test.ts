/** --pool-idle-release in MemoryManager: which chunks go back, whatever copies are in flight. */
import { describe, expect, it } from 'vitest';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { idleReleaseCheckMs } from '../../src/memory/idle-chunk-release';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import type { BackendName, NativeBackend } from '../../src/native/backend';
import { MiB } from '../../src/units';

const OWNER = { leaseId: 'lease', tenant: 't' };

/** The host backend under another name: MemoryManager takes the cuda backend's precautions for it. */
function named(name: BackendName): NativeBackend {
  const backend = createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 });
  return new Proxy(backend, {
    get: (target, key) => {
      if (key === 'name') return name;
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function manager(backendName: BackendName) {
  return new MemoryManager(named(backendName), givenLimits([32 * MiB], 32 * MiB), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: 64 * 1024 }, new PhysicalMemoryGuard(0));
}

/** An empty chunk beside one whose block is being written off the event loop (not awaited). */
function idleBesideBusyWrite(backendName: BackendName) {
  const memory = manager(backendName);
  const idle = memory.allocateDevice(0, 4 * MiB, OWNER);
  const busy = memory.allocateDevice(0, 4 * MiB, OWNER);
  memory.deallocateDevice(0, idle);
  return { memory, write: memory.writeBlock(busy, 0, Buffer.alloc(4 * MiB, 1)) };
}

describe('MemoryManager.releaseIdleChunks', () => {
  it.each(['host', 'cuda'] as const)('gives back the empty device and host chunks and keeps those with a live block (%s)', (name) => {
    const memory = manager(name);
    const freed = memory.allocateDevice(0, 4 * MiB, OWNER);
    const kept = memory.allocateDevice(0, 4 * MiB, OWNER);
    const host = memory.allocateHost(4 * MiB, OWNER, 'host_only');
    memory.deallocateDevice(0, freed);
    memory.deallocateHost(host, 'host_only');
    expect(memory.releaseIdleChunks(60_000)).toEqual({});
    expect(memory.releaseIdleChunks(0)).toEqual({ 'device:0': 4 * MiB, host: 4 * MiB });
    expect(memory.releaseIdleChunks(0)).toEqual({});
    memory.deallocateDevice(0, kept);
    expect(memory.releaseIdleChunks(0)).toEqual({ 'device:0': 4 * MiB });
    memory.release();
  });

  it.each(['host', 'cuda'] as const)('gives a chunk back while a copy to another chunk runs off the event loop (%s): on cuda the addon frees it on its release thread', async (name) => {
    const { memory, write } = idleBesideBusyWrite(name);
    expect(memory.releaseIdleChunks(0)).toEqual({ 'device:0': 4 * MiB });
    await write;
    memory.release();
  });

  it('checks every half of the idle time, at least every 50 ms and at most every 5 s', () => {
    expect(idleReleaseCheckMs(60_000)).toBe(5000);
    expect(idleReleaseCheckMs(2000)).toBe(1000);
    expect(idleReleaseCheckMs(20)).toBe(50);
  });
});
