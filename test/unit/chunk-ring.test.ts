/** The buffer ring behind ReadArray and the data plane's GET: bounded, reused, and released when the stream goes away. */
import { describe, expect, it } from 'vitest';
import { ChunkRing } from '../../src/service/chunk-ring';

const settled = async <T>(promise: Promise<T>): Promise<{ value?: T; pending: boolean }> => {
  const marker = Symbol('pending');
  const value = await Promise.race([promise, new Promise<typeof marker>((resolve) => setImmediate(() => resolve(marker)))]);
  return value === marker ? { pending: true } : { value: value as T, pending: false };
};

describe('ChunkRing', () => {
  it('hands out at most `capacity` buffers, then waits for one to be given back and reuses it', async () => {
    const ring = new ChunkRing(2, 16);
    const first = (await ring.take())!;
    const second = (await ring.take())!;
    expect(first.byteLength).toBe(16);
    expect(second).not.toBe(first);
    const third = ring.take();
    expect((await settled(third)).pending).toBe(true);
    ring.give(first);
    expect(await third).toBe(first);
    ring.give(second);
    expect(await ring.take()).toBe(second);
  });

  it('answers null to waiting and later takes once abandoned', async () => {
    const ring = new ChunkRing(1, 8);
    const only = (await ring.take())!;
    const waiting = ring.take();
    ring.abandon();
    expect(await waiting).toBeNull();
    ring.give(only);
    expect(await ring.take()).toBeNull();
  });
});
