/**
 * Model-based check of the workspace policy core (src/memory/workspace*.ts) against a reference model
 * written from reference/nd4j-semantics.md (§4 sizing, §5 alignment, §6 alloc, §7 scopes, §8 learning,
 * §9 circular steps / pinned / trimmed mode, §10 spill release, §11 destroy, §13 MMAP, §14 sides),
 * with the decisions README "Differences from ND4J, on purpose" lists. Random, seeded sequences of
 * create (random policies), enter, nested enter, borrow, scope-out, allocate (random sizes, both
 * sides), leave, toggle, initializeWorkspace and destroy drive real Workspaces over the daemon's pools
 * (PoolWorkspaceBacking over the host backend) and the model; after every step the test compares every
 * workspace's counters, where each allocation landed, each allocation's validity, every buffer taken
 * from and given back to the backing, and the pools' used bytes; at the end, that every byte came back.
 *
 * Backing refusals are injected (a request above a threshold chosen for the step is refused) so that
 * the model can say which buffer request fails; the refused step must change nothing (README).
 * A failure names the seed and step and lists the steps before it (WSMODEL_HISTORY=n for more);
 * WSMODEL_STATS=1 prints how often each rule was reached (learning, wraps, trimmed mode, refusals …).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OutOfMemoryError, TensormemError } from '../../src/errors';
import { givenLimits } from '../../src/memory/limits';
import type { Block } from '../../src/memory/memory-resource';
import { MemoryManager } from '../../src/memory/memory-manager';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { PoolWorkspaceBacking } from '../../src/memory/pool-workspace-backing';
import type { Workspace, WorkspaceAllocation } from '../../src/memory/workspace';
import type { MappedFile, WorkspaceBacking, WorkspaceBufferRequest, WorkspaceMapRequest } from '../../src/memory/workspace-backing';
import type { WorkspaceConfigInput } from '../../src/memory/workspace-config';
import { WorkspaceRegistry } from '../../src/memory/workspace-registry';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { rng } from '../helpers/rng';

// ---------------------------------------------------------------------------------------------------
// The reference model, from nd4j-semantics.md (not from src/memory/workspace.ts).

type Side = 'DEVICE' | 'HOST';
type Placement = 'workspace' | 'spill' | 'pinned' | 'external';
type Validity = 'valid' | 'leaked' | 'outdated' | 'released' | 'overwritten';

interface ModelConfig {
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
interface MBlock {
  id: number;
  location: Side | 'FILE';
  purpose: string;
  bytes: number;
  mirror: boolean;
  live: boolean;
}

/** What the model expects one alloc() to hand out. */
interface MAlloc {
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
class ModelRefusal extends Error {
  constructor(readonly location: Side) {
    super(`refused ${location}`);
  }
}

/** The model's prediction of an error: its gRPC kind and reason. */
class ModelError extends Error {
  constructor(
    readonly kind: string,
    readonly reason: string,
  ) {
    super(`${kind}/${reason}`);
  }
}

/** What the sequences reached (printed with WSMODEL_STATS=1), to see that they cover the rules. */
const stats: Record<string, number> = {};
const count = (what: string): void => {
  stats[what] = (stats[what] ?? 0) + 1;
};

const SAFETY_OFFSET = 1024; // §3
const align16 = (n: number): number => (n % 16 === 0 ? n : n + (16 - (n % 16))); // §5, M1
const javaLong = (size: number, factor: number): number => Math.trunc(size * factor); // §4
const POOL_UNIT = 256; // README: every pool block is 256-byte aligned
const poolBytes = (n: number): number => Math.max(POOL_UNIT, Math.ceil(n / POOL_UNIT) * POOL_UNIT);

/** The model's backing: numbers the buffers, refuses above `refuseAbove`, logs takes and frees. */
class ModelBacking {
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

interface MFrame {
  kind: 'enter' | 'reenter' | 'borrow' | 'scopeOut';
  ws: MWorkspace;
  previous: MWorkspace | null;
}

class MScope {
  current: MWorkspace | null = null;
  frames: MFrame[] = [];
  holds(ws: MWorkspace): boolean {
    return this.frames.some((frame) => frame.ws === ws || frame.previous === ws);
  }
}

class MWorkspace {
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

// ---------------------------------------------------------------------------------------------------
// The real side: the daemon's pools behind a backing that logs and refuses like the model's.

type LogEntry = { op: 'take'; request: WorkspaceBufferRequest | WorkspaceMapRequest; block: Block; location: Side | 'FILE'; purpose: string; mirror: boolean } | { op: 'free'; block: Block };

class RefusingBacking implements WorkspaceBacking {
  refuseAbove = Infinity;
  log: LogEntry[] = [];
  constructor(private readonly inner: PoolWorkspaceBacking) {}

  allocateBuffer(request: WorkspaceBufferRequest): Block {
    if (request.bytes > this.refuseAbove) {
      throw new OutOfMemoryError({ memory: request.location, device: request.device, requestedBytes: request.bytes, capName: 'injected', capBytes: this.refuseAbove, usedBytes: 0, largestFreeBlockBytes: 0 });
    }
    const block = this.inner.allocateBuffer(request);
    this.log.push({ op: 'take', request, block, location: request.location, purpose: request.purpose, mirror: request.mirror });
    return block;
  }

  free(block: Block): void {
    this.inner.free(block);
    this.log.push({ op: 'free', block });
  }

  fileLength(path: string): number {
    return this.inner.fileLength(path);
  }

  mapFile(request: WorkspaceMapRequest): MappedFile {
    const mapped = this.inner.mapFile(request);
    this.log.push({ op: 'take', request, block: mapped.block, location: 'FILE', purpose: 'mmap', mirror: false });
    return mapped;
  }
}

// ---------------------------------------------------------------------------------------------------
// The driver.

const NAMES = ['A', 'B', 'C', 'D'];
const SIZES = [1, 8, 15, 16, 17, 100, 800, 1000, 1024, 1500, 2047, 3000, 4000, 6000, 9000];

function randomConfig(pick: <T>(items: readonly T[]) => T, random: () => number): ModelConfig {
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

function toInput(config: ModelConfig): WorkspaceConfigInput {
  return { ...config };
}

function run(seed: number, steps: number, mmapDir: string): void {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const backend = createBackend('host', { deviceCapacityBytes: 64 * MiB, deviceCount: 1 });
  const memory = new MemoryManager(backend, givenLimits([32 * MiB], 32 * MiB, 0), { poolChunkBytes: MiB, asyncCopyThresholdBytes: MiB, mmapDir }, new PhysicalMemoryGuard(0));
  const backing = new RefusingBacking(new PoolWorkspaceBacking(memory, { leaseId: 'lease-model', tenant: 'model' }));
  let nextId = 0;
  const registry = new WorkspaceRegistry({ backing, newWorkspaceId: () => `ws-${++nextId}` });
  const modelBacking = new ModelBacking();
  const modelScope = new MScope();
  /** Every workspace made, real and model, destroyed ones included (their objects still answer). */
  type Pair = { real: Workspace; model: MWorkspace };
  const pairs: Pair[] = [];
  const byName = new Map<string, Pair>();
  const blocks = new Map<number, Block>();
  let tracked: Array<{ real: WorkspaceAllocation; model: MAlloc }> = [];
  const history: string[] = [];
  const pairOf = (real: Workspace | null) => (real === null ? null : pairs.find((pair) => pair.real === real)!);

  const fail = (step: number, message: string): never => {
    throw new Error(`seed ${seed} step ${step}: ${message}\n  last steps:\n  ${history.slice(-(Number(process.env.WSMODEL_HISTORY) || 14)).join('\n  ')}`);
  };

  /** Steps of a training loop planned ahead: enter, the batch's allocations, leave, one per step. */
  const planned: Array<{ op: 'enter' | 'alloc' | 'leave'; pair: Pair; bytes?: number; kind?: Side }> = [];
  /** Each workspace's usual batch (sizes), so that learned sizes are met again, now and then exceeded. */
  const batches = new Map<MWorkspace, number[]>();

  for (let step = 0; step < steps; step++) {
    const live = pairs.filter((pair) => !pair.model.destroyed);
    const any = live.length > 0 && random() < 0.97 ? pick(live) : pairs.length > 0 ? pick(pairs) : undefined;
    if (planned.length === 0 && live.length > 0 && random() < 0.2) {
      // A loop of 1-4 cycles over a workspace not open further out (else its enter is refused).
      const candidates = live.filter((pair) => !pair.model.isOpen || modelScope.current === pair.model);
      if (candidates.length > 0) {
        const pair = pick(candidates);
        let batch = batches.get(pair.model);
        if (batch === undefined) {
          batch = Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(SIZES));
          batches.set(pair.model, batch);
        }
        for (let cycle = 1 + Math.floor(random() * 4); cycle > 0; cycle--) {
          planned.push({ op: 'enter', pair });
          const grow = random() < 0.15 ? 1 + Math.floor(random() * 3) : 1;
          for (const bytes of batch) {
            planned.push({ op: 'alloc', pair, bytes: bytes * grow, kind: pair.model.primary });
            if (pair.model.primary === 'DEVICE' && random() < 0.3) planned.push({ op: 'alloc', pair, bytes: bytes * grow, kind: 'HOST' });
          }
          planned.push({ op: 'leave', pair });
        }
      }
    }
    const plan = planned.shift();
    const refuse = random() < 0.08 ? pick([16, 512, 1100, 2100, 4200]) : Infinity;
    backing.refuseAbove = refuse;
    modelBacking.refuseAbove = refuse;
    backing.log = [];
    modelBacking.takes = [];
    modelBacking.frees = [];
    const op = plan === undefined ? random() : plan.op === 'enter' ? 0.2 : plan.op === 'alloc' ? 0.5 : 0.8;
    let what = '';
    let expected: ModelError | ModelRefusal | undefined;
    let actual: unknown;
    const newAllocation: { real?: WorkspaceAllocation; model?: MAlloc } = {};

    const both = (description: string, modelAction: () => void, realAction: () => void) => {
      what = description;
      try {
        modelAction();
      } catch (error) {
        if (!(error instanceof ModelError || error instanceof ModelRefusal)) throw error;
        expected = error;
      }
      try {
        realAction();
      } catch (error) {
        actual = error;
      }
    };

    if (pairs.length === 0 || op < 0.12) {
      const name = pick(NAMES);
      const existing = byName.get(name);
      const config = existing !== undefined && random() < 0.5 ? existing.model.config : randomConfig(pick, random);
      let created: MWorkspace | undefined;
      let realCreated: Workspace | undefined;
      both(
        `create ${name} ${JSON.stringify(config)}`,
        () => {
          // The configuration is checked first (§4: circular OVERALLOCATE below 1.0; §13: MMAP learning NONE).
          if (config.resetPolicy === 'ENDOFBUFFER_REACHED' && config.allocationPolicy === 'OVERALLOCATE' && config.overallocationLimit < 1) throw new ModelError('INVALID_ARGUMENT', 'INVALID_ARGUMENT');
          if (existing !== undefined) {
            const same = (Object.keys(config) as Array<keyof ModelConfig>).every((key) => config[key] === existing.model.config[key]);
            if (!same) throw new ModelError('ALREADY_EXISTS', 'ALREADY_EXISTS');
            return;
          }
          created = new MWorkspace(name, config, modelScope, modelBacking);
        },
        () => (realCreated = registry.create(name, toInput(config))),
      );
      if (expected === undefined && actual === undefined) {
        if (existing !== undefined && realCreated !== existing.real) fail(step, `create ${name}: the registry made a new workspace where one of that name exists`);
        if (created !== undefined) {
          const pair = { real: realCreated!, model: created };
          pairs.push(pair);
          byName.set(name, pair);
        }
      }
    } else if (op < 0.22) {
      const pair = plan?.pair ?? any!;
      both(`enter ${pair.model.name}`, () => pair.model.enter(), () => pair.real.enter());
    } else if (op < 0.27) {
      // Nested entry of the current workspace, when there is one.
      const current = pairOf(registry.current);
      const pair = current ?? any!;
      both(`nested enter ${pair.model.name}`, () => pair.model.enter(), () => pair.real.enter());
    } else if (op < 0.31) {
      const pair = any!;
      both(`borrow ${pair.model.name}`, () => pair.model.borrow(), () => pair.real.borrow());
    } else if (op < 0.33) {
      both(
        'scope out',
        () => modelScope.current?.tagOutOfScopeUse(),
        () => registry.scopeOut(),
      );
    } else if (op < 0.65) {
      const current = pairOf(registry.current);
      const pair = plan?.pair ?? (current !== null && random() < 0.9 ? current : any!);
      const bytes = plan?.bytes ?? (random() < 0.7 ? pick(SIZES) : 1 + Math.floor(random() * 12000));
      const kind: Side = plan?.kind ?? (pair.model.primary === 'DEVICE' ? (random() < 0.25 ? 'HOST' : 'DEVICE') : random() < 0.03 ? 'DEVICE' : 'HOST');
      both(
        `alloc ${pair.model.name} ${bytes} ${kind}`,
        () => (newAllocation.model = pair.model.alloc(bytes, kind)),
        () => (newAllocation.real = pair.real.alloc(bytes, { kind })),
      );
    } else if (op < 0.84) {
      const top = modelScope.frames[modelScope.frames.length - 1];
      const topPair = top === undefined ? undefined : pairs.find((pair) => pair.model === top.ws);
      const pair = plan?.pair ?? (topPair !== undefined && random() < 0.92 ? topPair : any!);
      both(`leave ${pair.model.name}`, () => pair.model.leave(), () => pair.real.leave());
    } else if (op < 0.86) {
      const pair = any!;
      const enabled = random() < 0.3;
      both(`toggle ${pair.model.name} ${enabled}`, () => pair.model.toggle(enabled), () => pair.real.toggleWorkspaceUse(enabled));
    } else if (op < 0.9) {
      const pair = any!;
      both(`initializeWorkspace ${pair.model.name}`, () => pair.model.initializeWorkspace(), () => pair.real.initializeWorkspace());
    } else if (op < 0.96) {
      const pair = any!;
      both(
        `destroy ${pair.model.name}`,
        () => {
          // Through the registry: NOT_FOUND once destroyed; refused while an open scope involves it.
          if (pair.model.destroyed) throw new ModelError('NOT_FOUND', 'WORKSPACE_NOT_FOUND');
          if (modelScope.holds(pair.model)) throw new ModelError('FAILED_PRECONDITION', 'FAILED_PRECONDITION');
          if (modelScope.current === pair.model) modelScope.current = null;
          pair.model.destroy();
          byName.delete(pair.model.name);
        },
        () => registry.destroy(pair.real.workspaceId),
      );
    } else {
      // Leave the innermost scope, whatever it is (unwinds nesting so that workspaces close their cycles).
      const top = modelScope.frames[modelScope.frames.length - 1];
      const pair = top === undefined ? any! : pairs.find((candidate) => candidate.model === top.ws)!;
      both(`leave ${pair.model.name}`, () => pair.model.leave(), () => pair.real.leave());
    }

    // The outcome: the same refusal, or none.
    const outcome = (error: unknown): string => {
      if (error === undefined) return 'ok';
      if (error instanceof ModelRefusal) return `RESOURCE_EXHAUSTED/${error.location}_OUT_OF_MEMORY`;
      if (error instanceof ModelError) return `${error.kind}/${error.reason}`;
      if (error instanceof TensormemError) return `${error.kind}/${error.reason}`;
      return `unexpected ${(error as Error)?.stack ?? String(error)}`;
    };
    history.push(`${step}: ${what} [refuse > ${refuse}] → ${outcome(actual)}`);
    count(`${what.split(' ')[0]} → ${outcome(actual).split(' ')[0]}`);
    if (outcome(expected) !== outcome(actual)) fail(step, `${what}: model ${outcome(expected)}, implementation ${outcome(actual)}${actual instanceof Error ? ` (${actual.message})` : ''}`);

    // Buffers taken and given back in this step.
    const realTakes = backing.log.filter((entry) => entry.op === 'take') as Array<Extract<LogEntry, { op: 'take' }>>;
    const takesSeen = realTakes.map((entry) => `${entry.purpose}:${entry.location}:${entry.mirror ? 'mirror' : ''}:${entry.location === 'FILE' ? entry.block.bytes : (entry.request as WorkspaceBufferRequest).bytes}`);
    const takesModel = modelBacking.takes.map((block) => `${block.purpose}:${block.location}:${block.mirror ? 'mirror' : ''}:${block.bytes}`);
    if (takesSeen.join(' ') !== takesModel.join(' ')) fail(step, `${what}: buffers taken: model [${takesModel.join(' ')}], implementation [${takesSeen.join(' ')}]`);
    modelBacking.takes.forEach((block, index) => blocks.set(block.id, realTakes[index].block));
    const freesSeen = new Set(backing.log.filter((entry) => entry.op === 'free').map((entry) => entry.block));
    const freesModel = new Set(modelBacking.frees.map((block) => blocks.get(block.id)!));
    const describe = (set: Set<Block>) => [...set].map((block) => `${block.owner.purpose}@${block.chunkHandle}+${block.offset}:${block.requestedBytes}`).join(' ');
    if (freesSeen.size !== freesModel.size || [...freesSeen].some((block) => !freesModel.has(block))) {
      fail(step, `${what}: buffers given back: model [${describe(freesModel)}], implementation [${describe(freesSeen)}]`);
    }

    // Where the allocation landed.
    if (newAllocation.model !== undefined && newAllocation.real !== undefined) {
      const m = newAllocation.model;
      const r = newAllocation.real;
      const seen = { placement: r.placement, kind: r.kind, offset: r.offset, bytes: r.bytes, generation: r.generation, block: r.block };
      const want = { placement: m.placement, kind: m.kind, offset: m.offset, bytes: m.bytes, generation: m.generation, block: blocks.get(m.block.id) };
      try {
        expect(seen).toEqual(want);
        expect(r.block).toBe(blocks.get(m.block.id));
      } catch (error) {
        fail(step, `${what}: allocation ${(error as Error).message}`);
      }
      tracked.push({ real: r, model: m });
      if (tracked.length > 150) tracked = tracked.slice(-100);
    }

    // Every workspace's counters, the scope, and each tracked allocation's validity.
    for (const pair of pairs) {
      const { workspaceId: _id, name: _name, ...real } = pair.real.info();
      const model = pair.model.info();
      const differences = (Object.keys(model) as Array<keyof typeof model>).filter((key) => real[key] !== model[key]).map((key) => `${key}: model ${model[key]}, implementation ${real[key]}`);
      if (differences.length > 0) fail(step, `${what}: workspace ${pair.model.name} (${JSON.stringify(pair.model.config)}): ${differences.join('; ')}`);
      try {
        expect(pair.real.borrowed).toBe(pair.model.isBorrowed);
        expect(pair.real.enabled).toBe(pair.model.isUsed);
        expect(pair.real.isDestroyed).toBe(pair.model.destroyed);
        expect(pair.real.learningFailure !== undefined).toBe(pair.model.learningFailed);
      } catch (error) {
        fail(step, `${what}: workspace ${pair.model.name} (${JSON.stringify(pair.model.config)}): ${(error as Error).message}`);
      }
    }
    if (pairOf(registry.current)?.model !== (modelScope.current ?? undefined) && !(registry.current === null && modelScope.current === null)) {
      fail(step, `${what}: current workspace: model ${modelScope.current?.name ?? 'none'}, implementation ${registry.current?.name ?? 'none'}`);
    }
    for (const { real, model } of tracked) {
      const seen = pairs.find((pair) => pair.model === model.ws)!.real.checkAllocation(real);
      const want = model.ws.validity(model);
      count(`validity ${seen}`);
      if (seen !== want) fail(step, `${what}: validity of ${model.placement} ${model.kind} [${model.offset}, +${model.bytes}) gen ${model.generation} of ${model.ws.name}: model ${want}, implementation ${seen}`);
    }

    // The pools hold exactly the model's live buffers.
    let deviceBytes = 0;
    let deviceCount = 0;
    let hostBytes = 0;
    let hostCount = 0;
    let fileBytes = 0;
    for (const block of modelBacking.live) {
      if (block.location === 'DEVICE') {
        deviceBytes += poolBytes(block.bytes);
        deviceCount++;
      } else if (block.location === 'HOST') {
        hostBytes += poolBytes(block.bytes);
        hostCount++;
      } else fileBytes += block.bytes;
    }
    const device = memory.deviceReports()[0];
    const host = memory.hostReport();
    const pools = { deviceBytes: device.usedBytes, deviceCount: device.allocationCount, hostBytes: host.usedBytes, hostCount: host.allocationCount, fileBytes: host.mmapBytes };
    const want = { deviceBytes, deviceCount, hostBytes, hostCount, fileBytes };
    if (JSON.stringify(pools) !== JSON.stringify(want)) fail(step, `${what}: pools ${JSON.stringify(pools)}, model ${JSON.stringify(want)}`);
  }

  // The end: leave every scope, destroy every workspace; every byte back.
  registry.destroyAll();
  expect(memory.deviceReports()[0].usedBytes).toBe(0);
  expect(memory.hostReport().usedBytes).toBe(0);
  expect(memory.hostReport().mmapBytes).toBe(0);
  memory.checkInvariants();
  memory.release();
}

describe('workspaces, model-based (nd4j-semantics.md §4–§14)', () => {
  it('the implementation and the reference model agree over random sequences (seeded)', () => {
    const mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-wsmodel-'));
    try {
      for (let seed = 1; seed <= 80; seed++) run(seed, 300, mmapDir);
      if (process.env.WSMODEL_STATS) console.log(JSON.stringify(stats, null, 1));
    } finally {
      rmSync(mmapDir, { recursive: true, force: true });
    }
  });
});
