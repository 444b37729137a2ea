/**
 * A lease's workspaces take their memory here: device buffers from the device pools, host buffers
 * (FULL mirrors, HOST_ONLY workspaces) from the host pool, both through the tenant's quota; MMAP
 * workspaces map real files through the addon. Every block carries its owner (lease, tenant,
 * workspace) so snapshots show who holds it.
 */
import { statSync } from 'node:fs';
import type { Block, BlockOwner } from './memory-resource';
import type { HostCategory, MemoryManager } from './memory-manager';
import type { MappedFile, WorkspaceBacking, WorkspaceBufferRequest, WorkspaceMapRequest } from './workspace';

type Holding = { kind: 'DEVICE'; device: number } | { kind: 'HOST'; category: HostCategory } | { kind: 'FILE' };

export class PoolWorkspaceBacking implements WorkspaceBacking {
  private readonly held = new Map<Block, Holding>();

  constructor(
    private readonly memory: MemoryManager,
    private readonly owner: { leaseId: string; tenant: string },
  ) {}

  private blockOwner(workspaceId: string, workspaceName: string, purpose: string): BlockOwner {
    return { ...this.owner, workspaceId, label: workspaceName, purpose: `workspace ${purpose}` };
  }

  allocateBuffer(request: WorkspaceBufferRequest): Block {
    const owner = this.blockOwner(request.workspaceId, request.workspaceName, request.purpose);
    if (request.location === 'DEVICE') {
      const block = this.memory.allocateDevice(request.device, request.bytes, owner);
      this.held.set(block, { kind: 'DEVICE', device: request.device });
      return block;
    }
    const category: HostCategory = request.mirror ? 'mirror' : 'host_only';
    const block = this.memory.allocateHost(request.bytes, owner, category);
    this.held.set(block, { kind: 'HOST', category });
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

  /** Bytes held, by side: device buffers, and host buffers (mirrors, HOST_ONLY); mapped files are in neither. */
  heldBytes(): { deviceBytes: number; hostBytes: number } {
    let deviceBytes = 0;
    let hostBytes = 0;
    for (const [block, holding] of this.held) {
      if (holding.kind === 'DEVICE') deviceBytes += block.bytes;
      else if (holding.kind === 'HOST') hostBytes += block.bytes;
    }
    return { deviceBytes, hostBytes };
  }

  /** The length of the tenant's file `path` (temp_file_path, under its --mmap-dir folder); 0 when there is none. */
  fileLength(path: string): number {
    const file = this.memory.mmapFiles.pathOf(this.owner.tenant, path);
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
    const block = this.memory.mapFile(path, { createBytes: request.createBytes, deleteOnFree: temporary }, this.blockOwner(request.workspaceId, request.workspaceName, 'mmap'));
    this.held.set(block, { kind: 'FILE' });
    return { block, fileBytes: block.bytes };
  }
}
