/**
 * The policy half of AcquireCudnnWorkspace (DL4J's CudnnConvolutionHelper and its AlgoMode), free of
 * any library: validating a convolution descriptor into the normalised query the addon takes, the
 * algorithm names per direction (cuDNN's enums), and the choice among the algorithms cuDNN reports.
 *
 * Every check happens here, before cuDNN or a pool is touched: a bad field is INVALID_ARGUMENT naming
 * the field and the value.
 */
import { TensormemError, invalidArgument } from '../errors';
import type { CudnnAlgorithmPerf, CudnnConvolutionQuery } from '../native/backend';
import { formatBytes } from '../units';

export type CudnnAlgoModeName = 'PREFER_FASTEST' | 'NO_WORKSPACE' | 'USER_SPECIFIED';
export type ConvolutionDirectionName = 'FORWARD' | 'BACKWARD_DATA' | 'BACKWARD_FILTER';

/** cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t, by value (cudnn_ops.h, cuDNN 8 and 9). */
export const CUDNN_ALGORITHMS: Record<ConvolutionDirectionName, readonly string[]> = {
  FORWARD: ['IMPLICIT_GEMM', 'IMPLICIT_PRECOMP_GEMM', 'GEMM', 'DIRECT', 'FFT', 'FFT_TILING', 'WINOGRAD', 'WINOGRAD_NONFUSED'],
  BACKWARD_DATA: ['ALGO_0', 'ALGO_1', 'FFT', 'FFT_TILING', 'WINOGRAD', 'WINOGRAD_NONFUSED'],
  BACKWARD_FILTER: ['ALGO_0', 'ALGO_1', 'FFT', 'ALGO_3', 'WINOGRAD', 'WINOGRAD_NONFUSED', 'FFT_TILING'],
};

const ENUM_PREFIX: Record<ConvolutionDirectionName, string> = {
  FORWARD: 'CUDNN_CONVOLUTION_FWD_ALGO_',
  BACKWARD_DATA: 'CUDNN_CONVOLUTION_BWD_DATA_ALGO_',
  BACKWARD_FILTER: 'CUDNN_CONVOLUTION_BWD_FILTER_ALGO_',
};

const DIRECTION_NUMBER: Record<ConvolutionDirectionName, 0 | 1 | 2> = { FORWARD: 0, BACKWARD_DATA: 1, BACKWARD_FILTER: 2 };

/** The direction a query's `direction` number names (DIRECTION_NUMBER's other way round). */
export function directionOfNumber(direction: number): ConvolutionDirectionName {
  const name = (Object.keys(DIRECTION_NUMBER) as ConvolutionDirectionName[]).find((key) => DIRECTION_NUMBER[key] === direction);
  if (name === undefined) throw new RangeError(`no convolution direction numbered ${direction}`);
  return name;
}

/** cudnnDataType_t and the compute type / math type DL4J-style helpers use for each element type. */
const DATA_TYPES: Record<string, { dataType: number; computeType: number; mathType: number }> = {
  DATA_TYPE_FLOAT32: { dataType: 0, computeType: 0, mathType: 0 },
  DATA_TYPE_FLOAT64: { dataType: 1, computeType: 1, mathType: 0 },
  // Half types: FLOAT32 accumulation on tensor cores (CUDNN_TENSOR_OP_MATH).
  DATA_TYPE_FLOAT16: { dataType: 2, computeType: 0, mathType: 1 },
  DATA_TYPE_BFLOAT16: { dataType: 9, computeType: 0, mathType: 1 },
};

/** cuDNN takes int dims; anything from 2^31 up cannot be described. */
const MAX_DIM = 2 ** 31 - 1;

export interface ConvolutionDescriptorInput {
  input_dims: readonly number[];
  filter_dims: readonly number[];
  pads: readonly number[];
  strides: readonly number[];
  dilations: readonly number[];
  data_type: string;
  direction: string;
  group_count: number;
}

export interface ValidatedConvolution {
  direction: ConvolutionDirectionName;
  query: CudnnConvolutionQuery;
  /** Output dims (N, K, spatial...) of the forward convolution. */
  outputDims: number[];
}

export function parseAlgoMode(mode: unknown): CudnnAlgoModeName {
  switch (mode) {
    case 'CUDNN_ALGO_MODE_UNSPECIFIED':
    case 'CUDNN_ALGO_MODE_PREFER_FASTEST':
      return 'PREFER_FASTEST';
    case 'CUDNN_ALGO_MODE_NO_WORKSPACE':
      return 'NO_WORKSPACE';
    case 'CUDNN_ALGO_MODE_USER_SPECIFIED':
      return 'USER_SPECIFIED';
    default:
      throw invalidArgument('mode', 'CUDNN_ALGO_MODE_PREFER_FASTEST, _NO_WORKSPACE or _USER_SPECIFIED', mode);
  }
}

export function parseDirection(direction: unknown, field = 'convolution.direction'): ConvolutionDirectionName {
  switch (direction) {
    case 'CONVOLUTION_DIRECTION_UNSPECIFIED':
    case 'CONVOLUTION_DIRECTION_FORWARD':
      return 'FORWARD';
    case 'CONVOLUTION_DIRECTION_BACKWARD_DATA':
      return 'BACKWARD_DATA';
    case 'CONVOLUTION_DIRECTION_BACKWARD_FILTER':
      return 'BACKWARD_FILTER';
    default:
      throw invalidArgument(field, 'CONVOLUTION_DIRECTION_FORWARD, _BACKWARD_DATA or _BACKWARD_FILTER', direction);
  }
}

/** The cuDNN enum value of an algorithm name for the direction ("FFT", or "CUDNN_CONVOLUTION_FWD_ALGO_FFT"). */
export function parseAlgorithm(direction: ConvolutionDirectionName, name: unknown, field = 'algorithm'): number {
  const names = CUDNN_ALGORITHMS[direction];
  const text = typeof name === 'string' ? name.trim().toUpperCase() : '';
  let bare = text.startsWith(ENUM_PREFIX[direction]) ? text.slice(ENUM_PREFIX[direction].length) : text;
  // CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 is ALGO_1.
  if (/^\d+$/.test(bare)) bare = `ALGO_${bare}`;
  const index = names.indexOf(bare);
  if (index < 0) throw invalidArgument(field, `a ${direction.toLowerCase().replace('_', ' ')} algorithm (${names.join(', ')})`, name);
  return index;
}

export function algorithmName(direction: ConvolutionDirectionName, algorithm: number): string {
  return CUDNN_ALGORITHMS[direction][algorithm] ?? `ALGO_${algorithm}`;
}

function dims(values: readonly unknown[], field: string, min: number): number[] {
  return values.map((value, index) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_DIM) {
      throw invalidArgument(`${field}[${index}]`, `an integer from ${min} to ${MAX_DIM}`, value);
    }
    return value;
  });
}

/** One entry per spatial dimension, or `fill` for each when the list is empty. */
function perSpatial(values: readonly unknown[], field: string, spatial: number, min: number, fill: number): number[] {
  if (values.length === 0) return new Array<number>(spatial).fill(fill);
  if (values.length !== spatial) throw invalidArgument(field, `${spatial} entries (one per spatial dimension) or none`, `${values.length} entries`);
  return dims(values, field, min);
}

/** Validates a descriptor (see ConvolutionDescriptor in workspace.proto) into the addon's query. */
export function validateConvolution(descriptor: ConvolutionDescriptorInput | null | undefined, field = 'convolution'): ValidatedConvolution {
  if (!descriptor) throw invalidArgument(field, 'a convolution descriptor', descriptor);
  const rank = descriptor.input_dims.length;
  if (rank !== 4 && rank !== 5) throw invalidArgument(`${field}.input_dims`, '4 dims (N, C, H, W) or 5 (N, C, D, H, W)', `${rank} dims`);
  const input = dims(descriptor.input_dims, `${field}.input_dims`, 1);
  if (descriptor.filter_dims.length !== rank) throw invalidArgument(`${field}.filter_dims`, `${rank} dims like input_dims (K, C / group_count, spatial...)`, `${descriptor.filter_dims.length} dims`);
  const filter = dims(descriptor.filter_dims, `${field}.filter_dims`, 1);
  const spatial = rank - 2;
  const pads = perSpatial(descriptor.pads, `${field}.pads`, spatial, 0, 0);
  const strides = perSpatial(descriptor.strides, `${field}.strides`, spatial, 1, 1);
  const dilations = perSpatial(descriptor.dilations, `${field}.dilations`, spatial, 1, 1);
  const groupCount = descriptor.group_count === 0 ? 1 : descriptor.group_count;
  if (!Number.isInteger(groupCount) || groupCount < 1 || input[1] % groupCount !== 0 || filter[0] % groupCount !== 0) {
    throw invalidArgument(`${field}.group_count`, `a divisor of the input channels (${input[1]}) and the filter count (${filter[0]})`, descriptor.group_count);
  }
  if (filter[1] * groupCount !== input[1]) {
    throw invalidArgument(`${field}.filter_dims[1]`, `input channels / group_count = ${input[1] / groupCount}`, filter[1]);
  }
  const outputDims = [input[0], filter[0]];
  for (let i = 0; i < spatial; i++) {
    const extent = dilations[i] * (filter[i + 2] - 1) + 1;
    const padded = input[i + 2] + 2 * pads[i];
    if (padded < extent) {
      throw invalidArgument(`${field}.filter_dims[${i + 2}]`, `a filter whose dilated extent (${extent}) fits the padded input (${padded})`, filter[i + 2]);
    }
    outputDims.push(Math.floor((padded - extent) / strides[i]) + 1);
  }
  // cuDNN describes packed tensors with int strides: the elements of one sample (or one filter) must fit them.
  for (const [name, tensor] of [['input_dims', input], ['filter_dims', filter], ['output', outputDims]] as const) {
    const perSample = tensor.slice(1).reduce((product, dimension) => product * dimension, 1);
    if (perSample > MAX_DIM) {
      const what = name === 'output' ? `${field}.input_dims` : `${field}.${name}`;
      throw invalidArgument(what, `dims whose ${name === 'output' ? 'output' : 'tensor'} has at most ${MAX_DIM} elements per ${name === 'filter_dims' ? 'filter' : 'sample'} (cuDNN's int strides)`, `[${tensor.join(', ')}]${name === 'output' ? ' (output)' : ''}`);
    }
  }
  const dataType = DATA_TYPES[descriptor.data_type === 'DATA_TYPE_UNSPECIFIED' ? 'DATA_TYPE_FLOAT32' : descriptor.data_type];
  if (!dataType) throw invalidArgument(`${field}.data_type`, 'DATA_TYPE_FLOAT16, DATA_TYPE_BFLOAT16, DATA_TYPE_FLOAT32 or DATA_TYPE_FLOAT64', descriptor.data_type);
  const direction = parseDirection(descriptor.direction, `${field}.direction`);
  return {
    direction,
    outputDims,
    query: { direction: DIRECTION_NUMBER[direction], inputDims: input, filterDims: filter, pads, strides, dilations, ...dataType, groupCount },
  };
}

/** What the lease can still take on the device, in bytes, and what limits it (for messages). */
export interface ScratchBudget {
  /** Largest scratch (aligned size) that fits: min(pool cap, tenant quota) headroom + the scratch held now, unless a transfer of it is in flight (it is not given back then). */
  bytes: number;
  /** E.g. `pool cap (maxbytes) 14.00 GiB, used 13.60 GiB; tenant "a" quota 8.00 GiB, used 7.90 GiB; scratch held 0 bytes`. */
  detail: string;
  /**
   * The pool side's figures for a refusal's metadata, as an OutOfMemoryError names them: device,
   * used_bytes, cap_bytes (less others' unused guarantees), tenant_quota_bytes and tenant_used_bytes
   * when the tenant has a device quota; given_back_bytes, the scratch held (which a larger one
   * replaces), when there is one and no transfer of it is in flight.
   */
  facts: Record<string, string>;
  /**
   * The tenant's device quota, when it has one: its headroom plus the scratch held (what the quota
   * alone lets the scratch take), and its figures as a QuotaExceededError names them (device, tenant,
   * quota_bytes, used_bytes, given_back_bytes).
   */
  quota?: { bytes: number; facts: Record<string, string> };
  /** The size a request of `bytes` takes in the pool (its alignment). */
  alignedSize(bytes: number): number;
}

export interface AlgorithmChoice {
  perf: CudnnAlgorithmPerf;
  fellBack: boolean;
  reason: string;
}

/**
 * PREFER_FASTEST: the first usable algorithm cuDNN reports (its order is fastest first) when its
 * workspace fits the budget, else the first usable one that fits, saying why. None usable:
 * FAILED_PRECONDITION; none fits: RESOURCE_EXHAUSTED with the numbers, QUOTA_EXCEEDED when the tenant's
 * quota alone refuses the smallest workspace, else DEVICE_OUT_OF_MEMORY.
 */
export function chooseFastest(direction: ConvolutionDirectionName, perfs: readonly CudnnAlgorithmPerf[], budget: ScratchBudget): AlgorithmChoice {
  const usable = perfs.filter((perf) => perf.status === 0);
  if (usable.length === 0) throw noUsableAlgorithm(direction, perfs);
  const fits = (perf: CudnnAlgorithmPerf) => budget.alignedSize(perf.memoryBytes) <= budget.bytes;
  const fastest = usable[0];
  if (fits(fastest)) return { perf: fastest, fellBack: false, reason: '' };
  const fallback = usable.find(fits);
  const name = (perf: CudnnAlgorithmPerf) => algorithmName(direction, perf.algorithm);
  if (!fallback) {
    const smallest = usable.reduce((a, b) => (b.memoryBytes < a.memoryBytes ? b : a));
    // As AllocateArray (the quota is checked before the pool) and a scratch's growth (Lease.scratchRefusal):
    // QUOTA_EXCEEDED whenever the quota alone refuses the smallest, whichever headroom is the smaller.
    const quota = budget.quota !== undefined && budget.alignedSize(smallest.memoryBytes) > budget.quota.bytes ? budget.quota : undefined;
    const limits = quota ? `the tenant's quota alone refuses it (${formatBytes(quota.bytes)} of it left, with the scratch held)` : 'the pool cap limits it';
    throw new TensormemError(
      'RESOURCE_EXHAUSTED',
      quota ? 'QUOTA_EXCEEDED' : 'DEVICE_OUT_OF_MEMORY',
      `No cuDNN ${direction.toLowerCase().replace('_', ' ')} algorithm's workspace fits: the smallest (${name(smallest)}) needs ${formatBytes(smallest.memoryBytes)}, ` +
        `the lease can take ${formatBytes(budget.bytes)} (${budget.detail}; ${limits}). ` +
        `Try: free arrays, CUDNN_ALGO_MODE_NO_WORKSPACE, or ${quota ? 'a larger quota in the tenants file' : 'a larger --maxbytes'}.`,
      { ...(quota ?? budget).facts, requested_bytes: String(smallest.memoryBytes), budget_bytes: String(budget.bytes), limited_by: quota ? 'quota' : 'pool' },
    );
  }
  return {
    perf: fallback,
    fellBack: true,
    reason:
      `the fastest algorithm ${name(fastest)} needs ${formatBytes(fastest.memoryBytes)} of workspace, more than the lease can take ` +
      `(${formatBytes(budget.bytes)}: ${budget.detail}); using ${name(fallback)} (${formatBytes(fallback.memoryBytes)}), the fastest that fits`,
  };
}

/** NO_WORKSPACE: the first usable algorithm that needs no workspace, if cuDNN reports one. */
export function chooseNoWorkspace(perfs: readonly CudnnAlgorithmPerf[]): CudnnAlgorithmPerf | undefined {
  return perfs.find((perf) => perf.status === 0 && perf.memoryBytes === 0);
}

function noUsableAlgorithm(direction: ConvolutionDirectionName, perfs: readonly CudnnAlgorithmPerf[]): TensormemError {
  const statuses = perfs.map((perf) => `${algorithmName(direction, perf.algorithm)}: ${perf.statusName}`).join(', ');
  return new TensormemError('FAILED_PRECONDITION', 'FAILED_PRECONDITION', `cuDNN reports no usable ${direction.toLowerCase().replace('_', ' ')} algorithm for this convolution (${statuses || 'none returned'})`);
}
