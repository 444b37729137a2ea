/**
 * Host mirrors of device arrays on a real GPU, through the daemon: bytes a gRPC client writes land in
 * device memory (a device-to-device DuplicateArray and its read-back can only see them there), the
 * pinned mirror is taken lazily or eagerly and counted in mirror_bytes, and SyncArray moves the bytes
 * both ways with the valid flags to match.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cudaDaemonPerTest, probeCuda, skipNote } from './cuda-device';

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const cuda = probeCuda();

describe.skipIf(!cuda.backend)(`pinned host mirrors on the cuda backend${skipNote(cuda)}`, () => {
  const start = cudaDaemonPerTest();

  it('keeps device and lazy mirror byte-exact through SyncArray both ways and a device-to-device duplicate', async () => {
    const { client } = await start(['--maxbytes', '1G', '--mirror', 'lazy']);
    const lease = await client.openLease({ clientName: 'gpu-mirrors' });
    const size = 48 * MiB + 4099; // several ReadArray chunks and an odd tail
    const data = randomBytes(size);

    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], device: 0 });
    expect(array.host_valid).toBe(false);
    expect((await client.memoryInfo()).host!.mirror_bytes).toBe(0);
    expect(await lease.write(array.array_id, data)).toBe(size);

    const synced = await lease.sync(array.array_id, 'SYNC_DIRECTION_TO_HOST');
    expect(synced.host_valid).toBe(true);
    expect(synced.device_valid).toBe(true);
    expect((await client.memoryInfo()).host!.mirror_bytes).toBeGreaterThanOrEqual(size);
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));

    // The copy is made on the GPU (cudaMemcpy device to device) and read back through its own mirror.
    const copy = await lease.duplicate(array.array_id, { detached: true });
    expect(copy.placement).toBe('PLACEMENT_DEVICE');
    expect(sha256(await lease.read(copy.array_id))).toBe(sha256(data));

    const back = await lease.sync(array.array_id, 'SYNC_DIRECTION_TO_DEVICE');
    expect(back.device_valid).toBe(true);
    expect(back.host_valid).toBe(true);
    const copyAfterSync = await lease.duplicate(array.array_id, { detached: true });
    expect(sha256(await lease.read(copyAfterSync.array_id, 0, size))).toBe(sha256(data));

    // A partial overwrite reaches the device and the valid mirror alike.
    const patch = randomBytes(MiB);
    await lease.write(array.array_id, patch, 7 * MiB);
    data.set(patch, 7 * MiB);
    expect(sha256(await lease.read(array.array_id))).toBe(sha256(data));
    const patchedCopy = await lease.duplicate(array.array_id, { detached: true });
    expect(sha256(await lease.read(patchedCopy.array_id))).toBe(sha256(data));

    const freed = await lease.close();
    expect(freed).toBeGreaterThanOrEqual(4 * size);
    const info = await client.memoryInfo();
    expect(info.devices[0].used_bytes).toBe(0);
    expect(info.host!.mirror_bytes).toBe(0);
  });

  it('takes the pinned mirror with the array under --mirror eager', async () => {
    const { client } = await start(['--maxbytes', '1G', '--mirror', 'eager']);
    const lease = await client.openLease({ clientName: 'gpu-mirrors-eager' });
    const size = 8 * MiB;
    const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [size / 4], device: 0, zero: true });
    expect((await client.memoryInfo()).host!.mirror_bytes).toBeGreaterThanOrEqual(size);
    expect((await lease.read(array.array_id)).equals(Buffer.alloc(size))).toBe(true);
    await lease.close();
  });
});
