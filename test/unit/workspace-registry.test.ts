/**
 * WorkspaceRegistry: one owner's workspaces and scope stack (ND4J's per-thread workspace manager).
 * Ports ND4J's WorkspaceProviderTests (nesting, borrowing, scope-out), BasicWorkspaceTests' nesting
 * cases (leverageTo, out of scope, breakout) and SpecialWorkspaceTests.testWorkspaceOrder_1, with ND4J's
 * numbers; and the registry's own contract (ALREADY_EXISTS, NOT_FOUND, destroy rules).
 *
 * `Nd4j.create(n)` in ND4J's tests allocates 8·n bytes (DOUBLE) in the current workspace, or outside
 * every workspace when none is current: `create` below does the same.
 */
import { describe, expect, it, vi } from 'vitest';
import { OutOfMemoryError, TensormemError } from '../../src/errors';
import type { Block } from '../../src/memory/memory-resource';
import type { Workspace, WorkspaceAllocation } from '../../src/memory/workspace';
import type { WorkspaceBacking, WorkspaceBufferRequest } from '../../src/memory/workspace-backing';
import { WorkspaceRegistry } from '../../src/memory/workspace-registry';
import { MAX_SCOPE_DEPTH } from '../../src/memory/workspace-scope';
import type { WorkspaceConfigInput } from '../../src/memory/workspace-config';
import { MiB } from '../../src/units';

const DOUBLE = 8;
const FLOAT = 4;

class FakeBacking implements WorkspaceBacking {
  readonly live = new Set<Block>();
  allocations = 0;
  refuse = false;
  private nextHandle = 1;

  allocateBuffer(request: WorkspaceBufferRequest): Block {
    if (this.refuse) throw new OutOfMemoryError({ memory: request.location, requestedBytes: request.bytes, capName: 'test cap', capBytes: 0, usedBytes: 0, largestFreeBlockBytes: 0 });
    this.allocations++;
    const block: Block = { chunkHandle: this.nextHandle++, offset: 0, bytes: request.bytes, requestedBytes: request.bytes, owner: { purpose: request.purpose } };
    this.live.add(block);
    return block;
  }

  free(block: Block): void {
    if (!this.live.delete(block)) throw new Error(`free of a block that is not held (chunk ${block.chunkHandle})`);
  }

  get liveBytes(): number {
    let bytes = 0;
    for (const block of this.live) bytes += block.bytes;
    return bytes;
  }
}

function registry(): { reg: WorkspaceRegistry; backing: FakeBacking } {
  const backing = new FakeBacking();
  let next = 0;
  return { reg: new WorkspaceRegistry({ backing, newWorkspaceId: () => `ws-${++next}` }), backing };
}

/** Nd4j.create: in the current workspace, or undefined (not attached) outside every workspace. */
function create(reg: WorkspaceRegistry, bytes: number): WorkspaceAllocation | undefined {
  return reg.current?.alloc(bytes);
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

// WorkspaceProviderTests
const basicConfiguration: WorkspaceConfigInput = { initialSize: 81920, overallocationLimit: 0.1, spillPolicy: 'EXTERNAL', learningPolicy: 'NONE', mirroringPolicy: 'FULL', allocationPolicy: 'OVERALLOCATE' };
const loopConfiguration: WorkspaceConfigInput = { initialSize: 0, overallocationLimit: 0.1, spillPolicy: 'EXTERNAL', learningPolicy: 'OVER_TIME', mirroringPolicy: 'FULL', allocationPolicy: 'STRICT' };
const firstConfiguration: WorkspaceConfigInput = { ...loopConfiguration, learningPolicy: 'FIRST_LOOP' };
// BasicWorkspaceTests
const basicConfig: WorkspaceConfigInput = { initialSize: 10 * MiB, maxSize: 10 * MiB, overallocationLimit: 0.1, allocationPolicy: 'STRICT', learningPolicy: 'FIRST_LOOP', mirroringPolicy: 'FULL', spillPolicy: 'EXTERNAL' };

describe('WorkspaceProviderTests: nesting, borrowing, scope-out', () => {
  it('testNestedWorkspacesOverlap2: a borrowed outer workspace takes the copy; leaving the borrow restores the inner one', () => {
    const { reg } = registry();
    reg.setDefaultConfig(basicConfiguration);
    expect(reg.exists('WS1')).toBe(false);
    expect(reg.exists('WS2')).toBe(false);
    const ws1 = reg.create('WS1').enter();
    expect(ws1.info().currentSize).toBe(90112);
    create(reg, 5 * DOUBLE);
    const reqMem = 5 * DOUBLE;
    expect(ws1.info().primaryOffset).toBe(reqMem + (reqMem % 16));
    const ws2 = reg.create('WS2').enter();
    create(reg, 5 * DOUBLE);
    expect(ws1.info().primaryOffset).toBe(reqMem + (reqMem % 16));
    expect(ws2.info().primaryOffset).toBe(reqMem + (reqMem % 16));
    const ws3 = reg.create('WS1').borrow();
    expect(ws3).toBe(ws1);
    expect(reg.current).toBe(ws1);
    const array3 = create(reg, 5 * DOUBLE)!; // array2.unsafeDuplication()
    expect(array3.workspaceId).toBe(ws1.workspaceId);
    expect(ws2.info().primaryOffset).toBe(reqMem + (reqMem % 16));
    expect(ws1.info().primaryOffset).toBe((reqMem + (reqMem % 16)) * 2);
    ws3.leave();
    expect(reg.current).toBe(ws2);
    expect(ws2.info().primaryOffset).toBe(reqMem + (reqMem % 16));
    expect(ws1.info().primaryOffset).toBe((reqMem + (reqMem % 16)) * 2);
    ws2.leave();
    ws1.leave();
    expect(reg.current).toBeNull();
  });

  it('testNestedWorkspacesOverlap1 (FLOAT): 20 bytes align to 32; the borrowed workspace doubles to 64', () => {
    const { reg } = registry();
    reg.setDefaultConfig(basicConfiguration);
    const ws1 = reg.create('WS1').enter();
    create(reg, 5 * FLOAT);
    const reqMem = 5 * FLOAT;
    const aligned = reqMem + (16 - (reqMem % 16));
    expect(ws1.info().primaryOffset).toBe(aligned);
    const ws2 = reg.create('WS2').enter();
    create(reg, 5 * FLOAT);
    expect(ws1.info().primaryOffset).toBe(aligned);
    expect(ws2.info().primaryOffset).toBe(aligned);
    reg.create('WS1').borrow();
    create(reg, 5 * FLOAT);
    expect(ws2.info().primaryOffset).toBe(aligned);
    expect(ws1.info().primaryOffset).toBe(aligned * 2);
    ws1.leave();
    ws2.leave();
    ws1.leave();
    expect(reg.current).toBeNull();
  });

  it('testNestedWorkspaces1/3/4: each workspace keeps its own offset; closing restores the outer one; all reset at the end', () => {
    const { reg } = registry();
    reg.setDefaultConfig(basicConfiguration);
    const ws1 = reg.create('WS1').enter();
    create(reg, 100 * DOUBLE);
    expect(ws1.info().primaryOffset).toBe(100 * DOUBLE);
    const ws2 = reg.create('WS2').enter();
    expect(ws2.info().primaryOffset).toBe(0);
    create(reg, 100 * DOUBLE);
    const ws3 = reg.create('WS3').enter();
    create(reg, 100 * DOUBLE);
    expect([ws1, ws2, ws3].map((ws) => ws.info().primaryOffset)).toEqual([800, 800, 800]);
    ws3.leave();
    create(reg, 100 * DOUBLE);
    expect(ws2.info().primaryOffset).toBe(200 * DOUBLE);
    ws2.leave();
    create(reg, 100 * DOUBLE); // "this allocation should happen within top-level workspace"
    expect(ws1.info().primaryOffset).toBe(200 * DOUBLE);
    ws1.leave();
    expect([ws1, ws2, ws3].map((ws) => ws.info().primaryOffset)).toEqual([0, 0, 0]);
    expect(reg.current).toBeNull();
  });

  it('testNestedWorkspaces2: 100 cycles of an inner OVER_TIME workspace; lastCycleAllocations = x·8 + (x·8 % 16); then 800', () => {
    const { reg } = registry();
    reg.setDefaultConfig(basicConfiguration);
    const ws1 = reg.create('WS1').enter();
    create(reg, 100 * DOUBLE);
    expect(ws1.info().primaryOffset).toBe(100 * DOUBLE);
    for (let x = 1; x <= 100; x++) {
      reg.create('WS2', loopConfiguration).enter();
      create(reg, x * DOUBLE);
      reg.create('WS2').leave();
      const reqMemory = x * DOUBLE;
      expect(reg.getByName('WS2').info().lastCycleAllocations).toBe(reqMemory + (reqMemory % 16));
    }
    reg.getByName('WS2').initializeWorkspace();
    expect(reg.getByName('WS2').info().currentSize).toBe(100 * DOUBLE);
    ws1.leave();
    expect(reg.current).toBeNull();
  });

  it('testNestedWorkspaces5: entering the current workspace again nests: offsets add up (1600, then 2400)', () => {
    const { reg } = registry();
    reg.setDefaultConfig(basicConfiguration);
    const ws1 = reg.create('WS1').enter();
    create(reg, 100 * DOUBLE);
    const ws2 = reg.create('WS1').enter();
    expect(ws2).toBe(ws1);
    create(reg, 100 * DOUBLE);
    ws2.leave();
    expect(ws1.scopeActive).toBe(true);
    expect(reg.current).toBe(ws1);
    expect(ws1.info().primaryOffset).toBe(200 * DOUBLE);
    create(reg, 100 * DOUBLE);
    expect(ws1.info().primaryOffset).toBe(300 * DOUBLE);
    ws1.leave();
    expect(reg.current).toBeNull();
    expect(ws1.info().cyclesCount).toBe(1);
  });

  it('testNestedWorkspaces6: a borrow attaches to the outer workspace, scope-out to none; the outer stays unlearned while open', () => {
    const { reg } = registry();
    const external = reg.getAndActivate('External', firstConfiguration);
    create(reg, 10 * DOUBLE);
    const feedForward = reg.getAndActivate('FeedForward', firstConfiguration);
    const array2 = create(reg, 10 * DOUBLE)!;
    expect(array2.workspaceId).toBe(feedForward.workspaceId);
    reg.create('External').borrow();
    const array3 = create(reg, 10 * DOUBLE)!;
    expect(array3.workspaceId).toBe(external.workspaceId);
    external.leave();
    expect(external.checkAllocation(array3)).toBe('valid');
    const left = reg.scopeOut();
    expect(left).toBe(feedForward);
    expect(create(reg, 10 * DOUBLE)).toBeUndefined(); // array4 is not attached
    feedForward.leave(); // ends the out-of-scope block
    expect(reg.current).toBe(feedForward);
    feedForward.leave();
    expect(external.info().currentSize).toBe(0);
    expect(feedForward.info().currentSize).toBe(10 * DOUBLE);
    external.leave();
    expect(external.info().currentSize).toBe(20 * DOUBLE);
  });

  it('testNestedWorkspaces7: scope-out inside a borrow, then back to the borrowed workspace', () => {
    const { reg } = registry();
    const external = reg.getAndActivate('External', basicConfiguration);
    create(reg, 10 * DOUBLE);
    const feedForward = reg.getAndActivate('FeedForward', basicConfiguration);
    expect(create(reg, 10 * DOUBLE)!.workspaceId).toBe(feedForward.workspaceId);
    const borrowed = reg.create('External').borrow();
    const array3 = create(reg, 10 * DOUBLE)!;
    expect(array3.workspaceId).toBe(external.workspaceId);
    expect(reg.scopeOut()).toBe(external);
    const array4 = create(reg, 10 * DOUBLE);
    external.leave();
    const array5 = create(reg, 10 * DOUBLE)!;
    expect(array4).toBeUndefined();
    expect(array5.workspaceId).toBe(external.workspaceId);
    borrowed.leave();
    expect(reg.current).toBe(feedForward);
    expect(external.checkAllocation(array3)).toBe('valid');
    expect(external.checkAllocation(array5)).toBe('valid');
    feedForward.leave();
    external.leave();
  });

  it('testNestedWorkspaces10: nested entry and a borrow of the same workspace, nine times over', () => {
    const { reg } = registry();
    for (let x = 1; x < 10; x++) {
      const ws1 = reg.getAndActivate('WS_1', basicConfiguration);
      create(reg, 100 * x * DOUBLE);
      const ws2 = reg.getAndActivate('WS_1', basicConfiguration);
      create(reg, 100 * x * DOUBLE);
      const ws3 = reg.create('WS_1', basicConfiguration).borrow();
      create(reg, 100 * x * DOUBLE);
      expect(ws1.info().primaryOffset).toBe(300 * x * DOUBLE);
      ws3.leave();
      ws2.leave();
      ws1.leave();
    }
    expect(reg.getByName('WS_1').info()).toMatchObject({ cyclesCount: 9, generationId: 9, primaryOffset: 0 });
    expect(reg.current).toBeNull();
  });

  it('testNewWorkspace1 / testMultithreading1: the same name is one workspace per owner, and another per other owner', () => {
    const { reg } = registry();
    const workspace1 = reg.create('DefaultWorkspace');
    expect(reg.create('DefaultWorkspace')).toBe(workspace1);
    const other = registry().reg;
    const workspace2 = other.create('DefaultWorkspace');
    expect(workspace2).not.toBe(workspace1);
    expect(workspace2.scope).not.toBe(workspace1.scope);
  });
});

describe('SpecialWorkspaceTests.testWorkspaceOrder_1', () => {
  it('current workspace through borrow and scope-out: outer, none, outer, inner, outer, none', () => {
    const { reg } = registry();
    const conf: WorkspaceConfigInput = { initialSize: 1_000_000, overallocationLimit: 0.05, learningPolicy: 'NONE' };
    const res: Array<string | null> = [];
    const current = () => res.push(reg.current?.name ?? null);
    const ws = reg.getAndActivate('outer', conf);
    const ws2 = reg.getAndActivate('inner', conf);
    const ws3 = ws.borrow();
    current(); // X: outer
    const ws4 = reg.scopeOut()!;
    current(); // A: none
    ws4.leave();
    current(); // B: outer
    ws3.leave();
    current(); // C: inner
    ws2.leave();
    current(); // D: outer
    ws.leave();
    current(); // E: none
    expect(res).toEqual(['outer', null, 'outer', 'inner', 'outer', null]);
  });
});

describe('BasicWorkspaceTests: nesting', () => {
  it('testLeverageTo1 / testLeverage1: a copy into the outer workspace moves only its offset', () => {
    const { reg } = registry();
    const wsOne = reg.getAndActivate('EXT', basicConfig);
    expect(wsOne.info().primaryOffset).toBe(0);
    create(reg, 5 * DOUBLE);
    const wsTwo = reg.getAndActivate('INT', basicConfig);
    create(reg, 5 * DOUBLE);
    const reqMemory = 5 * DOUBLE;
    expect(wsOne.info().primaryOffset).toBe(reqMemory + (reqMemory % 16));
    const copy = reg.getByName('EXT').alloc(reqMemory); // array2.leverageTo("EXT")
    expect(copy.workspaceId).toBe(wsOne.workspaceId);
    expect(wsOne.info().primaryOffset).toBe((reqMemory + (reqMemory % 16)) * 2);
    expect(wsTwo.info().primaryOffset).toBe(reqMemory + (reqMemory % 16));
    wsTwo.leave();
    expect(wsOne.checkAllocation(copy)).toBe('valid');
    wsOne.leave();
  });

  it('testOutOfScope1: a scope-out block attaches nothing; leaving it makes the workspace current again', () => {
    const { reg } = registry();
    const wsOne = reg.getAndActivate('EXT', basicConfig);
    create(reg, 5 * DOUBLE);
    const reqMemory = 5 * DOUBLE;
    expect(wsOne.info().primaryOffset).toBe(reqMemory + (reqMemory % 16));
    const block = reg.scopeOut()!;
    const array2 = create(reg, 5 * DOUBLE);
    block.leave();
    expect(array2).toBeUndefined();
    expect(reg.current).toBe(wsOne);
    create(reg, 5 * DOUBLE);
    expect(wsOne.info().primaryOffset).toBe((reqMemory + (reqMemory % 16)) * 2);
    wsOne.leave();
    expect(reg.scopeOut()).toBeNull(); // nothing current: nothing to scope out of
    expect(reg.scope.frames.length).toBe(0);
  });

  it('testBreakout1/2: a scope left on the way out of an error restores "no workspace"; the array stays attached', () => {
    const { reg } = registry();
    let attached: WorkspaceAllocation | undefined;
    expect(() => {
      const ws = reg.getAndActivate('EXT', basicConfig);
      try {
        attached = create(reg, 10 * DOUBLE);
        throw new Error('breakout');
      } finally {
        ws.leave();
      }
    }).toThrow('breakout');
    expect(reg.current).toBeNull();
    expect(attached!.workspaceId).toBe(reg.getByName('EXT').workspaceId);
    expect(reg.getByName('EXT').checkAllocation(attached!)).toBe('leaked');
  });
});

describe('WorkspaceRegistry contract', () => {
  it('finds workspaces by id and name, lists them in creation order, and says NOT_FOUND otherwise', () => {
    const { reg } = registry();
    const a = reg.create('a', { initialSize: 1024 });
    const b = reg.create('b');
    expect(a.workspaceId).toBe('ws-1');
    expect(reg.get('ws-2')).toBe(b);
    expect(reg.getByName('a')).toBe(a);
    expect(reg.list()).toEqual([a, b]);
    expect(reg.size).toBe(2);
    const error = thrown(() => reg.get('ws-9'));
    expect(error.kind).toBe('NOT_FOUND');
    expect(error.reason).toBe('WORKSPACE_NOT_FOUND');
    expect(thrown(() => reg.getByName('c')).kind).toBe('NOT_FOUND');
    expect(reg.find('ws-9')).toBeUndefined();
    expect(reg.existsAndActive('a')).toBe(false);
    a.enter();
    expect(reg.existsAndActive('a')).toBe(true);
    a.leave();
  });

  it('the same name with a different configuration is ALREADY_EXISTS naming the difference (DESIGN.md §4; ND4J ignored it)', () => {
    const { reg } = registry();
    const ws = reg.create('WS', { initialSize: 1024 });
    expect(reg.create('WS', { initialSize: 1024, allocationPolicy: 'ALLOCATION_POLICY_OVERALLOCATE' })).toBe(ws);
    expect(reg.create('WS')).toBe(ws);
    const error = thrown(() => reg.create('WS', { initialSize: 2048 }));
    expect(error.kind).toBe('ALREADY_EXISTS');
    expect(error.message).toContain('config.initial_size 1024 (requested 2048)');
    expect(error.metadata.workspace_id).toBe(ws.workspaceId);
    expect(reg.size).toBe(1);
  });

  it('an overallocation_limit of -0 is the same configuration as 0 (a double may carry either), not ALREADY_EXISTS', () => {
    const { reg } = registry();
    const ws = reg.create('WS', { overallocationLimit: 0 });
    expect(reg.create('WS', { overallocationLimit: -0 })).toBe(ws);
    const negativeZero = reg.create('WS2', { overallocationLimit: -0 });
    expect(Object.is(negativeZero.config.overallocationLimit, 0)).toBe(true);
    expect(reg.create('WS2', { overallocationLimit: 0 })).toBe(negativeZero);
  });

  it('new workspaces without a configuration take the default one; setDefaultConfig changes it', () => {
    const { reg } = registry();
    expect(reg.create('plain').config.overallocationLimit).toBe(0.3);
    reg.setDefaultConfig(basicConfiguration);
    expect(reg.create('basic').info().currentSize).toBe(90112);
  });

  it('bad names and bad configurations are INVALID_ARGUMENT and register nothing; a backing refusal registers nothing', () => {
    const { reg, backing } = registry();
    expect(thrown(() => reg.create('')).metadata.field).toBe('name');
    expect(thrown(() => reg.create('x'.repeat(257))).metadata.field).toBe('name');
    expect(thrown(() => reg.create('bad', { initialSize: -5 })).metadata.field).toBe('config.initial_size');
    backing.refuse = true;
    expect(() => reg.create('big', { initialSize: MiB })).toThrow(OutOfMemoryError);
    expect(reg.size).toBe(0);
    expect(reg.exists('big')).toBe(false);
  });

  it("borrowing a borrowed workspace is refused with ND4J's message", () => {
    const { reg } = registry();
    const ws = reg.create('WS1');
    ws.borrow();
    const error = thrown(() => ws.borrow());
    expect(error.kind).toBe('FAILED_PRECONDITION');
    expect(error.message).toBe("Workspace [WS1]: Can't borrow from borrowed workspace");
    ws.leave();
    expect(ws.borrowed).toBe(false);
  });

  it('only the innermost scope can be left; entering a workspace open further out is refused (borrow it)', () => {
    const { reg } = registry();
    const ws1 = reg.getAndActivate('WS1');
    const ws2 = reg.getAndActivate('WS2');
    const wrongOrder = thrown(() => ws1.leave());
    expect(wrongOrder.kind).toBe('FAILED_PRECONDITION');
    expect(wrongOrder.message).toContain('leave "WS2" first');
    const reentry = thrown(() => ws1.enter());
    expect(reentry.kind).toBe('FAILED_PRECONDITION');
    expect(reentry.message).toContain('Borrow it');
    expect(ws1.info().generationId).toBe(1);
    expect(reg.current).toBe(ws2);
    reg.leave(ws2.workspaceId);
    reg.leave(ws1.workspaceId);
    expect(thrown(() => reg.leave(ws1.workspaceId)).message).toContain('has no open scope to leave');
    expect(ws1.info().cyclesCount).toBe(1);
  });

  it('scopes are a stack: leaving a scope-out or a borrow inside a re-entry of the same workspace restores what was current when it opened (ND4J counted all three in one tagScope)', () => {
    const { reg } = registry();
    const a = reg.getAndActivate('A', basicConfiguration);
    reg.getAndActivate('A', basicConfiguration); // re-entry: nests
    expect(reg.scopeOut()).toBe(a);
    expect(create(reg, 2 * DOUBLE)).toBeUndefined();
    a.leave(); // ends the scope-out block only; ND4J (tagScope 2 -> 1) left nothing current here
    expect(reg.current).toBe(a);
    expect(create(reg, 2 * DOUBLE)!.workspaceId).toBe(a.workspaceId);
    const b = reg.getAndActivate('B', basicConfiguration);
    a.borrow();
    expect(create(reg, 2 * DOUBLE)!.workspaceId).toBe(a.workspaceId);
    a.leave(); // ends the borrow; ND4J (borrowed, tagScope 1 -> 0) kept A current and the borrow open
    expect(reg.current).toBe(b);
    expect(a.borrowed).toBe(false);
    b.leave();
    a.leave(); // the re-entry
    expect(a.info()).toMatchObject({ cyclesCount: 0, scopeActive: true });
    a.leave();
    expect(a.info()).toMatchObject({ cyclesCount: 1, scopeActive: false });
    expect(reg.current).toBeNull();
  });

  it('setCurrent makes a workspace current without entering it; a foreign one is refused', () => {
    const { reg } = registry();
    const ws = reg.create('WS', { initialSize: 4096 });
    reg.setCurrent(ws);
    expect(create(reg, 64)!.offset).toBe(0);
    expect(ws.scopeActive).toBe(false);
    const foreign = registry().reg.create('WS');
    expect(thrown(() => reg.setCurrent(foreign)).kind).toBe('INVALID_ARGUMENT');
    reg.setCurrent(null);
    expect(reg.current).toBeNull();
  });

  it('destroy is refused while an open scope involves the workspace; afterwards it gives back everything', () => {
    const { reg, backing } = registry();
    const outer = reg.getAndActivate('outer', { initialSize: 4096 });
    const inner = reg.create('inner', { initialSize: 4096 });
    inner.borrow();
    expect(thrown(() => reg.destroy(inner.workspaceId)).kind).toBe('FAILED_PRECONDITION');
    inner.leave();
    reg.scopeOut();
    expect(thrown(() => reg.destroy(outer.workspaceId)).message).toContain('has an open scope');
    outer.leave();
    outer.leave();
    reg.setCurrent(inner);
    reg.destroy(inner.workspaceId);
    expect(reg.current).toBeNull();
    expect(inner.isDestroyed).toBe(true);
    expect(reg.find(inner.workspaceId)).toBeUndefined();
    expect(reg.exists('inner')).toBe(false);
    expect(thrown(() => reg.destroy(inner.workspaceId)).kind).toBe('NOT_FOUND');
    // the name is free again
    expect(reg.create('inner', { initialSize: 1024 }).workspaceId).not.toBe(inner.workspaceId);
    expect(backing.live.size).toBe(2);
  });

  it('destroy is refused for a workspace an open scope returns to (made current by setCurrent, then another entered)', () => {
    const { reg } = registry();
    const set = reg.create('set', { initialSize: 4096 });
    const entered = reg.create('entered', { initialSize: 4096 });
    reg.setCurrent(set);
    reg.enter(entered.workspaceId); // leaving it makes "set" current again
    expect(thrown(() => reg.destroy(set.workspaceId)).message).toContain('has an open scope');
    reg.leave(entered.workspaceId);
    expect(reg.current).toBe(set);
    expect(create(reg, 64)!.workspaceId).toBe(set.workspaceId); // not a destroyed workspace's FAILED_PRECONDITION
    reg.destroy(set.workspaceId);
    expect(reg.current).toBeNull();
  });

  it('destroyAll closes every scope, destroys every workspace and says how many backing bytes came back', () => {
    const { reg, backing } = registry();
    const a = reg.getAndActivate('a', { initialSize: 4096, allocationPolicy: 'STRICT', learningPolicy: 'NONE' });
    create(reg, 8192); // a spill
    reg.getAndActivate('b', { initialSize: 1024, allocationPolicy: 'STRICT' });
    const held = backing.liveBytes;
    expect(held).toBe(4096 + 1024 + 8192 + 1024 + 1024);
    expect(reg.destroyAll()).toBe(held);
    expect(backing.live.size).toBe(0);
    expect(reg.size).toBe(0);
    expect(reg.current).toBeNull();
    expect(reg.scope.frames.length).toBe(0);
    expect(a.isDestroyed).toBe(true);
  });

  it('assertUsable lists the open workspaces as ND4J does; an allocation of a destroyed workspace is released', () => {
    const { reg } = registry();
    const ws = reg.getAndActivate('testInvalidLeverage', basicConfig);
    const array = create(reg, 10 * DOUBLE)!;
    ws.leave();
    reg.getAndActivate('testInvalidLeverage2', basicConfig);
    const error = thrown(() => reg.assertUsable(array, 'Cannot leverage array'));
    expect(error.reason).toBe('ARRAY_OUT_OF_SCOPE');
    expect(error.message).toBe('Cannot leverage array: Array uses leaked workspace pointer from workspace testInvalidLeverage\nAll open workspaces: [testInvalidLeverage2]');
    reg.destroy(ws.workspaceId);
    const released = thrown(() => reg.assertUsable(array, 'Cannot read array'));
    expect(released.reason).toBe('ARRAY_OUT_OF_SCOPE');
    expect(released.metadata.validity).toBe('released');
  });

  it('assertUsable of a usable allocation takes no pass over the workspaces (it runs on every access of an attached array)', () => {
    const { reg } = registry();
    for (let i = 0; i < 1000; i++) reg.create(`other-${i}`, basicConfig);
    const ws = reg.getAndActivate('hot', basicConfig);
    const array = create(reg, 10 * DOUBLE)!;
    // The open workspaces' names are for a refusal's message only: listing them on every check cost a
    // lease with 1000 workspaces about 0.3 ms a WriteArray (40 % of a small write).
    const listed = vi.spyOn(reg, 'openWorkspaceNames');
    for (let i = 0; i < 100; i++) reg.assertUsable(array, 'Cannot read array');
    expect(listed).not.toHaveBeenCalled();
    ws.leave();
    reg.getAndActivate('other-7', basicConfig);
    expect(thrown(() => reg.assertUsable(array, 'Cannot read array')).message).toMatch(/leaked workspace pointer from workspace hot\nAll open workspaces: \[other-7\]$/);
    expect(listed).toHaveBeenCalledTimes(1);
  });

  it('workspaces of one registry share its scope; allocations follow the current workspace only', () => {
    const { reg } = registry();
    const ws1: Workspace = reg.create('A', { initialSize: 4096 });
    const ws2: Workspace = reg.create('B', { initialSize: 4096 });
    expect(ws1.scope).toBe(reg.scope);
    expect(ws2.scope).toBe(reg.scope);
    reg.enter(ws1.workspaceId);
    reg.enter(ws2.workspaceId);
    create(reg, 100);
    expect([ws1.info().primaryOffset, ws2.info().primaryOffset]).toEqual([0, 112]);
    reg.borrow(ws1.workspaceId);
    create(reg, 100);
    expect([ws1.info().primaryOffset, ws2.info().primaryOffset]).toEqual([112, 112]);
    reg.leave(ws1.workspaceId);
    reg.leave(ws2.workspaceId);
    reg.leave(ws1.workspaceId);
    expect(reg.openWorkspaceNames()).toEqual([]);
  });
});

describe('scope depth', () => {
  it('refuses a scope past MAX_SCOPE_DEPTH open scopes of one owner (enter again, borrow, scope out), naming the depth; leaving one lets the next in', () => {
    const { reg } = registry();
    const outer = reg.create('outer', basicConfiguration);
    const inner = reg.create('inner', basicConfiguration);
    outer.enter();
    inner.enter();
    expect(reg.scope.frames.length).toBe(2);
    // Entering the current workspace again only nests: without a bound each call added a frame for good.
    for (let depth = 2; depth < MAX_SCOPE_DEPTH; depth++) inner.enter();
    expect(reg.scope.frames.length).toBe(MAX_SCOPE_DEPTH);
    for (const open of [() => inner.enter(), () => outer.borrow(), () => reg.scope.scopeOutOfWorkspaces()]) {
      const error = thrown(open);
      expect(error.kind).toBe('FAILED_PRECONDITION');
      expect(error.message).toContain(`${MAX_SCOPE_DEPTH} scopes open`);
      expect(error.message).toContain(`at most ${MAX_SCOPE_DEPTH}`);
    }
    expect(reg.scope.frames.length).toBe(MAX_SCOPE_DEPTH);
    expect(reg.current).toBe(inner);
    inner.leave();
    outer.borrow();
    expect(reg.scope.frames.length).toBe(MAX_SCOPE_DEPTH);
    outer.leave();
    for (let depth = MAX_SCOPE_DEPTH - 1; depth > 0; depth--) reg.current!.leave();
    expect(reg.scope.frames.length).toBe(0);
    expect(reg.current).toBeNull();
  });
});
