/**
 * Chunk releases on the cuda backend run on the addon's release thread: cudaFree (and cudaFreeHost,
 * cudaHostUnregister, cudaIpcCloseMemHandle) wait for the work queued on the device, so on Node's main
 * thread one chunk given back during another client's large copy held every call the daemon serves
 * until that copy ended. Now free() returns at once; an allocation the driver refuses waits for the
 * releases queued before it and asks again (the memory it needs may be on its way back); shutdown
 * waits for them all.
 *
 * Under scripts/fake-cuda-check.sh, FAKE_CUDA_FREE_US=N makes each cudaFree wait N µs first, as a real
 * one waits for the device. A real GPU cannot be made that slow on purpose: the suite skips there.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/native/addon';
import { cudaDaemonPerTest, fakeOnlyNote, isFakeCuda, probeCuda } from './cuda-device';

const MiB = 1024 * 1024;
const cuda = probeCuda();
const driverFree = () => cuda.backend!.deviceInfo(0).freeBytes;

describe.skipIf(!isFakeCuda())(`releases off the main thread${fakeOnlyNote('a real cudaFree cannot be made slow on purpose')}`, () => {
  const start = cudaDaemonPerTest();
  afterEach(() => {
    delete process.env.FAKE_CUDA_FREE_US;
    delete process.env.FAKE_CUDA_DEVICE_BYTES;
  });

  it('free() returns before cudaFree has waited for the device; settleReleases() returns once it has', () => {
    // The fake runtime reads its environment at each call.
    process.env.FAKE_CUDA_FREE_US = '400000';
    const backend = createBackend('cuda', {});
    const before = driverFree();
    const chunk = backend.allocDevice(0, 64 * MiB);
    const host = backend.allocHost(8 * MiB);
    const started = performance.now();
    backend.free(chunk);
    backend.free(host);
    const freeTook = performance.now() - started;
    expect(freeTook, `free() took ${freeTook.toFixed(0)} ms beside a 400 ms cudaFree`).toBeLessThan(200);
    expect(backend.liveChunks()).toMatchObject({ device: 0, host: 0 });
    backend.settleReleases();
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(driverFree()).toBe(before);
  });

  it('an allocation the device refuses waits for the releases queued before it, then gets their memory', () => {
    const backend = createBackend('cuda', {});
    const info = backend.deviceInfo(0);
    // A device with 256 MiB left: a second 200 MiB fits only once the first is back.
    process.env.FAKE_CUDA_DEVICE_BYTES = String(info.totalBytes - info.freeBytes + 256 * MiB);
    process.env.FAKE_CUDA_FREE_US = '300000';
    const first = backend.allocDevice(0, 200 * MiB);
    backend.free(first);
    const started = performance.now();
    const second = backend.allocDevice(0, 200 * MiB);
    expect(performance.now() - started, 'the allocation waited for the release').toBeGreaterThanOrEqual(200);
    backend.free(second);
    // Nothing queued and still too big: refused at once, with the driver's numbers.
    backend.settleReleases();
    expect(() => backend.allocDevice(0, 300 * MiB)).toThrow(expect.objectContaining({ code: 'OUT_OF_MEMORY', message: expect.stringContaining(`free ${256 * MiB} bytes`) }));
    expect(backend.liveChunks().device).toBe(0);
  });

  it('freeing an exported device array (a cudaMalloc of its own) does not hold the daemon while cudaFree waits', async () => {
    const before = driverFree();
    const { client } = await start(['--maxbytes', '1G'], { FAKE_CUDA_FREE_US: '1000000' });
    const lease = await client.openLease({ clientName: 'release-thread' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB], device: 0 });
    await lease.exportArray(array.array_id, { side: 'EXPORT_SIDE_DEVICE', map: false });
    const started = performance.now();
    const [, info] = await Promise.all([lease.free(array.array_id), client.memoryInfo()]);
    const took = performance.now() - started;
    expect(took, `FreeArray and GetMemoryInfo took ${took.toFixed(0)} ms beside a 1 s cudaFree`).toBeLessThan(500);
    expect(info.devices[0].used_bytes).toBe(0);
    // The driver has the memory back once the release thread's cudaFree ends (only the pool's chunk stays).
    const poolChunk = (await client.memoryInfo()).devices[0].reserved_bytes;
    await expect.poll(driverFree, { timeout: 5000 }).toBe(before - poolChunk);
    await lease.close();
  });

  it('a daemon that stops gives every chunk back to the driver before it exits', async () => {
    const before = driverFree();
    const { daemon, client } = await start(['--maxbytes', '1G', '--pool-chunk', '64M'], { FAKE_CUDA_FREE_US: '300000' });
    const lease = await client.openLease({ clientName: 'release-at-exit' });
    for (let i = 0; i < 3; i++) await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [60 * MiB], device: 0 });
    expect(before - driverFree()).toBeGreaterThanOrEqual(3 * 60 * MiB);
    client.close();
    await daemon.stop();
    // The fake runtime's memory is counted across processes and, unlike a driver's, is not given back by
    // a process's exit: only a cudaFree that ran gives it back.
    expect(driverFree()).toBe(before);
  });
});
