/**
 * An array: a typed, shaped block of device memory with an optional host mirror, or a HOST_ONLY block
 * of host memory. Validity is tracked per side (ND4J's AllocationPoint tickHostRead/tickDeviceWrite in
 * spirit): a device array's mirror is allocated on first host access (lazily, the default) or with the
 * array (--mirror eager); ReadArray of a device array goes through the mirror; writes go to the device
 * and through to a valid mirror, so both sides stay current.
 *
 * Copies at or above the async threshold run off the event loop; the array counts them and its blocks
 * are released only when the last one ends, so a free during a transfer never frees memory under it.
 *
 * Export (ExportArray, src/memory/array-export.ts): a side that is exported lives in a dedicated
 * block, a chunk of its own that no other array ever uses (AllocateOptions.dedicated), because other
 * processes map the whole chunk and keep their mapping after the array is freed. An array allocated
 * `exportable` gets dedicated blocks from the start; otherwise the first export moves the side into
 * one (one copy) while no other copy of the array runs (a move holds the array exclusively).
 */
import { failedPrecondition, invalidArgument, outOfRange } from '../errors';
import type { AllocateOptions, Block, BlockOwner } from './memory-resource';
import type { DataTypeName } from './data-types';
import type { MemoryManager } from './memory-manager';
import type { AllocationValidity, Workspace, WorkspaceAllocation } from './workspace';
import type { WorkspaceRegistry } from './workspace-registry';

/** An array attached to a workspace: its bytes are ranges of the workspace's memory. */
interface Attachment {
  registry: WorkspaceRegistry;
  workspace: Workspace;
  primary: WorkspaceAllocation;
  /** The host side of a FULL workspace's array, allocated from the workspace on first host access. */
  mirror?: WorkspaceAllocation;
}

/** A workspace allocation as a Block-shaped range, for the copy paths; never handed to a pool. */
function viewOf(allocation: WorkspaceAllocation): Block {
  return {
    chunkHandle: allocation.block.chunkHandle,
    offset: allocation.block.offset + allocation.offset,
    bytes: allocation.bytes,
    requestedBytes: allocation.requestedBytes,
    owner: allocation.block.owner,
  };
}

export type PlacementName = 'PLACEMENT_DEVICE' | 'PLACEMENT_HOST_ONLY';

export interface TensorArrayInit {
  arrayId: string;
  leaseId: string;
  tenant: string;
  dataType: DataTypeName;
  shape: number[];
  byteSize: number;
  placement: PlacementName;
  device: number;
  label: string;
  workspaceId?: string;
  generation?: number;
}

/** A side of an array handed out by export: its block, and whether this export made that block (a copy). */
export interface ExportedBlock {
  block: Block;
  moved: boolean;
}

const DEDICATED: AllocateOptions = Object.freeze({ dedicated: true });

export class TensorArray {
  readonly createdAt = new Date();
  /** Device memory (PLACEMENT_DEVICE) — undefined for HOST_ONLY. */
  deviceBlock?: Block;
  /** The host mirror of a device array, or the only block of a HOST_ONLY array. */
  hostBlock?: Block;
  hostValid = false;
  deviceValid = false;
  private pendingCopies = 0;
  private releaseWhenIdle = false;
  private released = false;
  private mirrorFill?: Promise<void>;
  private attachment?: Attachment;
  /** Host memory (HOST_ONLY block or mirror) / device memory in a dedicated, exportable block. */
  hostExportable = false;
  deviceExportable = false;
  /** Allocated `exportable`: a mirror allocated later is dedicated too. */
  private exportableRequested = false;
  /** A move into a dedicated block in progress; copies wait for it. */
  private moving?: Promise<void>;
  private readonly idleWaiters: Array<() => void> = [];

  private constructor(
    readonly init: TensorArrayInit,
    private readonly memory: MemoryManager,
  ) {}

  get arrayId(): string {
    return this.init.arrayId;
  }
  get byteSize(): number {
    return this.init.byteSize;
  }
  get placement(): PlacementName {
    return this.init.placement;
  }
  get isFreed(): boolean {
    return this.released || this.releaseWhenIdle;
  }

  /** The workspace this array is attached to, if any. */
  get workspace(): Workspace | undefined {
    return this.attachment?.workspace;
  }
  /** The workspace generation at allocation (0 when detached). */
  get generation(): number {
    return this.attachment?.primary.generation ?? 0;
  }

  /** Bytes this array holds in the pools (aligned sizes); an attached array's bytes are its workspace's. */
  get deviceHeldBytes(): number {
    return this.attachment ? 0 : (this.deviceBlock?.bytes ?? 0);
  }
  get hostHeldBytes(): number {
    return this.attachment ? 0 : (this.hostBlock?.bytes ?? 0);
  }
  get heldBytes(): number {
    return this.deviceHeldBytes + this.hostHeldBytes;
  }

  private owner(purpose: string): BlockOwner {
    return { leaseId: this.init.leaseId, tenant: this.init.tenant, arrayId: this.init.arrayId, label: this.init.label, workspaceId: this.init.workspaceId, purpose };
  }

  /**
   * Allocates the array's memory, all or nothing: when the mirror of an eager device array cannot be
   * had, the device block is given back before the error propagates.
   */
  static async create(init: TensorArrayInit, memory: MemoryManager, options: { zero: boolean; eagerMirror: boolean; exportable?: boolean }): Promise<TensorArray> {
    const array = new TensorArray(init, memory);
    const exportable = options.exportable ?? false;
    array.exportableRequested = exportable;
    const hostOptions = exportable ? DEDICATED : undefined;
    if (init.placement === 'PLACEMENT_HOST_ONLY') {
      array.hostBlock = memory.allocateHost(init.byteSize, array.owner('host_only'), 'host_only', hostOptions);
      array.hostValid = true;
      array.hostExportable = exportable;
    } else {
      // Only cuda device memory can be exported (CUDA IPC); the emulated device's stays pooled.
      const deviceExportable = exportable && memory.backendName === 'cuda';
      array.deviceBlock = memory.allocateDevice(init.device, init.byteSize, array.owner('array'), deviceExportable ? DEDICATED : undefined);
      array.deviceValid = true;
      array.deviceExportable = deviceExportable;
      if (options.eagerMirror) {
        try {
          array.hostBlock = memory.allocateHost(init.byteSize, array.owner('mirror'), 'mirror', hostOptions);
          array.hostExportable = exportable;
        } catch (error) {
          memory.deallocateDevice(init.device, array.deviceBlock);
          array.deviceBlock = undefined;
          throw error;
        }
      }
    }
    if (options.zero) {
      await array.track(async () => {
        if (array.deviceBlock) await memory.fill(array.deviceBlock, 0, init.byteSize, 0);
        if (array.hostBlock) await memory.fill(array.hostBlock, 0, init.byteSize, 0);
      });
      array.hostValid = array.hostBlock !== undefined;
    }
    return array;
  }

  /**
   * Allocates the array inside `workspace` (ND4J's attached array). Its placement follows the
   * workspace: device memory for FULL workspaces, host memory for HOST_ONLY and MMAP ones. A
   * PLACEMENT_HOST_ONLY array cannot live in a FULL workspace's device buffer: INVALID_ARGUMENT.
   */
  static async createAttached(init: TensorArrayInit, memory: MemoryManager, registry: WorkspaceRegistry, workspace: Workspace, options: { zero: boolean }): Promise<TensorArray> {
    if (workspace.primaryKind === 'DEVICE' && init.placement === 'PLACEMENT_HOST_ONLY') {
      throw invalidArgument('placement', `PLACEMENT_DEVICE in workspace "${workspace.name}" (a FULL workspace holds device arrays; use a HOST_ONLY workspace or a detached array)`, init.placement);
    }
    const placement = workspace.primaryKind === 'DEVICE' ? 'PLACEMENT_DEVICE' : 'PLACEMENT_HOST_ONLY';
    const primary = workspace.alloc(init.byteSize);
    const array = new TensorArray({ ...init, placement, device: workspace.config.device, workspaceId: workspace.workspaceId, generation: primary.generation }, memory);
    array.attachment = { registry, workspace, primary };
    if (placement === 'PLACEMENT_DEVICE') {
      array.deviceBlock = viewOf(primary);
      array.deviceValid = true;
    } else {
      array.hostBlock = viewOf(primary);
      array.hostValid = true;
    }
    if (options.zero) await memory.fill(viewOf(primary), 0, init.byteSize, 0);
    return array;
  }

  /** How the attachment stands (Workspace.checkAllocation of its primary allocation); undefined when detached. */
  get attachmentValidity(): AllocationValidity | undefined {
    return this.attachment?.workspace.checkAllocation(this.attachment.primary);
  }

  /** Throws FAILED_PRECONDITION / ARRAY_OUT_OF_SCOPE (ND4J's leaked / outdated workspace pointer) for an attached array that may no longer be used. */
  assertUsable(operation: string): void {
    if (!this.attachment) return;
    this.attachment.registry.assertUsable(this.attachment.primary, operation);
    if (this.attachment.mirror) this.attachment.registry.assertUsable(this.attachment.mirror, operation);
  }

  /** Validates [offset, offset + length) against the array's byte size; `field` names the request field. */
  checkRange(offset: number, length: number, field: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.byteSize) {
      throw outOfRange(field, `offset ${offset} is past the end of array ${this.arrayId} (${this.byteSize} bytes)`);
    }
    if (!Number.isSafeInteger(length) || length < 0 || offset + length > this.byteSize) {
      throw outOfRange(field, `${length} bytes at offset ${offset} pass the end of array ${this.arrayId} (${this.byteSize} bytes)`);
    }
  }

  /** Writes `data` at `offset`: to the device (and through to a valid mirror), or to the host block of a HOST_ONLY array. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.byteLength, 'offset');
    this.assertUsable('Cannot write array');
    await this.track(async () => {
      if (!this.deviceBlock) {
        await this.memory.writeBlock(this.hostBlock!, offset, data);
        return;
      }
      if (!this.deviceValid) await this.copyMirrorToDevice();
      await this.memory.writeBlock(this.deviceBlock, offset, data);
      if (this.hostBlock && this.hostValid) await this.memory.writeBlock(this.hostBlock, offset, data);
    });
  }

  /** Reads into `target` from `offset`; device arrays are read through their host mirror. */
  async read(offset: number, target: Uint8Array): Promise<void> {
    this.checkRange(offset, target.byteLength, 'offset');
    this.assertUsable('Cannot read array');
    await this.track(async () => {
      if (this.deviceBlock) await this.ensureHostCurrent();
      await this.memory.readBlock(this.hostBlock!, offset, target);
    });
  }

  /** SYNC_DIRECTION_TO_HOST: mirror ← device (allocating the mirror). */
  async syncToHost(): Promise<void> {
    this.assertUsable('Cannot sync array');
    if (!this.deviceBlock) return;
    await this.track(async () => {
      this.hostValid = false;
      await this.ensureHostCurrent();
    });
  }

  /** SYNC_DIRECTION_TO_DEVICE: device ← mirror. Without a mirror the device copy is the only one, so nothing moves. */
  async syncToDevice(): Promise<void> {
    this.assertUsable('Cannot sync array');
    if (!this.deviceBlock || !this.hostBlock) return;
    await this.track(() => this.copyMirrorToDevice());
  }

  /** The block that holds the current bytes: the device when valid, else the mirror. */
  currentBlock(): Block {
    if (this.deviceBlock && this.deviceValid) return this.deviceBlock;
    if (this.hostBlock && this.hostValid) return this.hostBlock;
    throw failedPrecondition(`array ${this.arrayId} has no valid copy`);
  }

  /** Copies this array's current bytes into `target`'s device block (or host block for HOST_ONLY). */
  async copyInto(target: TensorArray): Promise<void> {
    this.assertUsable('Cannot duplicate array');
    await this.track(() =>
      target.track(async () => {
        const destination = target.deviceBlock ?? target.hostBlock!;
        await this.memory.copyBlock(destination, 0, this.currentBlock(), 0, this.byteSize);
        if (target.deviceBlock) {
          target.deviceValid = true;
          target.hostValid = false;
        }
      }),
    );
  }

  private async ensureHostCurrent(): Promise<void> {
    if (!this.hostBlock && this.attachment) {
      this.attachment.mirror = this.attachment.workspace.alloc(this.byteSize, { kind: 'HOST' });
      this.hostBlock = viewOf(this.attachment.mirror);
    }
    if (!this.hostBlock) {
      this.hostBlock = this.memory.allocateHost(this.byteSize, this.owner('mirror'), 'mirror', this.exportableRequested ? DEDICATED : undefined);
      this.hostExportable = this.exportableRequested;
    }
    if (this.hostValid) return;
    // Concurrent readers share one device → host copy.
    if (!this.mirrorFill) {
      this.mirrorFill = this.memory
        .copyBlock(this.hostBlock, 0, this.deviceBlock!, 0, this.byteSize)
        .then(() => {
          this.hostValid = true;
        })
        .finally(() => {
          this.mirrorFill = undefined;
        });
    }
    await this.mirrorFill;
  }

  private async copyMirrorToDevice(): Promise<void> {
    await this.memory.copyBlock(this.deviceBlock!, 0, this.hostBlock!, 0, this.byteSize);
    this.deviceValid = true;
    this.hostValid = true;
  }

  /**
   * The host side in a dedicated block (moved there on first export, the bytes copied when current),
   * current: a device array's mirror gets the device bytes when it was stale.
   */
  async exportHost(): Promise<ExportedBlock> {
    this.assertNotAttached();
    return this.exclusive(async () => {
      let moved = false;
      if (!this.hostExportable) {
        const hostOnly = this.init.placement === 'PLACEMENT_HOST_ONLY';
        const category = hostOnly ? 'host_only' : 'mirror';
        const fresh = this.memory.allocateHost(this.byteSize, this.owner(category), category, DEDICATED);
        try {
          if (this.hostBlock && (hostOnly || this.hostValid)) await this.memory.copyBlock(fresh, 0, this.hostBlock, 0, this.byteSize);
        } catch (error) {
          this.memory.deallocateHost(fresh, category);
          throw error;
        }
        if (this.hostBlock) this.memory.deallocateHost(this.hostBlock, category);
        this.hostBlock = fresh;
        this.hostExportable = true;
        moved = true;
      }
      if (this.deviceBlock) await this.ensureHostCurrent();
      return { block: this.hostBlock!, moved };
    });
  }

  /** The device side of a device array in a dedicated block (moved there on first export, with the current bytes). */
  async exportDevice(): Promise<ExportedBlock> {
    this.assertNotAttached();
    return this.exclusive(async () => {
      if (this.deviceExportable) return { block: this.deviceBlock!, moved: false };
      const fresh = this.memory.allocateDevice(this.init.device, this.byteSize, this.owner('array'), DEDICATED);
      try {
        await this.memory.copyBlock(fresh, 0, this.currentBlock(), 0, this.byteSize);
      } catch (error) {
        this.memory.deallocateDevice(this.init.device, fresh);
        throw error;
      }
      this.memory.deallocateDevice(this.init.device, this.deviceBlock!);
      this.deviceBlock = fresh;
      this.deviceValid = true;
      this.deviceExportable = true;
      return { block: fresh, moved: true };
    });
  }

  private assertNotAttached(): void {
    if (this.attachment) {
      throw failedPrecondition(
        `array ${this.arrayId} is attached to workspace "${this.attachment.workspace.name}" and cannot be exported: its memory is the workspace's buffer. DuplicateArray it with detached = true and export the copy`,
      );
    }
  }

  /**
   * Runs `operation` alone: after every copy in flight has ended, with later copies waiting until it
   * is done. Counted as a copy, so a release meanwhile frees the blocks the operation leaves behind.
   */
  private async exclusive<T>(operation: () => Promise<T>): Promise<T> {
    while (this.moving) await this.moving;
    if (this.isFreed) throw failedPrecondition(`array ${this.arrayId} was freed`);
    let finished!: () => void;
    this.moving = new Promise<void>((resolve) => {
      finished = resolve;
    });
    try {
      while (this.pendingCopies > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      return await this.track(operation, true);
    } finally {
      this.moving = undefined;
      finished();
    }
  }

  /** Runs a copy while counting it, so release() waits for it; waits for a move in progress first. */
  private async track<T>(operation: () => Promise<T>, isMove = false): Promise<T> {
    if (!isMove) while (this.moving) await this.moving;
    if (this.isFreed) throw failedPrecondition(`array ${this.arrayId} was freed`);
    this.pendingCopies++;
    try {
      return await operation();
    } finally {
      this.pendingCopies--;
      if (this.pendingCopies === 0) {
        for (const resolve of this.idleWaiters.splice(0)) resolve();
        if (this.releaseWhenIdle) this.releaseBlocks();
      }
    }
  }

  /**
   * Frees the array's memory and returns the bytes given back (aligned). With copies in flight the
   * blocks go back when the last one ends; the array is unusable from now on either way.
   */
  release(): number {
    if (this.isFreed) return 0;
    const bytes = this.heldBytes;
    if (this.pendingCopies > 0) this.releaseWhenIdle = true;
    else this.releaseBlocks();
    return bytes;
  }

  private releaseBlocks(): void {
    if (this.released) return;
    this.released = true;
    if (this.attachment) {
      // The workspace owns the memory: it is reused by its next cycle, not given back here.
      this.deviceBlock = undefined;
      this.hostBlock = undefined;
      return;
    }
    if (this.deviceBlock) this.memory.deallocateDevice(this.init.device, this.deviceBlock);
    if (this.hostBlock) this.memory.deallocateHost(this.hostBlock, this.init.placement === 'PLACEMENT_HOST_ONLY' ? 'host_only' : 'mirror');
    this.deviceBlock = undefined;
    this.hostBlock = undefined;
  }
}
