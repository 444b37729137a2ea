/**
 * What a workspace (workspace.ts) asks of the memory behind it: buffers on a side (its own, a FULL
 * workspace's mirror, spills, pinned and toggled-off blocks) and, for MMAP workspaces, a mapped file.
 * The daemon implements it over its pools (pool-workspace-backing.ts); unit tests use a fake.
 */
import type { MemoryKind } from '../errors';
import type { Block } from './memory-resource';

/** Why the workspace asks for a buffer. */
export type WorkspaceBufferPurpose =
  /** The workspace's main buffer (currentSize + SAFETY_OFFSET bytes) on its primary side. */
  | 'workspace'
  /** The host mirror buffer of a FULL workspace (currentSize + SAFETY_OFFSET bytes). */
  | 'mirror'
  /** A request that did not fit; freed at the end of the cycle (BLOCK_LEFT) or after a wrap (circular). */
  | 'spill'
  /** A circular workspace's request past its learned block; freed two steps later. */
  | 'pinned'
  /** A request made while the workspace was toggled off. */
  | 'external';

export interface WorkspaceBufferRequest {
  /** Bytes to reserve; the workspace uses exactly this many. */
  bytes: number;
  purpose: WorkspaceBufferPurpose;
  /** DEVICE memory of `device`, or host memory. */
  location: MemoryKind;
  /** Host memory that mirrors device arrays (a FULL workspace's host side: its buffer, spills and pinned blocks). */
  mirror: boolean;
  device: number;
  workspaceId: string;
  workspaceName: string;
  /** What the allocation that needs this buffer asked of it (AllocOptions.buffers); none for the workspace's own buffers. */
  options?: WorkspaceBufferOptions;
}

/**
 * What one allocation asks of the buffers it may take outside the workspace's own (spills, pinned and
 * toggled-off blocks): the daemon's wait_for_memory. The workspace passes them to its backing untouched.
 */
export interface WorkspaceBufferOptions {
  /** The request is tried again after a refusal: the pool counted that refusal already (AllocateOptions.retry). */
  retry?: boolean;
  /**
   * Asked before the backing takes a buffer, with nothing of the workspace changed yet: may throw to
   * refuse the allocation (the workspace stays as it was, as on any refusal).
   */
  beforeTake?: (request: WorkspaceBufferRequest) => void;
}

export interface WorkspaceMapRequest {
  /** The configured temp_file_path; undefined = a new temporary file (deleted when freed). */
  path: string | undefined;
  /**
   * When > 0: (re)create the file as this many zero bytes before mapping it (ND4J's fillFile, a
   * multiple of 16 KiB). When 0: map the existing file as it is.
   */
  createBytes: number;
  workspaceId: string;
  workspaceName: string;
}

export interface MappedFile {
  /** The mapping, as a HOST block of fileBytes bytes; given back with WorkspaceBacking.free. */
  block: Block;
  fileBytes: number;
}

/**
 * Where a workspace gets its memory. The daemon implements it over its device and host pools and
 * mapped files; tests use a fake. allocateBuffer throws (OutOfMemoryError) when it cannot, holding
 * nothing then. free takes back any block it handed out, mapped files included.
 */
export interface WorkspaceBacking {
  allocateBuffer(request: WorkspaceBufferRequest): Block;
  free(block: Block): void;
  /** MMAP workspaces only: the length of the file at `path` in bytes, 0 when it is missing. */
  fileLength?(path: string): number;
  /** MMAP workspaces only: creates (see createBytes) and maps a file whole. */
  mapFile?(request: WorkspaceMapRequest): MappedFile;
}
