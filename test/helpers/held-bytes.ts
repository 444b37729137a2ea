/** A lease's held bytes as it keeps them (CountedArrayMap's totals), and as a fresh sum over its arrays says they are. */
import { TensormemError } from '../../src/errors';
import type { Lease } from '../../src/leases/lease';

/** The lease's arrays' bytes added up, as Lease.deviceBytes and hostBytes did before the totals were kept. */
export function summed(lease: Lease): { device: number; host: number } {
  let device = 0;
  let host = 0;
  for (const array of lease.arrays.values()) {
    device += array.deviceHeldBytes;
    host += array.hostHeldBytes;
  }
  return { device, host };
}

export function kept(lease: Lease): { device: number; host: number } {
  return { device: lease.arrays.deviceHeldBytes, host: lease.arrays.hostHeldBytes };
}

/** Runs `step`; a refusal (out of memory, an array out of its workspace's scope, a placement the current workspace refuses, a closed lease) changes nothing, and is checked like any other step. */
export async function refusedOrDone(step: () => Promise<unknown> | unknown): Promise<void> {
  try {
    await step();
  } catch (error) {
    if (!(error instanceof TensormemError)) throw error;
  }
}
