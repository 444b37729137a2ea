/**
 * Workspace policy core: configuration, ND4J's BasicWorkspaceTests / WorkspaceProviderTests (the
 * learning and spill cases) / CudaWorkspaceTests / the MMAP tests, ported with ND4J's expected numbers,
 * and the decisions DESIGN.md §4 takes where ND4J's behaviour is a bug.
 *
 * ND4J's tests run with DOUBLE (8 bytes) as the default type, so `Nd4j.create(n)` is a request of
 * 8·n bytes; `sumNumber()` and friends allocate a scalar result (8 bytes, 16 after alignment) in the
 * current workspace, which some expected numbers include. The ports make those requests explicitly.
 */
import { describe, expect, it } from 'vitest';
import { OutOfMemoryError, TensormemError } from '../../src/errors';
import type { Block } from '../../src/memory/memory-resource';
import { Workspace } from '../../src/memory/workspace';
import type { WorkspaceAllocation } from '../../src/memory/workspace';
import type { MappedFile, WorkspaceBacking, WorkspaceBufferRequest, WorkspaceMapRequest } from '../../src/memory/workspace-backing';
import {
  DEFAULT_WORKSPACE_CONFIG,
  SAFETY_OFFSET,
  alignWorkspaceRequest,
  initialCurrentSize,
  mmapFileBytes,
  normalizeWorkspaceConfig,
  sameWorkspaceConfig,
  stepsNumberOf,
} from '../../src/memory/workspace-config';
import type { WorkspaceConfigInput } from '../../src/memory/workspace-config';
import { MiB } from '../../src/units';

const DOUBLE = 8;
const FLOAT = 4;
/** Bytes of n doubles: ND4J's Nd4j.create(n) in its tests. */
const doubles = (n: number): number => n * DOUBLE;
/** A scalar result (sumNumber, meanNumber): 8 bytes, aligned to 16. */
const SCALAR = DOUBLE;

/** Records every buffer it hands out and takes back; refuses when `refuse` says so; fakes a file system for MMAP. */
class FakeBacking implements WorkspaceBacking {
  readonly requests: WorkspaceBufferRequest[] = [];
  readonly refusals: WorkspaceBufferRequest[] = [];
  readonly live = new Map<Block, WorkspaceBufferRequest | WorkspaceMapRequest>();
  readonly files = new Map<string, number>();
  readonly mapRequests: WorkspaceMapRequest[] = [];
  frees = 0;
  refuse: (request: WorkspaceBufferRequest) => boolean = () => false;
  private nextHandle = 1;

  allocateBuffer(request: WorkspaceBufferRequest): Block {
    if (this.refuse(request)) {
      this.refusals.push(request);
      throw new OutOfMemoryError({
        memory: request.location,
        device: request.location === 'DEVICE' ? request.device : undefined,
        requestedBytes: request.bytes,
        capName: 'test cap',
        capBytes: 0,
        usedBytes: 0,
        largestFreeBlockBytes: 0,
      });
    }
    this.requests.push(request);
    return this.newBlock(request.bytes, request.purpose, request);
  }

  free(block: Block): void {
    if (!this.live.delete(block)) throw new Error(`free of a block that is not held (chunk ${block.chunkHandle})`);
    this.frees++;
  }

  fileLength(path: string): number {
    return this.files.get(path) ?? 0;
  }

  mapFile(request: WorkspaceMapRequest): MappedFile {
    this.mapRequests.push(request);
    const path = request.path ?? `/tmp/workspace${this.nextHandle}tempMMAP`;
    if (request.createBytes > 0) this.files.set(path, request.createBytes);
    const fileBytes = this.files.get(path) ?? 0;
    return { block: this.newBlock(fileBytes, 'mmap', request), fileBytes };
  }

  /** Live blocks (and their bytes) with this purpose. */
  held(purpose: string): { count: number; bytes: number } {
    let count = 0;
    let bytes = 0;
    for (const [block, request] of this.live) {
      if ((block.owner.purpose ?? '') === purpose && request) {
        count++;
        bytes += block.bytes;
      }
    }
    return { count, bytes };
  }

  private newBlock(bytes: number, purpose: string, request: WorkspaceBufferRequest | WorkspaceMapRequest): Block {
    const block: Block = { chunkHandle: this.nextHandle++, offset: 0, bytes, requestedBytes: bytes, owner: { workspaceId: request.workspaceId, purpose } };
    this.live.set(block, request);
    return block;
  }
}

function workspace(config: WorkspaceConfigInput, backing = new FakeBacking(), name = 'WS'): { ws: Workspace; backing: FakeBacking } {
  return { ws: new Workspace({ name, config, backing }), backing };
}

/** One scope: enter, allocate each size (bytes), leave. */
function cycle(ws: Workspace, ...sizes: number[]): WorkspaceAllocation[] {
  ws.enter();
  const allocations = sizes.map((bytes) => ws.alloc(bytes));
  ws.leave();
  return allocations;
}

function thrown(action: () => unknown): TensormemError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(TensormemError);
    return error as TensormemError;
  }
  throw new Error('expected a TensormemError');
}

// ND4J's test configurations (BasicWorkspaceTests).
const basicConfig: WorkspaceConfigInput = {
  initialSize: 10 * MiB,
  maxSize: 10 * MiB,
  overallocationLimit: 0.1,
  allocationPolicy: 'STRICT',
  learningPolicy: 'FIRST_LOOP',
  mirroringPolicy: 'FULL',
  spillPolicy: 'EXTERNAL',
};
const loopOverTimeConfig: WorkspaceConfigInput = { ...basicConfig, initialSize: 0, learningPolicy: 'OVER_TIME' };
const loopFirstConfig: WorkspaceConfigInput = { ...basicConfig, initialSize: 0, learningPolicy: 'FIRST_LOOP' };
// WorkspaceProviderTests.
const loopConfiguration: WorkspaceConfigInput = { initialSize: 0, overallocationLimit: 0.1, spillPolicy: 'EXTERNAL', learningPolicy: 'OVER_TIME', allocationPolicy: 'STRICT' };
const delayedConfiguration: WorkspaceConfigInput = { ...loopConfiguration, cyclesBeforeInitialization: 3 };
const reallocateConfiguration: WorkspaceConfigInput = { ...loopConfiguration, spillPolicy: 'REALLOCATE' };
const reallocateDelayedConfiguration: WorkspaceConfigInput = { ...reallocateConfiguration, cyclesBeforeInitialization: 3 };
const reallocateUnspecifiedConfiguration: WorkspaceConfigInput = {
  initialSize: 0,
  overallocationLimit: 0.0,
  spillPolicy: 'REALLOCATE',
  learningPolicy: 'OVER_TIME',
  allocationPolicy: 'OVERALLOCATE',
  resetPolicy: 'BLOCK_LEFT',
};

describe('WorkspaceConfig', () => {
  it("takes ND4J's builder defaults for every absent field", () => {
    const config = normalizeWorkspaceConfig({});
    expect(config).toEqual({
      initialSize: 0,
      minSize: 0,
      maxSize: 0,
      overallocationLimit: 0.3,
      allocationPolicy: 'OVERALLOCATE',
      learningPolicy: 'FIRST_LOOP',
      spillPolicy: 'EXTERNAL',
      resetPolicy: 'BLOCK_LEFT',
      mirroringPolicy: 'FULL',
      locationPolicy: 'RAM',
      cyclesBeforeInitialization: 0,
      tempFilePath: undefined,
      device: 0,
    });
    expect(sameWorkspaceConfig(config, DEFAULT_WORKSPACE_CONFIG)).toBe(true);
  });

  it('accepts proto enum names; *_UNSPECIFIED and empty strings mean the default', () => {
    const config = normalizeWorkspaceConfig({
      allocationPolicy: 'ALLOCATION_POLICY_STRICT',
      learningPolicy: 'LEARNING_POLICY_UNSPECIFIED',
      spillPolicy: 'SPILL_POLICY_REALLOCATE',
      resetPolicy: 'RESET_POLICY_ENDOFBUFFER_REACHED',
      mirroringPolicy: 'MIRRORING_POLICY_HOST_ONLY',
      locationPolicy: '',
      tempFilePath: '',
    });
    expect(config.allocationPolicy).toBe('STRICT');
    expect(config.learningPolicy).toBe('FIRST_LOOP');
    expect(config.spillPolicy).toBe('REALLOCATE');
    expect(config.resetPolicy).toBe('ENDOFBUFFER_REACHED');
    expect(config.mirroringPolicy).toBe('HOST_ONLY');
    expect(config.locationPolicy).toBe('RAM');
    expect(config.tempFilePath).toBeUndefined();
  });

  it.each<[string, WorkspaceConfigInput, string]>([
    ['negative initial size', { initialSize: -1 }, 'config.initial_size'],
    ['fractional min size', { minSize: 1.5 }, 'config.min_size'],
    ['unsafe max size', { maxSize: 2 ** 53 }, 'config.max_size'],
    ['negative cycles', { cyclesBeforeInitialization: -3 }, 'config.cycles_before_initialization'],
    ['negative overallocation', { overallocationLimit: -0.1 }, 'config.overallocation_limit'],
    ['NaN overallocation', { overallocationLimit: Number.NaN }, 'config.overallocation_limit'],
    ['infinite overallocation', { overallocationLimit: Number.POSITIVE_INFINITY }, 'config.overallocation_limit'],
    ['unknown policy', { spillPolicy: 'SOMETIMES' }, 'config.spill_policy'],
    ['other enum prefix', { learningPolicy: 'SPILL_POLICY_NONE' }, 'config.learning_policy'],
    ['negative device', { device: -1 }, 'config.device'],
    ['a file path for a RAM workspace', { tempFilePath: '/tmp/x' }, 'config.temp_file_path'],
    ['an initial buffer past 2^53', { initialSize: 2 ** 52, overallocationLimit: 1.5 }, 'config.initial_size'],
  ])('refuses a %s as INVALID_ARGUMENT naming the field', (_name, input, field) => {
    const error = thrown(() => normalizeWorkspaceConfig(input));
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain(field);
    expect(error.metadata.field).toBe(field);
  });

  it("refuses a circular OVERALLOCATE workspace below 1.0 with ND4J's message (so the default overallocation fails)", () => {
    const error = thrown(() => normalizeWorkspaceConfig({ resetPolicy: 'ENDOFBUFFER_REACHED' }));
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('For cyclic workspace overallocation should be positive integral value.');
    expect(error.metadata.field).toBe('config.overallocation_limit');
    // STRICT circular needs no overallocation; OVERALLOCATE 1.0 is fine.
    expect(normalizeWorkspaceConfig({ resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT' }).resetPolicy).toBe('ENDOFBUFFER_REACHED');
    expect(stepsNumberOf(normalizeWorkspaceConfig({ resetPolicy: 'ENDOFBUFFER_REACHED', overallocationLimit: 1.0 }))).toBe(2);
  });

  it("refuses MMAP with a learning policy (ND4J's default FIRST_LOOP included) with ND4J's message", () => {
    const error = thrown(() => normalizeWorkspaceConfig({ locationPolicy: 'MMAP', initialSize: 1_000_000 }));
    expect(error.message).toContain("Workspace backed by memory-mapped file can't have LearningPolicy defined");
    expect(error.metadata.field).toBe('config.learning_policy');
    // Left unset, it says so (the client sent no value); given, the value as the proto names it.
    expect(error.message).toContain('config.learning_policy is unset, and its default is LEARNING_POLICY_FIRST_LOOP. Fix: learning_policy LEARNING_POLICY_NONE');
    const given = thrown(() => normalizeWorkspaceConfig({ locationPolicy: 'MMAP', initialSize: 1_000_000, learningPolicy: 'LEARNING_POLICY_OVER_TIME' }));
    expect(given.message).toContain('(config.learning_policy = "LEARNING_POLICY_OVER_TIME"). Fix: learning_policy LEARNING_POLICY_NONE');
    expect(normalizeWorkspaceConfig({ locationPolicy: 'MMAP', initialSize: 1_000_000, learningPolicy: 'NONE' }).locationPolicy).toBe('MMAP');
  });

  it("refuses MMAP with neither a file nor an initial size with ND4J's message", () => {
    const error = thrown(() => normalizeWorkspaceConfig({ locationPolicy: 'MMAP', learningPolicy: 'NONE' }));
    expect(error.message).toContain('MMAP target file path should be non-null or workspace initialSize should be >0 for temp file');
    // The fields and their values, not only ND4J's builder names.
    expect(error.message).toContain('(config.temp_file_path = ""). config.initial_size is 0 too.');
    expect(error.metadata.field).toBe('config.temp_file_path');
  });

  it("does ND4J's arithmetic: 16-byte alignment, init sizing, 16 KiB file rounding, steps", () => {
    expect([1, 10, 16, 20, 40, 48, 800, 4000].map(alignWorkspaceRequest)).toEqual([16, 16, 16, 32, 48, 48, 800, 4000]);
    // reference §4 examples
    expect(initialCurrentSize(normalizeWorkspaceConfig({ initialSize: 1024, overallocationLimit: 1.0 }))).toBe(2048);
    expect(initialCurrentSize(normalizeWorkspaceConfig({ initialSize: 81920, overallocationLimit: 0.1 }))).toBe(90112);
    expect(initialCurrentSize(normalizeWorkspaceConfig({ initialSize: 1000, overallocationLimit: 0.3, maxSize: 1200 }))).toBe(1200);
    expect(initialCurrentSize(normalizeWorkspaceConfig({ initialSize: 1000, allocationPolicy: 'STRICT' }))).toBe(1000);
    // MMAP is never overallocated.
    expect(initialCurrentSize(normalizeWorkspaceConfig({ initialSize: 1000, locationPolicy: 'MMAP', learningPolicy: 'NONE' }))).toBe(1000);
    expect(mmapFileBytes(1_000_000)).toBe(1_015_808);
    expect(mmapFileBytes(16384)).toBe(16384);
    expect(stepsNumberOf(normalizeWorkspaceConfig({ resetPolicy: 'ENDOFBUFFER_REACHED', overallocationLimit: 3.0 }))).toBe(4);
    expect(stepsNumberOf(normalizeWorkspaceConfig({ resetPolicy: 'ENDOFBUFFER_REACHED', overallocationLimit: 25 }))).toBe(26);
    expect(stepsNumberOf(normalizeWorkspaceConfig({ resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT' }))).toBe(1);
  });

  it('compares validated configurations field by field', () => {
    const a = normalizeWorkspaceConfig({ initialSize: 1024 });
    expect(sameWorkspaceConfig(a, normalizeWorkspaceConfig({ initialSize: 1024, allocationPolicy: 'ALLOCATION_POLICY_OVERALLOCATE' }))).toBe(true);
    expect(sameWorkspaceConfig(a, normalizeWorkspaceConfig({ initialSize: 1024, overallocationLimit: 0.31 }))).toBe(false);
  });
});

describe('BasicWorkspaceTests (ND4J)', () => {
  it('testMinSize1: minSize applies when the first loop is learned (800 → ×2 → 10 MiB)', () => {
    const { ws } = workspace({ minSize: 10 * MiB, overallocationLimit: 1.0, allocationPolicy: 'OVERALLOCATE', learningPolicy: 'FIRST_LOOP' });
    ws.enter();
    ws.alloc(doubles(100));
    expect(ws.info().currentSize).toBe(0);
    ws.leave();
    ws.enter();
    ws.alloc(doubles(100));
    expect(ws.info().currentSize).toBe(10 * MiB);
    ws.leave();
  });

  it('testOverallocation1: initial 1024 with OVERALLOCATE 1.0 and learning NONE → 2048, one buffer of 2048 + 1024', () => {
    const { ws, backing } = workspace({ initialSize: 1024, maxSize: 10 * MiB, overallocationLimit: 1.0, allocationPolicy: 'OVERALLOCATE', learningPolicy: 'NONE' });
    expect(ws.info().currentSize).toBe(2048);
    expect(backing.requests).toEqual([{ bytes: 2048 + 1024, purpose: 'workspace', location: 'DEVICE', mirror: false, device: 0, workspaceId: 'WS', workspaceName: 'WS' }]);
  });

  it('testOverallocation2: FIRST_LOOP learns 100 doubles, doubled: 200 · 8', () => {
    const { ws } = workspace({ initialSize: 0, maxSize: 10 * MiB, overallocationLimit: 1.0, allocationPolicy: 'OVERALLOCATE', learningPolicy: 'FIRST_LOOP' });
    expect(ws.info().currentSize).toBe(0);
    cycle(ws, doubles(100));
    expect(ws.info().currentSize).toBe(200 * DOUBLE);
  });

  it('testOverallocation3: OVER_TIME never initializes by itself (cycles 0); initializeWorkspace learns the largest cycle, doubled', () => {
    const { ws } = workspace({ initialSize: 0, maxSize: 10 * MiB, overallocationLimit: 1.0, allocationPolicy: 'OVERALLOCATE', learningPolicy: 'OVER_TIME' });
    for (let x = 10; x <= 100; x += 10) cycle(ws, doubles(x));
    expect(ws.info().currentSize).toBe(0);
    ws.initializeWorkspace();
    expect(ws.info().currentSize).toBe(200 * DOUBLE);
  });

  it('testToggle1: requests while toggled off go outside and are counted nowhere', () => {
    const { ws, backing } = workspace(loopFirstConfig);
    expect(ws.info().primaryOffset).toBe(0);
    ws.enter();
    ws.alloc(doubles(100));
    ws.toggleWorkspaceUse(false);
    const detached = ws.alloc(doubles(100));
    ws.alloc(SCALAR); // arrayDetached.sumNumber(), also outside
    ws.toggleWorkspaceUse(true);
    ws.alloc(doubles(100));
    expect(detached.placement).toBe('external');
    expect(ws.info().thisCycleAllocations).toBe(200 * DOUBLE);
    expect(ws.info().numberOfExternalAllocations).toBe(2);
    ws.leave();
    expect(ws.info().primaryOffset).toBe(0);
    expect(ws.info().currentSize).toBe(200 * DOUBLE);
    // The learning at close freed the spills and the toggled-off blocks alike.
    expect(backing.held('external').count).toBe(0);
    expect(backing.held('spill').count).toBe(0);

    ws.enter();
    ws.alloc(doubles(100));
    ws.toggleWorkspaceUse(false);
    ws.alloc(doubles(100));
    ws.alloc(SCALAR);
    ws.toggleWorkspaceUse(true);
    expect(ws.info().primaryOffset).toBe(100 * DOUBLE);
    ws.alloc(doubles(100));
    expect(ws.info().primaryOffset).toBe(200 * DOUBLE);
    expect(backing.held('external').count).toBe(2);
    ws.leave();
    // Freed at the close (learning FIRST_LOOP with BLOCK_LEFT purges the cycle's outside blocks there).
    expect(backing.held('external').count).toBe(0);
  });

  it('testLoop4: FIRST_LOOP learns 200 doubles; the next cycle starts at 0', () => {
    const { ws } = workspace(loopFirstConfig);
    cycle(ws, doubles(100), doubles(100));
    expect(ws.info().primaryOffset).toBe(0);
    expect(ws.info().currentSize).toBe(200 * DOUBLE);
    ws.enter();
    ws.alloc(doubles(100));
    expect(ws.info().primaryOffset).toBe(100 * DOUBLE);
    ws.leave();
    expect(ws.info().primaryOffset).toBe(0);
  });

  it('testLoops3: a cold first loop spills; it is learned exactly (STRICT): 110 · 8', () => {
    const { ws } = workspace(loopFirstConfig);
    ws.enter();
    ws.alloc(doubles(100));
    ws.alloc(doubles(10));
    expect(ws.info().primaryOffset).toBe(0);
    expect(ws.info().currentSize).toBe(0);
    ws.leave();
    expect(ws.info().primaryOffset).toBe(0);
    expect(ws.info().currentSize).toBe(110 * DOUBLE);
  });

  it('testLoops2: OVER_TIME over 100 growing cycles, then initializeWorkspace; a hot 10-double array lands at 80', () => {
    const { ws } = workspace(loopOverTimeConfig);
    for (let x = 1; x <= 100; x++) {
      ws.enter();
      ws.alloc(doubles(x));
      expect(ws.info().primaryOffset).toBe(0);
      expect(ws.info().currentSize).toBe(0);
      ws.leave();
    }
    ws.initializeWorkspace();
    // Not asserted by ND4J (commented out there); from §8: the largest cycle, 100 doubles, STRICT.
    expect(ws.info().currentSize).toBe(100 * DOUBLE);
    expect(ws.info().primaryOffset).toBe(0);
    ws.enter();
    ws.alloc(doubles(10));
    expect(ws.info().primaryOffset).toBe(10 * DOUBLE);
    ws.leave();
  });

  it('testLoops1: 10 doubles plus sumNumber\'s scalar → initializeWorkspace learns 11 · 8 + (88 % 16) = 96', () => {
    const { ws } = workspace(loopOverTimeConfig);
    ws.enter();
    ws.alloc(doubles(10));
    expect(ws.info().primaryOffset).toBe(0);
    expect(ws.info().currentSize).toBe(0);
    ws.alloc(SCALAR); // arrayCold.sumNumber()
    ws.leave();
    ws.initializeWorkspace();
    const reqMemory = 11 * DOUBLE;
    expect(ws.info().currentSize).toBe(reqMemory + (reqMemory % 16));

    for (let x = 0; x < 10; x++) {
      expect(ws.info().primaryOffset).toBe(0);
      ws.enter();
      ws.alloc(doubles(10));
      const reqMem = 10 * DOUBLE;
      expect(ws.info().primaryOffset).toBe(reqMem + (reqMem % 16));
      expect(ws.alloc(SCALAR).placement).toBe('workspace'); // array.sumNumber() fits exactly
      ws.leave();
      expect(ws.info().primaryOffset).toBe(0);
    }
  });

  it('testAllocation1–3, 5, 6: arrays land at aligned offsets of the 10 MiB buffer', () => {
    const { ws } = workspace(basicConfig);
    ws.enter();
    expect(ws.info().primaryOffset).toBe(0);
    const first = ws.alloc(doubles(5));
    const reqMem = 5 * DOUBLE;
    expect(ws.info().primaryOffset).toBe(reqMem + (reqMem % 16)); // 48
    const dup = ws.alloc(doubles(5)); // array.dup()
    expect(ws.info().primaryOffset).toBe((reqMem + (reqMem % 16)) * 2);
    expect(first).toMatchObject({ placement: 'workspace', offset: 0, bytes: 48, requestedBytes: 40, kind: 'DEVICE', generation: 1 });
    expect(dup.offset).toBe(48);
    expect(dup.block).toBe(first.block);
    ws.leave();

    // testAllocation6: rand(100, 10) then dup.
    ws.enter();
    ws.alloc(doubles(1000));
    expect(ws.info().primaryOffset).toBe(1000 * DOUBLE);
    ws.alloc(doubles(1000));
    expect(ws.info().primaryOffset).toBe(2000 * DOUBLE);
    ws.leave();
  });

  it("testAllocation4: SpillPolicy.FAIL refuses with ND4J's message and moves nothing", () => {
    const { ws, backing } = workspace({ initialSize: MiB, maxSize: MiB, overallocationLimit: 0.1, allocationPolicy: 'STRICT', learningPolicy: 'FIRST_LOOP', spillPolicy: 'FAIL' });
    ws.enter();
    ws.alloc(doubles(5));
    const reqMem = 5 * DOUBLE;
    expect(ws.info().primaryOffset).toBe(reqMem + (reqMem % 16));
    const before = ws.info();
    const error = thrown(() => ws.alloc(doubles(10_000_000)));
    expect(error.message).toContain("Can't allocate memory: Workspace is full: workspace ");
    expect(error.message).toContain(`has ${MiB - 48} bytes (1023.95 KiB) free of its ${MiB} bytes (1.00 MiB) and was asked for 80000000 bytes (76.29 MiB)`);
    expect(error.metadata.free_bytes).toBe(String(MiB - 48));
    expect(error.reason).toBe('WORKSPACE_FULL');
    expect(error.kind).toBe('RESOURCE_EXHAUSTED');
    expect(error.metadata.requested_bytes).toBe(String(80_000_000));
    expect(ws.info()).toEqual(before);
    expect(backing.requests.length).toBe(1); // the buffer only
    ws.alloc(doubles(5));
    expect(ws.info().primaryOffset).toBe((reqMem + (reqMem % 16)) * 2);
    ws.leave();
  });

  it('a FAILed request does not count as spilled (DESIGN.md §4; M1 counted it)', () => {
    const { ws } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE', spillPolicy: 'FAIL' });
    ws.enter();
    thrown(() => ws.alloc(4096));
    expect(ws.info().spilledSize).toBe(0);
    expect(ws.info().thisCycleAllocations).toBe(0);
    ws.leave();
    expect(ws.info().maxCycleAllocations).toBe(0);
  });

  it("FAIL refuses on the host side of a FULL workspace too (CudaWorkspace's HOST kind): WORKSPACE_FULL, nothing placed outside", () => {
    const { ws, backing } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE', spillPolicy: 'FAIL' });
    ws.enter();
    expect(ws.alloc(512, { kind: 'HOST' })).toMatchObject({ kind: 'HOST', placement: 'workspace', offset: 0 });
    const before = ws.info();
    const requests = backing.requests.length; // the buffer and its host mirror
    const error = thrown(() => ws.alloc(1024, { kind: 'HOST' }));
    expect(error.reason).toBe('WORKSPACE_FULL');
    expect(error.message).toContain('(spill_policy SPILL_POLICY_FAIL, [HOST] memory) has 512 bytes (512 B) free of its 1024 bytes (1.00 KiB) and was asked for 1024 bytes');
    expect(error.metadata).toMatchObject({ free_bytes: '512', requested_bytes: '1024' });
    expect(error.metadata.device).toBeUndefined();
    expect(ws.info()).toEqual(before);
    expect(backing.requests.length).toBe(requests);
    expect(backing.held('spill').count).toBe(0);
    ws.leave();
  });

  it('testScope1/2, testIsAttached1: an array is in scope while its scope is open, leaked after', () => {
    const { ws } = workspace(loopFirstConfig);
    ws.enter();
    const cold = ws.alloc(doubles(100));
    expect(cold.placement).toBe('spill'); // "it's empty yet, so it's external allocation"
    expect(ws.checkAllocation(cold)).toBe('valid');
    expect(ws.info().currentSize).toBe(0);
    ws.leave();
    ws.enter();
    const hot = ws.alloc(doubles(100));
    expect(ws.checkAllocation(hot)).toBe('valid');
    expect(ws.info().primaryOffset).toBe(100 * DOUBLE);
    ws.leave();
    expect(ws.checkAllocation(hot)).toBe('leaked');
  });

  it("testInvalidLeverageMigrateDetach / testBadGeneration: leaked and outdated arrays are refused with ND4J's messages", () => {
    const { ws } = workspace(basicConfig, new FakeBacking(), 'testBadGeneration');
    let gen2: WorkspaceAllocation | undefined;
    for (let i = 0; i < 4; i++) {
      ws.enter();
      const arr = ws.alloc(doubles(10)); // linspace(1, 10, 10)
      if (i === 2) gen2 = arr;
      if (i === 3) {
        expect(ws.checkAllocation(gen2!)).toBe('outdated');
        const error = thrown(() => ws.assertUsable(gen2!, 'Cannot leverage array', ['testBadGeneration', 'testBadGeneration2']));
        expect(error.kind).toBe('FAILED_PRECONDITION');
        expect(error.reason).toBe('ARRAY_OUT_OF_SCOPE');
        expect(error.message).toBe(
          'Cannot leverage array: Array outdated workspace pointer from workspace testBadGeneration (array generation 3, current workspace generation 4)\nAll open workspaces: [testBadGeneration, testBadGeneration2]',
        );
        expect(() => ws.assertUsable(arr)).not.toThrow();
      }
      ws.leave();
    }
    // testInvalidLeverageMigrateDetach: the last array once its scope closed.
    const last = (() => {
      ws.enter();
      const allocation = ws.alloc(doubles(10));
      ws.leave();
      return allocation;
    })();
    const error = thrown(() => ws.assertUsable(last, 'Cannot detach array'));
    expect(error.message).toBe('Cannot detach array: Array uses leaked workspace pointer from workspace testBadGeneration');
    expect(error.metadata.validity).toBe('leaked');
  });

  it('testMmap1: an MMAP workspace places each cycle at the same offset of the mapped file (contents persist)', () => {
    const { ws, backing } = workspace({ initialSize: 1_000_000, locationPolicy: 'MMAP', learningPolicy: 'NONE' });
    expect(backing.mapRequests).toEqual([{ path: undefined, createBytes: 1_015_808, workspaceId: 'WS', workspaceName: 'WS' }]);
    expect(ws.fileBytes).toBe(1_015_808);
    expect(ws.info().currentSize).toBe(1_000_000);
    expect(backing.requests).toEqual([]);
    const [first] = cycle(ws, doubles(100));
    const [second] = cycle(ws, doubles(100)); // createUninitialized sees the previous cycle's values
    expect(first).toMatchObject({ kind: 'HOST', placement: 'workspace', offset: 0 });
    expect(second.block).toBe(first.block);
    expect(second.offset).toBe(first.offset);
    expect(ws.info().hostOffset).toBe(0);
    ws.destroy();
    expect(backing.live.size).toBe(0); // unmapped (testDeleteMappedFile_1)
  });

  it('testMmapedWorkspaceLimits_1: past a 200 MiB mapping, 52,429,800 floats spill to host memory without error', () => {
    const backing = new FakeBacking();
    backing.files.set('somefile', 0);
    const { ws } = workspace({ initialSize: 200 * MiB, tempFilePath: 'somefile', locationPolicy: 'MMAP', learningPolicy: 'NONE' }, backing, 'M2');
    expect(backing.mapRequests[0]).toMatchObject({ path: 'somefile', createBytes: 200 * MiB });
    ws.enter();
    const x = ws.alloc((52_428_800 + 1_000) * FLOAT);
    expect(x).toMatchObject({ placement: 'spill', kind: 'HOST', bytes: 209_719_200 });
    expect(backing.requests.at(-1)).toMatchObject({ purpose: 'spill', location: 'HOST', bytes: 209_719_200 });
    ws.leave();
  });

  it('MMAP over an existing file: a longer file is used as it is; a shorter one is re-filled to 16 KiB blocks', () => {
    const backing = new FakeBacking();
    backing.files.set('data/long', 100_000);
    backing.files.set('data/short', 10);
    const { ws: long } = workspace({ initialSize: 50_000, tempFilePath: 'data/long', locationPolicy: 'MMAP', learningPolicy: 'NONE' }, backing, 'long');
    expect(backing.mapRequests.at(-1)).toMatchObject({ path: 'data/long', createBytes: 0 });
    expect(long.info().currentSize).toBe(50_000);
    expect(long.fileBytes).toBe(100_000);
    const { ws: short } = workspace({ initialSize: 50_000, tempFilePath: 'data/short', locationPolicy: 'MMAP', learningPolicy: 'NONE' }, backing, 'short');
    expect(backing.mapRequests.at(-1)).toMatchObject({ path: 'data/short', createBytes: 65_536 });
    expect(short.fileBytes).toBe(65_536);
    expect(short.info().currentSize).toBe(50_000);
  });

  it('testMmap2 (disabled in ND4J): initial_size 0 over an existing file uses the whole file (ND4J: size 0, all spills)', () => {
    const backing = new FakeBacking();
    backing.files.set('fdsfdf', mmapFileBytes(100_000)); // Nd4jWorkspace.fillFile(tmp, 100000)
    const { ws } = workspace({ tempFilePath: 'fdsfdf', locationPolicy: 'MMAP', learningPolicy: 'NONE' }, backing, 'M3');
    expect(ws.info().currentSize).toBe(114_688);
    ws.enter();
    expect(ws.alloc(doubles(100)).placement).toBe('workspace');
    ws.leave();
  });

  it("MMAP: an empty file with initial_size 0 is refused with ND4J's message; an MMAP workspace has no device side", () => {
    const backing = new FakeBacking();
    const error = thrown(() => workspace({ tempFilePath: 'empty', locationPolicy: 'MMAP', learningPolicy: 'NONE' }, backing));
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('Memory-mapped file should have positive length.');
    expect(backing.live.size).toBe(0);
    const { ws } = workspace({ initialSize: 4096, locationPolicy: 'MMAP', learningPolicy: 'NONE' }, backing);
    expect(thrown(() => ws.alloc(16, { kind: 'DEVICE' })).kind).toBe('INVALID_ARGUMENT');
    const noFiles: WorkspaceBacking = { allocateBuffer: (r) => backing.allocateBuffer(r), free: (b) => backing.free(b) };
    expect(thrown(() => new Workspace({ name: 'x', config: { initialSize: 4096, locationPolicy: 'MMAP', learningPolicy: 'NONE' }, backing: noFiles })).kind).toBe('FAILED_PRECONDITION');
  });
});

describe('learning and spill policies (WorkspaceProviderTests, §8)', () => {
  it('testReallocate1: REALLOCATE grows to the largest cycle at close; initializeWorkspace then has no effect', () => {
    const { ws, backing } = workspace(reallocateConfiguration, new FakeBacking(), 'WS_1');
    cycle(ws, doubles(100));
    ws.initializeWorkspace();
    expect(ws.info().currentSize).toBe(100 * DOUBLE);
    const firstBuffer = backing.requests.at(-1)!;
    cycle(ws, doubles(1000));
    expect(ws.info().maxCycleAllocations).toBe(1000 * DOUBLE);
    ws.initializeWorkspace();
    expect(ws.info().currentSize).toBe(1000 * DOUBLE);
    expect(backing.held('workspace')).toEqual({ count: 1, bytes: 1000 * DOUBLE + 1024 });
    expect(firstBuffer.bytes).toBe(800 + 1024);
    const [array] = cycle(ws, doubles(500));
    expect(array.placement).toBe('workspace');
  });

  it('testReallocate2: REALLOCATE with cyclesBeforeInitialization 3: 0, 0, then 100·i·8 each cycle', () => {
    const { ws } = workspace(reallocateDelayedConfiguration);
    for (let i = 1; i <= 10; i++) {
      cycle(ws, doubles(100 * i));
      expect(ws.info().currentSize).toBe(i >= 3 ? 100 * i * DOUBLE : 0);
    }
  });

  it('testReallocate3: OVERALLOCATE 0.0 + REALLOCATE: 2400 after 3 cycles, 8000 at the end, never shrinks', () => {
    const { ws } = workspace(reallocateUnspecifiedConfiguration);
    for (let i = 1; i <= 10; i++) {
      cycle(ws, doubles(100 * i));
      if (i === 3) {
        ws.initializeWorkspace();
        expect(ws.info().currentSize).toBe(100 * i * DOUBLE);
      }
    }
    for (let i = 10; i > 0; i--) cycle(ws, doubles(100 * i));
    ws.initializeWorkspace();
    expect(ws.info().currentSize).toBe(100 * 10 * DOUBLE);
  });

  it('testNestedWorkspaces9: OVER_TIME initializes at exactly cycle 3 (300 doubles), not later', () => {
    const { ws } = workspace(delayedConfiguration);
    for (let x = 1; x < 10; x++) cycle(ws, doubles(100 * x));
    ws.initializeWorkspace();
    expect(ws.info().currentSize).toBe(300 * DOUBLE);
  });

  it('testNestedWorkspaces8: EXTERNAL never grows once initialized; a bigger cycle just spills', () => {
    const { ws } = workspace(loopConfiguration);
    cycle(ws, doubles(100));
    ws.initializeWorkspace();
    expect(ws.info().currentSize).toBe(100 * DOUBLE);
    const [big] = cycle(ws, doubles(1000));
    expect(big.placement).toBe('spill');
    ws.initializeWorkspace();
    expect(ws.info().currentSize).toBe(100 * DOUBLE);
  });

  it('overallocation is applied once: REALLOCATE growth afterwards is exact', () => {
    const { ws } = workspace({ overallocationLimit: 0.5, spillPolicy: 'REALLOCATE' });
    cycle(ws, 800);
    expect(ws.info().currentSize).toBe(1200);
    cycle(ws, 1600);
    expect(ws.info().currentSize).toBe(1600);
  });

  it('minSize is applied before the maxSize cap, so maxSize wins', () => {
    const { ws } = workspace({ minSize: 4096, maxSize: 2048, allocationPolicy: 'STRICT' });
    cycle(ws, 800);
    expect(ws.info().currentSize).toBe(2048);
  });

  it('a learned size is capped by maxSize; REALLOCATE stops growing at maxSize', () => {
    const { ws } = workspace({ maxSize: 1000, allocationPolicy: 'STRICT', spillPolicy: 'REALLOCATE' });
    cycle(ws, 1600);
    expect(ws.info().currentSize).toBe(1000);
    cycle(ws, 3200);
    expect(ws.info().currentSize).toBe(1000);
  });

  it('REALLOCATE grows only for a cycle below maxSize: one of exactly maxSize keeps the buffer (ND4J: maxCycle < maxSize)', () => {
    const { ws, backing } = workspace({ maxSize: 1024, allocationPolicy: 'STRICT', spillPolicy: 'REALLOCATE' });
    cycle(ws, 800);
    expect(ws.info().currentSize).toBe(800);
    const [spilled] = cycle(ws, 1024);
    expect(spilled.placement).toBe('spill');
    expect(ws.info()).toMatchObject({ currentSize: 800, maxCycleAllocations: 1024 });
    expect(backing.held('workspace')).toEqual({ count: 1, bytes: 800 + SAFETY_OFFSET });
  });

  it('caps the buffer made at creation by maxSize, after overallocation (initial 1000, 0.3, maxSize 1200 -> 1200)', () => {
    const { ws, backing } = workspace({ initialSize: 1000, overallocationLimit: 0.3, allocationPolicy: 'OVERALLOCATE', maxSize: 1200 });
    expect(ws.info().currentSize).toBe(1200);
    expect(backing.requests.map((request) => [request.purpose, request.bytes])).toEqual([['workspace', 1200 + SAFETY_OFFSET]]);
  });

  it('FIRST_LOOP with an initial size never learns; minSize only applies when learning happens', () => {
    const { ws } = workspace({ initialSize: 512, minSize: 4096, allocationPolicy: 'STRICT' });
    cycle(ws, 1600);
    cycle(ws, 1600);
    expect(ws.info().currentSize).toBe(512);
    expect(ws.info().maxCycleAllocations).toBe(1600);
  });

  it('BLOCK_LEFT spills: freed at the close when learning, else (NONE) at the next enter', () => {
    const { ws, backing } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    ws.enter();
    ws.alloc(512);
    const spill = ws.alloc(1024);
    expect(spill.placement).toBe('spill');
    expect(ws.info()).toMatchObject({ spilledSize: 1024, numberOfExternalAllocations: 1, thisCycleAllocations: 1536 });
    ws.leave();
    expect(backing.held('spill').count).toBe(1);
    expect(ws.info()).toMatchObject({ numberOfExternalAllocations: 1, lastCycleAllocations: 1536, maxCycleAllocations: 1536, thisCycleAllocations: 0 });
    ws.enter();
    expect(backing.held('spill').count).toBe(0);
    expect(ws.info()).toMatchObject({ spilledSize: 0, numberOfExternalAllocations: 0 });
    ws.leave();
  });

  it('initializeWorkspace with learning NONE does nothing (ND4J could destroy a REALLOCATE buffer)', () => {
    const { ws, backing } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE', spillPolicy: 'REALLOCATE' });
    cycle(ws, 4096);
    ws.initializeWorkspace();
    expect(ws.info().currentSize).toBe(1024);
    expect(backing.held('workspace').count).toBe(1);
  });
});

describe('B6: training loop after learning', () => {
  it('a cycle of 1,000 allocations makes zero backing allocations once learned', () => {
    const { ws, backing } = workspace({});
    const sizes = Array.from({ length: 1000 }, (_, i) => 8 * (1 + (i % 37)) * 16 + (i % 5));
    const learnedCycle = sizes.reduce((sum, bytes) => sum + alignWorkspaceRequest(bytes), 0);

    cycle(ws, ...sizes);
    expect(backing.requests.filter((r) => r.purpose === 'spill').length).toBe(1000);
    expect(ws.info().currentSize).toBe(learnedCycle + Math.trunc(learnedCycle * 0.3));
    expect(backing.held('spill').count).toBe(0);
    expect(backing.held('workspace').count).toBe(1);

    for (let iteration = 0; iteration < 20; iteration++) {
      const requestsBefore = backing.requests.length;
      const freesBefore = backing.frees;
      ws.enter();
      let expectedOffset = 0;
      for (const bytes of sizes) {
        const allocation = ws.alloc(bytes);
        expect(allocation.placement).toBe('workspace');
        expect(allocation.offset).toBe(expectedOffset);
        expectedOffset += allocation.bytes;
      }
      ws.leave();
      expect(backing.requests.length - requestsBefore).toBe(0);
      expect(backing.frees - freesBefore).toBe(0);
      expect(ws.info()).toMatchObject({ lastCycleAllocations: learnedCycle, spilledSize: 0, numberOfExternalAllocations: 0, primaryOffset: 0 });
    }
  });
});

describe('FULL vs HOST_ONLY mirroring (CudaWorkspaceTests, §14)', () => {
  const circular10MiB: WorkspaceConfigInput = { initialSize: 10 * MiB, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT', spillPolicy: 'FAIL', learningPolicy: 'NONE' };

  it('testCircularWorkspaceAsymmetry_1: a device array moves only the device offset until its host mirror is taken', () => {
    const { ws, backing } = workspace(circular10MiB, new FakeBacking(), 'circular_ws');
    ws.enter();
    const array = ws.alloc(10 * 10 * FLOAT);
    expect(array.kind).toBe('DEVICE');
    expect(ws.info().hostOffset).toBe(0);
    expect(ws.info().deviceOffset).toBe(400);
    expect(ws.info().primaryOffset).toBe(400);
    expect(backing.held('mirror').count).toBe(0); // lazily: no host buffer yet
    const mirror = ws.alloc(10 * 10 * FLOAT, { kind: 'HOST' }); // array.getDouble(3): the host copy
    expect(mirror).toMatchObject({ kind: 'HOST', placement: 'workspace', offset: 0, bytes: 400 });
    expect(backing.held('mirror')).toEqual({ count: 1, bytes: 10 * MiB + 1024 });
    expect(ws.info().hostOffset).toBe(ws.info().deviceOffset);
    expect(ws.info().thisCycleAllocations).toBe(400); // the mirror is not counted
    ws.leave();
    ws.enter();
    expect(ws.info().hostOffset).toBe(ws.info().deviceOffset);
    ws.leave();
  });

  it('testCircularWorkspaceAsymmetry_2: 100 cycles of 4,000,000 bytes per side wrap each side on its own; offsets stay equal', () => {
    const { ws, backing } = workspace(circular10MiB);
    for (let e = 0; e < 100; e++) {
      ws.enter();
      const device = ws.alloc(1_000_000 * FLOAT);
      const host = ws.alloc(1_000_000 * FLOAT, { kind: 'HOST' });
      expect(host.offset).toBe(device.offset);
      expect(ws.info().hostOffset).toBe(ws.info().deviceOffset);
      ws.leave();
    }
    // 10 MiB holds two: offsets 0, 4e6, then wrap.
    expect(ws.info().deviceOffset).toBe(100 % 2 === 0 ? 8_000_000 : 4_000_000);
    expect(backing.requests.map((r) => r.purpose)).toEqual(['workspace', 'mirror']);
  });

  it('a device-side wrap leaves the host offset where it was (each side wraps on its own)', () => {
    const { ws } = workspace(circular10MiB);
    ws.enter();
    ws.alloc(6_000_000);
    ws.alloc(1_000_000, { kind: 'HOST' });
    ws.leave();
    ws.enter();
    const device = ws.alloc(6_000_000);
    expect(device.offset).toBe(0); // 6e6 + 6e6 > 10 MiB: wrapped
    const host = ws.alloc(1_000_000, { kind: 'HOST' });
    expect(host.offset).toBe(1_000_000);
    expect(ws.info()).toMatchObject({ deviceOffset: 6_000_000, hostOffset: 2_000_000 });
    ws.leave();
  });

  it('testWorkspaceReuse: a HOST_ONLY workspace counts its host arrays and learns (DESIGN.md §4; ND4J never learned it)', () => {
    const { ws, backing } = workspace({ mirroringPolicy: 'HOST_ONLY' }, new FakeBacking(), 'test');
    ws.enter();
    const zeros = ws.alloc(4 * DOUBLE); // Nd4j.zeros(4)
    ws.alloc(SCALAR); // zeros.sumNumber()
    expect(zeros).toMatchObject({ kind: 'HOST', placement: 'spill' });
    expect(ws.info()).toMatchObject({ thisCycleAllocations: 48, spilledSize: 48, numberOfExternalAllocations: 2 });
    ws.leave();
    // FIRST_LOOP, OVERALLOCATE 0.3: 48 + trunc(14.4) = 62, host memory only.
    expect(ws.info().currentSize).toBe(62);
    expect(backing.held('workspace')).toEqual({ count: 1, bytes: 62 + 1024 });
    expect(backing.requests.at(-1)!.location).toBe('HOST');
    const requests = backing.requests.length;
    for (let e = 1; e < 10; e++) {
      ws.enter();
      const again = ws.alloc(4 * DOUBLE);
      expect(again).toMatchObject({ kind: 'HOST', placement: 'workspace', offset: 0 });
      ws.alloc(SCALAR);
      expect(ws.info().hostOffset).toBe(48);
      expect(ws.info().primaryOffset).toBe(48);
      ws.leave();
    }
    expect(backing.requests.length).toBe(requests);
    expect(thrown(() => ws.alloc(16, { kind: 'DEVICE' })).metadata.field).toBe('kind');
  });

  it('host-mirror spills are not counted, and are freed with the cycle (ND4J kept them until destroy)', () => {
    const { ws, backing } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    ws.enter();
    ws.alloc(1024);
    const mirror = ws.alloc(2048, { kind: 'HOST' });
    expect(mirror).toMatchObject({ kind: 'HOST', placement: 'spill' });
    expect(ws.info()).toMatchObject({ numberOfExternalAllocations: 0, spilledSize: 0, thisCycleAllocations: 1024 });
    ws.leave();
    ws.enter();
    expect(backing.held('spill').count).toBe(0);
    ws.leave();
  });
});

describe('uncounted outside blocks', () => {
  it('toggled-off blocks are freed at the next BLOCK_LEFT enter even with no counted spill (ND4J kept them until destroy)', () => {
    const { ws, backing } = workspace({ initialSize: 4096, learningPolicy: 'NONE' });
    for (let i = 0; i < 5; i++) {
      ws.enter();
      expect(backing.held('external').count).toBe(0);
      ws.toggleWorkspaceUse(false);
      ws.alloc(256);
      ws.alloc(256);
      expect(ws.info().numberOfExternalAllocations).toBe(0);
      ws.leave();
      expect(ws.enabled).toBe(true); // closing the scope turns the workspace back on
      expect(backing.held('external').count).toBe(2);
    }
  });
});

describe('refusals change nothing', () => {
  it.each<[string, unknown]>([
    ['zero', 0],
    ['negative', -16],
    ['fractional', 1.5],
    ['NaN', Number.NaN],
    ['unsafe', 2 ** 53],
    ['the largest safe integer (aligned past 2^53)', Number.MAX_SAFE_INTEGER],
    ['a string', '64'],
  ])('a %s size is INVALID_ARGUMENT naming bytes', (_name, bytes) => {
    const { ws, backing } = workspace({ initialSize: 1024 });
    ws.enter();
    const before = ws.info();
    const requests = backing.requests.length;
    const error = thrown(() => ws.alloc(bytes as number));
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.metadata.field).toBe('bytes');
    expect(ws.info()).toEqual(before);
    expect(backing.requests.length).toBe(requests);
    ws.leave();
  });

  it('an unknown side is INVALID_ARGUMENT', () => {
    const { ws } = workspace({ initialSize: 1024 });
    expect(thrown(() => ws.alloc(16, { kind: 'GPU' as never })).metadata.field).toBe('kind');
  });

  it("the backing's refusal of a spill propagates with the workspace as it was", () => {
    const { ws, backing } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    ws.enter();
    ws.alloc(1000);
    const before = ws.info();
    backing.refuse = (request) => request.purpose === 'spill';
    expect(() => ws.alloc(4096)).toThrow(OutOfMemoryError);
    expect(ws.info()).toEqual(before);
    backing.refuse = () => false;
    expect(ws.alloc(4096).placement).toBe('spill');
    expect(ws.info().spilledSize).toBe(4096);
    ws.leave();
  });

  it("an allocation's buffer options go with each buffer it takes outside the workspace (wait_for_memory), and their refusal changes nothing", () => {
    const { ws, backing } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    ws.enter();
    const buffers = { retry: true };
    const taken = backing.requests.length;
    ws.alloc(512, { buffers });
    expect(backing.requests.length).toBe(taken); // in the buffer: nothing taken, nothing asked
    ws.alloc(4096, { buffers });
    expect(backing.requests[taken]).toMatchObject({ purpose: 'spill', location: 'DEVICE', options: buffers });
    const before = ws.info();
    backing.refuse = (request) => request.options === buffers;
    expect(() => ws.alloc(4096, { buffers })).toThrow(OutOfMemoryError);
    expect(ws.info()).toEqual(before);
    ws.leave();
  });

  it("the backing's refusal of a host mirror buffer propagates with the workspace as it was", () => {
    const { ws, backing } = workspace({ initialSize: 4096, learningPolicy: 'NONE' });
    ws.enter();
    ws.alloc(64);
    backing.refuse = (request) => request.purpose === 'mirror';
    const before = ws.info();
    expect(() => ws.alloc(64, { kind: 'HOST' })).toThrow(OutOfMemoryError);
    expect(ws.info()).toEqual(before);
    backing.refuse = () => false;
    expect(ws.alloc(64, { kind: 'HOST' }).offset).toBe(0);
    ws.leave();
  });

  it("a refusal of the initial buffer fails the construction", () => {
    const backing = new FakeBacking();
    backing.refuse = () => true;
    expect(() => workspace({ initialSize: 1 << 20 }, backing)).toThrow(OutOfMemoryError);
    expect(backing.live.size).toBe(0);
  });

  it('a refusal while learning at close: the scope is left, the old state kept, the reason kept; the next close retries', () => {
    const { ws, backing } = workspace({ allocationPolicy: 'STRICT' });
    backing.refuse = (request) => request.purpose === 'workspace';
    cycle(ws, 800);
    expect(ws.scopeActive).toBe(false);
    expect(ws.info()).toMatchObject({ currentSize: 0, cyclesCount: 1, maxCycleAllocations: 800 });
    expect(ws.learningFailure).toBeInstanceOf(OutOfMemoryError);
    expect(backing.held('spill').count).toBe(0); // the cycle's spills are freed as usual
    backing.refuse = () => false;
    cycle(ws, 800);
    expect(ws.info().currentSize).toBe(800);
    expect(ws.learningFailure).toBeUndefined();
  });

  it('an OVER_TIME learning refused at its cycle is retried at the next closes until it succeeds (ND4J learns at that one cycle only)', () => {
    const { ws, backing } = workspace({ allocationPolicy: 'STRICT', learningPolicy: 'OVER_TIME', cyclesBeforeInitialization: 2 });
    backing.refuse = (request) => request.purpose === 'workspace';
    cycle(ws, 800);
    cycle(ws, 800);
    expect(ws.info()).toMatchObject({ currentSize: 0, cyclesCount: 2 });
    expect(ws.learningFailure).toBeInstanceOf(OutOfMemoryError);
    cycle(ws, 800);
    expect(ws.info()).toMatchObject({ currentSize: 0, cyclesCount: 3 });
    expect(backing.refusals.filter((request) => request.purpose === 'workspace')).toHaveLength(2);
    backing.refuse = () => false;
    cycle(ws, 800);
    expect(ws.info()).toMatchObject({ currentSize: 800, cyclesCount: 4, initialBlockSize: 800 });
    expect(ws.learningFailure).toBeUndefined();
    // Learned once, it stays put: a later, bigger cycle (EXTERNAL) spills and nothing is learned again.
    cycle(ws, 1600);
    expect(ws.info().currentSize).toBe(800);
    expect(backing.requests.filter((request) => request.purpose === 'workspace')).toHaveLength(1);
  });

  it('a learning refused at close and then done by initializeWorkspace clears learningFailure (README: "until a later learning succeeds")', () => {
    const { ws, backing } = workspace({ allocationPolicy: 'STRICT', learningPolicy: 'OVER_TIME', cyclesBeforeInitialization: 1 });
    backing.refuse = (request) => request.purpose === 'workspace';
    cycle(ws, 800);
    expect(ws.learningFailure).toBeInstanceOf(OutOfMemoryError);
    // Called by hand while refused: thrown to the caller, the close's reason kept.
    expect(thrown(() => ws.initializeWorkspace()).reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(ws.learningFailure).toBeInstanceOf(OutOfMemoryError);
    backing.refuse = () => false;
    ws.initializeWorkspace();
    expect(ws.info()).toMatchObject({ currentSize: 800, initialBlockSize: 800 });
    expect(ws.learningFailure).toBeUndefined();
    // Nothing is learned at later closes (it is initialized), so nothing else would have cleared it.
    cycle(ws, 800);
    expect(ws.learningFailure).toBeUndefined();
  });

  it('OVER_TIME without a refusal still learns at exactly cyclesBeforeInitialization: a cycle without allocations there never learns (ND4J)', () => {
    const { ws } = workspace({ allocationPolicy: 'STRICT', learningPolicy: 'OVER_TIME', cyclesBeforeInitialization: 2 });
    ws.enter();
    ws.leave();
    ws.enter();
    ws.leave();
    cycle(ws, 800);
    cycle(ws, 800);
    expect(ws.info()).toMatchObject({ currentSize: 0, cyclesCount: 4, maxCycleAllocations: 800 });
    expect(ws.learningFailure).toBeUndefined();
  });

  it('a refused REALLOCATE growth keeps the old buffer in place (allocate, then free)', () => {
    const { ws, backing } = workspace({ allocationPolicy: 'STRICT', spillPolicy: 'REALLOCATE' });
    cycle(ws, 800);
    const [oldBuffer] = backing.live.keys();
    backing.refuse = (request) => request.purpose === 'workspace';
    const [inBuffer] = cycle(ws, 1600);
    expect(ws.info().currentSize).toBe(800);
    expect(backing.live.has(oldBuffer)).toBe(true);
    expect(() => ws.initializeWorkspace()).toThrow(OutOfMemoryError);
    expect(ws.info().currentSize).toBe(800);
    expect(inBuffer.placement).toBe('spill');
    backing.refuse = () => false;
    ws.initializeWorkspace();
    expect(ws.info().currentSize).toBe(1600);
    expect(backing.live.has(oldBuffer)).toBe(false);
    expect(backing.held('workspace').count).toBe(1);
  });
});

describe('generations, validity and release', () => {
  it('each new scope advances the generation; nested entries and borrows do not', () => {
    const { ws } = workspace({ initialSize: 4096 });
    expect(ws.info().generationId).toBe(0);
    ws.enter();
    expect(ws.alloc(16).generation).toBe(1);
    ws.enter(); // nested: same cycle
    expect(ws.info().generationId).toBe(1);
    ws.leave();
    ws.leave();
    ws.enter();
    expect(ws.info().generationId).toBe(2);
    ws.leave();
    ws.borrow();
    expect(ws.info().generationId).toBe(2);
    ws.leave();
  });

  it('memory given back makes an array "released": spills freed, buffer reallocated, workspace destroyed', () => {
    const { ws } = workspace({ allocationPolicy: 'STRICT', spillPolicy: 'REALLOCATE', resetPolicy: 'BLOCK_LEFT' });
    ws.enter();
    const spilled = ws.alloc(800);
    ws.initializeWorkspace(); // inside the scope: REALLOCATE destroys and rebuilds under the arrays
    expect(ws.checkAllocation(spilled)).toBe('released');
    const inBuffer = ws.alloc(800);
    expect(ws.checkAllocation(inBuffer)).toBe('valid');
    const error = thrown(() => ws.assertUsable(spilled, 'Cannot read array'));
    expect(error.reason).toBe('ARRAY_OUT_OF_SCOPE');
    expect(error.message).toContain('Cannot read array: Array memory was released by workspace WS');
    ws.leave();
    ws.destroy();
    expect(ws.checkAllocation(inBuffer)).toBe('leaked');
    expect(ws.isDestroyed).toBe(true);
  });

  it('destroy gives back every block, is final and idempotent', () => {
    const { ws, backing } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    ws.enter();
    ws.alloc(1024);
    ws.alloc(64, { kind: 'HOST' });
    ws.alloc(4096);
    ws.toggleWorkspaceUse(false);
    ws.alloc(32);
    expect(ws.heldBytes).toBe(2048 + 2048 + 4096 + 32);
    expect(thrown(() => ws.destroy()).message).toContain('has an open scope');
    expect(backing.live.size).toBe(4);
    ws.scope.clear(); // the owner goes away
    ws.destroy();
    expect(backing.live.size).toBe(0);
    expect(ws.heldBytes).toBe(0);
    expect(ws.scope.current).toBeNull();
    ws.destroy();
    expect(thrown(() => ws.alloc(16)).kind).toBe('FAILED_PRECONDITION');
    expect(thrown(() => ws.enter()).kind).toBe('FAILED_PRECONDITION');
  });
});

describe('memory given up while copies of attached arrays are in flight', () => {
  it('is held back while a copy that was in flight when it was given up has not ended', () => {
    const { ws, backing } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    const older = ws.copyBegan();
    cycle(ws, 4096);
    const later = ws.copyBegan(); // began before the spill is given up: it may still be sending its bytes
    ws.enter(); // gives the spill up
    ws.leave();
    const newest = ws.copyBegan(); // began after: cannot reach it
    ws.copyEnded(older);
    expect(backing.held('spill').count).toBe(1);
    ws.copyEnded(later);
    expect(backing.held('spill').count).toBe(0);
    ws.copyEnded(newest);
  });

  it('goes back once the copies that could reach it end, not when overlapping later copies have all ended', () => {
    const { ws, backing } = workspace({ initialSize: 1024, allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    // A client that always has a read of an attached array in flight: each cycle's read begins before
    // the last one ends. Every cycle spills 4 KiB, given up at the next enter.
    let reading = ws.copyBegan();
    for (let i = 0; i < 20; i++) {
      // (the spill given up under a copy that is still in flight is held back, as before)
      cycle(ws, 4096);
      ws.enter(); // the spill of the cycle before is given up here, while a read is in flight
      ws.leave();
      const next = ws.copyBegan();
      ws.copyEnded(reading);
      reading = next;
    }
    // Only the spill given up under the read still in flight may be held back; ND4J's rule frees the rest.
    expect(backing.held('spill').count).toBeLessThanOrEqual(1);
    ws.copyEnded(reading);
    expect(backing.held('spill').count).toBe(0);
  });
});
