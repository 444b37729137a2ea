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
import { TensormemError, describeCount, failedPrecondition, invalidArgument, mirrorRefusal, outOfRange, quoted } from '../errors';
import type { AllocateOptions, Block, BlockOwner } from './memory-resource';
import { ELEMENT_BYTES, elementBytes } from './data-types';
import type { DataTypeName } from './data-types';
import type { MemoryManager } from './memory-manager';
import type { AllocationValidity, Workspace, WorkspaceAllocation } from './workspace';
import type { WorkspaceBufferOptions } from './workspace-backing';
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

/**
 * What the arrays of one lease on one device share, held once per lease and device instead of once
 * per array (B8: 100k arrays). An array made without one gets its own.
 */
export interface ArrayHome {
  readonly leaseId: string;
  readonly tenant: string;
  readonly device: number;
  readonly memory: MemoryManager;
  /**
   * The error a call on the array gets once its lease has ended (closed, expired, evicted, released
   * on disconnect), or undefined while the lease is open: a copy still under way when the lease ended
   * fails with it rather than with "was freed" (the client freed nothing). None: no lease to ask.
   */
  readonly leaseEnded?: () => Error | undefined;
  /**
   * Told of every change of an array's deviceHeldBytes and hostHeldBytes (a block taken, moved or given
   * back), as the bytes added (negative: given back) on each side, so that its lease keeps its arrays'
   * totals (LeaseSummary's device_bytes and host_bytes) without adding them up each time.
   */
  readonly heldChanged?: (array: TensorArray, deviceBytes: number, hostBytes: number) => void;
  /**
   * What its arrays' creation times count from (Date.now() milliseconds; default: when this module
   * loaded) and their serials in the lease (default 0). Each array keeps both as differences from
   * these, so that they stay small integers (V8 Smis, under 2^31) however long the daemon runs and
   * however many arrays a lease makes: a field holding one larger number turns the field into a boxed
   * double in every array (16 bytes more each). A lease starts a new home before either difference
   * could pass HOME_SPAN (arrayHomeOutgrown).
   */
  readonly epochMs?: number;
  readonly serialBase?: number;
}

/**
 * `value` (an integer) as V8 stores a small integer, in the object itself (a Smi), when it is under HOME_SPAN
 * in magnitude: a difference of two large numbers (Date.now() - epoch) comes out of unoptimized code as
 * a boxed double even when it is small, and one boxed double stored in a field makes the field hold
 * boxed doubles in every array from then on (16 bytes more each). `| 0` gives an int32, which V8 keeps
 * as a Smi. Larger values are kept as they are.
 */
function smallInteger(value: number): number {
  return value < HOME_SPAN && value > -HOME_SPAN ? value | 0 : value;
}

/** A home's epoch when it names none (ArrayHome.epochMs). */
const EPOCH_MS = Date.now();

/** How far an array's creation time (in ms) or serial may run from its home's before a lease starts a new home: 2^30, half the Smi range. */
export const HOME_SPAN = 2 ** 30;

/** Whether a lease should give new arrays a new home (see ArrayHome.epochMs): `home`'s epoch or serial base is HOME_SPAN behind `nowMs` or `lastSerial`. */
export function arrayHomeOutgrown(home: ArrayHome, nowMs: number, lastSerial: number): boolean {
  return nowMs - (home.epochMs ?? EPOCH_MS) >= HOME_SPAN || lastSerial - (home.serialBase ?? 0) >= HOME_SPAN;
}

export interface TensorArrayInit {
  arrayId: string;
  leaseId: string;
  tenant: string;
  /** The lease's shared ArrayHome; its leaseId, tenant and device must be the ones here. */
  home?: ArrayHome;
  dataType: DataTypeName;
  shape: number[];
  byteSize: number;
  placement: PlacementName;
  device: number;
  label: string;
}

/** A side of an array handed out by export: its block, and whether this export made that block (a copy). */
/** A view of an array's host bytes lent by lendHostView; `end()` (idempotent) gives it back. */
export interface HostViewLoan {
  readonly view: Uint8Array;
  end(): void;
}

export interface ExportedBlock {
  block: Block;
  moved: boolean;
}

const DEDICATED: AllocateOptions = Object.freeze({ dedicated: true });

/**
 * Bytes a copy into an attached array (a write, a zero fill, a mirror fill or sync, a DuplicateArray
 * copy) moves at once, on the event loop (see TensorArray.intoOwn).
 */
export const ATTACHED_COPY_SLICE_BYTES = 1024 * 1024;

/** The flag bits of TensorArray.state (its bits 0-8; the packing is described below). */
const HOST_ONLY = 1 << 0;
const HOST_VALID = 1 << 1;
const DEVICE_VALID = 1 << 2;
const HOST_EXPORTABLE = 1 << 3;
const DEVICE_EXPORTABLE = 1 << 4;
/** Allocated `exportable`: a mirror allocated later is dedicated too. */
const EXPORTABLE_REQUESTED = 1 << 5;
const RELEASED = 1 << 6;
const RELEASE_WHEN_IDLE = 1 << 7;
/** Set by each device write of write(); a mirror fill clears it when it starts and copies again when it finds it set at its end. */
const DEVICE_WRITTEN = 1 << 8;

/**
 * TensorArray.state packs the flags (bits 0-8), the data type (bits 9-13, an index into DATA_TYPES)
 * and the copies in flight (bits 14-30): one small integer instead of three fields.
 */
const DATA_TYPES = Object.keys(ELEMENT_BYTES) as DataTypeName[];
const DATA_TYPE_SHIFT = 9;
const DATA_TYPE_MASK = 0x1f << DATA_TYPE_SHIFT;
const COPY_SHIFT = 14;
const ONE_COPY = 1 << COPY_SHIFT;
/** Most copies in flight one array may have (bits 14-30 of state): one more is refused (TOO_MANY_COPIES). */
export const MAX_COPIES = (2 ** 31 - 1) >>> COPY_SHIFT;

/** Elements of an array of these dims (TensorArray.dims). */
function elementsOf(dims: number | readonly number[]): number {
  return typeof dims === 'number' ? dims : dims.reduce((product, dimension) => product * dimension, 1);
}

/** What few arrays need: workspace attachment and copy coordination, made on first use. */
interface ArrayExtras {
  /** The label, when not empty. */
  label?: string;
  attachment?: Attachment;
  /** The device → host copy in progress; concurrent readers share it. */
  mirrorFill?: Promise<void>;
  /** A move into a dedicated block in progress; copies wait for it. */
  moving?: Promise<void>;
  /** Resolved when the last copy in flight ends (exclusive() waits on them). */
  idleWaiters?: Array<() => void>;
  /** Byte ranges of a device array being changed (whileChanging); undefined when none is. */
  changes?: Set<RangeChange>;
}

/**
 * A change of a device array's bytes in flight: a write (its device copy, then the write through to
 * the mirror) or a sync (one side copied over the other). Overlapping changes run one after the
 * other, so that the device and the mirror take them in the same order.
 */
interface RangeChange {
  start: number;
  end: number;
  done: Promise<void>;
}

/**
 * The array is the owner (BlockOwner) of its device block, or of its only block when HOST_ONLY:
 * blocks point back at the array instead of at an owner object of their own, which keeps the
 * per-array bookkeeping small when a daemon holds 100k arrays (DESIGN.md §6, B8). A mirror's owner is
 * an object of its own (its purpose differs).
 */
export class TensorArray implements BlockOwner {
  readonly arrayId: string;
  private readonly home: ArrayHome;
  /** The shape: its one dimension for a rank-1 array (the common case, no array object), else the dimensions. */
  private readonly dims: number | readonly number[];
  /** Milliseconds since its home's epoch (ArrayHome.epochMs): a small integer, not a boxed number or a Date. */
  private readonly createdAtMs: number;
  /** deviceBlock and hostBlock (set through their accessors, which tell home.heldChanged). */
  private deviceBlockHeld?: Block;
  private hostBlockHeld?: Block;
  /** Flags, data type and copies in flight (see DATA_TYPE_SHIFT, COPY_SHIFT). */
  private state: number;
  private extras?: ArrayExtras;
  /** serialInLease less its home's serialBase (ArrayHome.serialBase). */
  private serialInHome = 0;

  private constructor(init: TensorArrayInit, memory: MemoryManager) {
    const home = init.home ?? { leaseId: init.leaseId, tenant: init.tenant, device: init.device, memory, epochMs: Date.now() };
    if (home.leaseId !== init.leaseId || home.tenant !== init.tenant || home.device !== init.device || home.memory !== memory) {
      throw new Error(
        `array ${init.arrayId}: its home is lease ${home.leaseId} (tenant "${home.tenant}") on device ${home.device}, ` +
          `not lease ${init.leaseId} (tenant "${init.tenant}") on device ${init.device} of this memory manager`,
      );
    }
    const dims = init.shape.length === 1 ? init.shape[0] : [...init.shape];
    // elementBytes refuses an unknown data type (INVALID_ARGUMENT naming data_type).
    const byteSize = elementBytes(init.dataType) * elementsOf(dims);
    const typeIndex = DATA_TYPES.indexOf(init.dataType);
    if (byteSize !== init.byteSize) throw new Error(`array ${init.arrayId}: byteSize ${init.byteSize} is not ${init.dataType} x [${init.shape.join(', ')}] = ${byteSize}`);
    this.arrayId = init.arrayId;
    this.home = home;
    this.dims = dims;
    this.createdAtMs = smallInteger(Date.now() - (home.epochMs ?? EPOCH_MS));
    this.state = (init.placement === 'PLACEMENT_HOST_ONLY' ? HOST_ONLY : 0) | (typeIndex << DATA_TYPE_SHIFT);
    if (init.label !== '') this.more.label = init.label;
  }

  get leaseId(): string {
    return this.home.leaseId;
  }
  get tenant(): string {
    return this.home.tenant;
  }
  get device(): number {
    return this.home.device;
  }
  private get memory(): MemoryManager {
    return this.home.memory;
  }
  get dataType(): DataTypeName {
    return DATA_TYPES[(this.state & DATA_TYPE_MASK) >>> DATA_TYPE_SHIFT];
  }
  /** product(shape) x element size, computed (not stored). */
  get byteSize(): number {
    return ELEMENT_BYTES[this.dataType] * elementsOf(this.dims);
  }
  get label(): string {
    return this.extras?.label ?? '';
  }
  /** Copies of this array in flight. */
  private get pendingCopies(): number {
    return this.state >>> COPY_SHIFT;
  }

  private has(flag: number): boolean {
    return (this.state & flag) !== 0;
  }
  private set(flag: number, on: boolean): void {
    this.state = on ? this.state | flag : this.state & ~flag;
  }
  private get more(): ArrayExtras {
    return (this.extras ??= {});
  }

  get placement(): PlacementName {
    return this.has(HOST_ONLY) ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_DEVICE';
  }
  /** Dimensions of the shape. */
  get rank(): number {
    return typeof this.dims === 'number' ? 1 : this.dims.length;
  }
  /** A copy of the shape. */
  get shape(): number[] {
    return typeof this.dims === 'number' ? [this.dims] : [...this.dims];
  }
  get createdAt(): Date {
    return new Date((this.home.epochMs ?? EPOCH_MS) + this.createdAtMs);
  }
  /** The order the array joined its lease's array map (CountedArrayMap; ListArrays pages follow it); its home's serialBase until then. */
  get serialInLease(): number {
    return (this.home.serialBase ?? 0) + this.serialInHome;
  }
  set serialInLease(serial: number) {
    this.serialInHome = smallInteger(serial - (this.home.serialBase ?? 0));
  }
  /** The workspace the array was allocated in (BlockOwner); undefined when detached. */
  get workspaceId(): string | undefined {
    return this.extras?.attachment?.workspace.workspaceId;
  }
  /** BlockOwner: what the array's own block is. */
  get purpose(): string {
    return this.has(HOST_ONLY) ? 'host_only' : 'array';
  }
  get hostValid(): boolean {
    return this.has(HOST_VALID);
  }
  set hostValid(valid: boolean) {
    this.set(HOST_VALID, valid);
  }
  get deviceValid(): boolean {
    return this.has(DEVICE_VALID);
  }
  set deviceValid(valid: boolean) {
    this.set(DEVICE_VALID, valid);
  }
  /** Host memory (HOST_ONLY block or mirror) in a dedicated, exportable block. */
  get hostExportable(): boolean {
    return this.has(HOST_EXPORTABLE);
  }
  private set hostExportable(exportable: boolean) {
    this.set(HOST_EXPORTABLE, exportable);
  }
  /** Device memory in a dedicated, exportable block. */
  get deviceExportable(): boolean {
    return this.has(DEVICE_EXPORTABLE);
  }
  private set deviceExportable(exportable: boolean) {
    this.set(DEVICE_EXPORTABLE, exportable);
  }
  /** Whether a copy of the array (a read, a write, a lent view) is in flight: a release now would wait for it. */
  get copying(): boolean {
    return this.pendingCopies > 0;
  }
  get isFreed(): boolean {
    return this.has(RELEASED | RELEASE_WHEN_IDLE);
  }

  private get attachment(): Attachment | undefined {
    return this.extras?.attachment;
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

  /** Device memory (PLACEMENT_DEVICE) — undefined for HOST_ONLY. */
  get deviceBlock(): Block | undefined {
    return this.deviceBlockHeld;
  }
  set deviceBlock(block: Block | undefined) {
    const before = this.deviceHeldBytes;
    this.deviceBlockHeld = block;
    this.heldChanged(this.deviceHeldBytes - before, 0);
  }
  /** The host mirror of a device array, or the only block of a HOST_ONLY array. */
  get hostBlock(): Block | undefined {
    return this.hostBlockHeld;
  }
  set hostBlock(block: Block | undefined) {
    const before = this.hostHeldBytes;
    this.hostBlockHeld = block;
    this.heldChanged(0, this.hostHeldBytes - before);
  }

  /** Tells the home of bytes this array's blocks now hold more (negative: fewer) on each side. */
  private heldChanged(deviceBytes: number, hostBytes: number): void {
    if (deviceBytes !== 0 || hostBytes !== 0) this.home.heldChanged?.(this, deviceBytes, hostBytes);
  }

  /** The owner of a mirror block (the array owns its other block itself). */
  private mirrorOwner(): BlockOwner {
    return { leaseId: this.leaseId, tenant: this.tenant, arrayId: this.arrayId, label: this.label, workspaceId: this.workspaceId, purpose: 'mirror' };
  }

  private ownerOf(category: 'host_only' | 'mirror'): BlockOwner {
    return category === 'mirror' ? this.mirrorOwner() : this;
  }

  /**
   * Allocates the array's memory, all or nothing: when the mirror of an eager device array cannot be
   * had, the device block is given back before the error propagates. A refusal is a rejected promise;
   * see make for the form that refuses in the same turn.
   */
  static async create(init: TensorArrayInit, memory: MemoryManager, options: { zero: boolean; eagerMirror: boolean; exportable?: boolean; retry?: boolean }): Promise<TensorArray> {
    return TensorArray.make(init, memory, options);
  }

  /** Only cuda device memory can be exported (CUDA IPC); the emulated device's stays pooled. */
  private static exportsDevice(memory: MemoryManager, exportable: boolean): boolean {
    return exportable && memory.backendName === 'cuda';
  }

  /** What a detached array's device block is asked with; `retry`: a wait_for_memory retry, whose refusal the device pool counted already. */
  static deviceOptions(memory: MemoryManager, exportable: boolean, retry = false): AllocateOptions | undefined {
    const dedicated = TensorArray.exportsDevice(memory, exportable);
    return retry ? { dedicated, retry: true } : dedicated ? DEDICATED : undefined;
  }

  /**
   * create, with the memory taken or refused before this returns: a refusal is thrown here, not a
   * rejected promise, so that what the caller holds for the array meanwhile (Lease.create's place under
   * max_arrays) goes back in the same turn, before a call issued with it is looked at. Only the zeroing
   * may finish later (the promise).
   */
  static make(init: TensorArrayInit, memory: MemoryManager, options: { zero: boolean; eagerMirror: boolean; exportable?: boolean; retry?: boolean }): Promise<TensorArray> {
    const array = new TensorArray(init, memory);
    const exportable = options.exportable ?? false;
    array.set(EXPORTABLE_REQUESTED, exportable);
    const hostOptions = exportable ? DEDICATED : undefined;
    if (init.placement === 'PLACEMENT_HOST_ONLY') {
      array.hostBlock = memory.allocateHost(init.byteSize, array, 'host_only', hostOptions);
      array.hostValid = true;
      array.hostExportable = exportable;
    } else {
      const deviceExportable = TensorArray.exportsDevice(memory, exportable);
      array.deviceBlock = memory.allocateDevice(init.device, init.byteSize, array, TensorArray.deviceOptions(memory, exportable, options.retry));
      array.deviceValid = true;
      array.deviceExportable = deviceExportable;
      if (options.eagerMirror) {
        try {
          array.hostBlock = memory.allocateHost(init.byteSize, array.mirrorOwner(), 'mirror', hostOptions);
          array.hostExportable = exportable;
        } catch (error) {
          memory.deallocateDevice(init.device, array.deviceBlock);
          array.deviceBlock = undefined;
          throw error;
        }
      }
    }
    if (!options.zero) return Promise.resolve(array);
    if (memory.copiesInline(init.byteSize)) {
      // Small: zeroed now (nothing else can reach an array not handed out yet), without the copy
      // tracking's promise hops, which cost more than the fill (B1 allocates 1 KiB arrays).
      if (array.deviceBlock) memory.fillInline(array.deviceBlock, 0, init.byteSize, 0);
      if (array.hostBlock) memory.fillInline(array.hostBlock, 0, init.byteSize, 0);
      array.hostValid = array.hostBlock !== undefined;
      return Promise.resolve(array);
    }
    return array
      .track(async () => {
        if (array.deviceBlock) await memory.fill(array.deviceBlock, 0, init.byteSize, 0);
        if (array.hostBlock) await memory.fill(array.hostBlock, 0, init.byteSize, 0);
      })
      .then(() => {
        array.hostValid = array.hostBlock !== undefined;
        return array;
      });
  }

  /** The placement of an array attached to `workspace`: device in a FULL workspace, host in HOST_ONLY and MMAP ones. */
  static placementIn(workspace: Workspace): PlacementName {
    return workspace.primaryKind === 'DEVICE' ? 'PLACEMENT_DEVICE' : 'PLACEMENT_HOST_ONLY';
  }

  /** INVALID_ARGUMENT for a PLACEMENT_HOST_ONLY array in a FULL workspace (whose buffer is device memory). */
  static checkAttachable(placement: PlacementName, workspace: Workspace): void {
    if (workspace.primaryKind === 'DEVICE' && placement === 'PLACEMENT_HOST_ONLY') {
      throw invalidArgument('placement', `PLACEMENT_DEVICE in workspace "${workspace.name}" (a FULL workspace holds device arrays; use a HOST_ONLY workspace or a detached array)`, placement);
    }
  }

  /**
   * Allocates the array inside `workspace` (ND4J's attached array). Its placement follows the
   * workspace: device memory for FULL workspaces, host memory for HOST_ONLY and MMAP ones. A
   * PLACEMENT_HOST_ONLY array cannot live in a FULL workspace's device buffer: INVALID_ARGUMENT. A
   * refusal is a rejected promise; makeAttached refuses in the same turn.
   */
  static async createAttached(init: TensorArrayInit, memory: MemoryManager, registry: WorkspaceRegistry, workspace: Workspace, options: { zero: boolean; buffers?: WorkspaceBufferOptions }): Promise<TensorArray> {
    return TensorArray.makeAttached(init, memory, registry, workspace, options);
  }

  /** createAttached, with the memory taken or refused (thrown) before this returns, as make; only the zeroing may finish later. */
  static makeAttached(init: TensorArrayInit, memory: MemoryManager, registry: WorkspaceRegistry, workspace: Workspace, options: { zero: boolean; buffers?: WorkspaceBufferOptions }): Promise<TensorArray> {
    TensorArray.checkAttachable(init.placement, workspace);
    const placement = TensorArray.placementIn(workspace);
    // The constructor checks its input: it runs before the workspace hands out any memory.
    const array = new TensorArray({ ...init, placement, device: workspace.config.device }, memory);
    const primary = workspace.alloc(init.byteSize, options.buffers === undefined ? undefined : { buffers: options.buffers });
    array.more.attachment = { registry, workspace, primary };
    if (placement === 'PLACEMENT_DEVICE') {
      array.deviceBlock = viewOf(primary);
      array.deviceValid = true;
    } else {
      array.hostBlock = viewOf(primary);
      array.hostValid = true;
    }
    // Counted as a copy: a workspace freed meanwhile (its lease closing) keeps the buffer until the fill ends.
    if (!options.zero) return Promise.resolve(array);
    const block = viewOf(primary);
    return array
      .track(() =>
        array.intoOwn(
          init.byteSize,
          () => memory.fill(block, 0, init.byteSize, 0),
          (at, length) => memory.fillInline(block, at, length, 0),
          // Made in a workspace whose scope is not open ('leaked' from the start), it is still zeroed. Once
          // the workspace moved on the rest is not: those bytes are the next cycle's, and the caller
          // (Lease.create) retires the array, as it does any made out of scope.
          () => !array.movedOn,
        ),
      )
      .then(() => array);
  }

  /** How the attachment stands (Workspace.checkAllocation of its primary allocation); undefined when detached. */
  get attachmentValidity(): AllocationValidity | undefined {
    return this.attachment?.workspace.checkAllocation(this.attachment.primary);
  }

  /**
   * Throws FAILED_PRECONDITION / ARRAY_OUT_OF_SCOPE (ND4J's leaked / outdated workspace pointer, or its
   * memory released or overwritten by a circular workspace's later array) for an attached array that
   * may no longer be used. `besides`: an array being copied from this one, whose own allocation may
   * cover this one's bytes in a circular workspace (the copy is made as memmove would).
   */
  assertUsable(operation: string, besides?: TensorArray): void {
    if (!this.attachment) return;
    // The lease ended (its workspaces destroyed with it): say so, not that the array is out of scope.
    const ended = this.leaseEndedError();
    if (ended) throw ended;
    this.attachment.registry.assertUsable(this.attachment.primary, operation, besides?.attachment?.primary);
    if (this.attachment.mirror) this.attachment.registry.assertUsable(this.attachment.mirror, operation);
  }

  /**
   * assertUsable, for an array made before a wait, only once its workspace has moved on since (a new
   * cycle, its memory given back, destroyed): an array made in a workspace whose scope is not open
   * ('leaked' from the start) is not refused for that.
   */
  assertNotMovedOn(operation: string): void {
    if (this.movedOn) this.assertUsable(operation);
  }

  /** Whether the array's workspace moved on since it was made (a new cycle, its memory given back, destroyed): its bytes may be others'. */
  private get movedOn(): boolean {
    const validity = this.attachmentValidity;
    return validity === 'outdated' || validity === 'released' || validity === 'overwritten' || this.attachment?.workspace.isDestroyed === true;
  }

  /** Validates [offset, offset + length) against the array's byte size; `field` names the request field. */
  checkRange(offset: number, length: number, field: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.byteSize) {
      throw outOfRange(field, `offset ${describeCount(offset)} is past the end of array ${this.arrayId} (${this.byteSize} bytes)`);
    }
    if (!Number.isSafeInteger(length) || length < 0 || offset + length > this.byteSize) {
      throw outOfRange(field, `${describeCount(length)} bytes at offset ${offset} pass the end of array ${this.arrayId} (${this.byteSize} bytes)`);
    }
  }

  /** Writes `data` at `offset`: to the device (and through to a valid mirror), or to the host block of a HOST_ONLY array. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.byteLength, 'offset');
    this.assertUsable('Cannot write array');
    await this.track(async () => {
      if (!this.deviceBlock) {
        await this.writeOwn(this.hostBlock!, offset, data);
        return;
      }
      // Two copies, device then mirror: another write of these bytes or a sync running between them
      // would leave the sides different (the device with one write's bytes, the mirror with the other's).
      await this.whileChanging(offset, offset + data.byteLength, async () => {
        // A mirror fill in flight copies the device as it was when it began, and this write would not go
        // through to a mirror that is not yet valid: wait for the fill, then write through to it.
        await this.mirrorFillsEnded();
        // The waits above can outlast the array's workspace cycle: its bytes may be the next cycle's by now.
        this.assertUsable('Cannot write array');
        if (!this.deviceValid) {
          await this.copyMirrorToDevice('Cannot write array');
          this.assertUsable('Cannot write array');
        }
        await this.writeOwn(this.deviceBlock!, offset, data);
        // A fill that began while this write was in flight copies again (ensureHostCurrent).
        this.set(DEVICE_WRITTEN, true);
        if (this.hostBlock && this.hostValid) {
          this.assertUsable('Cannot write array');
          await this.writeOwn(this.hostBlock, offset, data);
        }
      });
    });
  }

  /**
   * Runs `change` once no other change of bytes in [start, end) is in flight, recorded as one meanwhile.
   * Called inside track(), so a move or release waits for the change.
   */
  private async whileChanging(start: number, end: number, change: () => Promise<void>): Promise<void> {
    const changed = await this.beginChange(start, end);
    try {
      await change();
    } finally {
      changed();
    }
  }

  /** Waits until no change of bytes in [start, end) is in flight, then records this one until the returned function is called. */
  private async beginChange(start: number, end: number): Promise<() => void> {
    const extras = this.more;
    for (;;) {
      let overlapping: RangeChange | undefined;
      if (extras.changes) {
        for (const change of extras.changes) {
          if (change.start < end && start < change.end) {
            overlapping = change;
            break;
          }
        }
      }
      if (!overlapping) break;
      await overlapping.done;
    }
    let finished!: () => void;
    const change: RangeChange = { start, end, done: new Promise<void>((resolve) => (finished = resolve)) };
    (extras.changes ??= new Set()).add(change);
    return () => {
      extras.changes?.delete(change);
      if (extras.changes?.size === 0) extras.changes = undefined;
      finished();
    };
  }

  /**
   * write(), done now when nothing has to be waited for: a copy below --async-copy-threshold, into a
   * device side that is current (or a HOST_ONLY array's block), with no other copy or move of this
   * array in flight. Returns false, having done nothing, when write() must be used instead.
   */
  writeInline(offset: number, data: Uint8Array): boolean {
    if (this.pendingCopies > 0 || this.extras?.moving || this.isFreed || !this.memory.copiesInline(data.byteLength)) return false;
    if (this.deviceBlock && !this.deviceValid) return false;
    this.checkRange(offset, data.byteLength, 'offset');
    this.assertUsable('Cannot write array');
    if (!this.deviceBlock) {
      this.memory.writeBlockInline(this.hostBlock!, offset, data);
      return true;
    }
    this.memory.writeBlockInline(this.deviceBlock, offset, data);
    if (this.hostBlock && this.hostValid) this.memory.writeBlockInline(this.hostBlock, offset, data);
    return true;
  }

  /** Reads into `target` from `offset`; device arrays are read through their host mirror. */
  async read(offset: number, target: Uint8Array): Promise<void> {
    this.checkRange(offset, target.byteLength, 'offset');
    this.assertUsable('Cannot read array');
    await this.track(async () => {
      if (this.deviceBlock) {
        await this.ensureHostCurrent();
        // The mirror fill (or another reader's, shared) can outlast the array's workspace cycle.
        this.assertUsable('Cannot read array');
      }
      await this.memory.readBlock(this.hostBlock!, offset, target);
      // The workspace moved to its next cycle during the copy: `target` may hold that cycle's bytes.
      this.assertUsable('Cannot read array');
    });
  }

  /**
   * Lends a view of [offset, offset + bytes) of the array's host copy, no copy made: the mirror of a
   * device array (brought up to date first, as read() does) or a HOST_ONLY array's block. The loan
   * counts as a copy in flight until `end()`, so a free or a move meanwhile waits for it and the bytes
   * stay where the view points; after `end()` the view reads as empty. A data plane GET writes the view
   * to its socket and ends the loan once the socket has taken it. An array attached to a workspace lends
   * a copy instead (its workspace's next cycle reuses the bytes, loan or not).
   */
  async lendHostView(offset: number, bytes: number): Promise<HostViewLoan> {
    this.checkRange(offset, bytes, 'offset');
    this.assertUsable('Cannot read array');
    const copy = await this.beginCopy();
    let view: Uint8Array;
    try {
      if (this.deviceBlock) {
        await this.ensureHostCurrent();
        this.assertUsable('Cannot read array');
      }
      view = this.memory.viewHostBlock(this.hostBlock!, offset, bytes);
    } catch (error) {
      this.endCopy(copy);
      throw error;
    }
    if (this.attachment) {
      // A workspace reuses its buffer in its next cycle whatever is in flight (only memory it gives back
      // waits for copies): a view left on a slow socket would send the next cycle's arrays' bytes as this
      // array's. So an attached array lends a copy, taken now, while the bytes are still its own.
      const copied = Buffer.from(view);
      this.memory.releaseHostView(view);
      this.endCopy(copy);
      return { view: copied, end: () => undefined };
    }
    let ended = false;
    return {
      view,
      end: () => {
        if (ended) return;
        ended = true;
        this.memory.releaseHostView(view);
        this.endCopy(copy);
      },
    };
  }

  /** SYNC_DIRECTION_TO_HOST: mirror ← device (allocating the mirror). */
  async syncToHost(): Promise<void> {
    this.assertUsable('Cannot sync array');
    if (!this.deviceBlock) return;
    await this.track(async () => {
      await this.whileChanging(0, this.byteSize, async () => {
        // Waiting for other changes can outlast the array's workspace cycle: no mirror in the next one.
        this.assertUsable('Cannot sync array');
        this.hostValid = false;
        await this.ensureHostCurrent('Cannot sync array');
        this.assertUsable('Cannot sync array');
      });
    });
  }

  /** SYNC_DIRECTION_TO_DEVICE: device ← mirror. Without a mirror the device copy is the only one, so nothing moves. */
  async syncToDevice(): Promise<void> {
    this.assertUsable('Cannot sync array');
    if (!this.deviceBlock || !this.hostBlock) return;
    await this.track(async () => {
      // The whole mirror is copied down: a write in flight would otherwise have its device bytes
      // overwritten by the mirror's older ones, and write its mirror bytes only after.
      await this.whileChanging(0, this.byteSize, async () => {
        await this.mirrorFillsEnded();
        this.assertUsable('Cannot sync array');
        // Only a current mirror is copied down (as ND4J copies to the device only when the host side is
        // the current one): a stale one, an eager mirror never filled or one a duplicate left behind,
        // would overwrite the device's bytes.
        if (this.hostValid) await this.copyMirrorToDevice('Cannot sync array');
      });
    });
  }

  /** The block that holds the current bytes: the device when valid, else the mirror. */
  currentBlock(): Block {
    if (this.deviceBlock && this.deviceValid) return this.deviceBlock;
    if (this.hostBlock && this.hostValid) return this.hostBlock;
    throw failedPrecondition(`array ${this.arrayId} has no valid copy`);
  }

  /** Copies this array's current bytes into `target`'s device block (or host block for HOST_ONLY). */
  async copyInto(target: TensorArray): Promise<void> {
    this.assertUsable('Cannot duplicate array', target);
    await this.track(() =>
      target.track(async () => {
        // Waiting for a move of the source (its first export) can outlast either side's workspace cycle.
        this.assertUsable('Cannot duplicate array', target);
        target.assertNotMovedOn('Cannot duplicate array');
        const destination = target.deviceBlock ?? target.hostBlock!;
        const source = this.currentBlock();
        // A ring that wrapped onto the source (one chunk, the destination after it): last slice first, as memmove.
        const backward = destination.chunkHandle === source.chunkHandle && destination.offset > source.offset;
        await target.copyIntoOwn(
          destination,
          source,
          () => {
            // A copy into a workspace whose scope is not open is made 'leaked' from the start: refused only
            // once that workspace moved on; the source, once its own did (its bytes are then the next cycle's).
            target.assertNotMovedOn('Cannot duplicate array');
            this.assertUsable('Cannot duplicate array', target);
            return true;
          },
          backward,
        );
        // The source's workspace moved to its next cycle during the copy: the copy may hold that cycle's bytes.
        this.assertUsable('Cannot duplicate array', target);
        if (target.deviceBlock) {
          target.deviceValid = true;
          target.hostValid = false;
        }
      }),
    );
  }

  /** `operation` names the call in an ARRAY_OUT_OF_SCOPE error of an attached array's fill (shared: the first caller's). */
  private async ensureHostCurrent(operation = 'Cannot read array'): Promise<void> {
    // Freed while this call waited (it counts as a copy, so the blocks are still here): a mirror made now
    // would be host memory taken after FreeArray answered, which its freed_bytes never counted.
    if (!this.hostBlock && this.isFreed) throw this.freedError();
    if (!this.hostBlock && this.attachment) {
      const { workspace } = this.attachment;
      try {
        this.attachment.mirror = workspace.alloc(this.byteSize, { kind: 'HOST' });
      } catch (error) {
        // Refused by the host cap or quota, the refusal names the workspace's buffer, not this array: say whose mirror it was for.
        throw mirrorRefusal(error, this.arrayId, workspace.name);
      }
      this.hostBlock = viewOf(this.attachment.mirror);
    }
    if (!this.hostBlock) {
      this.hostBlock = this.memory.allocateHost(this.byteSize, this.mirrorOwner(), 'mirror', this.has(EXPORTABLE_REQUESTED) ? DEDICATED : undefined);
      this.hostExportable = this.has(EXPORTABLE_REQUESTED);
    }
    if (this.hostValid) return;
    // Concurrent readers share one device → host copy.
    const extras = this.more;
    if (!extras.mirrorFill) {
      const fill = async (mirror: Block, device: Block) => {
        // write() waits for a fill in flight, but one already writing the device when the fill began
        // may finish during the copy: then the mirror may hold the old bytes, and it is copied again.
        do {
          this.set(DEVICE_WRITTEN, false);
          // An attached array's mirror is its workspace's host side, the next cycle's once it moved on.
          await this.copyIntoOwn(mirror, device, () => this.usable(operation));
        } while (this.has(DEVICE_WRITTEN));
        this.hostValid = true;
      };
      extras.mirrorFill = fill(this.hostBlock, this.deviceBlock!).finally(() => {
        extras.mirrorFill = undefined;
      });
    }
    await extras.mirrorFill;
  }

  /** Resolves once no device → mirror copy is in flight (whether the copies succeeded or not). */
  private async mirrorFillsEnded(): Promise<void> {
    while (this.extras?.mirrorFill) await this.extras.mirrorFill.catch(() => undefined);
  }

  private async copyMirrorToDevice(operation: string): Promise<void> {
    await this.copyIntoOwn(this.deviceBlock!, this.hostBlock!, () => this.usable(operation));
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
        const hostOnly = this.has(HOST_ONLY);
        const category = hostOnly ? 'host_only' : 'mirror';
        const fresh = this.memory.allocateHost(this.byteSize, this.ownerOf(category), category, DEDICATED);
        try {
          if (this.hostBlock && (hostOnly || this.hostValid)) await this.memory.copyBlock(fresh, 0, this.hostBlock, 0, this.byteSize);
        } catch (error) {
          this.memory.deallocateHost(fresh, category);
          throw error;
        }
        // A side with no memory yet (a device array's first mirror) is made here, in its own region: nothing moved.
        moved = this.hostBlock !== undefined;
        if (this.hostBlock) this.memory.deallocateHost(this.hostBlock, category);
        this.hostBlock = fresh;
        this.hostExportable = true;
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
      const fresh = this.memory.allocateDevice(this.device, this.byteSize, this, DEDICATED);
      try {
        await this.memory.copyBlock(fresh, 0, this.currentBlock(), 0, this.byteSize);
      } catch (error) {
        this.memory.deallocateDevice(this.device, fresh);
        throw error;
      }
      this.memory.deallocateDevice(this.device, this.deviceBlock!);
      this.deviceBlock = fresh;
      this.deviceValid = true;
      this.deviceExportable = true;
      return { block: fresh, moved: true };
    });
  }

  /** FAILED_PRECONDITION for an array attached to a workspace: its memory is the workspace's buffer, which no export may hand out. */
  assertNotAttached(): void {
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
    const extras = this.more;
    while (extras.moving) await extras.moving;
    if (this.isFreed) throw this.freedError();
    let finished!: () => void;
    extras.moving = new Promise<void>((resolve) => {
      finished = resolve;
    });
    try {
      while (this.pendingCopies > 0) await new Promise<void>((resolve) => (extras.idleWaiters ??= []).push(resolve));
      return await this.track(operation, true);
    } finally {
      extras.moving = undefined;
      finished();
    }
  }

  /**
   * What a call on this array gets once it is freed: the lease's closed-lease error (UNAUTHENTICATED,
   * LEASE_EXPIRED, saying why) when the lease ended, as for the lease's token; FAILED_PRECONDITION
   * when the array alone was freed (FreeArray while the call was under way).
   */
  freedError(): Error {
    return this.leaseEndedError() ?? failedPrecondition(`array ${this.arrayId} was freed`);
  }

  /** The lease's closed-lease error once the array's lease has ended; undefined while it is open. */
  leaseEndedError(): Error | undefined {
    return this.home.leaseEnded?.();
  }

  /**
   * A copy of `bytes` into this array's own memory: `whole()` for a detached array (off the event loop
   * from --async-copy-threshold on; nothing else reuses its memory while the copy counts, track()). An
   * attached array's bytes are its workspace's, which its next cycle (LeaveWorkspace and EnterWorkspace
   * from another call) hands to new arrays whatever is in flight: a copy still queued on the thread pool
   * then landed on those arrays after they were written. So an attached array's copy goes through
   * `slice(at, length)`, which must copy on the caller's stack, ATTACHED_COPY_SLICE_BYTES at a time, each
   * right after `check()` (which throws, ARRAY_OUT_OF_SCOPE, or returns false to stop quietly once the
   * bytes are no longer the array's), letting other calls run in between: the check holds when the bytes land.
   * `backward`: the last slice first (the destination overlaps the source after it).
   */
  private async intoOwn(bytes: number, whole: () => Promise<void>, slice: (at: number, length: number) => void, check: () => boolean, backward = false): Promise<void> {
    if (!this.attachment) return whole();
    const slices = Math.ceil(bytes / ATTACHED_COPY_SLICE_BYTES);
    for (let i = 0; i < slices; i++) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const at = (backward ? slices - 1 - i : i) * ATTACHED_COPY_SLICE_BYTES;
      if (!check()) return;
      slice(at, Math.min(ATTACHED_COPY_SLICE_BYTES, bytes - at));
    }
  }

  /** copyBlock of the whole array from `source` into `destination` (one of this array's own blocks), through intoOwn. */
  private copyIntoOwn(destination: Block, source: Block, check: () => boolean, backward = false): Promise<void> {
    return this.intoOwn(
      this.byteSize,
      () => this.memory.copyBlock(destination, 0, source, 0, this.byteSize),
      (at, length) => this.memory.copyBlockInline(destination, at, source, at, length),
      check,
      backward,
    );
  }

  /** writeBlock of `data` into `block` (one of this array's own) at `offset`, through intoOwn. */
  private writeOwn(block: Block, offset: number, data: Uint8Array): Promise<void> {
    return this.intoOwn(
      data.byteLength,
      () => this.memory.writeBlock(block, offset, data),
      (at, length) => this.memory.writeBlockInline(block, offset + at, data.subarray(at, at + length)),
      () => this.usable('Cannot write array'),
    );
  }

  /** assertUsable as an intoOwn check. */
  private usable(operation: string): boolean {
    this.assertUsable(operation);
    return true;
  }

  /** Runs a copy while counting it, so release() waits for it; waits for a move in progress first. */
  private async track<T>(operation: () => Promise<T>, isMove = false): Promise<T> {
    const copy = await this.beginCopy(isMove);
    try {
      return await operation();
    } finally {
      this.endCopy(copy);
    }
  }

  /**
   * Counts a copy in flight (after a move in progress, unless this is the move); endCopy() ends it,
   * given what this returns (the workspace's copy epoch of an attached array).
   */
  private async beginCopy(isMove = false): Promise<number | undefined> {
    if (!isMove) while (this.extras?.moving) await this.extras.moving;
    if (this.isFreed) throw this.freedError();
    if (this.pendingCopies === MAX_COPIES) throw this.tooManyCopiesError();
    this.state += ONE_COPY;
    // An attached array's bytes are its workspace's: the workspace keeps them from the pools meanwhile.
    return this.attachment?.workspace.copyBegan();
  }

  /**
   * One copy past MAX_COPIES: RESOURCE_EXHAUSTED, as the daemon's other caps on what is in flight
   * (TOO_MANY_STREAMS, TOO_MANY_WAITS). It was a plain Error, which a client flooding one array with
   * reads or DuplicateArray calls got as INTERNAL, a daemon bug to its retry logic.
   */
  private tooManyCopiesError(): TensormemError {
    return new TensormemError(
      'RESOURCE_EXHAUSTED',
      'TOO_MANY_COPIES',
      `array ${quoted(this.arrayId)} has ${MAX_COPIES} copies in flight (reads, writes, DuplicateArray and data plane transfers of it), the most one array may have: retry once some have ended`,
      { array_id: this.arrayId, copies_in_flight: String(this.pendingCopies), max_copies: String(MAX_COPIES) },
    );
  }

  /** Ends a copy: the last one wakes a waiting move and carries out a release asked for meanwhile. */
  private endCopy(copy: number | undefined): void {
    this.state -= ONE_COPY;
    if (copy !== undefined) this.attachment?.workspace.copyEnded(copy);
    if (this.pendingCopies === 0) {
      const waiters = this.extras?.idleWaiters;
      if (waiters) for (const resolve of waiters.splice(0)) resolve();
      if (this.has(RELEASE_WHEN_IDLE)) this.releaseBlocks();
    }
  }

  /**
   * Frees the array's memory and returns the bytes given back (aligned). With copies in flight the
   * blocks go back when the last one ends; the array is unusable from now on either way.
   */
  release(): number {
    if (this.isFreed) return 0;
    const bytes = this.heldBytes;
    if (this.pendingCopies > 0) this.set(RELEASE_WHEN_IDLE, true);
    else this.releaseBlocks();
    return bytes;
  }

  private releaseBlocks(): void {
    if (this.has(RELEASED)) return;
    this.set(RELEASED, true);
    if (this.attachment) {
      // The workspace owns the memory: it is reused by its next cycle, not given back here.
      this.deviceBlock = undefined;
      this.hostBlock = undefined;
      return;
    }
    if (this.deviceBlock) this.memory.deallocateDevice(this.device, this.deviceBlock);
    if (this.hostBlock) this.memory.deallocateHost(this.hostBlock, this.has(HOST_ONLY) ? 'host_only' : 'mirror');
    this.deviceBlock = undefined;
    this.hostBlock = undefined;
  }
}
