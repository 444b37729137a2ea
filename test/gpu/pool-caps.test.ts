/**
 * Device pool caps on a real GPU, checked against the driver's own cudaMemGetInfo (read in this test
 * process through the addon's deviceInfo): the default cap is VRAM − --device-reserve, the pool's chunks
 * come out of the driver's free memory, and a request over --maxbytes is refused while the driver still
 * has room, so the cap (not the card) is what stops it.
 */
import { describe, expect, it } from 'vitest';
import type { TensormemClientError } from '../../src/client/tensormem-client';
import { cudaDaemonPerTest, defaultDeviceReserveBytes, probeCuda, skipNote } from './cuda-device';

const MiB = 1024 * 1024;
const cuda = probeCuda();

describe.skipIf(!cuda.backend)(`pool caps against cudaMemGetInfo${skipNote(cuda)}`, () => {
  const start = cudaDaemonPerTest();

  it('defaults each pool cap to VRAM − device reserve and reports the driver total and free', async () => {
    const { client } = await start();
    const info = await client.memoryInfo();
    expect(info.backend).toBe('cuda');
    expect(info.devices).toHaveLength(cuda.backend!.deviceCount());
    for (const pool of info.devices) {
      const driver = cuda.backend!.deviceInfo(pool.device);
      expect(pool.total_bytes).toBe(driver.totalBytes);
      expect(pool.max_bytes).toBe(driver.totalBytes - defaultDeviceReserveBytes(driver.totalBytes));
      expect(pool.free_bytes).toBeGreaterThan(0);
      expect(pool.free_bytes).toBeLessThanOrEqual(pool.total_bytes);
      expect(pool.reserved_bytes).toBe(0);
    }
  });

  it('takes pool chunks out of the driver free memory and refuses past --maxbytes while the driver has room', async () => {
    const capBytes = 256 * MiB;
    const { client } = await start(['--maxbytes', '256M', '--pool-chunk', '64M']);
    const lease = await client.openLease({ clientName: 'gpu-pool-caps' });
    const freeBefore = cuda.backend!.deviceInfo(0).freeBytes;

    const arrays = [];
    for (let i = 0; i < 4; i++) arrays.push(await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [60 * MiB], device: 0 }));
    const during = (await client.memoryInfo()).devices[0];
    expect(during.max_bytes).toBe(capBytes);
    expect(during.used_bytes).toBe(4 * 60 * MiB);
    expect(during.reserved_bytes).toBeGreaterThanOrEqual(4 * 60 * MiB);
    expect(during.reserved_bytes).toBeLessThanOrEqual(capBytes);
    // The driver saw the daemon's cudaMalloc calls: its free memory fell by at least the chunks held
    // (other processes may take more, never give back ours).
    const freeDuring = cuda.backend!.deviceInfo(0).freeBytes;
    expect(freeBefore - freeDuring).toBeGreaterThanOrEqual(during.reserved_bytes - 2 * MiB);

    // 240 MiB used of a 256 MiB cap: 32 MiB more is over the cap, though the driver has far more free.
    expect(freeDuring).toBeGreaterThan(1024 * MiB);
    const refusal = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [32 * MiB], device: 0 }).then(
      () => undefined,
      (error: unknown) => error as TensormemClientError,
    );
    expect(refusal, 'an allocation over --maxbytes succeeded').toBeDefined();
    expect(refusal!.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(refusal!.details).toMatch(/pool cap \(maxbytes\) 268435456 bytes/);
    const after = (await client.memoryInfo()).devices[0];
    expect(after.used_bytes).toBe(during.used_bytes);
    expect(after.failed_allocations_total).toBe(during.failed_allocations_total + 1);

    for (const array of arrays) await lease.free(array.array_id);
    await lease.close();
  });

  it('gives the chunks back to the driver once they held no array for --pool-idle-release', async () => {
    const { client } = await start(['--maxbytes', '256M', '--pool-chunk', '64M', '--pool-idle-release', '1s']);
    const lease = await client.openLease({ clientName: 'gpu-idle-release' });
    const arrays = [];
    for (let i = 0; i < 4; i++) arrays.push(await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [60 * MiB], device: 0 }));
    const reserved = (await client.memoryInfo()).devices[0].reserved_bytes;
    expect(reserved).toBeGreaterThanOrEqual(4 * 60 * MiB);
    for (const array of arrays) await lease.free(array.array_id);
    const freeHeld = cuda.backend!.deviceInfo(0).freeBytes;
    const deadline = Date.now() + 10_000;
    while ((await client.memoryInfo()).devices[0].reserved_bytes > 0) {
      expect(Date.now(), 'the chunks were still reserved 10 s after the last free').toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // cudaFree happened, on the daemon's release thread, a moment after the pool let go: the driver has
    // the chunks' memory again (other processes may take some meanwhile).
    await expect.poll(() => cuda.backend!.deviceInfo(0).freeBytes - freeHeld, { timeout: 5000 }).toBeGreaterThanOrEqual(reserved - 2 * MiB);
    await lease.close();
  });
});
