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
import { ModelBacking, ModelError, ModelRefusal, MScope, MWorkspace, count, poolBytes, randomConfig, stats } from '../helpers/workspace-model';
import type { MAlloc, ModelConfig, Side } from '../helpers/workspace-model';

// The reference model is in test/helpers/workspace-model.ts.

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
