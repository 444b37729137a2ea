/** MemoryManager.copyBlock copies as memmove: ranges of one chunk may overlap (a circular workspace hands out memory its earlier arrays still use). */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';

const OWNER = { leaseId: 'lease', tenant: 't' };

describe.each([
  ['on the event loop', 64 * MiB],
  ['off the event loop', 1024],
])('copyBlock within one block (%s)', (_, asyncCopyThresholdBytes) => {
  const memory = new MemoryManager(createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 }), givenLimits([16 * MiB], 16 * MiB), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes }, new PhysicalMemoryGuard(0));
  const block = memory.allocateDevice(0, 64 * 1024, OWNER);
  const read = async () => {
    const out = Buffer.alloc(block.bytes);
    await memory.readBlock(block, 0, out);
    return out;
  };

  it.each([
    ['the same range', 4096, 4096],
    ['forward, overlapping', 1000, 9000],
    ['backward, overlapping', 9000, 1000],
    ['disjoint', 0, 40_000],
  ])('%s: the destination gets the source bytes as they were', async (_, from, to) => {
    const pattern = randomBytes(block.bytes);
    await memory.writeBlock(block, 0, pattern);
    await memory.copyBlock(block, to, block, from, 20_000);
    const after = await read();
    expect(after.subarray(to, to + 20_000).equals(pattern.subarray(from, from + 20_000))).toBe(true);
    // Bytes outside the destination are untouched.
    expect(after.subarray(0, Math.min(from, to)).equals(pattern.subarray(0, Math.min(from, to)))).toBe(true);
  });
});
