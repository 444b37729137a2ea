/**
 * Workspace: ND4J 1.0.0-M1's Nd4jWorkspace (CpuWorkspace / CudaWorkspace) as pure policy — a bump arena
 * over one buffer with ND4J's learning, spill, reset, pinned-allocation and generation rules
 * (reference/nd4j-semantics.md §3–§14; DESIGN.md §4).
 *
 * The workspace holds no bytes itself. It takes buffers from a WorkspaceBacking (the daemon's device
 * and host pools, or a mapped file) and hands out WorkspaceAllocation descriptors: which Block, at
 * which offset, how many (16-byte aligned) bytes, on which side, in which generation. Zero-filling
 * and copies are the caller's.
 *
 * Sides. A workspace has a primary side where arrays live: DEVICE for RAM workspaces with FULL
 * mirroring, HOST for HOST_ONLY and MMAP workspaces. A FULL workspace also has a host mirror side:
 * HOST requests (an array's host mirror) bump a separate host offset in a host buffer allocated on
 * the first such request, and, as in ND4J's CudaWorkspace, are not counted in cycle allocations.
 * primary_offset is the primary side's offset. On the host side of a HOST_ONLY/MMAP workspace the
 * device offset follows the host offset, as in ND4J's CpuWorkspace.
 *
 * Decided differently from ND4J (DESIGN.md §4 and below):
 * - a request larger than a circular workspace's buffer spills (ND4J recurses forever);
 * - a FAILed request changes nothing, not even the spilled size (M1 counted it);
 * - HOST_ONLY workspaces count their (host) allocations, so they learn (M1's CUDA backend never did);
 * - uncounted outside allocations (toggled-off requests, host-mirror spills) are freed at the same
 *   points as counted spills, and pinned mirror blocks by the pinned age rule even when no counted
 *   pinned block is left (ND4J kept them until destroy when no counted spill or pinned block existed,
 *   a leak that grows every cycle);
 * - scopes are a stack: leaving one restores what was current when it opened, also inside a re-entry
 *   of the same workspace (ND4J's one tagScope counter per workspace mixed re-entries, scope-outs and
 *   a borrow's closes);
 * - an MMAP workspace with initial_size 0 over an existing file uses the whole file (ND4J meant to:
 *   it sets initialSize to the file length, but after currentSize was read, so everything spilled);
 * - initializeWorkspace() with learning NONE does nothing (ND4J could destroy the buffer);
 * - scope operations are checked: leave only the innermost scope, enter a workspace open further out
 *   only by borrowing (ND4J silently re-entered it, resetting it under the outer scope's arrays);
 * - destroy() is final; a destroyed workspace refuses every later call;
 * - every refusal — a bad request, FAIL, or a backing refusal — leaves the workspace as it was: a new
 *   buffer is taken before the old one is given back (allocate-then-free on REALLOCATE growth); a
 *   refusal while learning at the end of a scope leaves the old buffer in place, the scope is left
 *   anyway and learningFailure says why;
 * - an array of a circular workspace whose bytes the ring handed to a later allocation is
 *   'overwritten' and refused (ND4J let it read, and write into, the later array's bytes).
 */
import { TensormemError, failedPrecondition, invalidArgument } from '../errors';
import type { MemoryKind } from '../errors';
import { formatBytes } from '../units';
import type { Block } from './memory-resource';
import {
  CIRCULAR_LEARNING_FACTOR,
  SAFETY_OFFSET,
  alignWorkspaceRequest,
  javaLongOfProduct,
  mmapFileBytes,
  normalizeWorkspaceConfig,
  stepsNumberOf,
} from './workspace-config';
import type { WorkspaceConfig, WorkspaceConfigInput } from './workspace-config';
import type { WorkspaceBacking, WorkspaceBufferOptions, WorkspaceBufferPurpose, WorkspaceBufferRequest } from './workspace-backing';
import { WorkspaceScope } from './workspace-scope';
import { RingLaps } from './workspace-ring';

/** Where an allocation's bytes are. */
export type WorkspacePlacement = 'workspace' | 'spill' | 'pinned' | 'external';

/** What alloc() hands out: a place for `bytes` bytes; the caller owns the contents, not the memory. */
export interface WorkspaceAllocation {
  readonly workspaceId: string;
  /** The side: DEVICE memory, or HOST (a FULL workspace's mirror, or a HOST_ONLY/MMAP workspace's arrays). */
  readonly kind: MemoryKind;
  readonly placement: WorkspacePlacement;
  /** The workspace's buffer on that side (placement 'workspace') or a block of its own. */
  readonly block: Block;
  /** Byte offset in `block` (the workspace offset on that side; 0 for blocks of their own). */
  readonly offset: number;
  /** The request rounded up to 16 bytes: what the offsets and counters moved by. */
  readonly bytes: number;
  readonly requestedBytes: number;
  /** The workspace's generation when allocated; the array is outdated once the workspace moves on. */
  readonly generation: number;
  /**
   * Placement 'workspace' of a circular workspace: the lap of its side's ring when allocated, and the
   * allocation's number there (both 0 otherwise). A later lap's allocation over the same bytes
   * overwrites it (checkAllocation: 'overwritten').
   */
  readonly lap: number;
  readonly seq: number;
}

/** ND4J's counters under DESIGN.md's WorkspaceInfo names (camelCased). Bytes unless stated. */
export interface WorkspaceInfo {
  workspaceId: string;
  name: string;
  currentSize: number;
  primaryOffset: number;
  hostOffset: number;
  deviceOffset: number;
  thisCycleAllocations: number;
  lastCycleAllocations: number;
  maxCycleAllocations: number;
  spilledSize: number;
  pinnedSize: number;
  numberOfExternalAllocations: number;
  numberOfPinnedAllocations: number;
  cyclesCount: number;
  stepNumber: number;
  generationId: number;
  scopeActive: boolean;
  initialBlockSize: number;
}

export interface AllocOptions {
  /** The side; default the workspace's primary side. HOST on a FULL workspace = an array's host mirror. */
  kind?: MemoryKind;
  /** Passed with every buffer this allocation takes outside the workspace's own (a spill, a pinned or toggled-off block). */
  buffers?: WorkspaceBufferOptions;
}

/**
 * How an allocation stands (checkAllocation). 'overwritten': a circular workspace's ring came round
 * and handed (part of) its bytes to a later allocation.
 */
export type AllocationValidity = 'valid' | 'leaked' | 'outdated' | 'released' | 'overwritten';

export interface WorkspaceOptions {
  name: string;
  /** Unique id (the service's workspace_id); default = name. */
  workspaceId?: string;
  /** Validated here; absent fields take ND4J's defaults. */
  config?: WorkspaceConfig | WorkspaceConfigInput;
  backing: WorkspaceBacking;
  /** The owner's scope; default a scope of this workspace's own. */
  scope?: WorkspaceScope;
  /**
   * Asked once the configuration (an MMAP file's length included) passed, before any memory is taken
   * or file mapped: may refuse the creation (the daemon's heap, HeapGuard).
   */
  beforeCreate?: () => void;
}

interface OutsideBlock {
  block: Block;
  /** Counted in numberOfExternalAllocations / spilledSize (primary-side spills). */
  counted: boolean;
}

interface PinnedBlock {
  block: Block;
  /** stepsCount when allocated; freed once step + 2 < stepsCount. */
  step: number;
  /** Counted bytes (0 for mirror-side pinned blocks, which ND4J does not count). */
  bytes: number;
  counted: boolean;
}

export class Workspace {
  readonly name: string;
  readonly workspaceId: string;
  readonly config: WorkspaceConfig;
  readonly scope: WorkspaceScope;
  /** The side arrays live on: DEVICE, or HOST for HOST_ONLY and MMAP workspaces. */
  readonly primaryKind: MemoryKind;
  readonly circular: boolean;
  /** Cycles per step (circular OVERALLOCATE: (int)(overallocationLimit + 1)). */
  readonly stepsNumber: number;

  private readonly backing: WorkspaceBacking;
  /**
   * Copies and loans in flight on arrays attached to this workspace (TensorArray counts them in and
   * out), by the epoch they began in. Blocks the workspace gives up meanwhile go back to the pools only
   * when every copy that was in flight at that moment has ended: a data plane GET still sending an
   * attached array's bytes, or a copy still writing them, must never reach memory the pool has handed
   * to another lease. A copy that begins later cannot reach a block given up before (the array's
   * memory is "released" by then and the copy is refused), so it does not hold the block back; else a
   * client that always has one read in flight would keep every cycle's spills out of the pools.
   */
  private copyEpoch = 0;
  /** Copies in flight by the epoch they began in; keys ascend (epochs only grow). */
  private readonly copiesByEpoch = new Map<number, number>();
  /** Blocks given up under copies in flight, with the epoch then; freed once no copy of that epoch or older is in flight. */
  private readonly deferredFrees: Array<{ block: Block; epoch: number }> = [];

  private currentSize = 0;
  private primaryOffsetBytes = 0;
  /** The host offset of a FULL workspace's mirror side. */
  private mirrorOffsetBytes = 0;
  private cycleAllocations = 0;
  private lastCycleAllocations = 0;
  private maxCycle = 0;
  private spilledSize = 0;
  private pinnedSize = 0;
  private externalCount = 0;
  private pinnedCount = 0;
  private cyclesCount = 0;
  private stepsCount = 0;
  private initialBlockSize = 0;
  private generationId = 0;

  private isOpen = false;
  private isInit = false;
  private isOver = false;
  private isUsed = true;
  private isBorrowed = false;
  private resetPlanned = false;
  private trimmedMode = false;
  private trimmedStep = 0;
  private destroyed = false;

  private mainBlock: Block | undefined;
  private mirrorBlock: Block | undefined;
  private mappedFileBytes = 0;
  private readonly outside: OutsideBlock[] = [];
  private readonly pinned: PinnedBlock[] = [];
  /** Outside blocks still held (spills, pinned, toggled-off), for checkAllocation. */
  private readonly liveOutside = new Set<Block>();
  private learningError: TensormemError | undefined;
  /** Circular workspaces: what each side's ring handed out lately (checkAllocation's 'overwritten'). */
  private readonly primaryRing = new RingLaps();
  private readonly mirrorRing = new RingLaps();
  private ringSeq = 0;

  constructor(options: WorkspaceOptions) {
    if (typeof options.name !== 'string' || options.name.length === 0) throw invalidArgument('name', 'a non-empty workspace name', options.name);
    this.name = options.name;
    this.workspaceId = options.workspaceId ?? options.name;
    this.config = normalizeWorkspaceConfig(options.config);
    this.backing = options.backing;
    this.scope = options.scope ?? new WorkspaceScope();
    this.primaryKind = this.config.mirroringPolicy === 'HOST_ONLY' || this.config.locationPolicy === 'MMAP' ? 'HOST' : 'DEVICE';
    this.circular = this.config.resetPolicy === 'ENDOFBUFFER_REACHED';
    this.stepsNumber = stepsNumberOf(this.config);

    this.currentSize = this.config.initialSize;
    if (this.config.locationPolicy === 'MMAP') {
      this.mapFile(options.beforeCreate);
    } else {
      options.beforeCreate?.();
      this.initialAllocation();
    }
  }

  // ---------------------------------------------------------------- counters

  info(): WorkspaceInfo {
    return {
      workspaceId: this.workspaceId,
      name: this.name,
      currentSize: this.currentSize,
      primaryOffset: this.primaryOffsetBytes,
      hostOffset: this.hostOffset,
      deviceOffset: this.deviceOffset,
      thisCycleAllocations: this.cycleAllocations,
      lastCycleAllocations: this.lastCycleAllocations,
      maxCycleAllocations: this.maxCycle,
      spilledSize: this.spilledSize,
      pinnedSize: this.pinnedSize,
      numberOfExternalAllocations: this.externalCount,
      numberOfPinnedAllocations: this.pinnedCount,
      cyclesCount: this.cyclesCount,
      stepNumber: this.stepsCount,
      generationId: this.generationId,
      scopeActive: this.isOpen,
      initialBlockSize: this.initialBlockSize,
    };
  }

  get hostOffset(): number {
    return this.primaryKind === 'HOST' ? this.primaryOffsetBytes : this.mirrorOffsetBytes;
  }
  get deviceOffset(): number {
    return this.primaryOffsetBytes;
  }
  get primaryOffset(): number {
    return this.primaryOffsetBytes;
  }
  get generation(): number {
    return this.generationId;
  }
  get scopeActive(): boolean {
    return this.isOpen;
  }
  get borrowed(): boolean {
    return this.isBorrowed;
  }
  get isDestroyed(): boolean {
    return this.destroyed;
  }
  /** Whether requests go into the workspace (toggleWorkspaceUse). */
  get enabled(): boolean {
    return this.isUsed;
  }
  /** ND4J's MemoryWorkspace.Type. */
  get type(): 'SCOPED' | 'CIRCULAR' {
    return this.circular ? 'CIRCULAR' : 'SCOPED';
  }
  /** Length of the mapped file (MMAP), 0 otherwise. */
  get fileBytes(): number {
    return this.mappedFileBytes;
  }
  /** Bytes of backing memory this workspace holds now: buffers, spills, pinned and toggled-off blocks. */
  get heldBytes(): number {
    let bytes = (this.mainBlock?.bytes ?? 0) + (this.mirrorBlock?.bytes ?? 0);
    for (const block of this.liveOutside) bytes += block.bytes;
    return bytes;
  }
  /**
   * heldBytes less an MMAP workspace's mapped file: the bytes it holds in the pools. The file is no pool
   * memory (mmap_bytes), and another workspace may map it still when this one lets it go.
   */
  get poolHeldBytes(): number {
    return this.heldBytes - (this.config.locationPolicy === 'MMAP' ? (this.mainBlock?.bytes ?? 0) : 0);
  }
  /** Why the last learning at the end of a scope could not take its buffer; cleared by the next success. */
  get learningFailure(): TensormemError | undefined {
    return this.learningError;
  }

  // ---------------------------------------------------------------- allocation

  /**
   * Nd4jWorkspace.alloc: places `bytes` (rounded up to 16) in the workspace, or outside it per the
   * spill policy. Throws INVALID_ARGUMENT for a size that is not a positive safe integer,
   * RESOURCE_EXHAUSTED / WORKSPACE_FULL ("Can't allocate memory: Workspace is full", then the numbers) under FAIL, and
   * the backing's OutOfMemoryError; in each case nothing changed.
   */
  alloc(bytes: number, options: AllocOptions = {}): WorkspaceAllocation {
    this.assertAlive();
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 1) throw invalidArgument('bytes', 'a positive safe integer', bytes);
    const required = alignWorkspaceRequest(bytes);
    if (!Number.isSafeInteger(required)) throw invalidArgument('bytes', 'a size below 2^53 - 16', bytes);
    const kind = options.kind ?? this.primaryKind;
    if (kind !== 'DEVICE' && kind !== 'HOST') throw invalidArgument('kind', 'DEVICE or HOST', kind);
    if (kind !== this.primaryKind && this.primaryKind === 'HOST') {
      throw invalidArgument('kind', `HOST (workspace "${this.name}" is ${this.config.locationPolicy === 'MMAP' ? 'memory-mapped' : 'HOST_ONLY'} and has no device memory)`, kind);
    }
    const buffers = options.buffers;
    if (!this.isUsed) return this.allocToggledOff(required, bytes, kind, buffers);
    return kind === this.primaryKind ? this.allocPrimary(required, bytes, buffers) : this.allocMirror(required, bytes, buffers);
  }

  private allocPrimary(required: number, requestedBytes: number, buffers: WorkspaceBufferOptions | undefined): WorkspaceAllocation {
    const trimmer = (this.circular && required + this.cycleAllocations > this.initialBlockSize && this.initialBlockSize > 0) || this.trimmedMode;
    if (!trimmer) {
      let offset = this.primaryOffsetBytes;
      let wrapped = false;
      if (offset + required > this.currentSize && this.circular && this.currentSize > 0 && required <= this.currentSize) {
        // ENDOFBUFFER_REACHED: start again at the beginning of the ring (ND4J's reset + retry).
        offset = 0;
        wrapped = true;
      }
      if (offset + required <= this.currentSize) {
        const block = this.mainBlock!;
        // A wrap moves only this side's offset (CudaWorkspace resets deviceOffset alone) and plans a reset.
        if (wrapped) this.resetPlanned = true;
        this.cycleAllocations += required;
        this.primaryOffsetBytes = offset + required;
        return this.describeInRing(this.primaryRing, wrapped, this.primaryKind, block, offset, required, requestedBytes);
      }
    }

    // Spill: outside the workspace, as "spilled" or (past a circular workspace's block) "pinned".
    if (this.config.spillPolicy === 'FAIL') throw this.workspaceFull(required, this.primaryOffsetBytes, this.primaryKind);
    const block = this.backing.allocateBuffer(this.bufferRequest(required, trimmer ? 'pinned' : 'spill', this.primaryKind, buffers));
    if (trimmer && this.config.spillPolicy === 'REALLOCATE' && !this.trimmedMode) {
      this.trimmedMode = true;
      this.trimmedStep = this.stepsCount;
    }
    this.cycleAllocations += required;
    this.liveOutside.add(block);
    if (!trimmer) {
      this.spilledSize += required;
      this.externalCount++;
      this.outside.push({ block, counted: true });
      return this.describe(this.primaryKind, 'spill', block, 0, required, requestedBytes);
    }
    this.pinnedSize += required;
    this.pinnedCount++;
    this.pinned.push({ block, step: this.stepsCount, bytes: required, counted: true });
    return this.describe(this.primaryKind, 'pinned', block, 0, required, requestedBytes);
  }

  /** A FULL workspace's host side (CudaWorkspace, MemoryKind.HOST): its own offset, not counted. */
  private allocMirror(required: number, requestedBytes: number, buffers: WorkspaceBufferOptions | undefined): WorkspaceAllocation {
    const trimmer = this.trimmedMode;
    if (!trimmer) {
      let offset = this.mirrorOffsetBytes;
      let wrapped = false;
      if (offset + required > this.currentSize && this.circular && this.currentSize > 0 && required <= this.currentSize) {
        offset = 0;
        wrapped = true;
      }
      if (offset + required <= this.currentSize) {
        if (this.mirrorBlock === undefined) {
          this.mirrorBlock = this.backing.allocateBuffer(this.bufferRequest(this.currentSize + SAFETY_OFFSET, 'mirror', 'HOST'));
        }
        // A host-side wrap resets only the host offset and plans no reset (CudaWorkspace).
        this.mirrorOffsetBytes = offset + required;
        return this.describeInRing(this.mirrorRing, wrapped, 'HOST', this.mirrorBlock, offset, required, requestedBytes);
      }
    }
    if (this.config.spillPolicy === 'FAIL') throw this.workspaceFull(required, this.mirrorOffsetBytes, 'HOST');
    const block = this.backing.allocateBuffer(this.bufferRequest(required, trimmer ? 'pinned' : 'spill', 'HOST', buffers));
    this.liveOutside.add(block);
    if (!trimmer) {
      this.outside.push({ block, counted: false });
      return this.describe('HOST', 'spill', block, 0, required, requestedBytes);
    }
    this.pinned.push({ block, step: this.stepsCount, bytes: 0, counted: false });
    return this.describe('HOST', 'pinned', block, 0, required, requestedBytes);
  }

  private allocToggledOff(required: number, requestedBytes: number, kind: MemoryKind, buffers: WorkspaceBufferOptions | undefined): WorkspaceAllocation {
    const block = this.backing.allocateBuffer(this.bufferRequest(required, 'external', kind, buffers));
    this.liveOutside.add(block);
    this.outside.push({ block, counted: false });
    return this.describe(kind, 'external', block, 0, required, requestedBytes);
  }

  private describe(kind: MemoryKind, placement: WorkspacePlacement, block: Block, offset: number, bytes: number, requestedBytes: number): WorkspaceAllocation {
    return { workspaceId: this.workspaceId, kind, placement, block, offset, bytes, requestedBytes, generation: this.generationId, lap: 0, seq: 0 };
  }

  /** describe() for an allocation in the workspace's buffer, recorded in its side's ring when circular. */
  private describeInRing(ring: RingLaps, wrapped: boolean, kind: MemoryKind, block: Block, offset: number, bytes: number, requestedBytes: number): WorkspaceAllocation {
    if (!this.circular) return this.describe(kind, 'workspace', block, offset, bytes, requestedBytes);
    if (wrapped) ring.nextLap();
    const seq = ++this.ringSeq;
    ring.record(offset, offset + bytes, seq);
    return { workspaceId: this.workspaceId, kind, placement: 'workspace', block, offset, bytes, requestedBytes, generation: this.generationId, lap: ring.lap, seq };
  }

  /** toggleWorkspaceUse: while off, requests are allocated outside and counted nowhere (freed with the cycle's spills). */
  toggleWorkspaceUse(enabled: boolean): void {
    this.assertAlive();
    this.isUsed = enabled;
  }

  // ---------------------------------------------------------------- validity

  /**
   * How `allocation` stands: 'leaked' when the workspace's scope is not open, 'outdated' when the
   * workspace entered a new scope since (both skipped for circular workspaces, as in ND4J, whose arrays
   * outlive their cycle),
   * 'released' when its memory was given back (spills freed, buffer reallocated, workspace destroyed),
   * 'overwritten' when a circular workspace's ring came round and gave its bytes to a later allocation
   * (other than `besides`: a copy of it being made there, e.g. DuplicateArray onto its own source).
   */
  checkAllocation(allocation: WorkspaceAllocation, besides?: WorkspaceAllocation): AllocationValidity {
    if (allocation.workspaceId !== this.workspaceId) throw invalidArgument('allocation.workspace_id', `an allocation of workspace ${JSON.stringify(this.workspaceId)}`, allocation.workspaceId);
    if (!this.circular) {
      if (!this.isOpen) return 'leaked';
      if (allocation.generation !== this.generationId) return 'outdated';
    }
    if (!this.storageLive(allocation)) return 'released';
    if (this.circular && allocation.placement === 'workspace') {
      const ring = allocation.kind === this.primaryKind ? this.primaryRing : this.mirrorRing;
      const ignoreSeq = besides !== undefined && besides.workspaceId === this.workspaceId && besides.kind === allocation.kind && besides.placement === 'workspace' ? besides.seq : undefined;
      if (ring.overwritten(allocation, ignoreSeq)) return 'overwritten';
    }
    return 'valid';
  }

  /**
   * Throws FAILED_PRECONDITION / ARRAY_OUT_OF_SCOPE unless `allocation` may be used (ND4J's
   * assertValidArray, plus the released-memory check the daemon needs). `operation` starts the
   * message, e.g. "Cannot duplicate array"; `openWorkspaces` (names) is appended as ND4J does. A function
   * is asked only for a refusal (the owner's open workspaces take a pass over all of its workspaces,
   * which a usable array, checked on every access, must not pay).
   */
  assertUsable(allocation: WorkspaceAllocation, operation = 'Array access', openWorkspaces?: readonly string[] | (() => readonly string[]), besides?: WorkspaceAllocation): void {
    const validity = this.checkAllocation(allocation, besides);
    if (validity === 'valid') return;
    const names = typeof openWorkspaces === 'function' ? openWorkspaces() : openWorkspaces;
    const open = names === undefined ? '' : `\nAll open workspaces: [${names.join(', ')}]`;
    let message: string;
    if (validity === 'leaked') message = `${operation}: Array uses leaked workspace pointer from workspace ${this.name}${open}`;
    else if (validity === 'outdated') {
      message = `${operation}: Array outdated workspace pointer from workspace ${this.name} (array generation ${allocation.generation}, current workspace generation ${this.generationId})${open}`;
    } else if (validity === 'overwritten') {
      message =
        `${operation}: Array memory was overwritten: circular workspace ${this.name} came round its ring and gave this array's bytes to a later array ` +
        `(array generation ${allocation.generation}, current workspace generation ${this.generationId}). Copy arrays you keep out of the ring (DuplicateArray) before it comes round.`;
    } else message = `${operation}: Array memory was released by workspace ${this.name} (array generation ${allocation.generation}, current workspace generation ${this.generationId})`;
    throw new TensormemError('FAILED_PRECONDITION', 'ARRAY_OUT_OF_SCOPE', message, {
      workspace_id: this.workspaceId,
      workspace_name: this.name,
      array_generation: String(allocation.generation),
      workspace_generation: String(this.generationId),
      validity,
    });
  }

  private storageLive(allocation: WorkspaceAllocation): boolean {
    if (this.destroyed) return false;
    if (allocation.placement !== 'workspace') return this.liveOutside.has(allocation.block);
    return allocation.block === (allocation.kind === this.primaryKind ? this.mainBlock : this.mirrorBlock);
  }

  // ---------------------------------------------------------------- scopes

  /**
   * notifyScopeEntered. Entering the current, open workspace again only nests (no reset, no new
   * cycle). Otherwise a new cycle starts: BLOCK_LEFT resets the offsets, spills of the last cycle are
   * freed (BLOCK_LEFT, or after a circular wrap), the generation advances and this becomes current.
   * Entering a workspace that is open further out is refused (borrow it instead).
   */
  enter(): this {
    this.assertAlive();
    const scope = this.scope;
    if (scope.current === this && this.isOpen) {
      scope.open({ kind: 'reenter', workspace: this, previous: this });
      return this;
    }
    if (this.isOpen) {
      throw failedPrecondition(
        `Workspace "${this.name}" is already open further out in this scope stack; entering it again would reset it under the arrays of that scope. Borrow it to allocate in it.`,
      );
    }
    scope.open({ kind: 'enter', workspace: this, previous: scope.current });
    scope.current = this;
    this.isOpen = true;
    if (this.config.resetPolicy === 'BLOCK_LEFT') this.resetOffsets();
    this.purgeOutside();
    this.cycleAllocations = 0;
    this.generationId++;
    return this;
  }

  /**
   * notifyScopeBorrowed: makes this workspace current without a new cycle or a reset; allocations
   * append at its offset in its current generation. Refused when already borrowed (ND4J's
   * "Workspace [id]: Can't borrow from borrowed workspace").
   */
  borrow(): this {
    this.assertAlive();
    if (this.isBorrowed) throw failedPrecondition(`Workspace [${this.name}]: Can't borrow from borrowed workspace`);
    this.scope.open({ kind: 'borrow', workspace: this, previous: this.scope.current });
    this.isBorrowed = true;
    this.scope.current = this;
    return this;
  }

  /** tagOutOfScopeUse (use WorkspaceScope.scopeOutOfWorkspaces): nothing is current until this workspace is left. */
  tagOutOfScopeUse(): void {
    this.assertAlive();
    this.scope.open({ kind: 'scopeOut', workspace: this, previous: this });
    this.scope.current = null;
  }

  /**
   * close / notifyScopeLeft, for the innermost open scope, which must be this workspace's: ends a
   * borrow, a nested entry or an out-of-scope block, or closes the cycle (§7: counts the cycle and
   * the step, learns, frees aged pinned blocks, reallocates after trimmed mode, resets BLOCK_LEFT
   * offsets or aligns a circular one to its block).
   */
  leave(): this {
    this.assertAlive();
    const frames = this.scope.frames;
    const top = frames[frames.length - 1];
    if (top === undefined || top.workspace !== this) {
      throw failedPrecondition(
        top === undefined
          ? `Workspace "${this.name}" has no open scope to leave`
          : `Workspace "${this.name}" is not the innermost open scope; leave "${top.workspace.name}" first`,
      );
    }
    frames.pop();
    this.scope.current = top.previous;
    switch (top.kind) {
      case 'borrow':
        this.isBorrowed = false;
        return this;
      case 'reenter':
      case 'scopeOut':
        return this;
      case 'enter':
        this.closeCycle();
        return this;
    }
  }

  private closeCycle(): void {
    this.isOpen = false;
    this.cyclesCount++;
    if (this.cyclesCount > 1 && (this.cyclesCount - 1) % this.stepsNumber === 0) this.stepsCount++;
    this.isUsed = true;
    if (this.cycleAllocations > this.maxCycle) this.maxCycle = this.cycleAllocations;

    const learning = this.config.learningPolicy;
    if (learning !== 'NONE' && this.maxCycle > 0) {
      this.purgeOutside();
      // OVER_TIME learns at one close only (ND4J's exact equality); when that learning was refused
      // (learningFailure, no buffer yet) it stays due at every later close until it succeeds, as
      // FIRST_LOOP's does, else one passing refusal would leave the workspace spilling for good.
      const overTimeDue = this.config.cyclesBeforeInitialization === this.cyclesCount || (this.learningError !== undefined && !this.isInit && this.cyclesCount > this.config.cyclesBeforeInitialization);
      if ((learning === 'OVER_TIME' && overTimeDue) || (learning === 'FIRST_LOOP' && this.currentSize === 0)) {
        this.learnAtClose();
      } else if (this.currentSize > 0 && this.cycleAllocations > 0 && this.config.spillPolicy === 'REALLOCATE' && !this.circular) {
        this.learnAtClose();
      }
    }

    if (this.pinned.length > 0) this.clearPinned(false);

    if (this.trimmedMode && this.trimmedStep + 2 < this.stepsCount) {
      const initialBlockSize = this.initialBlockSize;
      this.initialBlockSize = this.maxCycle;
      if (this.learnAtClose()) {
        this.trimmedMode = false;
        this.trimmedStep = 0;
        this.resetOffsets();
      } else {
        this.initialBlockSize = initialBlockSize;
      }
    }

    this.lastCycleAllocations = this.cycleAllocations;
    if (this.config.resetPolicy === 'BLOCK_LEFT') {
      this.resetOffsets();
    } else if (this.currentSize > 0) {
      // Every cycle of a circular workspace occupies exactly one block of the ring.
      const diff = this.initialBlockSize - this.cycleAllocations;
      if (diff > 0 && !this.trimmedMode && this.primaryOffsetBytes > 0) {
        this.primaryOffsetBytes += diff;
        if (this.primaryKind === 'DEVICE') this.mirrorOffsetBytes += diff;
      }
    }
    this.cycleAllocations = 0;
  }

  /** initializeWorkspace at the end of a scope: a refusal keeps the old buffer and is remembered, not thrown. */
  private learnAtClose(): boolean {
    try {
      this.initializeWorkspace();
      this.learningError = undefined;
      return true;
    } catch (error) {
      this.learningError =
        error instanceof TensormemError ? error : new TensormemError('INTERNAL', 'BACKEND_ERROR', `Workspace "${this.name}" could not learn its size: ${(error as Error)?.message ?? String(error)}`);
      return false;
    }
  }

  // ---------------------------------------------------------------- learning

  /**
   * initializeWorkspace (§8): sizes the buffer from the largest cycle seen, once. Grows a REALLOCATE
   * workspace that spilled (exactly: overallocation is applied only once), rebuilds a circular one
   * after trimmed mode, applies the circular 1.3 factor and 8-byte pad, overallocation, minSize and
   * the maxSize cap. No effect on an initialized workspace otherwise, nor with learning NONE.
   * Throws the backing's refusal with nothing changed; a learning done clears learningFailure.
   */
  initializeWorkspace(): void {
    this.assertAlive();
    const config = this.config;
    if (config.learningPolicy === 'NONE') return;
    const reallocate =
      (this.currentSize < this.maxCycle || this.currentSize < this.cycleAllocations) &&
      config.spillPolicy === 'REALLOCATE' &&
      (config.maxSize === 0 || this.maxCycle < config.maxSize) &&
      !this.circular;
    const trimmedRebuild = this.trimmedMode && this.trimmedStep + 2 < this.stepsCount;
    if (this.isInit && !reallocate && !trimmedRebuild) return;

    let size = config.maxSize > 0 ? Math.min(this.maxCycle, config.maxSize) : this.maxCycle;
    let maxCycle = this.maxCycle;
    if (this.circular) {
      size = javaLongOfProduct(size, CIRCULAR_LEARNING_FACTOR);
      size += 8 - (size % 8);
      maxCycle = size;
    }
    const initialBlockSize = size;
    let isOver = trimmedRebuild ? false : this.isOver;
    const overallocate = config.allocationPolicy === 'OVERALLOCATE' && config.overallocationLimit > 0;
    if (!isOver && overallocate && size > 0) {
      size += javaLongOfProduct(size, config.overallocationLimit);
      isOver = true;
    }
    if (config.minSize > 0 && size < config.minSize) size = config.minSize;
    // init(): overallocation (if still due) and the maxSize cap.
    if (size > 0) {
      if (!isOver && overallocate) {
        size += javaLongOfProduct(size, config.overallocationLimit);
        isOver = true;
      }
      if (config.maxSize > 0 && size > config.maxSize) size = config.maxSize;
    }
    if (!Number.isSafeInteger(size + SAFETY_OFFSET)) {
      throw new TensormemError('RESOURCE_EXHAUSTED', 'WORKSPACE_FULL', `Workspace "${this.name}" cannot grow to ${size} bytes: past 2^53`, { workspace_id: this.workspaceId });
    }

    // The new buffer first: a refusal leaves everything as it was.
    const block = size > 0 ? this.backing.allocateBuffer(this.bufferRequest(size + SAFETY_OFFSET, 'workspace', this.primaryKind)) : undefined;

    if (reallocate || trimmedRebuild) {
      // destroyWorkspace(extended = reallocate)
      this.freeBuffers();
      this.resetOffsets();
      if (reallocate) {
        this.clearOutside();
        this.clearPinned(true);
      } else {
        this.clearPinned(false);
      }
    }
    this.currentSize = size;
    this.maxCycle = maxCycle;
    this.initialBlockSize = initialBlockSize;
    this.isOver = isOver;
    this.purgeOutside();
    this.mainBlock = block;
    this.isInit = block !== undefined;
    // A learning done (here, or called by hand after a refused one at a close) ends the failure it replaces.
    this.learningError = undefined;
  }

  // ---------------------------------------------------------------- construction

  /** init() of a RAM workspace: overallocation once, the maxSize cap, the buffer with its safety offset. */
  private initialAllocation(): void {
    const config = this.config;
    let size = this.currentSize;
    if (size > 0) {
      if (config.allocationPolicy === 'OVERALLOCATE' && config.overallocationLimit > 0) {
        size += javaLongOfProduct(size, config.overallocationLimit);
        this.isOver = true;
      }
      if (config.maxSize > 0 && size > config.maxSize) size = config.maxSize;
      this.mainBlock = this.backing.allocateBuffer(this.bufferRequest(size + SAFETY_OFFSET, 'workspace', this.primaryKind));
      this.isInit = true;
    }
    this.currentSize = size;
  }

  /** The MMAP constructor path (§13): fill or create the file (16 KiB rounding), then map it whole. */
  private mapFile(beforeMapping?: () => void): void {
    const { backing, config } = this;
    if (backing.mapFile === undefined || (config.tempFilePath !== undefined && backing.fileLength === undefined)) {
      throw failedPrecondition(`Workspace "${this.name}": memory-mapped workspaces are not available on this backend`);
    }
    let createBytes: number;
    if (config.tempFilePath !== undefined) {
      const length = backing.fileLength!(config.tempFilePath);
      if (length === 0 || length < config.initialSize) {
        if (config.initialSize === 0) {
          throw new TensormemError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', `Memory-mapped file should have positive length. (config.temp_file_path = ${JSON.stringify(config.tempFilePath)})`, {
            field: 'config.temp_file_path',
          });
        }
        createBytes = mmapFileBytes(config.initialSize);
      } else {
        createBytes = 0;
      }
    } else {
      createBytes = mmapFileBytes(config.initialSize);
    }
    beforeMapping?.();
    const mapped = backing.mapFile({ path: config.tempFilePath, createBytes, workspaceId: this.workspaceId, workspaceName: this.name });
    this.mainBlock = mapped.block;
    this.mappedFileBytes = mapped.fileBytes;
    this.currentSize = config.initialSize > 0 ? config.initialSize : mapped.fileBytes;
  }

  // ---------------------------------------------------------------- release

  /**
   * destroyWorkspace, final: gives back the buffers, the mapped file, every spill, pinned and
   * toggled-off block. Later calls are refused. Refused (FAILED_PRECONDITION) while an open scope of
   * its owner involves it: leave it first, or clear the scope when the owner goes away.
   */
  destroy(): void {
    if (this.destroyed) return;
    if (this.scope.holds(this)) throw failedPrecondition(`Workspace "${this.name}" has an open scope; leave it before destroying it`);
    this.freeBuffers();
    this.clearOutside();
    this.clearPinned(true);
    this.currentSize = 0;
    this.resetOffsets();
    this.isOpen = false;
    this.isBorrowed = false;
    this.destroyed = true;
    if (this.scope.current === this) this.scope.current = null;
  }

  /** An attached array's copy or loan begins (see copiesByEpoch); pass what it returns to copyEnded. */
  copyBegan(): number {
    const epoch = this.copyEpoch;
    this.copiesByEpoch.set(epoch, (this.copiesByEpoch.get(epoch) ?? 0) + 1);
    return epoch;
  }

  /** An attached array's copy or loan ends; frees what was given up under it once no older copy is left either. */
  copyEnded(epoch: number): void {
    const left = (this.copiesByEpoch.get(epoch) ?? 0) - 1;
    if (left > 0) this.copiesByEpoch.set(epoch, left);
    else this.copiesByEpoch.delete(epoch);
    const oldestInFlight = this.copiesByEpoch.keys().next();
    while (this.deferredFrees.length > 0 && (oldestInFlight.done || this.deferredFrees[0].epoch < oldestInFlight.value)) {
      this.backing.free(this.deferredFrees.shift()!.block);
    }
  }

  /** Blocks the workspace held, back to the pools: now, or once the copies in flight now have ended. */
  private giveBack(block: Block): void {
    if (this.copiesByEpoch.size === 0) {
      this.backing.free(block);
      return;
    }
    this.deferredFrees.push({ block, epoch: this.copyEpoch });
    // Copies beginning from now on start a newer epoch, which does not hold this block back.
    this.copyEpoch++;
  }

  private freeBuffers(): void {
    const { mainBlock, mirrorBlock } = this;
    this.mainBlock = undefined;
    this.mirrorBlock = undefined;
    this.currentSize = 0;
    if (mainBlock !== undefined) this.giveBack(mainBlock);
    if (mirrorBlock !== undefined) this.giveBack(mirrorBlock);
  }

  /**
   * Frees the outside blocks when ND4J would (a counted spill exists and BLOCK_LEFT or a planned
   * reset), and the uncounted ones at the same points even when no counted spill exists.
   */
  private purgeOutside(): void {
    if (this.outside.length === 0) return;
    if (this.config.resetPolicy !== 'BLOCK_LEFT' && !this.resetPlanned) return;
    if (this.externalCount > 0) {
      this.clearOutside();
      this.resetPlanned = false;
    } else {
      this.clearOutside();
    }
  }

  /** clearExternalAllocations: frees every outside block (spills and toggled-off). */
  private clearOutside(): void {
    const blocks = this.outside.splice(0);
    this.externalCount = 0;
    this.spilledSize = 0;
    for (const { block } of blocks) {
      this.liveOutside.delete(block);
      this.giveBack(block);
    }
  }

  /** clearPinnedAllocations: FIFO, those at least two steps old (all when `all`), stopping at the first young one. */
  private clearPinned(all: boolean): void {
    while (this.pinned.length > 0) {
      const oldest = this.pinned[0];
      if (!all && !(oldest.step + 2 < this.stepsCount)) break;
      this.pinned.shift();
      if (oldest.counted) {
        this.pinnedCount--;
        this.pinnedSize -= oldest.bytes;
      }
      this.liveOutside.delete(oldest.block);
      this.giveBack(oldest.block);
    }
  }

  private resetOffsets(): void {
    this.primaryOffsetBytes = 0;
    this.mirrorOffsetBytes = 0;
    // The ring starts again at 0: a new lap on both sides.
    if (this.circular) {
      this.primaryRing.nextLap();
      this.mirrorRing.nextLap();
    }
  }

  private bufferRequest(bytes: number, purpose: WorkspaceBufferPurpose, location: MemoryKind, options?: WorkspaceBufferOptions): WorkspaceBufferRequest {
    const mirror = location === 'HOST' && this.primaryKind === 'DEVICE';
    const request: WorkspaceBufferRequest = { bytes, purpose, location, mirror, device: this.config.device, workspaceId: this.workspaceId, workspaceName: this.name };
    if (options !== undefined) request.options = options;
    return request;
  }

  /**
   * SPILL_POLICY_FAIL's refusal: ND4J's message, then the numbers and what to change (ND4J's words alone
   * named neither the workspace nor the sizes, nor that the spill policy is what refuses). The numbers
   * in bytes and IEC units, and the memory and device they are of, as every memory refusal says them
   * (DESIGN.md §5): "has 819 of its 1331 bytes free" left a trainer to work out KiB from MiB by hand.
   */
  private workspaceFull(required: number, offset: number, memory: MemoryKind): TensormemError {
    const free = Math.max(this.currentSize - offset, 0);
    const where = memory === 'DEVICE' ? `[DEVICE] memory on device ${this.config.device}` : '[HOST] memory';
    const message =
      `Can't allocate memory: Workspace is full: workspace "${this.name}" (spill_policy SPILL_POLICY_FAIL, ${where}) has ${formatBytes(free)} free of its ` +
      `${formatBytes(this.currentSize)} and was asked for ${formatBytes(required)} (16-byte aligned). Try: a larger initial_size, a learning_policy that sizes it from a cycle (LEARNING_POLICY_FIRST_LOOP), ` +
      `or spill_policy SPILL_POLICY_EXTERNAL to place what does not fit outside it.`;
    return new TensormemError('RESOURCE_EXHAUSTED', 'WORKSPACE_FULL', message, {
      workspace_id: this.workspaceId,
      workspace_name: this.name,
      requested_bytes: String(required),
      // current_size as WorkspaceInfo names it (bytes); free_bytes what is left of it at the offset that refused.
      current_size: String(this.currentSize),
      free_bytes: String(free),
      ...(memory === 'DEVICE' ? { device: String(this.config.device) } : {}),
    });
  }

  private assertAlive(): void {
    if (this.destroyed) throw failedPrecondition(`Workspace "${this.name}" was destroyed`);
  }
}
