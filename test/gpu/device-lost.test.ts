/**
 * A lost CUDA context (a sticky error: an illegal address, a launch failure, an uncorrectable ECC error)
 * ends the daemon: the call that meets it gets UNAVAILABLE / DEVICE_LOST naming the CUDA error, the
 * daemon logs device_lost, drains (health NOT_SERVING, as for SIGTERM) and exits with status 1, so that its
 * supervisor restarts it. Before, every later call failed as an internal error and health stayed SERVING.
 *
 * Only the fake CUDA runtime (scripts/fake-cuda-check.sh) can lose a context on purpose:
 * FAKE_CUDA_STICKY_AFTER_COPIES=N makes every cudaMemcpy after the N-th return cudaErrorIllegalAddress,
 * as every call does after a real one. On a real GPU the suite skips.
 */
import { describe, expect, it } from 'vitest';
import { TensormemClientError } from '../../src/client/tensormem-client';
import { cudaDaemonPerTest, fakeOnlyNote, isFakeCuda } from './cuda-device';

describe.skipIf(!isFakeCuda())(`a lost CUDA context${fakeOnlyNote('a real GPU cannot lose its context on purpose')}`, () => {
  const start = cudaDaemonPerTest();

  it('answers DEVICE_LOST, drains (the drain turns health NOT_SERVING) and exits with status 1', async () => {
    const { daemon, client } = await start(['--maxbytes', '1G', '--shutdown-timeout', '5s'], { FAKE_CUDA_STICKY_AFTER_COPIES: '3' });
    const lease = await client.openLease({ clientName: 'device-lost' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], device: 0 });
    let failure: TensormemClientError | undefined;
    for (let i = 0; i < 6 && !failure; i++) {
      await lease.writeGrpc(array.array_id, Buffer.alloc(64, i)).catch((error: unknown) => {
        failure = error as TensormemClientError;
      });
    }
    expect(failure).toBeInstanceOf(TensormemClientError);
    expect(failure!.reason).toBe('DEVICE_LOST');
    expect(failure!.details).toContain("The GPU's CUDA context is lost");
    expect(failure!.details).toContain('cudaErrorIllegalAddress');
    expect(failure!.errorMetadata).toEqual({ cuda_error: 'cudaErrorIllegalAddress' });
    expect(await daemon.exited).toBe(1);
    const lost = daemon.logs.find((entry) => entry.event === 'device_lost');
    expect(lost).toMatchObject({ cudaError: 'cudaErrorIllegalAddress' });
    // The drain (health NOT_SERVING, new work refused, leases freed) ran for it.
    expect(daemon.logs.find((entry) => entry.event === 'draining')).toMatchObject({ reason: 'device_lost' });
    expect(daemon.logs.find((entry) => entry.event === 'stopped')).toBeDefined();
  });
});
