/**
 * A running daemon reached from outside its container: compose's `tests` service sets
 * TENSORMEM_TEST_DAEMON to the daemon container's unix socket. The daemon must be on the cuda backend,
 * see the same GPU this process sees (same device total from cudaMemGetInfo), and keep the bytes a
 * client writes; closing the lease gives them back.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { probeCuda, skipNote } from './cuda-device';

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const address = process.env.TENSORMEM_TEST_DAEMON;
const cuda = probeCuda();
const why = !address ? ' (skipped: TENSORMEM_TEST_DAEMON is not set; compose\'s tests service sets it to the daemon container\'s socket)' : skipNote(cuda);

describe.skipIf(!address || !cuda.backend)(`the daemon container at ${address ?? 'TENSORMEM_TEST_DAEMON'}${why}`, () => {
  let client: TensormemClient;
  beforeAll(() => {
    client = new TensormemClient(address!);
  });
  afterAll(() => client?.close());

  it('serves the cuda backend on the same GPU this container sees', async () => {
    const info = await client.memoryInfo();
    expect(info.backend).toBe('cuda');
    expect(info.devices[0].total_bytes).toBe(cuda.backend!.deviceInfo(0).totalBytes);
  });

  it('keeps the bytes a client writes in device memory and frees them with the lease', async () => {
    const usedBefore = (await client.memoryInfo()).devices[0].used_bytes;
    const lease = await client.openLease({ clientName: 'gpu-daemon-container' });
    const data = randomBytes(16 * MiB + 5);
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [data.length], device: 0 });
    await lease.write(array.array_id, data);
    const copy = await lease.duplicate(array.array_id, { detached: true });
    expect(sha256(await lease.read(copy.array_id))).toBe(sha256(data));
    expect((await client.memoryInfo()).devices[0].used_bytes).toBeGreaterThanOrEqual(usedBefore + 2 * data.length);
    await lease.close();
    expect((await client.memoryInfo()).devices[0].used_bytes).toBe(usedBefore);
  });
});
