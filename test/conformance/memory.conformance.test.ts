/**
 * The memory layer (pools, caps, arrays, host mirrors) against every backend this machine has.
 * cuda cases skip, naming the CUDA error, where no device is visible; they never pass vacuously.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/native/addon';
import type { NativeBackend } from '../../src/native/backend';
import { MemoryManager } from '../../src/memory/memory-manager';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { TensorArray, TensorArrayInit } from '../../src/memory/tensor-array';
import { OutOfMemoryError } from '../../src/errors';
import type { Block } from '../../src/memory/memory-resource';
import { givenLimits } from '../../src/memory/limits';

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

function tryCreate(name: 'cuda' | 'host'): { backend?: NativeBackend; reason?: string } {
  try {
    const backend = name === 'host' ? createBackend('host', { deviceCapacityBytes: 256 * MiB }) : createBackend('cuda', {});
    if (backend.deviceCount() === 0) return { reason: 'no CUDA device visible' };
    return { backend };
  } catch (error) {
    return { reason: (error as Error).message };
  }
}

const backends = (['host', 'cuda'] as const).map((name) => ({ name, ...tryCreate(name) }));

for (const { name, backend, reason } of backends) {
  describe.skipIf(!backend)(`memory layer on the ${name} backend${backend ? '' : ` (skipped: ${reason})`}`, () => {
    let memory: MemoryManager;
    let nextId = 0;
    const limits = (maxBytes: number, hostMaxBytes: number) => givenLimits(Array.from({ length: backend!.deviceCount() }, () => maxBytes), hostMaxBytes);
    const make = (maxBytes = 64 * MiB, hostMaxBytes = 32 * MiB, asyncCopyThresholdBytes = 64 * 1024) =>
      new MemoryManager(backend!, limits(maxBytes, hostMaxBytes), { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes }, new PhysicalMemoryGuard(0));
    const init = (byteSize: number, placement: TensorArrayInit['placement'] = 'PLACEMENT_DEVICE'): TensorArrayInit => ({
      arrayId: `arr-${nextId++}`,
      leaseId: 'lease-test',
      tenant: 'tenant-test',
      dataType: 'DATA_TYPE_UINT8',
      shape: [byteSize],
      byteSize,
      placement,
      device: 0,
      label: '',
    });

    afterEach(() => {
      memory?.release();
      expect(backend!.liveChunks().device).toBe(0);
      expect(backend!.liveChunks().host).toBe(0);
    });

    it('writes and reads device arrays byte-exact through a lazy host mirror, sync and async', async () => {
      memory = make();
      for (const size of [1000, 3 * MiB + 17]) {
        const array = await TensorArray.create(init(size), memory, { zero: false, eagerMirror: false });
        expect(array.hostBlock).toBeUndefined();
        const data = randomBytes(size);
        await array.write(0, data);
        const back = Buffer.alloc(size);
        await array.read(0, back);
        expect(sha256(back)).toBe(sha256(data));
        expect(array.hostBlock).toBeDefined();
        expect(memory.hostReport().mirrorBytes).toBe(array.hostHeldBytes);
        array.release();
      }
      expect(memory.deviceReports()[0].usedBytes).toBe(0);
      expect(memory.hostReport().usedBytes).toBe(0);
      memory.checkInvariants();
    });

    it('zero-fills, keeps HOST_ONLY arrays off the device, and duplicates across placements', async () => {
      memory = make();
      const zeroed = await TensorArray.create(init(2 * MiB), memory, { zero: true, eagerMirror: true });
      const back = Buffer.alloc(2 * MiB, 1);
      await zeroed.read(0, back);
      expect(back.equals(Buffer.alloc(2 * MiB))).toBe(true);
      const hostOnly = await TensorArray.create(init(MiB, 'PLACEMENT_HOST_ONLY'), memory, { zero: false, eagerMirror: false });
      expect(hostOnly.deviceBlock).toBeUndefined();
      expect(memory.hostReport().hostOnlyBytes).toBe(MiB);
      const data = randomBytes(MiB);
      await hostOnly.write(0, data);
      const onDevice = await TensorArray.create(init(MiB), memory, { zero: false, eagerMirror: false });
      await hostOnly.copyInto(onDevice);
      const copied = Buffer.alloc(MiB);
      await onDevice.read(0, copied);
      expect(copied.equals(data)).toBe(true);
      for (const array of [zeroed, hostOnly, onDevice]) array.release();
      expect(memory.deviceReports()[0].usedBytes).toBe(0);
      expect(memory.hostReport().usedBytes).toBe(0);
    });

    it('never passes the device cap, and a refused eager mirror gives the device block back', async () => {
      memory = make(8 * MiB, 2 * MiB);
      const held = await TensorArray.create(init(4 * MiB), memory, { zero: false, eagerMirror: false });
      const deviceRefusal = await TensorArray.create(init(5 * MiB), memory, { zero: false, eagerMirror: false }).catch((e: unknown) => e);
      expect(deviceRefusal).toBeInstanceOf(OutOfMemoryError);
      expect((deviceRefusal as OutOfMemoryError).reason).toBe('DEVICE_OUT_OF_MEMORY');
      expect(memory.deviceReports()[0].usedBytes).toBe(4 * MiB);
      // The device block (2 MiB + 4 KiB) fits; its eager mirror does not fit the 2 MiB host cap.
      const mirrorRefusal = await TensorArray.create(init(2 * MiB + 4096), memory, { zero: false, eagerMirror: true }).catch((e: unknown) => e);
      expect(mirrorRefusal).toBeInstanceOf(OutOfMemoryError);
      expect((mirrorRefusal as OutOfMemoryError).reason).toBe('HOST_OUT_OF_MEMORY');
      expect(memory.deviceReports()[0].usedBytes).toBe(4 * MiB);
      expect(memory.deviceReports()[0].allocationCount).toBe(1);
      expect(memory.hostReport().usedBytes).toBe(0);
      // Exactly at the cap is allowed.
      const rest = await TensorArray.create(init(4 * MiB), memory, { zero: false, eagerMirror: false });
      expect(memory.deviceReports()[0].usedBytes).toBe(8 * MiB);
      rest.release();
      held.release();
    });

    it('refuses fragmentation-blocked requests under the cap by the flag name, with the largest free block', async () => {
      memory = make(8 * MiB, 2 * MiB);
      const a = await TensorArray.create(init(3 * MiB), memory, { zero: false, eagerMirror: false });
      const b = await TensorArray.create(init(3 * MiB), memory, { zero: false, eagerMirror: false });
      // 6 MiB used of 8: 2 MiB more is within the cap, but the two 4 MiB chunks have only 1 MiB free each.
      const error = (await TensorArray.create(init(2 * MiB), memory, { zero: false, eagerMirror: false }).catch((e: unknown) => e)) as OutOfMemoryError;
      expect(error).toBeInstanceOf(OutOfMemoryError);
      expect(error.message).toContain('pool cap (maxbytes) 8388608 bytes (8.00 MiB), used 6291456 bytes (6.00 MiB), largest free block 1048576 bytes (1.00 MiB)');
      expect(memory.deviceReports()[0].usedBytes).toBe(6 * MiB);
      a.release();
      b.release();
    });

    it('releases an array only after the async copy in flight on it ends', async () => {
      memory = make(64 * MiB, 32 * MiB, 1024);
      const array = await TensorArray.create(init(16 * MiB), memory, { zero: false, eagerMirror: false });
      const data = randomBytes(16 * MiB);
      const writing = array.write(0, data);
      expect(array.release()).toBe(16 * MiB);
      expect(memory.deviceReports()[0].usedBytes).toBe(16 * MiB);
      await writing;
      expect(memory.deviceReports()[0].usedBytes).toBe(0);
      await expect(array.read(0, Buffer.alloc(1))).rejects.toThrowError(/was freed/);
    });

    it('keeps a write that lands while the mirror is being filled: later reads see it', async () => {
      // 16 MiB copies take milliseconds; writes of 4 bytes are below the async threshold and would be
      // done before the fill's copy ends (which is what lost them: the fill then marked the old bytes current).
      memory = make(64 * MiB, 32 * MiB, 1024);
      for (const [round, start] of [['read', 'read'], ['syncToHost', 'syncToHost']] as const) {
        const array = await TensorArray.create(init(16 * MiB), memory, { zero: true, eagerMirror: false });
        const filling = start === 'read' ? array.read(0, Buffer.alloc(1)) : array.syncToHost();
        const marker = Buffer.from(`${round}!`);
        await array.write(0, marker);
        await filling;
        const back = Buffer.alloc(marker.length);
        await array.read(0, back);
        expect(back.toString(), `after ${round}`).toBe(marker.toString());
        // The device holds it too, and a sync to the device keeps it.
        await array.syncToDevice();
        await array.syncToHost();
        await array.read(0, back);
        expect(back.toString(), `after ${round} and two syncs`).toBe(marker.toString());
        array.release();
      }
      // A fill that begins while a large write is still writing the device ends with the written bytes.
      for (let round = 0; round < 8; round++) {
        const array = await TensorArray.create(init(16 * MiB), memory, { zero: true, eagerMirror: false });
        const data = randomBytes(16 * MiB);
        const writing = array.write(0, data);
        const reading = array.read(0, Buffer.alloc(16 * MiB));
        await Promise.all([writing, reading]);
        const back = Buffer.alloc(16 * MiB);
        await array.read(0, back);
        expect(sha256(back), `round ${round}`).toBe(sha256(data));
        array.release();
      }
    });

    it('overlapping writes and a sync to the device in flight leave the device and the mirror with the same bytes', async () => {
      // Each write is two copies, device then mirror. Here the mirror copy of the first write is held back
      // (as a busy thread pool may), so that a second write of the same bytes, or a sync to the device,
      // would run between its two copies.
      memory = make(64 * MiB, 32 * MiB, 1024);
      const size = 2 * MiB;
      const first = Buffer.alloc(size, 0xaa);
      const second = Buffer.alloc(size, 0xbb);
      const writeBlock = memory.writeBlock.bind(memory);
      let held: Block | undefined;
      let firstOnDevice = () => {};
      /** Holds back the mirror copy of `first` into `array`; resolves when its device copy is done. */
      const holdMirrorOf = (array: TensorArray) => {
        held = array.hostBlock;
        return new Promise<void>((resolve) => (firstOnDevice = resolve));
      };
      memory.writeBlock = async (block, offset, data) => {
        if (block === held && data === first) {
          firstOnDevice();
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return writeBlock(block, offset, data);
      };
      /** The device's bytes, as a sync to the host brings them up (the mirror's are what read() gives). */
      const sides = async (array: TensorArray) => {
        const mirror = Buffer.alloc(size);
        await array.read(0, mirror);
        await array.syncToHost();
        const device = Buffer.alloc(size);
        await array.read(0, device);
        return { mirror: mirror[0].toString(16), device: device[0].toString(16), mirrorWhole: sha256(mirror), deviceWhole: sha256(device) };
      };

      const overlapping = await TensorArray.create(init(size), memory, { zero: true, eagerMirror: true });
      const firstWroteDevice = holdMirrorOf(overlapping);
      await Promise.all([overlapping.write(0, first), firstWroteDevice.then(() => overlapping.write(0, second))]);
      const afterWrites = await sides(overlapping);
      expect(afterWrites.mirror, 'mirror after two writes').toBe(afterWrites.device);
      expect(afterWrites.mirrorWhole).toBe(afterWrites.deviceWhole);
      overlapping.release();

      const synced = await TensorArray.create(init(size), memory, { zero: true, eagerMirror: true });
      const wroteDevice = holdMirrorOf(synced);
      await Promise.all([synced.write(0, first), wroteDevice.then(() => synced.syncToDevice())]);
      const afterSync = await sides(synced);
      expect(afterSync, 'a write with a sync to the device in flight').toEqual({ mirror: 'aa', device: 'aa', mirrorWhole: sha256(first), deviceWhole: sha256(first) });
      synced.release();
    });

    it('a sync to the device copies only a current mirror: a stale one (eager, never filled) leaves the device bytes alone', async () => {
      memory = make();
      const array = await TensorArray.create(init(MiB), memory, { zero: false, eagerMirror: true });
      const data = randomBytes(MiB);
      await array.write(0, data);
      await array.syncToDevice();
      const back = Buffer.alloc(MiB);
      await array.read(0, back);
      expect(sha256(back)).toBe(sha256(data));
      // After a read the mirror is current, and a sync to the device keeps the same bytes.
      await array.syncToDevice();
      await array.read(0, back);
      expect(sha256(back)).toBe(sha256(data));
      array.release();
    });

    it('reports pool statistics: used, reserved, peak, largest free block, counts', async () => {
      memory = make();
      const a = await TensorArray.create(init(1000), memory, { zero: false, eagerMirror: false });
      const b = await TensorArray.create(init(3000), memory, { zero: false, eagerMirror: false });
      let report = memory.deviceReports()[0];
      expect(report.usedBytes).toBe(1024 + 3072);
      expect(report.allocationCount).toBe(2);
      expect(report.reservedBytes).toBe(4 * MiB);
      expect(report.largestFreeBlockBytes).toBe(4 * MiB - 4096);
      expect(report.maxBytes).toBe(64 * MiB);
      expect(report.totalBytes).toBeGreaterThan(0);
      a.release();
      report = memory.deviceReports()[0];
      expect(report.usedBytes).toBe(3072);
      expect(report.peakUsedBytes).toBe(4096);
      expect(report.allocationsTotal).toBe(2);
      b.release();
      expect(memory.tenants.usage('tenant-test').deviceBytes[0]).toBe(0);
    });
  });
}
