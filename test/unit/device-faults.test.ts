/**
 * watchDeviceFaults: a sticky CUDA error from any backend call, thrown or rejecting an async copy, is
 * reported once and becomes UNAVAILABLE / DEVICE_LOST naming the CUDA error; other errors and results
 * pass untouched.
 */
import { describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import { STICKY_CUDA_ERRORS, watchDeviceFaults } from '../../src/native/device-faults';
import type { NativeError } from '../../src/native/backend';
import { thrownBy } from '../helpers/thrown';

function cudaError(name: string): NativeError {
  return Object.assign(new Error(`cudaMemcpy: ${name}: an illegal memory access was encountered`), { code: 'CUDA_ERROR' as const, cudaError: name });
}

class FakeBackend {
  readonly name = 'cuda';
  fail: NativeError | undefined;
  calls = 0;
  write(handle: number): number {
    this.calls++;
    if (this.fail) throw this.fail;
    return handle;
  }
  async readAsync(handle: number): Promise<number> {
    this.calls++;
    if (this.fail) throw this.fail;
    return handle;
  }
}

describe('watchDeviceFaults', () => {
  it('passes results, properties and ordinary errors through untouched', async () => {
    const lost: NativeError[] = [];
    const inner = new FakeBackend();
    const backend = watchDeviceFaults(inner, (cause) => lost.push(cause));
    expect(backend.name).toBe('cuda');
    expect(backend.write(7)).toBe(7);
    expect(await backend.readAsync(8)).toBe(8);
    const outOfMemory = Object.assign(new Error('cudaMalloc: out of memory'), { code: 'OUT_OF_MEMORY' as const, cudaError: 'cudaErrorMemoryAllocation' });
    inner.fail = outOfMemory;
    expect(() => backend.write(1)).toThrow(outOfMemory);
    await expect(backend.readAsync(1)).rejects.toBe(outOfMemory);
    expect(lost).toEqual([]);
    expect(inner.calls).toBe(4);
  });

  it('reports the first sticky error once and answers every later one DEVICE_LOST, sync and async', async () => {
    const lost: NativeError[] = [];
    const inner = new FakeBackend();
    const backend = watchDeviceFaults(inner, (cause) => lost.push(cause));
    inner.fail = cudaError('cudaErrorIllegalAddress');
    const thrown = thrownBy(() => backend.write(1), TensormemError);
    expect(thrown).toMatchObject({ kind: 'UNAVAILABLE', reason: 'DEVICE_LOST', metadata: { cuda_error: 'cudaErrorIllegalAddress' } });
    expect(thrown.message).toContain("The GPU's CUDA context is lost (cudaMemcpy: cudaErrorIllegalAddress");
    expect(thrown.message).toContain('exits with status 1');
    const rejected = await backend.readAsync(1).catch((error: unknown) => error);
    expect(rejected).toMatchObject({ reason: 'DEVICE_LOST' });
    expect(lost).toHaveLength(1);
    expect(lost[0].cudaError).toBe('cudaErrorIllegalAddress');
  });

  it("knows driver_types.h's sticky errors, and not the recoverable ones", () => {
    for (const name of ['cudaErrorIllegalAddress', 'cudaErrorLaunchFailure', 'cudaErrorECCUncorrectable', 'cudaErrorContained']) expect(STICKY_CUDA_ERRORS.has(name)).toBe(true);
    for (const name of ['cudaErrorMemoryAllocation', 'cudaErrorInvalidValue', 'cudaErrorNotSupported', 'cudaErrorInsufficientDriver']) expect(STICKY_CUDA_ERRORS.has(name)).toBe(false);
  });
});
