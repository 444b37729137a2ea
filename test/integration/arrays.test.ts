/** tensormemd as a process, driven by the typed client over TCP and the unix socket. */
import { createHash, randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;

async function rejection(promise: Promise<unknown>): Promise<TensormemClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the call should have failed').toBeInstanceOf(TensormemClientError);
  return error as TensormemClientError;
}

describe('arrays over a real daemon', () => {
  let daemon: DaemonProcess;
  let tcp: TensormemClient;
  let unix: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '48M', '--pool-chunk', '8M']);
    tcp = new TensormemClient(daemon.tcpAddress);
    unix = new TensormemClient(daemon.unixAddress);
  });

  afterAll(async () => {
    tcp?.close();
    unix?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  for (const transport of ['tcp', 'unix'] as const) {
    it(`round-trips bytes exactly over ${transport}, shows them in GetMemoryInfo and gives them back`, async () => {
      const client = transport === 'tcp' ? tcp : unix;
      const before = await client.memoryInfo();
      const lease = await client.openLease({ clientName: `roundtrip-${transport}` });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [3, 1024, 1024] });
      expect(array.byte_size).toBe(12 * MiB);
      expect(array.placement).toBe('PLACEMENT_DEVICE');
      const data = randomBytes(12 * MiB);
      expect(await lease.write(array.array_id, data)).toBe(12 * MiB);
      expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));
      // A partial read at an offset.
      expect(sha256(await lease.read(array.array_id, 5 * MiB + 3, 1000))).toBe(sha256(data.subarray(5 * MiB + 3, 5 * MiB + 1003)));

      const during = await client.memoryInfo();
      expect(during.devices[0].used_bytes - before.devices[0].used_bytes).toBe(12 * MiB);
      // The read went through a lazily allocated host mirror.
      expect(during.host!.mirror_bytes - before.host!.mirror_bytes).toBe(12 * MiB);
      expect((await lease.get(array.array_id)).has_host_mirror).toBe(true);

      expect(await lease.free(array.array_id)).toBe(24 * MiB);
      const after = await client.memoryInfo();
      expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
      expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
      await lease.close();
    });
  }

  it('allocates every data type with the right byte size, zero-filled when asked', async () => {
    const lease = await tcp.openLease();
    const sizes: Record<string, number> = {
      DATA_TYPE_FLOAT16: 2, DATA_TYPE_BFLOAT16: 2, DATA_TYPE_FLOAT32: 4, DATA_TYPE_FLOAT64: 8, DATA_TYPE_INT8: 1,
      DATA_TYPE_UINT8: 1, DATA_TYPE_INT16: 2, DATA_TYPE_INT32: 4, DATA_TYPE_INT64: 8, DATA_TYPE_BOOL: 1,
    };
    for (const [dataType, size] of Object.entries(sizes)) {
      const array = await lease.allocate({ dataType: dataType as 'DATA_TYPE_FLOAT32', shape: [7, 3], zero: true });
      expect(array.byte_size).toBe(21 * size);
      expect(array.data_type).toBe(dataType);
      expect((await lease.read(array.array_id)).equals(Buffer.alloc(21 * size))).toBe(true);
    }
    const scalar = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT64', shape: [] });
    expect(scalar.byte_size).toBe(8);
    const empty = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT64', shape: [0, 5] });
    expect(empty.byte_size).toBe(0);
    expect((await lease.read(empty.array_id)).length).toBe(0);
    await lease.close();
  });

  it('refuses a request over --maxbytes with RESOURCE_EXHAUSTED and the numbers, changing nothing', async () => {
    const lease = await tcp.openLease();
    const held = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB] });
    const before = await tcp.memoryInfo();
    const error = await rejection(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [60 * MiB] }));
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(error.details).toContain("Can't allocate [DEVICE] memory: 62914560 bytes (60.00 MiB) on device 0");
    expect(error.details).toContain('pool cap (maxbytes) 67108864 bytes (64.00 MiB), used 16777216 bytes (16.00 MiB)');
    expect(error.details).toContain('largest free block');
    expect(error.details).toContain('--maxbytes');
    expect(error.errorMetadata.requested_bytes).toBe(String(60 * MiB));
    const after = await tcp.memoryInfo();
    expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    expect(after.devices[0].allocation_count).toBe(before.devices[0].allocation_count);
    expect(after.devices[0].failed_allocations_total).toBe(before.devices[0].failed_allocations_total + 1);
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
    await lease.free(held.array_id);
    await lease.close();
  });

  it('caps host memory: HOST_ONLY arrays and mirrors count against --host-maxbytes', async () => {
    const lease = await tcp.openLease();
    const before = await tcp.memoryInfo();
    const hostOnly = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [32 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
    expect(hostOnly.device_valid).toBe(false);
    expect(hostOnly.host_valid).toBe(true);
    const mid = await tcp.memoryInfo();
    expect(mid.host!.host_only_bytes - before.host!.host_only_bytes).toBe(32 * MiB);
    expect(mid.devices[0].used_bytes).toBe(before.devices[0].used_bytes);

    const error = await rejection(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [32 * MiB], placement: 'PLACEMENT_HOST_ONLY' }));
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error.reason).toBe('HOST_OUT_OF_MEMORY');
    expect(error.details).toContain('host cap (host-maxbytes) 50331648 bytes (48.00 MiB)');

    // A device array fits the device pool, but reading it needs a 32 MiB mirror that does not fit.
    const device = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [32 * MiB] });
    const readError = await rejection(lease.read(device.array_id));
    expect(readError.reason).toBe('HOST_OUT_OF_MEMORY');
    // The refusal says the [HOST] memory is the mirror of the array read, which the caller never asked for by name.
    expect(readError.details).toContain(`The [HOST] memory is the host mirror of device array ${device.array_id}: its copy in host memory, made when it is first read`);
    expect(readError.errorMetadata.mirror_of).toBe(device.array_id);
    expect(readError.errorMetadata.requested_bytes).toBe(String(32 * MiB));
    const syncError = await rejection(lease.sync(device.array_id, 'SYNC_DIRECTION_TO_HOST'));
    expect(syncError.reason).toBe('HOST_OUT_OF_MEMORY');
    expect(syncError.errorMetadata.mirror_of).toBe(device.array_id);
    expect((await lease.get(device.array_id)).has_host_mirror).toBe(false);
    await lease.free(hostOnly.array_id);
    expect((await lease.read(device.array_id)).length).toBe(32 * MiB);
    await lease.close();
    const after = await tcp.memoryInfo();
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);
    expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
  });

  it('keeps host mirror and device in step through SyncArray and DuplicateArray', async () => {
    const lease = await tcp.openLease();
    const array = await lease.allocate({ dataType: 'DATA_TYPE_INT32', shape: [1024] });
    expect(array.has_host_mirror).toBe(false);
    const data = randomBytes(4096);
    await lease.write(array.array_id, data);
    const synced = await lease.sync(array.array_id, 'SYNC_DIRECTION_TO_HOST');
    expect(synced.has_host_mirror).toBe(true);
    expect(synced.host_valid).toBe(true);
    expect(synced.device_valid).toBe(true);
    // Writes go through to a valid mirror.
    const patch = randomBytes(100);
    await lease.write(array.array_id, patch, 200);
    data.set(patch, 200);
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));
    expect((await lease.sync(array.array_id, 'SYNC_DIRECTION_TO_DEVICE')).device_valid).toBe(true);

    const hostCopy = await lease.duplicate(array.array_id, { placement: 'PLACEMENT_HOST_ONLY' });
    expect(hostCopy.placement).toBe('PLACEMENT_HOST_ONLY');
    expect(sha256(await lease.read(hostCopy.array_id))).toBe(sha256(data));
    const deviceCopy = await lease.duplicate(hostCopy.array_id, { placement: 'PLACEMENT_DEVICE' });
    expect(deviceCopy.array_id).not.toBe(array.array_id);
    expect(sha256(await lease.read(deviceCopy.array_id))).toBe(sha256(data));

    const bad = await rejection(lease.sync(array.array_id, 'SYNC_DIRECTION_UNSPECIFIED' as 'SYNC_DIRECTION_TO_HOST'));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toContain('direction');
    await lease.close();
  });

  it('returns the same array for a retried request_id and allocates nothing more', async () => {
    const lease = await tcp.openLease();
    const first = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256], requestId: 'step-1' });
    const before = await tcp.memoryInfo();
    const again = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256], requestId: 'step-1' });
    expect(again.array_id).toBe(first.array_id);
    expect((await tcp.memoryInfo()).devices[0].allocations_total).toBe(before.devices[0].allocations_total);
    const conflict = await rejection(lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [512], requestId: 'step-1' }));
    expect(conflict.code).toBe(status.INVALID_ARGUMENT);
    expect(conflict.details).toContain('request_id');
    expect(await lease.list()).toHaveLength(1);
    await lease.close();
  });

  it("never shows one lease another lease's arrays", async () => {
    const alice = await tcp.openLease({ clientName: 'alice' });
    const bob = await unix.openLease({ clientName: 'bob' });
    const secret = await alice.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
    const data = randomBytes(4096);
    await alice.write(secret.array_id, data);
    for (const attempt of [
      bob.get(secret.array_id),
      bob.read(secret.array_id),
      bob.write(secret.array_id, Buffer.alloc(16)),
      bob.free(secret.array_id),
      bob.duplicate(secret.array_id),
      bob.sync(secret.array_id, 'SYNC_DIRECTION_TO_HOST'),
    ]) {
      const error = await rejection(attempt);
      expect(error.code).toBe(status.NOT_FOUND);
      expect(error.details).toBe(`array "${secret.array_id}" not found`);
    }
    const unknown = await rejection(bob.get('arr-000000000000000000000000'));
    expect(unknown.details).toBe('array "arr-000000000000000000000000" not found');
    // Bob cannot allocate into, list or close Alice's lease either.
    const wrongLease = await rejection(
      new Promise((resolve, reject) =>
        bob.client.arrays.ListArrays({ lease_id: alice.leaseId }, bob.client.metadata(bob.token), (e, v) => (e ? reject(e) : resolve(v))),
      ).catch((e: { code: number; details: string }) => Promise.reject(new TensormemClientError(e.code, undefined, e.details, {}))),
    );
    expect(wrongLease.code).toBe(status.NOT_FOUND);
    expect(sha256(await alice.read(secret.array_id))).toBe(sha256(data));
    await alice.close();
    await bob.close();
  });
});

describe('bulk gRPC streams raise the V8 heap growth while they run', () => {
  it('a 16 MiB WriteArray and ReadArray each raise it and put --heap-growth back; a 1 MiB one leaves it alone', async () => {
    const daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '64M', '--heap-growth', '10']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const growth = () => daemon.logs.filter((entry) => entry.event === 'heap_growth').map((entry) => entry.percent);
      expect(growth()).toEqual([10]);
      const lease = await client.openLease();
      const small = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
      await lease.write(small.array_id, randomBytes(MiB));
      await lease.read(small.array_id);
      const data = randomBytes(16 * MiB);
      const large = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [data.byteLength] });
      expect(await lease.write(large.array_id, data)).toBe(data.byteLength);
      await expect.poll(growth).toEqual([10, 300, 10]);
      expect(sha256(await lease.read(large.array_id))).toBe(sha256(data));
      await expect.poll(growth).toEqual([10, 300, 10, 300, 10]);
      await lease.close();
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
  });
});
