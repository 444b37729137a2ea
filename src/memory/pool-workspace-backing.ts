/**
 * A lease's workspaces take their memory here: device buffers from the device pools, host buffers
 * (FULL mirrors, HOST_ONLY workspaces) from the host pool, both through the tenant's quota; MMAP
 * workspaces map real files through the addon. Every block carries its owner (lease, tenant,
 * workspace) so snapshots show who holds it.
 */
import { statSync } from 'node:fs';
import type { Block, BlockOwner } from './memory-resource';
import type { HostCategory, MemoryManager } from './memory-manager';
import type { MappedFile, WorkspaceBacking, WorkspaceBufferRequest, WorkspaceMapRequest } from './workspace-backing';

const RETRY = { retry: true } as const;

type Holding = { kind: 'DEVICE'; device: number } | { kind: 'HOST'; category: HostCategory } | { kind: 'FILE' };

export class PoolWorkspaceBacking implements WorkspaceBacking {
  private readonly held = new Map<Block, Holding>();
  /** Set when the lease closes: what its closed-lease error is. */
  private closedError: (() => Error) | undefined;

  constructor(
    private readonly memory: MemoryManager,
    private readonly owner: { leaseId: string; tenant: string },
  ) {}

  private blockOwner(workspaceId: string, workspaceName: string, purpose: string): BlockOwner {
    return { ...this.owner, workspaceId, label: workspaceName, purpose: `workspace ${purpose}` };
  }

  /**
   * The lease closed: later requests are refused with `error()`. A request under way when it closed
   * (taking a chunk can run the lease sweep, which closes an expired lease, this one included) gives
   * its block back rather than leaving it to a workspace already destroyed.
   */
  close(error: () => Error): void {
    this.closedError = error;
  }

  private refuseWhenClosed(): void {
    if (this.closedError) throw this.closedError();
  }

  allocateBuffer(request: WorkspaceBufferRequest): Block {
    this.refuseWhenClosed();
    request.options?.beforeTake?.(request);
    const owner = this.blockOwner(request.workspaceId, request.workspaceName, request.purpose);
    let block: Block;
    let holding: Holding;
    if (request.location === 'DEVICE') {
      // A wait_for_memory retry: the pool counted this request's refusal when it was first tried.
      block = this.memory.allocateDevice(request.device, request.bytes, owner, request.options?.retry ? RETRY : undefined);
      holding = { kind: 'DEVICE', device: request.device };
    } else {
      const category: HostCategory = request.mirror ? 'mirror' : 'host_only';
      block = this.memory.allocateHost(request.bytes, owner, category);
      holding = { kind: 'HOST', category };
    }
    this.held.set(block, holding);
    try {
      this.refuseWhenClosed();
      // --scrub: the buffer comes from the pools, which reuse what other leases freed; its attached
      // arrays would show those bytes. (Synchronous, as the workspace API is; on cuda a memset.)
      if (this.memory.scrubs) this.memory.scrubNow(block);
    } catch (error) {
      this.free(block);
      throw error;
    }
    return block;
  }

  free(block: Block): void {
    const holding = this.held.get(block);
    if (!holding) throw new Error(`workspace backing: block at chunk ${block.chunkHandle} offset ${block.offset} is not held here`);
    this.held.delete(block);
    if (holding.kind === 'DEVICE') this.memory.deallocateDevice(holding.device, block);
    else if (holding.kind === 'HOST') this.memory.deallocateHost(block, holding.category);
    else this.memory.unmapFile(block);
  }

  /**
   * Bytes held, by side: device buffers, host buffers (mirrors, HOST_ONLY), and mapped files (MMAP),
   * each file once however many of the lease's workspaces map it (as the tenant's mmap_used_bytes
   * counts it): two workspaces of one temp_file_path showed the file twice in LeaseSummary.mmap_bytes.
   */
  heldBytes(): { deviceBytes: number; hostBytes: number; mmapBytes: number } {
    let deviceBytes = 0;
    let hostBytes = 0;
    const files = new Map<string, number>();
    for (const [block, holding] of this.held) {
      if (holding.kind === 'DEVICE') deviceBytes += block.bytes;
      else if (holding.kind === 'HOST') hostBytes += block.bytes;
      else {
        const file = this.memory.mappedFileOf(block);
        files.set(file, Math.max(files.get(file) ?? 0, block.bytes));
      }
    }
    let mmapBytes = 0;
    for (const bytes of files.values()) mmapBytes += bytes;
    return { deviceBytes, hostBytes, mmapBytes };
  }

  /** The length of the tenant's file `path` (temp_file_path, under its --mmap-dir folder); 0 when there is none. */
  fileLength(path: string): number {
    // No folders made just to look: the workspace may yet be refused (mapFile makes them).
    const file = this.memory.mmapFiles.pathOf(this.owner.tenant, path, false);
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  }

  /** Maps the tenant's file `request.path` (under its --mmap-dir folder), or a new temporary file in --mmap-dir. */
  mapFile(request: WorkspaceMapRequest): MappedFile {
    const temporary = request.path === undefined;
    const path = temporary ? this.memory.mmapFiles.temporaryPath() : this.memory.mmapFiles.pathOf(this.owner.tenant, request.path!);
    let block: Block;
    try {
      this.refuseWhenClosed();
      block = this.memory.mapFile(path, { createBytes: request.createBytes, deleteOnFree: temporary }, this.blockOwner(request.workspaceId, request.workspaceName, 'mmap'));
    } catch (error) {
      // Refused (a quota, --mmap-maxbytes, the file): the folders made for it go too.
      if (!temporary) this.memory.mmapFiles.removeEmptyFolders(path);
      throw error;
    }
    this.held.set(block, { kind: 'FILE' });
    return { block, fileBytes: block.bytes };
  }
}
