/**
 * Model-based check of AcquireCudnnWorkspace (the WorkspaceService's handler, in-process on the host
 * backend): random sequences of AcquireCudnnWorkspace in every mode (with and without a descriptor,
 * good and bad), AllocateArray / FreeArray of other arrays, FreeArray of the scratch and CloseLease, over
 * two devices and tenants with a device quota, a device guarantee and neither, against a reference model
 * written from the docs, not from the implementation:
 *
 * - DESIGN.md §4: "when a cuDNN library can be loaded at run time, the size comes from cuDNN for the given
 *   convolution descriptor and mode; otherwise from the caller's requested bytes. PREFER_FASTEST falls
 *   back to the fastest algorithm whose workspace fits the caller's lease, and says so in the reply;
 *   NO_WORKSPACE is zero bytes; the scratch is grow-only per lease and device, as in DL4J."
 * - README "cuDNN workspaces (AcquireCudnnWorkspace)": "On the host backend, without cuDNN, or when cuDNN
 *   itself fails (no driver), the size is `requested_bytes` and `reason` says why"; the budget is "the pool
 *   cap's headroom less other tenants' unused guarantees, or the tenant's device quota's headroom,
 *   whichever is smaller, plus the scratch held now"; "Grow-only: a request no larger than the scratch
 *   gets the same array; a larger one replaces it (new `array_id`, `grew`), checked against the caps,
 *   others' guarantees and the quota first, with the old scratch counted as given back"; a refusal is
 *   RESOURCE_EXHAUSTED with the numbers and "leaves the old scratch in place", except a request the pool
 *   then cannot place, which "comes with a new scratch of the old size"; "The scratch is freed with the
 *   lease (or by `FreeArray`)"; "Every descriptor field is validated before anything else
 *   (`INVALID_ARGUMENT` naming it ...), also where cuDNN is not used"; label "cudnn-scratch", no host mirror.
 * - reference/nd4j-semantics.md §19: the helper workspace is grow-only ("if absent or `required > capacity`,
 *   free the old one and allocate exactly `required`"; "never shrinks").
 * - proto/tensormem/v1/workspace.proto: ConvolutionDescriptor's rules, `requested_bytes` "With cuDNN it is
 *   ignored", `convolution` required where cuDNN sizes the workspace.
 *
 * A second part runs the same model with a stand-in cuDNN (an addon double answering
 * cudnnFindAlgorithms / cudnnWorkspaceSize from a table the model also reads), so that PREFER_FASTEST's
 * choice within the lease's budget, NO_WORKSPACE's and USER_SPECIFIED's sizes are checked here too.
 *
 * Bursts of AcquireCudnnWorkspace calls (and a FreeArray of the scratch) issued together on one lease
 * must answer, and leave the pools, as some order of them one at a time would. At the end of every
 * sequence every lease is closed and every device pool is back to 0 bytes.
 */
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { TensormemError } from '../../src/errors';
import type { AcquireCudnnWorkspaceRequest__Output } from '../../src/generated/tensormem/v1/AcquireCudnnWorkspaceRequest';
import type { AcquireCudnnWorkspaceResponse } from '../../src/generated/tensormem/v1/AcquireCudnnWorkspaceResponse';
import type { Lease } from '../../src/leases/lease';
import { LeaseRegistry } from '../../src/leases/lease-registry';
import { CUDNN_ALGORITHMS, type ConvolutionDirectionName } from '../../src/memory/cudnn-convolution';
import * as cudnnModule from '../../src/memory/cudnn-library';
import { givenLimits } from '../../src/memory/limits';
import { MemoryManager } from '../../src/memory/memory-manager';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import type { TensorArray } from '../../src/memory/tensor-array';
import type { CudnnAlgorithmPerf, CudnnConvolutionQuery, NativeCudnn } from '../../src/native/backend';
import { createBackend } from '../../src/native/addon';
import { arrayInfo } from '../../src/service/array-service';
import type { ServiceContext } from '../../src/service/service-context';
import { WorkspaceService } from '../../src/service/workspace-service';
import { KiB, MiB } from '../../src/units';
import { rng } from '../helpers/rng';
import { permutations } from '../helpers/permutations';
import { totalsOverSeeds } from '../helpers/seeded-totals';

/** The library the service gets: the process's own (none here) unless a test puts a stand-in in place. */
const libraryHolder: { current?: cudnnModule.CudnnLibrary } = {};
vi.mock('../../src/memory/cudnn-library', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/memory/cudnn-library')>();
  return { ...actual, cudnnLibrary: (flag: string | undefined) => libraryHolder.current ?? actual.cudnnLibrary(flag) };
});

const DEVICES = 2;
const CAP = 64 * KiB;
const QUOTA = 24 * KiB;
const GUARANTEE = 16 * KiB;
const SIZES = [0, 1, 255, 256, 257, 1000, 3000, 4096, 5000, 9000, 12288, 16384, 20000, 30000, 40000, 70000];
const OTHER_SIZES = [100, 1024, 2048, 4000, 8192, 12000];
const LABEL = 'cudnn-scratch';
const align = (bytes: number) => (bytes === 0 ? 0 : Math.ceil(bytes / 256) * 256);

type ModeName = 'CUDNN_ALGO_MODE_UNSPECIFIED' | 'CUDNN_ALGO_MODE_PREFER_FASTEST' | 'CUDNN_ALGO_MODE_NO_WORKSPACE' | 'CUDNN_ALGO_MODE_USER_SPECIFIED';
const MODES: ModeName[] = ['CUDNN_ALGO_MODE_UNSPECIFIED', 'CUDNN_ALGO_MODE_PREFER_FASTEST', 'CUDNN_ALGO_MODE_NO_WORKSPACE', 'CUDNN_ALGO_MODE_USER_SPECIFIED'];
const DIRECTIONS: Record<string, ConvolutionDirectionName> = {
  CONVOLUTION_DIRECTION_UNSPECIFIED: 'FORWARD',
  CONVOLUTION_DIRECTION_FORWARD: 'FORWARD',
  CONVOLUTION_DIRECTION_BACKWARD_DATA: 'BACKWARD_DATA',
  CONVOLUTION_DIRECTION_BACKWARD_FILTER: 'BACKWARD_FILTER',
};

type Descriptor = NonNullable<AcquireCudnnWorkspaceRequest__Output['convolution']>;
const GOOD_DESCRIPTORS: Descriptor[] = [
  { input_dims: [32, 64, 56, 56], filter_dims: [128, 64, 3, 3], pads: [1, 1], strides: [1, 1], dilations: [1, 1], data_type: 'DATA_TYPE_FLOAT32', direction: 'CONVOLUTION_DIRECTION_FORWARD', group_count: 0 },
  { input_dims: [8, 16, 28, 28], filter_dims: [32, 4, 5, 5], pads: [], strides: [2, 2], dilations: [], data_type: 'DATA_TYPE_FLOAT16', direction: 'CONVOLUTION_DIRECTION_BACKWARD_DATA', group_count: 4 },
  { input_dims: [2, 8, 8, 16, 16], filter_dims: [8, 8, 3, 3, 3], pads: [1, 1, 1], strides: [1, 1, 1], dilations: [1, 2, 2], data_type: 'DATA_TYPE_BFLOAT16', direction: 'CONVOLUTION_DIRECTION_BACKWARD_FILTER', group_count: 1 },
  { input_dims: [1, 3, 7, 7], filter_dims: [6, 3, 7, 7], pads: [0, 0], strides: [3, 1], dilations: [1, 1], data_type: 'DATA_TYPE_FLOAT64', direction: 'CONVOLUTION_DIRECTION_UNSPECIFIED', group_count: 0 },
];

/** One bad field per entry: the descriptor change and the field the refusal must name. */
const BAD_FIELDS: Array<{ field: string; change: (d: Descriptor) => Descriptor }> = [
  { field: 'convolution.input_dims', change: (d) => ({ ...d, input_dims: d.input_dims.slice(0, 3) }) },
  { field: 'convolution.input_dims[0]', change: (d) => ({ ...d, input_dims: [0, ...d.input_dims.slice(1)] }) },
  { field: 'convolution.input_dims[2]', change: (d) => ({ ...d, input_dims: [...d.input_dims.slice(0, 2), 2 ** 31, ...d.input_dims.slice(3)] }) },
  { field: 'convolution.filter_dims', change: (d) => ({ ...d, filter_dims: [...d.filter_dims, 1] }) },
  { field: 'convolution.filter_dims[0]', change: (d) => ({ ...d, filter_dims: [0, ...d.filter_dims.slice(1)] }) },
  { field: 'convolution.filter_dims[1]', change: (d) => ({ ...d, filter_dims: [d.filter_dims[0], d.filter_dims[1] + 1, ...d.filter_dims.slice(2)] }) },
  { field: 'convolution.pads', change: (d) => ({ ...d, pads: [0, 0, 0, 0, 0, 0].slice(0, d.input_dims.length - 1) }) },
  { field: 'convolution.strides', change: (d) => ({ ...d, strides: [1] }) },
  { field: 'convolution.strides[1]', change: (d) => ({ ...d, strides: d.input_dims.slice(2).map((_, i) => (i === 1 ? 0 : 1)) }) },
  { field: 'convolution.dilations[0]', change: (d) => ({ ...d, dilations: d.input_dims.slice(2).map((_, i) => (i === 0 ? 0 : 1)) }) },
  { field: 'convolution.dilations', change: (d) => ({ ...d, dilations: [1, 1, 1, 1, 1, 1].slice(0, d.input_dims.length + 1) }) },
  { field: 'convolution.data_type', change: (d) => ({ ...d, data_type: 'DATA_TYPE_INT32' }) },
  { field: 'convolution.data_type', change: (d) => ({ ...d, data_type: 77 as never }) },
  { field: 'convolution.direction', change: (d) => ({ ...d, direction: 9 as never }) },
  { field: 'convolution.group_count', change: (d) => ({ ...d, group_count: 7 }) },
];

/** The direction a descriptor (or none: FORWARD) names. */
function directionOf(d: Descriptor | null): ConvolutionDirectionName {
  return d ? DIRECTIONS[d.direction as string] : 'FORWARD';
}

interface ModelScratch {
  id: string;
  size: number;
}
interface ModelLease {
  lease: Lease;
  tenant: string;
  scratch: Array<ModelScratch | undefined>;
  others: Map<string, { device: number; size: number }>;
}

/** cuDNN as the stand-in reports it, per descriptor: its algorithm list and per-algorithm sizes, or a failure. */
interface CudnnAnswer {
  perfs: CudnnAlgorithmPerf[];
  sizes: number[];
  failure?: 'bad-param' | 'driver';
}

interface Outcome {
  scratch?: string | null;
  scratchBytes?: number;
  grew?: boolean;
  workspace_bytes?: number;
  algorithm?: string;
  fell_back?: boolean;
  size_source?: string;
  reasonHas?: string[];
  refused?: string;
  freed?: number;
}

async function run(seed: number, steps: number, withCudnn: boolean): Promise<Record<string, number>> {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const scrub = random() < 0.5;
  const backend = createBackend('host', { deviceCapacityBytes: 4 * MiB, deviceCount: DEVICES });
  const memory = new MemoryManager(backend, givenLimits(new Array(DEVICES).fill(CAP), CAP), { poolChunkBytes: pick([8 * KiB, 16 * KiB, 32 * KiB]), asyncCopyThresholdBytes: pick([512, 4096, MiB]), scrub }, new PhysicalMemoryGuard(0));
  const limits = { quota: { deviceQuotaBytes: QUOTA, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxArrays: 0, maxMappedRegions: 0 }, guaranteed: { deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: GUARANTEE, maxArrays: 0, maxMappedRegions: 0 } };
  const none = { deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxArrays: 0, maxMappedRegions: 0 };
  memory.tenants.setLimits((tenant) => limits[tenant as keyof typeof limits] ?? none);
  memory.tenants.declare(['quota', 'guaranteed']);
  const log = pino({ level: 'silent' });
  const registry = new LeaseRegistry(memory, 3_600_000, false, log);

  // The stand-in cuDNN: the model reads the same table (what "cuDNN reports").
  const answers = new Map<string, CudnnAnswer>();
  const answerFor = (query: CudnnConvolutionQuery): CudnnAnswer => {
    const key = JSON.stringify(query);
    let answer = answers.get(key);
    if (!answer) {
      const names = CUDNN_ALGORITHMS[(['FORWARD', 'BACKWARD_DATA', 'BACKWARD_FILTER'] as const)[query.direction]];
      const order = names.map((_, i) => i).sort(() => random() - 0.5).slice(0, 1 + Math.floor(random() * 4));
      const perfs = order.map((algorithm) => {
        const status = random() < 0.15 ? 9 : 0;
        return { algorithm, status, statusName: status === 0 ? 'CUDNN_STATUS_SUCCESS' : 'CUDNN_STATUS_NOT_SUPPORTED', timeMs: -1, memoryBytes: random() < 0.25 ? 0 : pick(SIZES), deterministic: true, mathType: 0 };
      });
      const r = random();
      answer = { perfs, sizes: names.map(() => pick(SIZES)), failure: r < 0.05 ? 'bad-param' : r < 0.1 ? 'driver' : undefined };
      answers.set(key, answer);
    }
    return answer;
  };
  const fail = (answer: CudnnAnswer) => {
    const error = new Error(answer.failure === 'bad-param' ? 'cudnnGetConvolutionForwardAlgorithm_v7: CUDNN_STATUS_BAD_PARAM' : 'cudnnCreate on device 0: CUDNN_STATUS_NOT_INITIALIZED') as Error & { code: string; cudaError: string };
    error.code = 'CUDA_ERROR';
    error.cudaError = answer.failure === 'bad-param' ? 'CUDNN_STATUS_BAD_PARAM' : 'CUDNN_STATUS_NOT_INITIALIZED';
    throw error;
  };
  const addonDouble: NativeCudnn = {
    cudnnLoad: () => ({ loaded: true, path: '/stand-in/libcudnn.so.9', version: 90100 }),
    cudnnFindAlgorithms: (_device, query) => {
      const answer = answerFor(query);
      if (answer.failure) fail(answer);
      return answer.perfs.map((perf) => ({ ...perf }));
    },
    cudnnWorkspaceSize: (_device, query, algorithm) => {
      const answer = answerFor(query);
      if (answer.failure) fail(answer);
      return answer.sizes[algorithm];
    },
  };
  class StandIn extends cudnnModule.CudnnLibrary {
    // The host backend has no CUDA device; the stand-in sizes anyway, as cuDNN does on the cuda backend.
    override unusableReason(): string | undefined {
      return undefined;
    }
  }
  libraryHolder.current = withCudnn ? new StandIn(addonDouble, { loaded: true, path: '/stand-in/libcudnn.so.9', version: 90100 }) : undefined;

  const context = { registry, memory, config: { rawValues: { 'cudnn-library': 'none' } }, log, stopping: new AbortController().signal } as unknown as ServiceContext;
  const service = new WorkspaceService(context) as unknown as { acquireCudnnWorkspace(lease: Lease, request: AcquireCudnnWorkspaceRequest__Output): Promise<AcquireCudnnWorkspaceResponse> };

  const leases: ModelLease[] = [];
  const openLease = (tenant: string): ModelLease => {
    const lease = registry.open({ tenant, clientName: 'cudnn-model', ttlSeconds: 0, labels: {} }).lease;
    const entry = { lease, tenant, scratch: new Array<ModelScratch | undefined>(DEVICES).fill(undefined), others: new Map() };
    leases.push(entry);
    return entry;
  };
  for (const tenant of ['open', 'quota', 'guaranteed', 'open']) openLease(tenant);
  const history: string[] = [];
  const counts: Record<string, number> = { grew: 0, created: 0, same: 0, refusedCap: 0, refusedQuota: 0, fellBack: 0, invalid: 0, poolRefusal: 0, bursts: 0, burstOrders: 0, freedScratch: 0, closed: 0, fromCudnn: 0, cudnnFailed: 0 };

  const failAt = (step: number, what: string, message: string): never => {
    throw new Error(`seed ${seed} (cudnn ${withCudnn}, scrub ${scrub}) step ${step} ${what}: ${message}\n${history.slice(-14).join('\n')}`);
  };

  // What the pools must hold, from the model alone.
  const heldOf = (l: ModelLease, device: number) => align(l.scratch[device]?.size ?? 0) + [...l.others.values()].reduce((sum, o) => sum + (o.device === device ? align(o.size) : 0), 0);
  const poolUsed = (device: number) => leases.reduce((sum, l) => sum + heldOf(l, device), 0);
  const tenantUsed = (tenant: string, device: number) => leases.filter((l) => l.tenant === tenant).reduce((sum, l) => sum + heldOf(l, device), 0);
  const othersUnusedGuarantee = (tenant: string, device: number) => (tenant === 'guaranteed' ? 0 : Math.max(0, GUARANTEE - tenantUsed('guaranteed', device)));
  /** What a new block of `aligned` bytes may take for `tenant` on `device`: the pool cap less others' guarantees, and the quota. */
  const headroom = (tenant: string, device: number) => {
    let room = Math.max(0, CAP - othersUnusedGuarantee(tenant, device) - poolUsed(device));
    if (tenant === 'quota') room = Math.min(room, Math.max(0, QUOTA - tenantUsed(tenant, device)));
    return room;
  };

  const checkState = async (step: number, what: string) => {
    memory.checkInvariants();
    for (let device = 0; device < DEVICES; device++) {
      const used = memory.deviceReports()[device].usedBytes;
      if (used !== poolUsed(device)) failAt(step, what, `device ${device} used ${used}, model ${poolUsed(device)}`);
      if (used > CAP) failAt(step, what, `device ${device} past its cap: ${used}`);
      for (const tenant of ['open', 'quota', 'guaranteed']) {
        const actual = memory.tenants.usage(tenant).deviceBytes[device];
        if (actual !== tenantUsed(tenant, device)) failAt(step, what, `tenant ${tenant} device ${device} used ${actual}, model ${tenantUsed(tenant, device)}`);
      }
      if (tenantUsed('quota', device) > QUOTA) failAt(step, what, `tenant quota past its quota on device ${device}`);
    }
    if (memory.hostReport().usedBytes !== 0) failAt(step, what, `host used ${memory.hostReport().usedBytes}: the scratch takes device memory only`);
    // GetMemorySnapshot: each scratch's block, owned by its lease and tenant, labelled "cudnn-scratch".
    const blocks = new Map<string, { pool: string; bytes: number; owner: string }>();
    for (const { pool, segments } of memory.snapshot()) {
      for (const segment of segments) for (const block of segment.blocks) if (!block.free && block.owner?.arrayId) blocks.set(block.owner.arrayId, { pool, bytes: block.bytes, owner: `${block.owner.leaseId}/${block.owner.tenant}/${block.owner.label}/${block.owner.purpose}` });
    }
    for (const l of leases) {
      for (let device = 0; device < DEVICES; device++) {
        const model = l.scratch[device];
        if (!model) continue;
        const shown = JSON.stringify(blocks.get(model.id));
        const expected = JSON.stringify({ pool: `device:${device}`, bytes: align(model.size), owner: `${l.lease.leaseId}/${l.tenant}/${LABEL}/array` });
        if (shown !== expected) failAt(step, what, `snapshot block of scratch ${model.id}: ${shown}, model ${expected}`);
      }
    }
    for (const l of leases) {
      const deviceBytes = [0, 1].reduce((sum, device) => sum + heldOf(l, device), 0);
      if (l.lease.deviceBytes() !== deviceBytes) failAt(step, what, `lease ${l.lease.leaseId} device_bytes ${l.lease.deviceBytes()}, model ${deviceBytes}`);
      const scratchIds = new Set<string>();
      for (let device = 0; device < DEVICES; device++) {
        const model = l.scratch[device];
        const held = l.lease.cudnnScratchOf(device);
        if ((held?.arrayId ?? null) !== (model?.id ?? null)) failAt(step, what, `lease ${l.lease.leaseId} device ${device} scratch ${held?.arrayId}, model ${model?.id}`);
        if (!model) continue;
        scratchIds.add(model.id);
        const info = arrayInfo(l.lease.getArray(model.id) as TensorArray);
        const shown = { byte_size: info.byte_size, shape: info.shape, data_type: info.data_type, placement: info.placement, device: info.device, label: info.label, attached: info.attached, has_host_mirror: info.has_host_mirror, held_bytes: info.held_bytes };
        const expected = { byte_size: model.size, shape: [model.size], data_type: 'DATA_TYPE_UINT8', placement: 'PLACEMENT_DEVICE', device, label: LABEL, attached: false, has_host_mirror: false, held_bytes: align(model.size) };
        if (JSON.stringify(shown) !== JSON.stringify(expected)) failAt(step, what, `scratch ${model.id}: ${JSON.stringify(shown)}, model ${JSON.stringify(expected)}`);
      }
      // ListArrays shows the scratch and the other arrays, nothing more.
      const listed = l.lease.arrayPage(0, 0).arrays.map((a) => a.arrayId).sort();
      const modelIds = [...scratchIds, ...l.others.keys()].sort();
      if (JSON.stringify(listed) !== JSON.stringify(modelIds)) failAt(step, what, `lease ${l.lease.leaseId} lists ${listed.join(',')}, model ${modelIds.join(',')}`);
    }
  };

  /** With --scrub, a scratch made for a lease holds zeros, whatever the pool's memory held before. */
  const checkZeroed = async (step: number, what: string, l: ModelLease, device: number) => {
    const model = l.scratch[device];
    if (!scrub || !model || model.size === 0) return;
    const array = l.lease.getArray(model.id) as TensorArray;
    const bytes = new Uint8Array(model.size);
    await memory.readBlock(array.deviceBlock!, 0, bytes);
    const at = bytes.findIndex((b) => b !== 0);
    if (at >= 0) failAt(step, what, `new scratch ${model.id} under --scrub holds ${bytes[at]} at byte ${at}`);
  };

  /** Dirties the memory of an array of the model (so that a later block reusing it is not zero by chance). */
  const dirty = async (array: TensorArray, size: number) => {
    if (size === 0) return;
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = 1 + Math.floor(random() * 255);
    await memory.writeBlock(array.deviceBlock!, 0, bytes);
  };

  interface AcquireOp {
    kind: 'acquire';
    device: number;
    mode: ModeName;
    convolution: Descriptor | null;
    algorithm: string;
    requested: number;
    badField?: string;
  }
  interface FreeScratchOp {
    kind: 'freeScratch';
    id: string;
  }
  type BurstOp = AcquireOp | FreeScratchOp;

  const randomAcquire = (allowBad: boolean): AcquireOp => {
    const device = random() < 0.75 ? 0 : 1;
    const mode = pick(MODES);
    const convolution: Descriptor | null = random() < (withCudnn ? 0.93 : 0.7) ? pick(GOOD_DESCRIPTORS) : null;
    const direction = directionOf(convolution);
    let algorithm = '';
    if (mode === 'CUDNN_ALGO_MODE_USER_SPECIFIED') {
      const names = CUDNN_ALGORITHMS[direction];
      const name = pick(names);
      const prefix = { FORWARD: 'CUDNN_CONVOLUTION_FWD_ALGO_', BACKWARD_DATA: 'CUDNN_CONVOLUTION_BWD_DATA_ALGO_', BACKWARD_FILTER: 'CUDNN_CONVOLUTION_BWD_FILTER_ALGO_' }[direction];
      algorithm = pick([name, name.toLowerCase(), `${prefix}${name}`]);
    }
    const op: AcquireOp = { kind: 'acquire', device, mode, convolution, algorithm, requested: pick(SIZES) };
    if (allowBad && random() < 0.15) {
      const r = random();
      if (r < 0.6 || !convolution) {
        const bad = pick(BAD_FIELDS);
        op.convolution = bad.change(convolution ?? pick(GOOD_DESCRIPTORS));
        op.badField = bad.field;
        // A bad descriptor for USER_SPECIFIED: the algorithm named is for the original direction; the
        // descriptor is checked first.
        if (bad.field === 'convolution.direction' && mode === 'CUDNN_ALGO_MODE_USER_SPECIFIED') op.algorithm = 'IMPLICIT_GEMM';
      } else if (r < 0.7) {
        op.mode = 12 as never;
        op.badField = 'mode';
      } else if (r < 0.8) {
        op.algorithm = mode === 'CUDNN_ALGO_MODE_USER_SPECIFIED' ? 'FASTEST_PLEASE' : pick(CUDNN_ALGORITHMS[direction]);
        op.badField = 'algorithm';
      } else if (r < 0.9) {
        op.requested = pick([-1, 2 ** 53, 1.5]);
        op.badField = 'requested_bytes';
      } else {
        op.device = DEVICES;
        op.badField = 'device';
      }
      if (withCudnn && op.badField === 'requested_bytes' && convolution === null) op.convolution = pick([GOOD_DESCRIPTORS[0], GOOD_DESCRIPTORS[3]]);
    }
    if (withCudnn && !op.badField && op.convolution === null && random() < 0.5) op.badField = 'convolution';
    // (A forward one: the algorithm was named for the direction of no descriptor, FORWARD.)
    if (withCudnn && op.convolution === null && !op.badField) op.convolution = pick([GOOD_DESCRIPTORS[0], GOOD_DESCRIPTORS[3]]);
    return op;
  };

  const requestOf = (l: ModelLease, op: AcquireOp): AcquireCudnnWorkspaceRequest__Output => ({ lease_id: l.lease.leaseId, device: op.device, mode: op.mode, convolution: op.convolution, algorithm: op.algorithm, requested_bytes: op.requested });

  /**
   * The model's answer for an acquire on lease `l`, one at a time, and its effect on the model
   * (`apply`); `created` is the id the model gives a new scratch. Returns the expected outcome, and
   * what a pool refusal for fragmentation (allowed when the model lets the request through) would do.
   */
  const expectAcquire = (l: ModelLease, op: AcquireOp): { outcome: Outcome; grows?: { bytes: number; old?: ModelScratch } } => {
    if (op.badField) return { outcome: { refused: `INVALID_ARGUMENT ${op.badField}` } };
    const direction = directionOf(op.convolution);
    const mode = op.mode === 'CUDNN_ALGO_MODE_UNSPECIFIED' ? 'CUDNN_ALGO_MODE_PREFER_FASTEST' : op.mode;
    const old = l.scratch[op.device];
    const budget = headroom(l.tenant, op.device) + align(old?.size ?? 0);
    let bytes: number;
    let algorithm = '';
    let fellBack = false;
    let sizeSource: string;
    const reasonHas: string[] = [];
    const answer = withCudnn ? answerFor(validQuery(op.convolution!)) : undefined;
    if (!answer || answer.failure === 'driver') {
      // No cuDNN (or cuDNN failing for a reason other than the descriptor): the request's bytes.
      reasonHas.push(answer ? 'cuDNN failed: ' : 'cuDNN not loaded: disabled by --cudnn-library none');
      bytes = mode === 'CUDNN_ALGO_MODE_NO_WORKSPACE' ? 0 : op.requested;
      sizeSource = mode === 'CUDNN_ALGO_MODE_NO_WORKSPACE' ? 'no workspace' : 'request bytes';
      if (mode === 'CUDNN_ALGO_MODE_USER_SPECIFIED') algorithm = CUDNN_ALGORITHMS[direction][algorithmIndex(direction, op.algorithm)];
    } else if (answer.failure === 'bad-param') {
      return { outcome: { refused: 'INVALID_ARGUMENT convolution' } };
    } else if (mode === 'CUDNN_ALGO_MODE_USER_SPECIFIED') {
      const index = algorithmIndex(direction, op.algorithm);
      bytes = answer.sizes[index];
      algorithm = CUDNN_ALGORITHMS[direction][index];
      sizeSource = 'cudnn 9.1.0';
    } else if (mode === 'CUDNN_ALGO_MODE_NO_WORKSPACE') {
      const chosen = answer.perfs.find((p) => p.status === 0 && p.memoryBytes === 0);
      bytes = 0;
      algorithm = chosen ? CUDNN_ALGORITHMS[direction][chosen.algorithm] : '';
      if (!chosen) reasonHas.push('no usable algorithm without workspace');
      sizeSource = 'no workspace';
    } else {
      const usable = answer.perfs.filter((p) => p.status === 0);
      if (usable.length === 0) return { outcome: { refused: 'FAILED_PRECONDITION FAILED_PRECONDITION' } };
      const fits = usable.filter((p) => align(p.memoryBytes) <= budget);
      if (fits.length === 0) {
        // As AllocateArray and the growth below: QUOTA_EXCEEDED when the quota alone refuses the smallest.
        const smallest = Math.min(...usable.map((p) => align(p.memoryBytes)));
        const quotaRefuses = l.tenant === 'quota' && tenantUsed('quota', op.device) - align(old?.size ?? 0) + smallest > QUOTA;
        return { outcome: { refused: quotaRefuses ? 'RESOURCE_EXHAUSTED QUOTA_EXCEEDED' : 'RESOURCE_EXHAUSTED DEVICE_OUT_OF_MEMORY' } };
      }
      const chosen = fits[0];
      fellBack = chosen !== usable[0];
      if (fellBack) reasonHas.push(`the fastest algorithm ${CUDNN_ALGORITHMS[direction][usable[0].algorithm]} needs`, `using ${CUDNN_ALGORITHMS[direction][chosen.algorithm]} (`);
      bytes = chosen.memoryBytes;
      algorithm = CUDNN_ALGORITHMS[direction][chosen.algorithm];
      sizeSource = 'cudnn 9.1.0';
    }
    const base = { workspace_bytes: bytes, algorithm, fell_back: fellBack, size_source: sizeSource, reasonHas };
    if (bytes === 0 || (old && old.size >= bytes)) return { outcome: { ...base, scratch: old ? 'held' : null, scratchBytes: old?.size, grew: false } };
    if (align(bytes) > budget) {
      const quotaRefuses = l.tenant === 'quota' && tenantUsed('quota', op.device) - align(old?.size ?? 0) + align(bytes) > QUOTA;
      return { outcome: { refused: quotaRefuses ? 'RESOURCE_EXHAUSTED QUOTA_EXCEEDED' : 'RESOURCE_EXHAUSTED DEVICE_OUT_OF_MEMORY' } };
    }
    return { outcome: { ...base, scratch: 'new', scratchBytes: bytes, grew: old !== undefined }, grows: { bytes, old } };
  };

  /** Runs an acquire through the service and describes what it answered. */
  const executeAcquire = async (l: ModelLease, op: AcquireOp): Promise<{ outcome: Outcome; reply?: AcquireCudnnWorkspaceResponse; error?: TensormemError }> => {
    const before = l.scratch[op.device]?.id;
    try {
      const reply = await service.acquireCudnnWorkspace(l.lease, requestOf(l, op));
      const id = reply.scratch?.array_id;
      return {
        reply,
        outcome: {
          workspace_bytes: Number(reply.workspace_bytes),
          algorithm: reply.algorithm,
          fell_back: reply.fell_back,
          size_source: reply.size_source,
          scratch: id === undefined ? null : id === before ? 'held' : 'new',
          scratchBytes: reply.scratch ? Number(reply.scratch.byte_size) : undefined,
          grew: reply.grew,
        },
      };
    } catch (error) {
      if (!(error instanceof TensormemError)) throw error;
      return { error, outcome: { refused: `${error.kind} ${error.kind === 'INVALID_ARGUMENT' ? error.metadata.field : error.reason}` } };
    }
  };

  const same = (expected: Outcome, actual: Outcome, reason: string | undefined): boolean => {
    const { reasonHas, ...rest } = expected;
    if (JSON.stringify(rest) !== JSON.stringify(actual)) return false;
    return (reasonHas ?? []).every((part) => reason?.includes(part)) && (reasonHas === undefined || reasonHas.length > 0 || reason === '');
  };

  const allowedPoolRefusal = (error: TensormemError | undefined, aligned: number): boolean =>
    error !== undefined && error.kind === 'RESOURCE_EXHAUSTED' && error.reason === 'DEVICE_OUT_OF_MEMORY' && error.metadata.largest_free_block_bytes !== undefined && Number(error.metadata.largest_free_block_bytes) < aligned;

  const acquireStep = async (step: number, l: ModelLease, op: AcquireOp) => {
    const what = `acquire ${JSON.stringify({ ...op, convolution: op.convolution ? '…' : null, kind: undefined })} on ${l.tenant} lease`;
    history.push(`${step}: ${what}`);
    const expected = expectAcquire(l, op);
    const actual = await executeAcquire(l, op);
    history[history.length - 1] += ` → ${JSON.stringify(actual.outcome)}`;
    if (expected.grows && actual.error && allowedPoolRefusal(actual.error, align(expected.grows.bytes))) {
      // README: "the reply's refusal comes with a new scratch of the old size (new array_id)".
      counts.poolRefusal++;
      const old = expected.grows.old;
      const now = l.lease.cudnnScratchOf(op.device);
      if (old) {
        if (!now || now.arrayId === old.id || now.byteSize !== old.size) return failAt(step, what, `pool refusal left scratch ${now?.arrayId} (${now?.byteSize} bytes), expected a new one of ${old.size}`);
        l.scratch[op.device] = { id: now.arrayId, size: old.size };
      } else if (now) failAt(step, what, `pool refusal left a scratch ${now.arrayId}`);
      return;
    }
    if (!same(expected.outcome, actual.outcome, actual.reply?.reason)) {
      failAt(step, what, `answered ${JSON.stringify(actual.outcome)} reason ${JSON.stringify(actual.reply?.reason ?? actual.error?.message)}, model ${JSON.stringify(expected.outcome)}`);
    }
    if (actual.error) {
      const error = actual.error;
      if (error.kind === 'INVALID_ARGUMENT' && !error.message.includes(` for ${error.metadata.field} but received `)) failAt(step, what, `message does not name the field: ${error.message}`);
      if (error.reason === 'QUOTA_EXCEEDED' || error.reason === 'DEVICE_OUT_OF_MEMORY') {
        if (expected.outcome.refused?.endsWith('QUOTA_EXCEEDED')) {
          counts.refusedQuota++;
          // The tenant's used bytes as GetMemoryInfo shows them, the scratch given back first said apart.
          const held = align(l.scratch[op.device]?.size ?? 0);
          const facts = { used: error.metadata.used_bytes, quota: error.metadata.quota_bytes, givenBack: error.metadata.given_back_bytes };
          const model = { used: String(tenantUsed('quota', op.device)), quota: String(QUOTA), givenBack: held > 0 ? String(held) : undefined };
          if (JSON.stringify(facts) !== JSON.stringify(model)) failAt(step, what, `quota refusal says ${JSON.stringify(facts)}, model ${JSON.stringify(model)}: ${error.message}`);
        } else {
          counts.refusedCap++;
          if (!withCudnn || !op.convolution) {
            const held = align(l.scratch[op.device]?.size ?? 0);
            const facts = { used: error.metadata.used_bytes, requested: error.metadata.requested_bytes, cap: error.metadata.cap_bytes, givenBack: error.metadata.given_back_bytes };
            const model = { used: String(poolUsed(op.device)), requested: String(op.requested), cap: String(CAP - othersUnusedGuarantee(l.tenant, op.device)), givenBack: held > 0 ? String(held) : undefined };
            if (JSON.stringify(facts) !== JSON.stringify(model)) failAt(step, what, `cap refusal says ${JSON.stringify(facts)}, model ${JSON.stringify(model)}: ${error.message}`);
          }
        }
      }
      if (op.badField) counts.invalid++;
      return;
    }
    if (actual.outcome.fell_back) counts.fellBack++;
    if (actual.outcome.size_source?.startsWith('cudnn')) counts.fromCudnn++;
    if (actual.reply?.reason?.startsWith('cuDNN failed')) counts.cudnnFailed++;
    // Candidates: cuDNN's list, in its order, for PREFER_FASTEST and NO_WORKSPACE when cuDNN answered.
    if (withCudnn && op.convolution && op.mode !== 'CUDNN_ALGO_MODE_USER_SPECIFIED') {
      const answer = answerFor(validQuery(op.convolution));
      const direction = directionOf(op.convolution);
      const model = answer.failure ? [] : answer.perfs.map((p) => `${CUDNN_ALGORITHMS[direction][p.algorithm]}:${p.memoryBytes}:${p.statusName}`);
      const shown = actual.reply!.candidates!.map((c) => `${c.algorithm}:${Number(c.workspace_bytes)}:${c.status}`);
      if (JSON.stringify(shown) !== JSON.stringify(model)) failAt(step, what, `candidates ${shown.join(' ')}, model ${model.join(' ')}`);
    } else if (actual.reply!.candidates!.length !== 0) failAt(step, what, 'candidates without cuDNN');
    if (actual.outcome.scratch === 'new') {
      l.scratch[op.device] = { id: actual.reply!.scratch!.array_id!, size: expected.grows!.bytes };
      counts[actual.outcome.grew ? 'grew' : 'created']++;
      // The old scratch is gone (NOT_FOUND).
      const old = expected.grows!.old;
      if (old) {
        try {
          l.lease.getArray(old.id);
          failAt(step, what, `old scratch ${old.id} still answers`);
        } catch (error) {
          if (!(error instanceof TensormemError) || error.kind !== 'NOT_FOUND') throw error;
        }
      }
      await checkZeroed(step, what, l, op.device);
    } else counts.same++;
  };

  for (let step = 0; step < steps; step++) {
    const l = pick(leases);
    const r = random();
    if (r < 0.5) {
      await acquireStep(step, l, randomAcquire(true));
    } else if (r < 0.64) {
      // Another device array of the lease (so that the budget moves): allowed only where it fits.
      const device = random() < 0.75 ? 0 : 1;
      const size = pick(OTHER_SIZES);
      const fits = align(size) <= headroom(l.tenant, device);
      history.push(`${step}: allocate ${size} on device ${device} for ${l.tenant}`);
      try {
        const array = await l.lease.allocateArray({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: 'PLACEMENT_DEVICE', device, workspaceId: '', zero: false, label: 'other', requestId: '', exportable: false });
        if (!fits) failAt(step, 'allocate', `allocated ${size} bytes past the model's headroom ${headroom(l.tenant, device)}`);
        l.others.set(array.arrayId, { device, size });
        await dirty(array, size);
      } catch (error) {
        if (!(error instanceof TensormemError) || error.kind !== 'RESOURCE_EXHAUSTED') throw error;
        if (fits && !allowedPoolRefusal(error, align(size))) failAt(step, 'allocate', `refused a request that fits: ${error.message}`);
      }
    } else if (r < 0.74) {
      const [id] = [...l.others.keys()].sort(() => random() - 0.5);
      if (!id) continue;
      history.push(`${step}: free other ${id}`);
      const expected = align(l.others.get(id)!.size);
      l.others.delete(id);
      const freed = l.lease.freeArray(id);
      if (freed !== expected) failAt(step, 'free other', `freed ${freed}, model ${expected}`);
    } else if (r < 0.8) {
      // FreeArray of the scratch: its bytes come back; the next acquire makes a new one.
      const device = l.scratch[0] ? 0 : 1;
      const scratch = l.scratch[device];
      if (!scratch) continue;
      history.push(`${step}: FreeArray scratch ${scratch.id} (${scratch.size})`);
      if (random() < 0.5) await dirty(l.lease.getArray(scratch.id) as TensorArray, scratch.size);
      const freed = l.lease.freeArray(scratch.id);
      l.scratch[device] = undefined;
      counts.freedScratch++;
      if (freed !== align(scratch.size)) failAt(step, 'free scratch', `freed ${freed}, model ${align(scratch.size)}`);
      if (l.lease.cudnnScratchOf(device) !== undefined) failAt(step, 'free scratch', 'the lease still has a scratch');
    } else if (r < 0.84) {
      // CloseLease: every byte back, the scratch with the rest; a new lease takes its place.
      history.push(`${step}: close ${l.tenant} lease`);
      const expected = [0, 1].reduce((sum, device) => sum + heldOf(l, device), 0);
      const freed = registry.close(l.lease, 'closed');
      leases.splice(leases.indexOf(l), 1);
      counts.closed++;
      if (freed !== expected) failAt(step, 'close', `freed ${freed}, model ${expected}`);
      try {
        // (The service never reaches a closed lease: its token no longer authenticates.)
        await l.lease.acquireCudnnScratch(0, 1000);
        failAt(step, 'close', 'a closed lease still acquires');
      } catch (error) {
        if (!(error instanceof TensormemError) || error.kind !== 'UNAUTHENTICATED' || error.reason !== 'LEASE_EXPIRED') failAt(step, 'close', `a closed lease's acquire: ${String(error)}`);
      }
      openLease(l.tenant);
    } else {
      // A burst on one lease: acquires (and maybe a FreeArray of the scratch held now), issued together.
      await burst(step, l);
    }
    await checkState(step, history[history.length - 1] ?? '');
    if (random() < 0.3) {
      for (const m of leases) for (let device = 0; device < DEVICES; device++) if (m.scratch[device]) await dirty(m.lease.getArray(m.scratch[device]!.id) as TensorArray, m.scratch[device]!.size);
    }
  }

  async function burst(step: number, l: ModelLease): Promise<void> {
    counts.bursts++;
    const ops: BurstOp[] = Array.from({ length: 2 + Math.floor(random() * 3) }, () => {
      const op = randomAcquire(false);
      op.device = 0;
      return op;
    });
    const held = l.scratch[0];
    if (held && random() < 0.4) ops.splice(Math.floor(random() * ops.length), 0, { kind: 'freeScratch', id: held.id });
    const delays = ops.map(() => Math.floor(random() * 3));
    history.push(`${step}: burst ${ops.map((op) => (op.kind === 'acquire' ? `${op.mode.replace('CUDNN_ALGO_MODE_', '')} ${op.requested}` : `free ${op.id}`)).join(', ')} (delays ${delays.join(',')})`);
    const before = { scratch: held, used: poolUsed(0), headroom: headroom(l.tenant, 0) };
    const settled = await Promise.all(
      ops.map(async (op, i) => {
        for (let t = 0; t < delays[i]; t++) await new Promise((resolve) => setImmediate(resolve));
        if (op.kind === 'freeScratch') {
          try {
            return { outcome: { freed: l.lease.freeArray(op.id) } as Outcome };
          } catch (error) {
            if (!(error instanceof TensormemError)) throw error;
            return { outcome: { refused: `${error.kind} ${error.reason}` } as Outcome, error: error as TensormemError | undefined };
          }
        }
        return executeAcquire(l, op);
      }),
    );
    // The ids the answers show, as the model names them: the scratch held before the burst, or one made in it (by size).
    const now = l.lease.cudnnScratchOf(0);
    const canonical = (id: string | undefined, size: number | undefined) => (id === undefined ? null : id === held?.id ? 'held' : `made ${size}`);
    const shownAnswers = settled.map((s, i) => {
      const op = ops[i];
      if (op.kind === 'freeScratch' || !s.outcome.scratch) return s.outcome;
      const reply = (s as { reply?: AcquireCudnnWorkspaceResponse }).reply!;
      return { ...s.outcome, scratch: canonical(reply.scratch!.array_id, Number(reply.scratch!.byte_size)) };
    });
    const shownState = { scratch: canonical(now?.arrayId, now?.byteSize), used: memory.deviceReports()[0].usedBytes };
    const described = ops.map((op, i) => `${op.kind === 'acquire' ? `${op.mode} ${op.requested}` : `free ${op.id}`} → ${JSON.stringify(shownAnswers[i])} ${settled[i].error?.message ?? ''}`).join('\n');
    const tried: string[] = [];
    for (const order of permutations(ops.map((_, i) => i))) {
      // The model one at a time in this order.
      const saved = l.scratch[0];
      const answersInOrder: Outcome[] = [];
      const reasons: Array<string | undefined> = [];
      let consistent = true;
      for (const i of order) {
        const op = ops[i];
        if (op.kind === 'freeScratch') {
          if (l.scratch[0]?.id === op.id) {
            answersInOrder[i] = { freed: align(l.scratch[0].size) };
            l.scratch[0] = undefined;
          } else answersInOrder[i] = { refused: 'NOT_FOUND ARRAY_NOT_FOUND' };
          continue;
        }
        const expected = expectAcquire(l, op);
        const error = settled[i].error;
        if (expected.grows && allowedPoolRefusal(error, align(expected.grows.bytes))) {
          // The pool could not place it (fragmentation): refused, with a new scratch of the old size.
          answersInOrder[i] = { refused: 'RESOURCE_EXHAUSTED DEVICE_OUT_OF_MEMORY' };
          const old = l.scratch[0];
          l.scratch[0] = old ? { id: `made ${old.size}`, size: old.size } : undefined;
          continue;
        }
        const outcome = { ...expected.outcome };
        if (outcome.scratch === 'held') outcome.scratch = l.scratch[0]!.id === held?.id ? 'held' : l.scratch[0]!.id;
        else if (outcome.scratch === 'new') outcome.scratch = `made ${expected.grows!.bytes}`;
        answersInOrder[i] = outcome;
        reasons[i] = (settled[i] as { reply?: AcquireCudnnWorkspaceResponse }).reply?.reason;
        if (expected.grows) l.scratch[0] = { id: `made ${expected.grows.bytes}`, size: expected.grows.bytes };
      }
      const state = { scratch: l.scratch[0] ? (l.scratch[0].id === held?.id ? 'held' : `made ${l.scratch[0].size}`) : null, used: poolUsed(0) };
      for (const i of order) if (!same(answersInOrder[i], shownAnswers[i] as Outcome, reasons[i])) consistent = false;
      if (JSON.stringify(state) !== JSON.stringify(shownState)) consistent = false;
      const modelFinal = l.scratch[0];
      l.scratch[0] = saved;
      if (consistent) {
        counts.burstOrders++;
        l.scratch[0] = modelFinal && modelFinal.id !== held?.id ? { id: now!.arrayId, size: modelFinal.size } : modelFinal;
        if (l.scratch[0] && l.scratch[0].id !== held?.id) await checkZeroed(step, 'burst', l, 0);
        return;
      }
      tried.push(`order ${order.join(',')}: ${JSON.stringify(order.map((i) => answersInOrder[i]))} state ${JSON.stringify(state)}`);
    }
    failAt(step, 'burst', `no order of the burst gives what the lease shows (${JSON.stringify(shownState)}; before ${JSON.stringify({ scratch: before.scratch?.size, used: before.used, headroom: before.headroom })}):\n${described}\n${tried.slice(0, 6).join('\n')}`);
  }

  // Every lease closed: every byte back, on every device.
  for (const l of [...leases]) {
    const expected = [0, 1].reduce((sum, device) => sum + heldOf(l, device), 0);
    const freed = registry.close(l.lease, 'closed');
    if (freed !== expected) failAt(steps, 'final close', `freed ${freed}, model ${expected}`);
    leases.splice(leases.indexOf(l), 1);
  }
  for (let device = 0; device < DEVICES; device++) expect(memory.deviceReports()[device].usedBytes, `seed ${seed} device ${device}`).toBe(0);
  memory.checkInvariants();
  memory.release();
  libraryHolder.current = undefined;
  return counts;
}

/** The descriptor's query as the addon gets it (the stand-in's table key): only for descriptors the model knows are good. */
function validQuery(d: Descriptor): CudnnConvolutionQuery {
  const rank = d.input_dims.length;
  const spatial = rank - 2;
  const fill = (values: readonly number[], value: number) => (values.length === 0 ? new Array<number>(spatial).fill(value) : [...values]);
  const types: Record<string, [number, number, number]> = { DATA_TYPE_FLOAT32: [0, 0, 0], DATA_TYPE_FLOAT64: [1, 1, 0], DATA_TYPE_FLOAT16: [2, 0, 1], DATA_TYPE_BFLOAT16: [9, 0, 1] };
  const [dataType, computeType, mathType] = types[d.data_type as string];
  return {
    direction: { FORWARD: 0, BACKWARD_DATA: 1, BACKWARD_FILTER: 2 }[directionOf(d)] as 0 | 1 | 2,
    inputDims: [...d.input_dims],
    filterDims: [...d.filter_dims],
    pads: fill(d.pads, 0),
    strides: fill(d.strides, 1),
    dilations: fill(d.dilations, 1),
    dataType,
    computeType,
    mathType,
    groupCount: d.group_count === 0 ? 1 : d.group_count,
  };
}

function algorithmIndex(direction: ConvolutionDirectionName, name: string): number {
  const prefix = { FORWARD: 'CUDNN_CONVOLUTION_FWD_ALGO_', BACKWARD_DATA: 'CUDNN_CONVOLUTION_BWD_DATA_ALGO_', BACKWARD_FILTER: 'CUDNN_CONVOLUTION_BWD_FILTER_ALGO_' }[direction];
  const bare = name.toUpperCase().replace(prefix, '');
  return CUDNN_ALGORITHMS[direction].indexOf(bare);
}

describe('AcquireCudnnWorkspace, model-based', () => {
  it('sizes each mode from requested_bytes without cuDNN, keeps one grow-only scratch per lease and device within caps, quotas and guarantees, and gives every byte back (seeded)', async () => {
    const totals = await totalsOverSeeds(1, 30, (seed) => run(seed, 200, false));
    // The sequences reach what they are for.
    expect(totals.grew).toBeGreaterThan(50);
    expect(totals.refusedCap).toBeGreaterThan(20);
    expect(totals.refusedQuota).toBeGreaterThan(10);
    expect(totals.invalid).toBeGreaterThan(50);
    expect(totals.bursts).toBeGreaterThan(50);
    expect(totals.freedScratch).toBeGreaterThan(20);
  });

  it('with cuDNN answering (a stand-in for the library), PREFER_FASTEST takes the fastest algorithm that fits the lease, NO_WORKSPACE none, USER_SPECIFIED the named one (seeded)', async () => {
    const totals = await totalsOverSeeds(101, 125, (seed) => run(seed, 200, true));
    expect(totals.fromCudnn).toBeGreaterThan(100);
    expect(totals.fellBack).toBeGreaterThan(10);
    expect(totals.cudnnFailed).toBeGreaterThan(5);
    expect(totals.grew).toBeGreaterThan(30);
  });
});

/**
 * A lease of tenant "a" on a 64 KiB device under --scrub, and the service with a stand-in cuDNN
 * whose PREFER_FASTEST search answers `perfs` (cuDNN's order, fastest first).
 */
function standInCudnn(perfs: CudnnAlgorithmPerf[]) {
  const backend = createBackend('host', { deviceCapacityBytes: 4 * MiB, deviceCount: 1 });
  // --scrub: the new scratch is zeroed off the event loop (a fill longer than the copy threshold).
  const memory = new MemoryManager(backend, givenLimits([CAP], CAP), { poolChunkBytes: 16 * KiB, asyncCopyThresholdBytes: 512, scrub: true }, new PhysicalMemoryGuard(0));
  const log = pino({ level: 'silent' });
  const registry = new LeaseRegistry(memory, 3_600_000, false, log);
  const addonDouble = {
    cudnnLoad: () => ({ loaded: true, path: '/stand-in/libcudnn.so.9', version: 90100 }),
    cudnnFindAlgorithms: () => perfs.map((perf) => ({ ...perf })),
    cudnnWorkspaceSize: () => 0,
  } satisfies NativeCudnn;
  libraryHolder.current = new (class extends cudnnModule.CudnnLibrary {
    override unusableReason(): string | undefined {
      return undefined;
    }
  })(addonDouble, addonDouble.cudnnLoad());
  const context = { registry, memory, config: { rawValues: { 'cudnn-library': 'none' } }, log, stopping: new AbortController().signal } as unknown as ServiceContext;
  const service = new WorkspaceService(context) as unknown as { acquireCudnnWorkspace(lease: Lease, request: AcquireCudnnWorkspaceRequest__Output): Promise<AcquireCudnnWorkspaceResponse> };
  const lease = registry.open({ tenant: 'a', clientName: 'burst', ttlSeconds: 0, labels: {} }).lease;
  const request: AcquireCudnnWorkspaceRequest__Output = { lease_id: lease.leaseId, device: 0, mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', convolution: GOOD_DESCRIPTORS[0], algorithm: '', requested_bytes: 0 };
  /** Undoes the stand-ins, closes the lease and checks that every byte came back. */
  const end = () => {
    vi.restoreAllMocks();
    libraryHolder.current = undefined;
    registry.close(lease, 'closed');
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
    memory.checkInvariants();
    memory.release();
  };
  return { memory, service, lease, request, end };
}

const perfOf = (algorithm: number, timeMs: number, memoryBytes: number): CudnnAlgorithmPerf => ({ algorithm, status: 0, statusName: 'CUDNN_STATUS_SUCCESS', timeMs, memoryBytes, deterministic: true, mathType: 0 });

describe('AcquireCudnnWorkspace with cuDNN: a call arriving while the scratch is being made', () => {
  it('sizes PREFER_FASTEST with that scratch counted as held, as if the calls came one after the other', async () => {
    // cuDNN's order: FFT (40000 bytes of workspace) is fastest, IMPLICIT_GEMM needs none.
    const { memory, service, lease, request, end } = standInCudnn([perfOf(4, 1, 40000), perfOf(0, 3, 0)]);
    // The zeroing of the first call's scratch waits for the gate, so the second call surely comes meanwhile.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const fill = memory.fill.bind(memory);
    vi.spyOn(memory, 'fill').mockImplementation(async (...args: Parameters<MemoryManager['fill']>) => {
      await gate;
      return fill(...args);
    });
    try {
      const first = service.acquireCudnnWorkspace(lease, request);
      await vi.waitFor(() => expect(memory.deviceReports()[0].usedBytes).toBe(align(40000)));
      const second = service.acquireCudnnWorkspace(lease, request);
      await new Promise((resolve) => setImmediate(resolve));
      open();
      const [a, b] = await Promise.all([first, second]);
      expect(a).toMatchObject({ algorithm: 'FFT', workspace_bytes: 40000, fell_back: false, reason: '', grew: false, scratch: { byte_size: 40000 } });
      // One after the other, the second finds FFT's workspace held (budget: 64 KiB free + 0 held before,
      // 24832 free + 40192 held after): the same algorithm and the same scratch, no fallback.
      expect(b).toMatchObject({ algorithm: 'FFT', workspace_bytes: 40000, fell_back: false, reason: '', grew: false, scratch: { array_id: a.scratch!.array_id } });
      expect(memory.deviceReports()[0].usedBytes).toBe(align(40000));
    } finally {
      end();
    }
  });
});

describe('AcquireCudnnWorkspace with cuDNN: the held scratch being read', () => {
  it('sizes PREFER_FASTEST for a scratch beside the one in flight: the fastest that fits beside it, not one that fits only once it is given back', async () => {
    // cuDNN's order: FFT (40000 bytes) is fastest, then GEMM (32000 bytes), IMPLICIT_GEMM (none).
    const { memory, service, lease, request, end } = standInCudnn([perfOf(4, 1, 40000), perfOf(2, 2, 32000), perfOf(0, 3, 0)]);
    let loan: { end(): void } | undefined;
    try {
      await lease.acquireCudnnScratch(0, 30000);
      const scratch = lease.cudnnScratchOf(0)!;
      expect(scratch.byteSize).toBe(30000);
      // A data plane GET's loan of its bytes, the socket not taking them: a transfer in flight.
      loan = await scratch.lendHostView(0, 4096);
      expect(scratch.copying).toBe(true);
      // 65536 - 30208 = 35328 bytes beside it: FFT (40192) fits only once the old one is given back, GEMM (32000) beside it.
      const grown = await service.acquireCudnnWorkspace(lease, request);
      expect(grown).toMatchObject({ algorithm: 'GEMM', workspace_bytes: 32000, fell_back: true, grew: true, scratch: { byte_size: 32000 } });
      expect(grown.reason).toContain('FFT');
      expect(grown.reason).toContain('cuDNN scratch held 30208 bytes (29.50 KiB), not given back (a transfer of it is in flight)');
      expect(memory.deviceReports()[0].usedBytes).toBe(align(30000) + align(32000));
      loan.end();
      // The old scratch goes back once the transfer ends.
      expect(memory.deviceReports()[0].usedBytes).toBe(align(32000));
      expect(scratch.isFreed).toBe(true);
    } finally {
      loan?.end();
      end();
    }
  });
});
