/**
 * deviceInfo on the cuda backend stays cheap after its first call per device: it runs on the event loop
 * for every device on each GetMemoryInfo, WatchMemory message, metrics scrape and cuDNN workspace budget,
 * and cudaGetDeviceProperties (which it used to call each time for the name and compute capability)
 * takes about 1-2 ms on an H100/H200. Only cudaMemGetInfo, whose free bytes change, is asked each time.
 *
 * Under scripts/fake-cuda-check.sh, FAKE_CUDA_DEVICE_PROPERTIES_US makes the fake runtime's
 * cudaGetDeviceProperties that slow; a real runtime ignores the variable and is slow by itself.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/native/addon';
import { cudaDaemonPerTest, probeCuda, skipNote } from './cuda-device';

const cuda = probeCuda();

describe.skipIf(!cuda.backend)(`device queries on the cuda backend${skipNote(cuda)}`, () => {
  const start = cudaDaemonPerTest();
  afterEach(() => {
    delete process.env.FAKE_CUDA_DEVICE_PROPERTIES_US;
  });

  it('deviceInfo asks cudaGetDeviceProperties once per device, then only the free memory', () => {
    process.env.FAKE_CUDA_DEVICE_PROPERTIES_US = '2000';
    const backend = createBackend('cuda', {});
    const devices = backend.deviceCount();
    const first = Array.from({ length: devices }, (_, device) => backend.deviceInfo(device));
    const rounds = 100;
    const started = performance.now();
    for (let round = 0; round < rounds; round++) {
      for (let device = 0; device < devices; device++) {
        const info = backend.deviceInfo(device);
        expect([info.name, info.computeCapability, info.totalBytes]).toEqual([first[device].name, first[device].computeCapability, first[device].totalBytes]);
      }
    }
    const elapsed = performance.now() - started;
    // 100 rounds at 2 ms a cudaGetDeviceProperties would be at least 200 ms per device.
    expect(elapsed, `${rounds * devices} deviceInfo calls took ${elapsed.toFixed(1)} ms`).toBeLessThan(100);
  });

  it('GetMemoryInfo through the daemon does not pay cudaGetDeviceProperties per call', async () => {
    const delayMs = 50;
    const { client } = await start(['--maxbytes', '1G'], { FAKE_CUDA_DEVICE_PROPERTIES_US: String(delayMs * 1000) });
    const devices = (await client.memoryInfo()).devices.length;
    const calls = 20;
    const started = performance.now();
    for (let call = 0; call < calls; call++) expect((await client.memoryInfo()).devices).toHaveLength(devices);
    const elapsed = performance.now() - started;
    // Paying it per call and device would be at least calls × devices × 50 ms.
    expect(elapsed, `${calls} GetMemoryInfo calls took ${elapsed.toFixed(1)} ms`).toBeLessThan((calls * devices * delayMs) / 2);
  });
});
