/**
 * A chunk the backend itself refuses (cudaMalloc with the GPU's memory held by other processes, the
 * system's RAM, a full /dev/shm), not a cap of the daemon. The seed's advice for a CUDA out of memory is
 * "Verify `maxbytes` is not set higher than available VRAM" (its pitfall: "`maxbytes` > GPU VRAM → CUDA
 * OOM"): the refusal said "… or a larger --maxbytes", and its numbers mixed the device's total with the
 * pool's used bytes ("emulated device capacity 64.00 MiB, used 0 bytes (0 B)" for a 20 MiB request).
 */
import { describe, expect, it } from 'vitest';
import { OutOfMemoryError } from '../../src/errors';
import { givenLimits } from '../../src/memory/limits';
import { MemoryManager } from '../../src/memory/memory-manager';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { thrownBy } from '../helpers/thrown';

const OWNER = { leaseId: 'lease-a', tenant: 'a' };

describe('a device chunk refused by the device itself', () => {
  it('names the pool cap with its own numbers, says the device refused, and does not advise a larger --maxbytes', () => {
    // A 64 MiB device with a 32 MiB pool cap, 48 MiB of it held outside the daemon (another process on the GPU).
    const backend = createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 });
    const memory = new MemoryManager(backend, givenLimits([32 * MiB], 32 * MiB), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: MiB, scrub: false }, new PhysicalMemoryGuard(0));
    const outside = backend.allocDevice(0, 48 * MiB);
    try {
      const error = thrownBy(() => memory.allocateDevice(0, 20 * MiB, OWNER), OutOfMemoryError);
      expect(error.reason).toBe('DEVICE_OUT_OF_MEMORY');
      expect(error.message).toMatch(
        /^Can't allocate \[DEVICE\] memory: 20971520 bytes \(20\.00 MiB\) on device 0: pool cap \(maxbytes\) 33554432 bytes \(32\.00 MiB\), used 0 bytes \(0 B\), largest free block 0 bytes \(0 B\); the device refused it, not the pool cap: emulated device 0 .*free 16777216 bytes \(16\.00 MiB\)\. Try: /,
      );
      expect(error.message).not.toContain('a larger --maxbytes');
      expect(error.message).toContain('--maxbytes no higher than');
      expect(error.metadata).toMatchObject({ cap_bytes: String(32 * MiB), used_bytes: '0', refused_by: 'backend' });
      // Nothing was taken: once the outside holder lets go, the same request fits.
      backend.free(outside);
      const block = memory.allocateDevice(0, 20 * MiB, OWNER);
      expect(memory.deviceReports()[0].usedBytes).toBe(20 * MiB);
      memory.deallocateDevice(0, block);
    } finally {
      memory.release();
    }
  });

  it('keeps "a larger --maxbytes" for a refusal by the pool cap itself', () => {
    const backend = createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 });
    const memory = new MemoryManager(backend, givenLimits([32 * MiB], 32 * MiB), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: MiB, scrub: false }, new PhysicalMemoryGuard(0));
    try {
      const error = thrownBy(() => memory.allocateDevice(0, 40 * MiB, OWNER), OutOfMemoryError);
      expect(error.message).toMatch(/pool cap \(maxbytes\) 33554432 bytes \(32\.00 MiB\).*Try: free arrays, a smaller batch, workspaces, or a larger --maxbytes\.$/);
      expect(error.metadata.refused_by).toBeUndefined();
    } finally {
      memory.release();
    }
  });
});
