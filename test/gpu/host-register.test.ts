/**
 * Shared-memory host chunks (a device array's exported mirror, a HOST_ONLY array's export) where
 * cudaHostRegister cannot page-lock existing memory: a device whose cudaDevAttrHostRegisterSupported is
 * 0, or an H100 in confidential-computing mode, where it is a forbidden API (cudaErrorNotSupported). The
 * chunk then stays pageable (cudaMemcpy stages its copies) instead of every host export failing as an
 * internal error, and its release does not cudaHostUnregister what was never registered.
 *
 * On a GPU that supports it the chunks are registered and the same checks hold. Under
 * scripts/fake-cuda-check.sh, FAKE_CUDA_HOST_REGISTER_FAILS=1 makes the fake runtime refuse every
 * cudaHostRegister with cudaErrorNotSupported, and FAKE_CUDA_ABORT_ON_MISUSE=1 aborts a process that
 * unregisters a range it never registered.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/native/addon';
import { cudaDaemonPerTest, probeCuda, skipNote } from './cuda-device';

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const cuda = probeCuda();
const REFUSE_HOST_REGISTER = { FAKE_CUDA_HOST_REGISTER_FAILS: '1' };

describe.skipIf(!cuda.backend)(`shared-memory host chunks where cudaHostRegister is not supported${skipNote(cuda)}`, () => {
  const start = cudaDaemonPerTest();
  afterEach(() => {
    delete process.env.FAKE_CUDA_HOST_REGISTER_FAILS;
  });

  it('allocHost with a shmName gives a chunk that copies to and from the device and frees cleanly', () => {
    // The fake runtime reads its environment at each call; a real one ignores the variable.
    Object.assign(process.env, REFUSE_HOST_REGISTER);
    const backend = createBackend('cuda', {});
    const size = 3 * MiB + 17;
    const data = randomBytes(size);
    const host = backend.allocHost(size, { shmName: `/tensormem-gpu-host-register-${process.pid}-${Date.now()}` });
    const device = backend.allocDevice(0, size);
    backend.write(host, 0, data);
    backend.copy(device, 0, host, 0, size);
    backend.fill(host, 0, size, 0);
    backend.copy(host, 0, device, 0, size);
    const back = Buffer.alloc(size);
    backend.read(host, 0, back);
    expect(sha256(back)).toBe(sha256(data));
    backend.free(host);
    backend.free(device);
    expect(backend.liveChunks()).toEqual({ device: 0, host: 0, deviceBytes: 0, hostBytes: 0 });
  });

  it('ExportArray of the host side works through the daemon, and the daemon frees the regions and stops cleanly', async () => {
    const { daemon, client } = await start(['--maxbytes', '1G'], REFUSE_HOST_REGISTER);
    const lease = await client.openLease({ clientName: 'gpu-host-register' });
    const size = 2 * MiB + 5;
    const data = randomBytes(size);

    const onDevice = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], device: 0 });
    expect(await lease.write(onDevice.array_id, data)).toBe(size);
    const mirror = await lease.exportArray(onDevice.array_id, { side: 'EXPORT_SIDE_HOST' });
    expect(sha256(mirror.bytes!)).toBe(sha256(data));

    const hostOnly = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: 'PLACEMENT_HOST_ONLY' });
    expect(await lease.write(hostOnly.array_id, data)).toBe(size);
    const region = await lease.exportArray(hostOnly.array_id);
    expect(sha256(region.bytes!)).toBe(sha256(data));

    await lease.free(onDevice.array_id);
    await lease.free(hostOnly.array_id);
    await lease.close();
    client.close();
    expect(await daemon.stop()).toBe(0);
  });
});
