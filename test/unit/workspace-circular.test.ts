/**
 * Circular (ENDOFBUFFER_REACHED) workspaces: ND4J's WorkspaceProviderTests (unbounded loops, buffer
 * reset, variable input), SpecialWorkspaceTests (variable time series) and CyclicWorkspaceTests, with
 * ND4J's expected numbers; steps, pinned allocations and their two-step ageing, trimmed mode; and the
 * DESIGN.md §4 decision for requests larger than the ring.
 *
 * DOUBLE (8 bytes) is ND4J's test default type: Nd4j.create(n) is a request of 8·n bytes.
 */
import { describe, expect, it } from 'vitest';
import { OutOfMemoryError, TensormemError } from '../../src/errors';
import type { Block } from '../../src/memory/memory-resource';
import { Workspace } from '../../src/memory/workspace';
import type { WorkspaceAllocation } from '../../src/memory/workspace';
import type { WorkspaceBacking, WorkspaceBufferRequest } from '../../src/memory/workspace-backing';
import type { WorkspaceConfigInput } from '../../src/memory/workspace-config';
import { MiB } from '../../src/units';

const DOUBLE = 8;
const doubles = (n: number): number => n * DOUBLE;

/** ND4J's circular block: trunc(max cycle × 1.3), then + (8 − x % 8) (which adds 8 to a multiple of 8). */
function shiftedSize(requiredMemory: number): number {
  const scaled = Math.trunc(requiredMemory * 1.3);
  return scaled + (8 - (scaled % 8));
}

/** Records buffers handed out and taken back; refuses when `refuse` says so. */
class FakeBacking implements WorkspaceBacking {
  readonly requests: WorkspaceBufferRequest[] = [];
  readonly live = new Set<Block>();
  refuse: (request: WorkspaceBufferRequest) => boolean = () => false;
  private nextHandle = 1;

  allocateBuffer(request: WorkspaceBufferRequest): Block {
    if (this.refuse(request)) {
      throw new OutOfMemoryError({ memory: request.location, requestedBytes: request.bytes, capName: 'test cap', capBytes: 0, usedBytes: 0, largestFreeBlockBytes: 0 });
    }
    this.requests.push(request);
    const block: Block = { chunkHandle: this.nextHandle++, offset: 0, bytes: request.bytes, requestedBytes: request.bytes, owner: { purpose: request.purpose } };
    this.live.add(block);
    return block;
  }

  free(block: Block): void {
    if (!this.live.delete(block)) throw new Error(`free of a block that is not held (chunk ${block.chunkHandle})`);
  }

  held(purpose: string): number {
    return [...this.live].filter((block) => block.owner.purpose === purpose).length;
  }
}

function workspace(config: WorkspaceConfigInput, name = 'WS'): { ws: Workspace; backing: FakeBacking } {
  const backing = new FakeBacking();
  return { ws: new Workspace({ name, config, backing }), backing };
}

function cycle(ws: Workspace, ...sizes: number[]): WorkspaceAllocation[] {
  ws.enter();
  const allocations = sizes.map((bytes) => ws.alloc(bytes));
  ws.leave();
  return allocations;
}

// WorkspaceProviderTests.circularConfiguration / adsiConfiguration
const circularConfiguration: WorkspaceConfigInput = {
  minSize: 10 * MiB,
  overallocationLimit: 1.0,
  spillPolicy: 'EXTERNAL',
  learningPolicy: 'FIRST_LOOP',
  mirroringPolicy: 'FULL',
  allocationPolicy: 'STRICT',
  resetPolicy: 'ENDOFBUFFER_REACHED',
};
const adsiConfiguration: WorkspaceConfigInput = {
  overallocationLimit: 3.0,
  spillPolicy: 'REALLOCATE',
  learningPolicy: 'FIRST_LOOP',
  mirroringPolicy: 'FULL',
  allocationPolicy: 'OVERALLOCATE',
  resetPolicy: 'ENDOFBUFFER_REACHED',
};

describe('WorkspaceProviderTests (circular)', () => {
  it('testUnboundedLoop1: with no learned block every cycle just appends, to exactly the end of the buffer', () => {
    const { ws } = workspace({ initialSize: 100 * 100 * DOUBLE, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT' }, 'ITER');
    expect(ws.type).toBe('CIRCULAR');
    for (let x = 0; x < 100; x++) {
      cycle(ws, doubles(100));
      expect(ws.info().primaryOffset).toBe((x + 1) * 100 * DOUBLE);
    }
    expect(ws.info().primaryOffset).toBe(100 * 100 * DOUBLE);
    ws.enter(); // "just to trigger reset": circular workspaces do not reset on entry
    expect(ws.info().primaryOffset).toBe(100 * 100 * DOUBLE);
    ws.leave();
    expect(ws.scope.current).toBeNull();
  });

  it('testUnboundedLoop2: OVER_TIME at cycle 5 learns 100 doubles → block 1048, buffer 5 × 1048 (overallocation 4.0)', () => {
    const { ws } = workspace({ initialSize: 0, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'OVERALLOCATE', overallocationLimit: 4.0, learningPolicy: 'OVER_TIME', cyclesBeforeInitialization: 5 }, 'ITER');
    const block = shiftedSize(100 * DOUBLE);
    expect(block).toBe(1048);
    for (let x = 0; x < 100; x++) {
      cycle(ws, doubles(100));
      if (x > 4) {
        expect(ws.info().initialBlockSize).toBe(block);
        expect(ws.info().currentSize).toBe(5 * block);
      } else if (x < 4) {
        expect(ws.info().currentSize).toBe(0);
      }
    }
    expect(ws.info().currentSize).toBe(5 * block);
  });

  it('testCircularBufferReset1: first-cycle spills live until the first wrap; the ring ends at 10,504,808 in a 10,485,760 buffer (S43)', () => {
    const { ws, backing } = workspace(circularConfiguration, 'WSR_1');
    ws.enter();
    ws.alloc(doubles(10000));
    expect(ws.info().currentSize).toBe(0);
    expect(ws.info().numberOfExternalAllocations).toBe(1);
    ws.leave();
    expect(ws.info().currentSize).toBe(10 * MiB); // 80,000 → block 104,008; STRICT; minSize wins
    expect(ws.info().initialBlockSize).toBe(104_008);
    expect(ws.info().primaryOffset).toBe(0);
    expect(ws.info().numberOfExternalAllocations).toBe(1);

    let k = 0;
    for (let i = 0; i < 11 * 1024 * 1024; i += 10000 * DOUBLE) {
      k++;
      cycle(ws, doubles(10000));
      if (k <= 101) {
        expect(ws.info().numberOfExternalAllocations).toBe(1);
        expect(ws.info().primaryOffset).toBe(k * 104_008);
      } else {
        expect(ws.info().numberOfExternalAllocations).toBe(0);
      }
      if (k === 101) expect(ws.info().primaryOffset).toBe(10_504_808);
      if (k === 102) expect(ws.info().primaryOffset).toBe(104_008); // wrapped, then aligned to the block
    }
    expect(k).toBe(145);
    expect(ws.info().numberOfExternalAllocations).toBe(0);
    expect(backing.held('spill')).toBe(0);
  });

  it('testCircularLearning1: the second cycle ends one learned block (112) into the ring', () => {
    const { ws } = workspace(circularConfiguration, 'WSX');
    for (let i = 0; i < 2; i++) {
      cycle(ws, doubles(10));
      expect(ws.info().currentSize).toBe(10 * MiB);
      if (i === 0) expect(ws.info().primaryOffset).toBe(0);
      else expect(ws.info().primaryOffset).toBe(ws.info().initialBlockSize);
    }
    expect(ws.info().initialBlockSize).toBe(112);
  });

  it('testVariableInput1: a bigger input turns on trimmed mode (pinned), and two steps later the ring is rebuilt for it', () => {
    const { ws } = workspace(adsiConfiguration, 'ADSI');
    const small = 8 * 128 * 100 * DOUBLE; // 819,200
    const big = 8 * 128 * 200 * DOUBLE;
    cycle(ws, small);
    const block = shiftedSize(small);
    expect(block).toBe(1_064_968);
    expect(ws.info()).toMatchObject({ initialBlockSize: block, currentSize: block * 4, primaryOffset: 0, deviceOffset: 0, cyclesCount: 1, stepNumber: 0 });

    cycle(ws, small);
    expect(ws.info()).toMatchObject({ primaryOffset: block, deviceOffset: block, cyclesCount: 2, stepNumber: 0 });

    const [pinned] = cycle(ws, big);
    expect(pinned.placement).toBe('pinned');
    // offsets intact, the allocation happened as pinned
    expect(ws.info()).toMatchObject({ primaryOffset: block, deviceOffset: block, numberOfPinnedAllocations: 1, cyclesCount: 3, stepNumber: 0 });

    cycle(ws, small); // trimmed mode: pinned too
    expect(ws.info()).toMatchObject({ numberOfPinnedAllocations: 2, stepNumber: 0, cyclesCount: 4 });
    cycle(ws, small);
    expect(ws.info()).toMatchObject({ numberOfPinnedAllocations: 3, stepNumber: 1, cyclesCount: 5 });

    for (let i = 0; i < 12; i++) cycle(ws, small);
    // "Now we know that workspace was reallocated and offset was shifted to the end of workspace"
    expect(ws.info().stepNumber).toBe(4);
    expect(ws.info().primaryOffset).toBe(ws.info().currentSize);
    expect(ws.info().deviceOffset).toBe(ws.info().currentSize);
    // ND4J leaves this commented out; it holds by §9: the rebuilt block is shifted(big), ×4.
    expect(ws.info().initialBlockSize).toBe(shiftedSize(big));
    expect(ws.info().currentSize).toBe(shiftedSize(big) * 4);
  });
});

describe('SpecialWorkspaceTests (circular)', () => {
  const timeSeries: WorkspaceConfigInput = { initialSize: 0, overallocationLimit: 3.0, allocationPolicy: 'OVERALLOCATE', spillPolicy: 'EXTERNAL', learningPolicy: 'FIRST_LOOP', resetPolicy: 'ENDOFBUFFER_REACHED' };

  it('testVariableTimeSeries1: EXTERNAL never rebuilds; oversize cycles pin, pins age out two steps later', () => {
    const { ws, backing } = workspace(timeSeries, 'WS1');
    cycle(ws, doubles(500), doubles(500));
    const requiredMemory = doubles(1000);
    expect(ws.info().stepNumber).toBe(0);
    expect(ws.info().spilledSize).toBe(requiredMemory);
    expect(ws.info().initialBlockSize).toBe(shiftedSize(requiredMemory));
    expect(ws.info().currentSize).toBe(ws.info().initialBlockSize * 4);

    cycle(ws, doubles(2000));
    expect(ws.info()).toMatchObject({ stepNumber: 0, spilledSize: doubles(1000), pinnedSize: doubles(2000), deviceOffset: 0, thisCycleAllocations: 0, numberOfPinnedAllocations: 1 });

    for (let e = 0; e < 4; e++) {
      for (let i = 0; i < 4; i++) {
        cycle(ws, doubles(500), doubles(500));
        expect(ws.info().deviceOffset).toBe((i + 1) * ws.info().initialBlockSize);
      }
      expect(ws.info().numberOfPinnedAllocations).toBe(e >= 2 ? 0 : 1);
    }
    expect(ws.info()).toMatchObject({ spilledSize: 0, pinnedSize: 0, numberOfPinnedAllocations: 0, numberOfExternalAllocations: 0 });

    // a long loop with a pinned allocation in every cycle
    for (let i = 0; i < 100; i++) {
      ws.enter();
      ws.alloc(doubles(500));
      ws.alloc(doubles(500));
      ws.alloc(doubles(500));
      expect(ws.info().thisCycleAllocations).toBe(doubles(1500));
      ws.leave();
    }
    expect(ws.info().spilledSize).toBe(0);
    expect(ws.info().pinnedSize).not.toBe(0);
    expect(ws.info().numberOfPinnedAllocations).not.toBe(0);
    expect(ws.info().numberOfExternalAllocations).toBe(0);

    // a clean loop: every pinned allocation is gone
    for (let i = 0; i < 100; i++) cycle(ws, doubles(500), doubles(500));
    expect(ws.info()).toMatchObject({ spilledSize: 0, pinnedSize: 0, numberOfPinnedAllocations: 0, numberOfExternalAllocations: 0 });
    expect(backing.held('pinned') + backing.held('spill')).toBe(0);
  });

  it('testVariableTimeSeries2: REALLOCATE rebuilds the ring for the bigger cycle; nothing stays outside', () => {
    const { ws, backing } = workspace({ ...timeSeries, spillPolicy: 'REALLOCATE' }, 'WS1');
    cycle(ws, doubles(500), doubles(500));
    const requiredMemory = doubles(1000);
    expect(ws.info().stepNumber).toBe(0);
    expect(ws.info().spilledSize).toBe(requiredMemory);
    expect(ws.info().initialBlockSize).toBe(shiftedSize(requiredMemory));
    expect(ws.info().currentSize).toBe(ws.info().initialBlockSize * 4);

    for (let i = 0; i < 100; i++) cycle(ws, doubles(500), doubles(500), doubles(500));
    expect(ws.info().currentSize).toBe(ws.info().initialBlockSize * 4);
    expect(ws.info().initialBlockSize).toBe(shiftedSize(doubles(1500))); // 15,608: rebuilt once
    expect(ws.info()).toMatchObject({ numberOfPinnedAllocations: 0, numberOfExternalAllocations: 0, spilledSize: 0, pinnedSize: 0 });
    expect(backing.held('workspace')).toBe(1);
    expect(backing.held('pinned') + backing.held('spill')).toBe(0);
  });
});

describe('CyclicWorkspaceTests', () => {
  it('testBasicMechanics_1: prefetch ring of 26 blocks (overallocation 25); numbers computed from §8–§9, ND4J only logs them', () => {
    const config: WorkspaceConfigInput = { minSize: 10 * MiB, overallocationLimit: 24 + 1, resetPolicy: 'ENDOFBUFFER_REACHED', learningPolicy: 'FIRST_LOOP', allocationPolicy: 'OVERALLOCATE', spillPolicy: 'REALLOCATE' };
    const { ws, backing } = workspace(config, 'randomNameHere119');
    const features = 128 * 784 * DOUBLE; // 802,816
    const labels = 128 * 10 * DOUBLE; // 10,240
    const block = shiftedSize(features + labels);
    expect(block).toBe(1_056_976);
    for (let e = 1; e <= 100; e++) {
      cycle(ws, features, labels);
      if (e === 1) expect(ws.info()).toMatchObject({ initialBlockSize: block, currentSize: 26 * block, primaryOffset: 0, numberOfExternalAllocations: 2 });
      else if (e <= 27) expect(ws.info()).toMatchObject({ primaryOffset: (e - 1) * block, numberOfExternalAllocations: 2 });
      else expect(ws.info().numberOfExternalAllocations).toBe(0); // the first wrap (cycle 28) freed the learning cycle's spills
    }
    // 26 blocks per lap from cycle 28 on: cycle 100 ends 21 blocks in; a step every 26 cycles.
    expect(ws.info()).toMatchObject({ primaryOffset: 21 * block, stepNumber: 3, cyclesCount: 100, numberOfPinnedAllocations: 0 });
    expect(backing.held('workspace')).toBe(1);
  });
});

describe('steps and pinned allocations', () => {
  it('a pinned allocation lives until the close where its step + 2 < the step count', () => {
    const { ws, backing } = workspace({ overallocationLimit: 1.0, resetPolicy: 'ENDOFBUFFER_REACHED' });
    expect(ws.stepsNumber).toBe(2);
    cycle(ws, 800); // learn: block 1048, buffer 2096
    const [pinned] = cycle(ws, 2000); // cycle 2, step 0
    expect(pinned.placement).toBe('pinned');
    const counts: number[] = [];
    const steps: number[] = [];
    for (let c = 3; c <= 8; c++) {
      cycle(ws, 800);
      counts.push(ws.info().numberOfPinnedAllocations);
      steps.push(ws.info().stepNumber);
    }
    // cycles 3..8: a step at every odd cycle; freed at the close of cycle 7 (0 + 2 < 3)
    expect(steps).toEqual([1, 1, 2, 2, 3, 3]);
    expect(counts).toEqual([1, 1, 1, 1, 0, 0]);
    expect(ws.info().pinnedSize).toBe(0);
    expect(backing.held('pinned')).toBe(0);
    expect(ws.checkAllocation(pinned)).toBe('released');
  });

  it('circular workspaces skip the leaked/outdated checks (ND4J) but not the released one', () => {
    const { ws } = workspace({ initialSize: 4096, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    const [array] = cycle(ws, 64);
    cycle(ws, 64);
    expect(ws.checkAllocation(array)).toBe('valid');
    ws.destroy();
    expect(ws.checkAllocation(array)).toBe('released');
  });

  it("an allocation the ring came round over is 'overwritten', one it has not reached yet stays valid", () => {
    // 256 bytes, no learned block: three 128-byte allocations; the third wraps onto the first.
    const { ws } = workspace({ initialSize: 256, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    const [first] = cycle(ws, 128);
    ws.enter();
    const second = ws.alloc(128);
    expect(ws.checkAllocation(first)).toBe('valid');
    const third = ws.alloc(128);
    expect(third.offset).toBe(first.offset);
    expect(ws.checkAllocation(first)).toBe('overwritten');
    expect(ws.checkAllocation(second)).toBe('valid');
    expect(ws.checkAllocation(third)).toBe('valid');
    // A copy of `first` being made over it (DuplicateArray onto its source) does not count against it.
    expect(ws.checkAllocation(first, third)).toBe('valid');
    // Part of an allocation is enough: 64 bytes wrap onto the first half of `second`.
    ws.alloc(64);
    expect(ws.checkAllocation(second)).toBe('overwritten');
    ws.leave();
    expect(() => ws.assertUsable(first, 'Cannot read array')).toThrow(/Cannot read array: Array memory was overwritten: circular workspace WS came round its ring/);
  });

  it("a learned ring: each cycle's arrays stay valid until the ring comes round to them, then stay overwritten", () => {
    // Block 168 after learning 128 bytes (×1.3 + pad), two blocks with overallocation 1.
    const { ws } = workspace({ resetPolicy: 'ENDOFBUFFER_REACHED', overallocationLimit: 1 });
    cycle(ws, 128);
    const arrays = Array.from({ length: 8 }, () => cycle(ws, 128)[0]);
    const validity = arrays.map((allocation) => ws.checkAllocation(allocation));
    expect(validity).toEqual(['overwritten', 'overwritten', 'overwritten', 'overwritten', 'overwritten', 'overwritten', 'valid', 'valid']);
  });

  it('an allocation no later lap reached stays valid however many laps the ring goes round (model test, seed 8)', () => {
    // 4096 bytes: 4000 + 16 fill lap 0; each later lap is one 4000-byte allocation at 0, which wraps
    // before reaching [4000, 4016): those bytes are never handed out again.
    const { ws } = workspace({ initialSize: 4096, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    ws.enter();
    const head = ws.alloc(4000);
    const tail = ws.alloc(16);
    expect(tail.offset).toBe(4000);
    const laps = Array.from({ length: 6 }, () => ws.alloc(4000));
    expect(laps.map((allocation) => allocation.offset)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(ws.checkAllocation(head)).toBe('overwritten');
    expect(laps.map((allocation) => ws.checkAllocation(allocation))).toEqual(['overwritten', 'overwritten', 'overwritten', 'overwritten', 'overwritten', 'valid']);
    expect(ws.checkAllocation(tail)).toBe('valid');
    ws.leave();
    expect(() => ws.assertUsable(tail, 'Cannot read array')).not.toThrow();
    // Once a lap reaches it, it is overwritten for good.
    ws.enter();
    expect(ws.alloc(4000).offset).toBe(0);
    expect(ws.checkAllocation(tail)).toBe('valid');
    expect(ws.alloc(32).offset).toBe(4000);
    expect(ws.checkAllocation(tail)).toBe('overwritten');
    for (let lap = 0; lap < 4; lap++) ws.alloc(4000);
    expect(ws.checkAllocation(tail)).toBe('overwritten');
    ws.leave();
  });

  it("a FULL workspace's host side wraps on its own: a mirror the host ring came round over is 'overwritten'", () => {
    const { ws } = workspace({ initialSize: 256, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    ws.enter();
    const mirrorA = ws.alloc(128, { kind: 'HOST' });
    ws.alloc(128, { kind: 'HOST' });
    expect(ws.checkAllocation(mirrorA)).toBe('valid');
    ws.alloc(128, { kind: 'HOST' });
    expect(ws.checkAllocation(mirrorA)).toBe('overwritten');
    ws.leave();
  });
});

describe('requests larger than the ring (DESIGN.md §4)', () => {
  it('learning NONE: a request larger than the buffer spills (ND4J recursed forever); the ring is left as it was', () => {
    const { ws, backing } = workspace({ initialSize: 1024, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    ws.enter();
    ws.alloc(512);
    const big = ws.alloc(4096);
    expect(big).toMatchObject({ placement: 'spill', bytes: 4096 });
    expect(ws.info()).toMatchObject({ primaryOffset: 512, spilledSize: 4096, numberOfExternalAllocations: 1 });
    expect(ws.alloc(256).offset).toBe(512);
    ws.leave();
    expect(backing.held('spill')).toBe(1);
  });

  it('no block learned yet (FIRST_LOOP with an initial size never learns; OVER_TIME before its cycle): a request larger than the buffer spills too (ND4J recursed forever)', () => {
    for (const learning of [{ learningPolicy: 'FIRST_LOOP' }, { learningPolicy: 'OVER_TIME', cyclesBeforeInitialization: 3 }]) {
      const { ws, backing } = workspace({ initialSize: 1024, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT', ...learning });
      cycle(ws, 512);
      expect(ws.info()).toMatchObject({ currentSize: 1024, initialBlockSize: 0, primaryOffset: 512 });
      ws.enter();
      expect(ws.alloc(4096)).toMatchObject({ placement: 'spill', bytes: 4096 });
      expect(ws.info()).toMatchObject({ primaryOffset: 512, spilledSize: 4096, numberOfExternalAllocations: 1 });
      ws.leave();
      expect(backing.held('spill')).toBe(1);
    }
  });

  it('learning NONE with FAIL: WORKSPACE_FULL, nothing changed', () => {
    const { ws } = workspace({ initialSize: 1024, resetPolicy: 'ENDOFBUFFER_REACHED', allocationPolicy: 'STRICT', learningPolicy: 'NONE', spillPolicy: 'FAIL' });
    ws.enter();
    ws.alloc(1000);
    const before = ws.info();
    let error: unknown;
    try {
      ws.alloc(2048);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TensormemError);
    expect((error as TensormemError).reason).toBe('WORKSPACE_FULL');
    expect(ws.info()).toEqual(before);
    // a request that fits after a wrap still wraps
    expect(ws.alloc(512).offset).toBe(0);
    ws.leave();
  });

  it('a learned block above a maxSize-capped buffer: a request between the two spills instead of wrapping forever', () => {
    const { ws } = workspace({ maxSize: 1000, allocationPolicy: 'STRICT', resetPolicy: 'ENDOFBUFFER_REACHED' });
    cycle(ws, 800);
    expect(ws.info()).toMatchObject({ initialBlockSize: 1048, currentSize: 1000 });
    ws.enter();
    expect(ws.alloc(1008).placement).toBe('spill');
    ws.leave();
  });
});
