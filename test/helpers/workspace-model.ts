/**
 * The reference model of ND4J workspaces, written from reference/nd4j-semantics.md (§4 sizing, §5
 * alignment, §6 alloc, §7 scopes, §8 learning, §9 circular steps / pinned / trimmed mode, §10 spill
 * release, §11 destroy, §13 MMAP, §14 sides) with the decisions README "Differences from ND4J, on
 * purpose" lists; not from src/memory/workspace.ts. Shared by test/unit/workspace-model.test.ts (the
 * policy core, one step at a time) and test/integration/workspace-bursts.test.ts (the RPCs, in bursts).
 */
import { expect } from 'vitest';
export type Side = 'DEVICE' | 'HOST';
export type Placement = 'workspace' | 'spill' | 'pinned' | 'external';
export type Validity = 'valid' | 'leaked' | 'outdated' | 'released' | 'overwritten';

export interface ModelConfig {
  initialSize: number;
  minSize: number;
  maxSize: number;
  overallocationLimit: number;
  allocationPolicy: 'STRICT' | 'OVERALLOCATE';
  learningPolicy: 'FIRST_LOOP' | 'OVER_TIME' | 'NONE';
  spillPolicy: 'EXTERNAL' | 'REALLOCATE' | 'FAIL';
  resetPolicy: 'BLOCK_LEFT' | 'ENDOFBUFFER_REACHED';
  mirroringPolicy: 'FULL' | 'HOST_ONLY';
  locationPolicy: 'RAM' | 'MMAP';
  cyclesBeforeInitialization: number;
}

/** A buffer the model expects the workspace to hold from the backing. */
export interface MBlock {
  id: number;
  location: Side | 'FILE';
  purpose: string;
  bytes: number;
  mirror: boolean;
  live: boolean;
}

/** What the model expects one alloc() to hand out. */
export interface MAlloc {
  ws: MWorkspace;
  kind: Side;
  placement: Placement;
  block: MBlock;
  offset: number;
  bytes: number;
  generation: number;
  overwritten: boolean;
}

/** A request the model expects the backing to refuse (the injected threshold). */
export class ModelRefusal extends Error {
  constructor(readonly location: Side) {
    super(`refused ${location}`);
  }
}

/** The model's prediction of an error: its gRPC kind and reason. */
export class ModelError extends Error {
  constructor(
    readonly kind: string,
    readonly reason: string,
  ) {
    super(`${kind}/${reason}`);
  }
}

/**
 * The service's refusal before a new array is placed in a workspace (Lease's checkScopeOpen): none in a
 * workspace that is not circular and whose scope is not open, where it would be out of scope at once.
 */
export function refuseOutOfScopeArray(ws: MWorkspace): void {
  if (!ws.isOpen && !ws.circular) throw new ModelError('FAILED_PRECONDITION', 'ARRAY_OUT_OF_SCOPE');
}

/** What the sequences reached (printed with WSMODEL_STATS=1), to see that they cover the rules. */
export const stats: Record<string, number> = {};
export const count = (what: string): void => {
  stats[what] = (stats[what] ?? 0) + 1;
};

export const SAFETY_OFFSET = 1024; // §3
export const align16 = (n: number): number => (n % 16 === 0 ? n : n + (16 - (n % 16))); // §5, M1
export const javaLong = (size: number, factor: number): number => Math.trunc(size * factor); // §4
export const POOL_UNIT = 256; // README: every pool block is 256-byte aligned
export const poolBytes = (n: number): number => Math.max(POOL_UNIT, Math.ceil(n / POOL_UNIT) * POOL_UNIT);

/** The model's backing: numbers the buffers, refuses above `refuseAbove`, logs takes and frees. */
export class ModelBacking {
  refuseAbove = Infinity;
  nextId = 1;
  takes: MBlock[] = [];
  frees: MBlock[] = [];
  readonly live = new Set<MBlock>();

  take(bytes: number, purpose: string, location: Side, mirror: boolean): MBlock {
    if (bytes > this.refuseAbove) throw new ModelRefusal(location);
    const block: MBlock = { id: this.nextId++, location, purpose, bytes, mirror, live: true };
    this.takes.push(block);
    this.live.add(block);
    return block;
  }

  map(bytes: number): MBlock {
    const block: MBlock = { id: this.nextId++, location: 'FILE', purpose: 'mmap', bytes, mirror: false, live: true };
    this.takes.push(block);
    this.live.add(block);
    return block;
  }

  free(block: MBlock): void {
    expect(block.live, `model frees block ${block.id} twice`).toBe(true);
    block.live = false;
    this.live.delete(block);
    this.frees.push(block);
  }
}

export interface MFrame {
  kind: 'enter' | 'reenter' | 'borrow' | 'scopeOut';
  ws: MWorkspace;
  previous: MWorkspace | null;
}

export class MScope {
  current: MWorkspace | null = null;
  frames: MFrame[] = [];
  holds(ws: MWorkspace): boolean {
    return this.frames.some((frame) => frame.ws === ws || frame.previous === ws);
  }
}

export class MWorkspace {
  readonly primary: Side;
  readonly circular: boolean;
  readonly stepsNumber: number;
  currentSize: number;
  primaryOffset = 0;
  /** A FULL workspace's host (mirror) side offset. */
  mirrorOffset = 0;
  cycleAllocations = 0;
  lastCycleAllocations = 0;
  maxCycle = 0;
  spilled = 0;
  pinnedBytes = 0;
  externalCount = 0;
  pinnedCount = 0;
  cyclesCount = 0;
  stepsCount = 0;
  initialBlockSize = 0;
  generation = 0;
  isOpen = false;
  isInit = false;
  isOver = false;
  isUsed = true;
  isBorrowed = false;
  resetPlanned = false;
  trimmedMode = false;
  trimmedStep = 0;
  destroyed = false;
  learningFailed = false;
  main: MBlock | undefined;
  mirrorBuffer: MBlock | undefined;
  /** externalAllocations: counted spills and (README) uncounted mirror spills and toggled-off blocks. */
  external: Array<{ block: MBlock; counted: boolean }> = [];
  /** pinnedAllocations, FIFO: (step, bytes); mirror-side ones count 0 bytes and no pinnedCount (§14). */
  pinned: Array<{ block: MBlock; step: number; bytes: number; counted: boolean }> = [];
  /** Allocations placed in the ring's buffers (circular), to mark those a later one overwrites. */
  ring: MAlloc[] = [];

  constructor(
    readonly name: string,
    readonly config: ModelConfig,
    readonly scope: MScope,
    readonly backing: ModelBacking,
  ) {
    const c = config;
    // §4 step 2 (ND4J throws; the project refuses the configuration).
    this.circular = c.resetPolicy === 'ENDOFBUFFER_REACHED';
    if (this.circular && c.allocationPolicy === 'OVERALLOCATE' && c.overallocationLimit < 1) throw new ModelError('INVALID_ARGUMENT', 'INVALID_ARGUMENT');
    this.stepsNumber = this.circular && c.allocationPolicy === 'OVERALLOCATE' ? Math.trunc(c.overallocationLimit + 1) : 1;
    // §14: HOST_ONLY arrays live on the host side; MMAP workspaces are host memory (§13).
    this.primary = c.mirroringPolicy === 'HOST_ONLY' || c.locationPolicy === 'MMAP' ? 'HOST' : 'DEVICE';
    this.currentSize = c.initialSize;
    if (c.locationPolicy === 'MMAP') {
      // §13: learning must be NONE; a temporary file of initialSize rounded up to 16 KiB; no overallocation, no cap.
      if (c.learningPolicy !== 'NONE') throw new ModelError('INVALID_ARGUMENT', 'INVALID_ARGUMENT');
      this.main = backing.map(Math.ceil(c.initialSize / 16384) * 16384);
      return;
    }
    // §4 init(): overallocation once, then the maxSize cap; buffer = currentSize + SAFETY_OFFSET.
    let size = this.currentSize;
    let isOver = false;
    if (size > 0) {
      if (c.allocationPolicy === 'OVERALLOCATE' && c.overallocationLimit > 0) {
        size += javaLong(size, c.overallocationLimit);
        isOver = true;
      }
      if (c.maxSize > 0 && size > c.maxSize) size = c.maxSize;
      this.main = this.take(size + SAFETY_OFFSET, 'workspace', this.primary);
      this.isInit = true;
    }
    this.currentSize = size;
    this.isOver = isOver;
  }

  private take(bytes: number, purpose: string, location: Side): MBlock {
    return this.backing.take(bytes, purpose, location, location === 'HOST' && this.primary === 'DEVICE');
  }

  get hostOffset(): number {
    return this.primary === 'HOST' ? this.primaryOffset : this.mirrorOffset;
  }

  alive(): void {
    if (this.destroyed) throw new ModelError('FAILED_PRECONDITION', 'FAILED_PRECONDITION');
  }

  // §6 alloc, with §14's two sides.
  alloc(bytes: number, kind: Side): MAlloc {
    this.alive();
    const req = align16(bytes);
    if (kind === 'DEVICE' && this.primary === 'HOST') throw new ModelError('INVALID_ARGUMENT', 'INVALID_ARGUMENT');
    if (!this.isUsed) {
      // §6.2: outside, on the list, counted nowhere.
      const block = this.take(req, 'external', kind);
      this.external.push({ block, counted: false });
      return this.outside(kind, 'external', block, req);
    }
    return kind === this.primary ? this.allocPrimary(req) : this.allocMirror(req);
  }

  private outside(kind: Side, placement: Placement, block: MBlock, req: number): MAlloc {
    return { ws: this, kind, placement, block, offset: 0, bytes: req, generation: this.generation, overwritten: false };
  }

  private placeInRing(kind: Side, block: MBlock, offset: number, req: number): MAlloc {
    const allocation: MAlloc = { ws: this, kind, placement: 'workspace', block, offset, bytes: req, generation: this.generation, overwritten: false };
    if (this.circular) {
      // README: once the ring hands any of an array's bytes to a later array, the array is overwritten.
      for (const earlier of this.ring) {
        if (earlier.block === block && earlier.offset < offset + req && offset < earlier.offset + earlier.bytes) earlier.overwritten = true;
      }
      this.ring = this.ring.filter((earlier) => !earlier.overwritten && earlier.block.live);
      this.ring.push(allocation);
    }
    return allocation;
  }

  private allocPrimary(req: number): MAlloc {
    const c = this.config;
    const trimmer = (this.circular && req + this.cycleAllocations > this.initialBlockSize && this.initialBlockSize > 0) || this.trimmedMode;
    if (!trimmer) {
      let offset = this.primaryOffset;
      let wrapped = false;
      // §6.5a: a circular workspace starts again at 0 and retries; README: a request larger than the
      // whole buffer spills instead (ND4J recursed forever).
      if (offset + req > this.currentSize && this.circular && this.currentSize > 0 && req <= this.currentSize) {
        offset = 0;
        wrapped = true;
      }
      if (offset + req <= this.currentSize) {
        if (wrapped) {
          this.resetPlanned = true;
          count('primary wrap');
        }
        this.cycleAllocations += req;
        this.primaryOffset = offset + req;
        return this.placeInRing(this.primary, this.main!, offset, req);
      }
    }
    // README: a FAILed request counts nowhere.
    if (c.spillPolicy === 'FAIL') throw new ModelError('RESOURCE_EXHAUSTED', 'WORKSPACE_FULL');
    const block = this.take(req, trimmer ? 'pinned' : 'spill', this.primary);
    if (trimmer && c.spillPolicy === 'REALLOCATE' && !this.trimmedMode) {
      this.trimmedMode = true;
      this.trimmedStep = this.stepsCount;
      count('trimmed mode on');
    }
    this.cycleAllocations += req;
    if (!trimmer) {
      count(this.circular ? 'spill (circular)' : 'spill');
      this.spilled += req;
      this.externalCount++;
      this.external.push({ block, counted: true });
      return this.outside(this.primary, 'spill', block, req);
    }
    count(this.circular ? 'pinned (circular)' : 'pinned');
    this.pinnedBytes += req;
    this.pinnedCount++;
    this.pinned.push({ block, step: this.stepsCount, bytes: req, counted: true });
    return this.outside(this.primary, 'pinned', block, req);
  }

  /** §14 (CudaWorkspace, MemoryKind.HOST): own offset, not counted; a wrap plans no reset; trimmer = trimmedMode only. */
  private allocMirror(req: number): MAlloc {
    const trimmer = this.trimmedMode;
    if (!trimmer) {
      let offset = this.mirrorOffset;
      if (offset + req > this.currentSize && this.circular && this.currentSize > 0 && req <= this.currentSize) {
        offset = 0;
        count('mirror wrap');
      }
      if (offset + req <= this.currentSize) {
        if (this.mirrorBuffer === undefined) this.mirrorBuffer = this.take(this.currentSize + SAFETY_OFFSET, 'mirror', 'HOST');
        this.mirrorOffset = offset + req;
        return this.placeInRing('HOST', this.mirrorBuffer, offset, req);
      }
    }
    if (this.config.spillPolicy === 'FAIL') throw new ModelError('RESOURCE_EXHAUSTED', 'WORKSPACE_FULL');
    count(trimmer ? 'mirror pinned' : 'mirror spill');
    const block = this.take(req, trimmer ? 'pinned' : 'spill', 'HOST');
    if (!trimmer) {
      this.external.push({ block, counted: false });
      return this.outside('HOST', 'spill', block, req);
    }
    this.pinned.push({ block, step: this.stepsCount, bytes: 0, counted: false });
    return this.outside('HOST', 'pinned', block, req);
  }

  toggle(enabled: boolean): void {
    this.alive();
    this.isUsed = enabled;
  }

  // §7 notifyScopeEntered.
  enter(): void {
    this.alive();
    const scope = this.scope;
    if (scope.current === this && this.isOpen) {
      scope.frames.push({ kind: 'reenter', ws: this, previous: this });
      return;
    }
    // README: a workspace open further out is borrowed, not entered again.
    if (this.isOpen) throw new ModelError('FAILED_PRECONDITION', 'FAILED_PRECONDITION');
    scope.frames.push({ kind: 'enter', ws: this, previous: scope.current });
    scope.current = this;
    this.isOpen = true;
    if (this.config.resetPolicy === 'BLOCK_LEFT') this.resetOffsets();
    this.freeSpillsIfDue();
    this.cycleAllocations = 0;
    this.generation++;
  }

  borrow(): void {
    this.alive();
    if (this.isBorrowed) throw new ModelError('FAILED_PRECONDITION', 'FAILED_PRECONDITION');
    this.scope.frames.push({ kind: 'borrow', ws: this, previous: this.scope.current });
    this.isBorrowed = true;
    this.scope.current = this;
  }

  tagOutOfScopeUse(): void {
    this.scope.frames.push({ kind: 'scopeOut', ws: this, previous: this });
    this.scope.current = null;
  }

  // §7 close(); README: only the innermost scope can be left.
  leave(): void {
    this.alive();
    const top = this.scope.frames[this.scope.frames.length - 1];
    if (top === undefined || top.ws !== this) throw new ModelError('FAILED_PRECONDITION', 'FAILED_PRECONDITION');
    this.scope.frames.pop();
    this.scope.current = top.previous;
    if (top.kind === 'borrow') this.isBorrowed = false;
    if (top.kind === 'enter') this.closeCycle();
  }

  private closeCycle(): void {
    const c = this.config;
    this.isOpen = false;
    this.cyclesCount++;
    if (this.cyclesCount > 1 && (this.cyclesCount - 1) % this.stepsNumber === 0) this.stepsCount++;
    this.isUsed = true;
    this.maxCycle = Math.max(this.maxCycle, this.cycleAllocations);
    if (c.learningPolicy !== 'NONE' && this.maxCycle > 0) {
      this.freeSpillsIfDue();
      // README: a refused learning is tried again at each later close until it succeeds, OVER_TIME's too.
      const overTimeDue = c.cyclesBeforeInitialization === this.cyclesCount || (this.learningFailed && !this.isInit && this.cyclesCount > c.cyclesBeforeInitialization);
      if ((c.learningPolicy === 'OVER_TIME' && overTimeDue) || (c.learningPolicy === 'FIRST_LOOP' && this.currentSize === 0)) this.learnAtClose();
      else if (this.currentSize > 0 && this.cycleAllocations > 0 && c.spillPolicy === 'REALLOCATE' && !this.circular) this.learnAtClose();
    }
    // §7.8 (the project frees uncounted mirror-side pinned blocks by the same age rule).
    if (this.pinned.length > 0) this.clearPinned(false);
    // §9 trimmed mode.
    if (this.trimmedMode && this.trimmedStep + 2 < this.stepsCount) {
      const saved = this.initialBlockSize;
      this.initialBlockSize = this.maxCycle;
      if (this.learnAtClose()) {
        count('trimmed rebuild');
        this.trimmedMode = false;
        this.trimmedStep = 0;
        this.resetOffsets();
      } else this.initialBlockSize = saved;
    }
    this.lastCycleAllocations = this.cycleAllocations;
    if (c.resetPolicy === 'BLOCK_LEFT') this.resetOffsets();
    else if (this.currentSize > 0) {
      const diff = this.initialBlockSize - this.cycleAllocations;
      if (diff > 0 && !this.trimmedMode && this.primaryOffset > 0) {
        count('circular block shift');
        this.primaryOffset += diff;
        if (this.primary === 'DEVICE') this.mirrorOffset += diff;
      }
    }
    this.cycleAllocations = 0;
  }

  /** README: a refusal while learning at close leaves the old buffer; the scope is left anyway. */
  private learnAtClose(): boolean {
    try {
      this.initializeWorkspace();
      this.learningFailed = false;
      return true;
    } catch (error) {
      if (!(error instanceof ModelRefusal)) throw error;
      this.learningFailed = true;
      count('learning refused');
      return false;
    }
  }

  // §8 initializeWorkspace(); README: with learning NONE it does nothing; a refusal changes nothing.
  initializeWorkspace(): void {
    this.alive();
    const c = this.config;
    if (c.learningPolicy === 'NONE') return;
    const reallocate = (this.currentSize < this.maxCycle || this.currentSize < this.cycleAllocations) && c.spillPolicy === 'REALLOCATE' && (c.maxSize === 0 || this.maxCycle < c.maxSize) && !this.circular;
    const trimmed = this.trimmedMode && this.trimmedStep + 2 < this.stepsCount;
    const isInit = reallocate || trimmed ? false : this.isInit;
    if (isInit) return;
    let isOver = trimmed ? false : this.isOver;
    let size = c.maxSize > 0 ? Math.min(this.maxCycle, c.maxSize) : this.maxCycle;
    let maxCycle = this.maxCycle;
    if (this.circular) {
      size = javaLong(size, 1.3);
      size += 8 - (size % 8);
      maxCycle = size;
    }
    const initialBlockSize = size;
    const overallocate = c.allocationPolicy === 'OVERALLOCATE' && c.overallocationLimit > 0;
    if (!isOver && overallocate && size > 0) {
      size += javaLong(size, c.overallocationLimit);
      isOver = true;
    }
    if (c.minSize > 0 && size < c.minSize) size = c.minSize;
    // init() (§4): overallocation if still due, then the maxSize cap.
    if (size > 0) {
      if (!isOver && overallocate) {
        size += javaLong(size, c.overallocationLimit);
        isOver = true;
      }
      if (c.maxSize > 0 && size > c.maxSize) size = c.maxSize;
    }
    // README: growth takes the new buffer before freeing the old one.
    const block = size > 0 ? this.take(size + SAFETY_OFFSET, 'workspace', this.primary) : undefined;
    count(reallocate ? 'reallocate' : trimmed ? 'trimmed initialize' : this.circular ? 'learn (circular)' : `learn ${c.learningPolicy}`);
    if (reallocate || trimmed) {
      // destroyWorkspace(extended = reallocate) (§11): buffers, offsets; spills when extended; pinned (all when extended, aged otherwise).
      this.freeBuffers();
      this.resetOffsets();
      if (reallocate) {
        this.clearExternal();
        this.clearPinned(true);
      } else this.clearPinned(false);
    }
    this.currentSize = size;
    this.maxCycle = maxCycle;
    this.initialBlockSize = initialBlockSize;
    this.isOver = isOver;
    this.freeSpillsIfDue();
    this.main = block;
    this.isInit = block !== undefined;
    // README: learning_failure says why "until a later learning succeeds" (this one, at a close or called).
    this.learningFailed = false;
  }

  /** §11, README: final; refused while an open scope involves it. */
  destroy(): void {
    this.freeBuffers();
    this.clearExternal();
    this.clearPinned(true);
    this.resetOffsets();
    this.isOpen = false;
    this.isBorrowed = false;
    this.destroyed = true;
  }

  private freeBuffers(): void {
    if (this.main !== undefined) this.backing.free(this.main);
    if (this.mirrorBuffer !== undefined) this.backing.free(this.mirrorBuffer);
    this.main = undefined;
    this.mirrorBuffer = undefined;
    this.currentSize = 0;
  }

  /** §7/§10: external spills freed when externalCount > 0 && (BLOCK_LEFT || resetPlanned); README: the uncounted ones at the same points. */
  private freeSpillsIfDue(): void {
    if (this.config.resetPolicy !== 'BLOCK_LEFT' && !this.resetPlanned) return;
    if (this.externalCount > 0) {
      this.clearExternal();
      this.resetPlanned = false;
    } else if (this.external.length > 0) this.clearExternal();
  }

  private clearExternal(): void {
    for (const { block } of this.external.splice(0)) this.backing.free(block);
    this.externalCount = 0;
    this.spilled = 0;
  }

  /** §7.8 / §10: FIFO, those whose step + 2 < stepsCount (all when `all`), stopping at the first young one. */
  private clearPinned(all: boolean): void {
    while (this.pinned.length > 0) {
      const oldest = this.pinned[0];
      if (!all && !(oldest.step + 2 < this.stepsCount)) break;
      this.pinned.shift();
      if (oldest.counted) this.pinnedCount--;
      this.pinnedBytes -= oldest.bytes;
      this.backing.free(oldest.block);
    }
  }

  private resetOffsets(): void {
    this.primaryOffset = 0;
    this.mirrorOffset = 0;
  }

  validity(allocation: MAlloc): Validity {
    if (!this.circular) {
      if (!this.isOpen) return 'leaked';
      if (allocation.generation !== this.generation) return 'outdated';
    }
    if (!allocation.block.live) return 'released';
    if (allocation.overwritten) return 'overwritten';
    return 'valid';
  }

  info() {
    return {
      currentSize: this.currentSize,
      primaryOffset: this.primaryOffset,
      hostOffset: this.hostOffset,
      deviceOffset: this.primaryOffset,
      thisCycleAllocations: this.cycleAllocations,
      lastCycleAllocations: this.lastCycleAllocations,
      maxCycleAllocations: this.maxCycle,
      spilledSize: this.spilled,
      pinnedSize: this.pinnedBytes,
      numberOfExternalAllocations: this.externalCount,
      numberOfPinnedAllocations: this.pinnedCount,
      cyclesCount: this.cyclesCount,
      stepNumber: this.stepsCount,
      generationId: this.generation,
      scopeActive: this.isOpen,
      initialBlockSize: this.initialBlockSize,
    };
  }
}


export function randomConfig(pick: <T>(items: readonly T[]) => T, random: () => number): ModelConfig {
  const mmap = random() < 0.06;
  const resetPolicy = !mmap && random() < 0.35 ? 'ENDOFBUFFER_REACHED' : 'BLOCK_LEFT';
  const allocationPolicy = pick(['STRICT', 'OVERALLOCATE'] as const);
  // Circular OVERALLOCATE needs ≥ 1 (§4); a few below it check that the configuration is refused.
  const overallocationLimit = resetPolicy === 'ENDOFBUFFER_REACHED' && allocationPolicy === 'OVERALLOCATE' && random() < 0.9 ? pick([1, 1.5, 2, 3]) : pick([0, 0.3, 0.5, 1]);
  return {
    initialSize: mmap ? pick([1000, 4096, 20000]) : pick([0, 0, 0, 0, 0, 1000, 2048, 4096, 10000]),
    minSize: pick([0, 0, 0, 2000, 8000]),
    maxSize: mmap ? 0 : pick([0, 0, 0, 3000, 6000, 20000]),
    overallocationLimit,
    allocationPolicy,
    learningPolicy: mmap ? 'NONE' : pick(['FIRST_LOOP', 'FIRST_LOOP', 'OVER_TIME', 'OVER_TIME', 'NONE'] as const),
    spillPolicy: pick(['EXTERNAL', 'EXTERNAL', 'REALLOCATE', 'REALLOCATE', 'REALLOCATE', 'FAIL'] as const),
    resetPolicy,
    mirroringPolicy: mmap ? 'FULL' : pick(['FULL', 'FULL', 'HOST_ONLY'] as const),
    locationPolicy: mmap ? 'MMAP' : 'RAM',
    cyclesBeforeInitialization: pick([0, 1, 1, 2, 2, 3, 5]),
  };
}
