/**
 * TensorArray keeps its per-array fields small (B8): lease, tenant, device and memory manager come from
 * a home shared per lease and device, byte size is computed from shape and type, the data type and the
 * copies in flight share one integer with the flags. What it answers must not change for that.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/native/addon';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { ArrayHome, MAX_COPIES, TensorArray, TensorArrayInit } from '../../src/memory/tensor-array';
import { TensormemError } from '../../src/errors';
import { toServiceError } from '../../src/service/errors';
import { status } from '@grpc/grpc-js';

const MiB = 1024 * 1024;
const backend = createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 2 });
const memory = new MemoryManager(
  backend,
  givenLimits([16 * MiB, 16 * MiB], 16 * MiB),
  { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: 1 << 20 },
  new PhysicalMemoryGuard(0),
);

const init = (overrides: Partial<TensorArrayInit> = {}): TensorArrayInit => ({
  arrayId: 'arr-1',
  leaseId: 'lease-a',
  tenant: 'team-a',
  dataType: 'DATA_TYPE_FLOAT32',
  shape: [2, 3],
  byteSize: 24,
  placement: 'PLACEMENT_DEVICE',
  device: 1,
  label: '',
  ...overrides,
});

const made: TensorArray[] = [];
afterEach(() => {
  for (const array of made.splice(0)) array.release();
  expect(memory.deviceReports().map((report) => report.usedBytes)).toEqual([0, 0]);
  expect(memory.hostReport().usedBytes).toBe(0);
});

describe('TensorArray fields', () => {
  it('answers lease, tenant, device, type, shape, size and label as given, with and without a shared home', async () => {
    const home: ArrayHome = { leaseId: 'lease-a', tenant: 'team-a', device: 1, memory };
    const shared = await TensorArray.create(init({ home, label: 'weights' }), memory, { zero: false, eagerMirror: false });
    const own = await TensorArray.create(init({ arrayId: 'arr-2', dataType: 'DATA_TYPE_INT64', shape: [5], byteSize: 40, device: 0, leaseId: 'lease-b', tenant: 'team-b' }), memory, { zero: false, eagerMirror: false });
    made.push(shared, own);
    expect([shared.leaseId, shared.tenant, shared.device, shared.dataType, shared.shape, shared.byteSize, shared.label]).toEqual(['lease-a', 'team-a', 1, 'DATA_TYPE_FLOAT32', [2, 3], 24, 'weights']);
    expect([own.leaseId, own.tenant, own.device, own.dataType, own.shape, own.byteSize, own.label]).toEqual(['lease-b', 'team-b', 0, 'DATA_TYPE_INT64', [5], 40, '']);
    expect(shared.deviceBlock!.bytes).toBe(256);
    expect(shared.deviceValid).toBe(true);
    expect(shared.hostValid).toBe(false);
  });

  it('keeps flags and type apart from the copies in flight', async () => {
    const array = await TensorArray.create(init({ dataType: 'DATA_TYPE_BOOL', shape: [300], byteSize: 300 }), memory, { zero: false, eagerMirror: false });
    made.push(array);
    const data = Buffer.alloc(300, 7);
    const inFlight = [array.write(0, data), array.write(0, data), array.read(0, Buffer.alloc(300))];
    // Three copies counted in the same integer as the type and flags.
    expect(array.dataType).toBe('DATA_TYPE_BOOL');
    expect(array.placement).toBe('PLACEMENT_DEVICE');
    expect(array.writeInline(0, data.subarray(0, 10))).toBe(false); // copies in flight
    await Promise.all(inFlight);
    expect(array.dataType).toBe('DATA_TYPE_BOOL');
    expect(array.hostValid).toBe(true);
    expect(array.deviceValid).toBe(true);
    expect(array.writeInline(0, data.subarray(0, 10))).toBe(true); // no copy left in flight
  });

  it("gives a freed array's memory back only when its last copy in flight ends: a lent view keeps its bytes until then", async () => {
    const array = await TensorArray.create(init({ dataType: 'DATA_TYPE_UINT8', shape: [4096], byteSize: 4096, placement: 'PLACEMENT_HOST_ONLY' }), memory, { zero: false, eagerMirror: false });
    const data = Buffer.alloc(4096, 0x5a);
    await array.write(0, data);
    const loan = await array.lendHostView(0, 4096);
    expect(array.release()).toBe(4096);
    expect(array.isFreed).toBe(true);
    // The view counts as a copy in flight: the block stays the array's, not the pool's to hand out again.
    expect(memory.hostReport().usedBytes).toBe(4096);
    expect(Buffer.from(loan.view).equals(data)).toBe(true);
    // A second free (a lease closing after FreeArray) gives nothing back again, copy in flight or not.
    expect(array.release()).toBe(0);
    loan.end();
    expect(memory.hostReport().usedBytes).toBe(0);
    expect(array.release()).toBe(0);
  });

  it('refuses one copy past the MAX_COPIES in flight with RESOURCE_EXHAUSTED naming the array and the limit (it was a plain Error, INTERNAL over gRPC); the copies in flight go on', async () => {
    const array = await TensorArray.create(init({ arrayId: 'flooded', dataType: 'DATA_TYPE_UINT8', shape: [64], byteSize: 64, placement: 'PLACEMENT_HOST_ONLY' }), memory, { zero: true, eagerMirror: false });
    made.push(array);
    // A data plane GET lends a view, counted as a copy in flight until its socket has taken it.
    const loans = [];
    try {
      for (let i = 0; i < MAX_COPIES; i++) loans.push(await array.lendHostView(0, 64));
    const refused: unknown = await array.read(0, Buffer.alloc(64)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TensormemError);
    const error = refused as TensormemError;
    expect([error.kind, error.reason]).toEqual(['RESOURCE_EXHAUSTED', 'TOO_MANY_COPIES']);
    expect(error.message).toBe(`array "flooded" has ${MAX_COPIES} copies in flight (reads, writes, DuplicateArray and data plane transfers of it), the most one array may have: retry once some have ended`);
    expect(error.metadata).toEqual({ array_id: 'flooded', copies_in_flight: String(MAX_COPIES), max_copies: String(MAX_COPIES) });
    expect(toServiceError(refused).code).toBe(status.RESOURCE_EXHAUSTED);
    // The loans are untouched by the refusal; once one ends, a copy goes through again.
    expect(Buffer.from(loans[0].view).equals(Buffer.alloc(64))).toBe(true);
      loans.pop()!.end();
      await array.read(0, Buffer.alloc(64));
    } finally {
      for (const loan of loans) loan.end();
    }
  });

  it('refuses a home of another lease or device, and a byte size that is not shape x type, taking no memory', async () => {
    const used = () => memory.deviceReports()[1].usedBytes + memory.deviceReports()[0].usedBytes;
    await expect(TensorArray.create(init({ home: { leaseId: 'lease-x', tenant: 'team-a', device: 1, memory } }), memory, { zero: false, eagerMirror: false })).rejects.toThrow('its home is lease lease-x');
    await expect(TensorArray.create(init({ home: { leaseId: 'lease-a', tenant: 'team-a', device: 0, memory } }), memory, { zero: false, eagerMirror: false })).rejects.toThrow('on device 0');
    await expect(TensorArray.create(init({ byteSize: 25 }), memory, { zero: false, eagerMirror: false })).rejects.toThrow('byteSize 25 is not DATA_TYPE_FLOAT32 x [2, 3] = 24');
    expect(used()).toBe(0);
  });
});
