/**
 * ExportArray: the same-host handle to one side of an array (contract in proto/tensormem/v1/array.proto).
 *
 * - Host side (HOST_ONLY block, or a device array's host mirror): the POSIX shared-memory object of the
 *   array's dedicated host chunk, its name, the array's offset and length in it, and its size.
 * - Device side (device arrays, cuda backend only): the CUDA IPC handle of the array's dedicated device
 *   allocation (cudaIpcGetMemHandle), with the offset and length in it.
 *
 * The array is moved into a dedicated chunk on its first export (TensorArray.exportHost/exportDevice),
 * so a mapping never reaches another array's bytes; the chunk is freed, and its name unlinked, with
 * the array (FreeArray, lease close or expiry).
 */
import { existsSync } from 'node:fs';
import { TensormemError, failedPrecondition, invalidArgument, notFound } from '../errors';
import { isNativeError } from '../native/backend';
import type { MemoryManager } from './memory-manager';
import { shmPath } from './shm-names';
import type { ExportedBlock, TensorArray } from './tensor-array';

export type ArrayExport =
  | { kind: 'shm'; name: string; offset: number; length: number; regionBytes: number; moved: boolean }
  | { kind: 'cuda_ipc'; handle: Buffer; device: number; offset: number; length: number; regionBytes: number; moved: boolean };

type Side = 'HOST' | 'DEVICE';

const SIDES: Record<string, Side | undefined> = {
  EXPORT_SIDE_HOST: 'HOST',
  EXPORT_SIDE_DEVICE: 'DEVICE',
};

/** The side a request names; UNSPECIFIED is the array's primary side (device for device arrays). */
export function exportSide(array: TensorArray, side: unknown): Side {
  if (side === 'EXPORT_SIDE_UNSPECIFIED' || side === undefined) return array.placement === 'PLACEMENT_HOST_ONLY' ? 'HOST' : 'DEVICE';
  const named = typeof side === 'string' ? SIDES[side] : undefined;
  if (!named) throw invalidArgument('side', 'EXPORT_SIDE_UNSPECIFIED, EXPORT_SIDE_HOST or EXPORT_SIDE_DEVICE', side);
  if (named === 'DEVICE' && array.placement === 'PLACEMENT_HOST_ONLY') {
    throw invalidArgument('side', `EXPORT_SIDE_HOST or EXPORT_SIDE_UNSPECIFIED for HOST_ONLY array ${array.arrayId} (it has no device memory)`, side);
  }
  return named;
}

export async function exportArray(array: TensorArray, side: unknown, memory: MemoryManager): Promise<ArrayExport> {
  const chosen = exportSide(array, side);
  array.assertUsable('Cannot export array');
  // Before the backend's refusal below, which would send an attached array to EXPORT_SIDE_HOST, only
  // to be refused there for being attached.
  array.assertNotAttached();
  if (chosen === 'DEVICE') {
    if (memory.backendName !== 'cuda') {
      throw failedPrecondition(
        `CUDA IPC needs the cuda backend: this daemon runs the ${memory.backendName} backend, whose emulated device memory no CUDA program can open. Export the host side (EXPORT_SIDE_HOST) of array ${array.arrayId} instead`,
      );
    }
    const exported = await freedAsNotFound(array, () => array.exportDevice());
    const { bytes } = memory.backend.chunkInfo(exported.block.chunkHandle);
    return { kind: 'cuda_ipc', handle: ipcHandle(array, exported, memory), device: array.device, ...placement(array, exported, bytes) };
  }
  const exported = await freedAsNotFound(array, () => array.exportHost());
  const info = memory.backend.chunkInfo(exported.block.chunkHandle);
  if (info.shmName === undefined) throw new Error(`invariant: exported host chunk ${info.handle} of array ${array.arrayId} has no shared-memory name`);
  // Any process of the daemon's user can unlink the name (Python's multiprocessing.shared_memory does,
  // before 3.13, when a process that merely attached exits). The region lives on in the daemon's
  // mapping, but no process can open the name again: say so rather than hand it out.
  if (!exported.moved && !existsSync(shmPath(info.shmName))) {
    throw new TensormemError(
      'FAILED_PRECONDITION',
      'FAILED_PRECONDITION',
      `the shared-memory name ${info.shmName} of array ${array.arrayId} was unlinked by another process (Python's multiprocessing.shared_memory does that when an attached process exits, before 3.13), so no process can open it again; mappings already open still work. Duplicate the array (DuplicateArray) and export the copy, or free it and allocate it anew`,
      { array_id: array.arrayId, shm_name: info.shmName },
    );
  }
  return { kind: 'shm', name: info.shmName, ...placement(array, exported, info.bytes) };
}

/**
 * The CUDA IPC handle of the array's dedicated device chunk. Where the system has no CUDA IPC (the
 * addon says UNSUPPORTED: WSL, some virtualized GPUs), FAILED_PRECONDITION that points to the host side,
 * which needs nothing of the driver; the array stays as it is, moved to its dedicated chunk.
 */
function ipcHandle(array: TensorArray, exported: ExportedBlock, memory: MemoryManager): Buffer {
  try {
    return memory.backend.exportIpcHandle(exported.block.chunkHandle);
  } catch (error) {
    if (isNativeError(error) && error.code === 'UNSUPPORTED') {
      throw failedPrecondition(`${error.message}: export the host side (EXPORT_SIDE_HOST) of array ${array.arrayId} instead, a POSIX shared-memory region`);
    }
    throw error;
  }
}

/**
 * Runs the move, answering NOT_FOUND (as for an array freed before the call) when a FreeArray freed the
 * array while the call waited or moved it, or the lease's closed-lease error (LEASE_EXPIRED, as its token
 * gets) when CloseLease, expiry or eviction did: its block, and the chunk handle that chunkInfo /
 * exportIpcHandle would be asked about, are gone then (not an internal error).
 */
async function freedAsNotFound(array: TensorArray, move: () => Promise<ExportedBlock>): Promise<ExportedBlock> {
  let exported: ExportedBlock;
  try {
    exported = await move();
  } catch (error) {
    if (array.isFreed) throw freedError(array);
    throw error;
  }
  if (array.isFreed) throw freedError(array);
  return exported;
}

function freedError(array: TensorArray): Error {
  return array.leaseEndedError() ?? notFound('array', array.arrayId);
}

function placement(array: TensorArray, exported: ExportedBlock, regionBytes: number): { offset: number; length: number; regionBytes: number; moved: boolean } {
  return { offset: exported.block.offset, length: array.byteSize, regionBytes, moved: exported.moved };
}
