/** AcquireCudnnWorkspace's policy: descriptor validation, algorithm names, and PREFER_FASTEST's fallback choice. */
import { describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import type { CudnnAlgorithmPerf } from '../../src/native/backend';
import {
  ConvolutionDescriptorInput,
  ScratchBudget,
  algorithmName,
  chooseFastest,
  chooseNoWorkspace,
  parseAlgoMode,
  parseAlgorithm,
  validateConvolution,
} from '../../src/memory/cudnn-convolution';
import { CudnnLibrary, cudnnCandidates, cudnnVersionText } from '../../src/memory/cudnn-library';

const MiB = 1024 * 1024;

function perf(algorithm: number, memoryBytes: number, status = 0): CudnnAlgorithmPerf {
  return { algorithm, status, statusName: status === 0 ? 'CUDNN_STATUS_SUCCESS' : 'CUDNN_STATUS_NOT_SUPPORTED', timeMs: -1, memoryBytes, deterministic: true, mathType: 0 };
}

/** A budget of `bytes` (the smaller headroom: the pool's or, `limitedBy` quota, the quota's); `quotaBytes`: the quota's headroom with the scratch held, when the tenant has one. */
function budget(bytes: number, limitedBy: 'quota' | 'pool' = 'pool', quotaBytes = limitedBy === 'quota' ? bytes : undefined): ScratchBudget {
  const quota = quotaBytes === undefined ? undefined : { bytes: quotaBytes, facts: { used_bytes: '5', quota_bytes: '9' } };
  return { bytes, detail: `test budget ${bytes}`, facts: { used_bytes: '7' }, quota, alignedSize: (n) => Math.ceil(n / 256) * 256 };
}

function thrown(run: () => unknown): TensormemError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TensormemError);
    return error as TensormemError;
  }
  throw new Error('expected an error');
}

const CONV: ConvolutionDescriptorInput = {
  input_dims: [32, 64, 56, 56],
  filter_dims: [128, 64, 3, 3],
  pads: [1, 1],
  strides: [1, 1],
  dilations: [1, 1],
  data_type: 'DATA_TYPE_FLOAT32',
  direction: 'CONVOLUTION_DIRECTION_FORWARD',
  group_count: 0,
};

describe('chooseFastest (PREFER_FASTEST)', () => {
  // cuDNN's order: fastest first. FFT (4) needs 300 MiB, WINOGRAD_NONFUSED (7) 40 MiB, IMPLICIT_GEMM (0) none.
  const reported = [perf(4, 300 * MiB), perf(7, 40 * MiB), perf(0, 0)];

  it('takes the fastest algorithm when its workspace fits', () => {
    const choice = chooseFastest('FORWARD', reported, budget(512 * MiB));
    expect(choice).toMatchObject({ fellBack: false, reason: '' });
    expect(choice.perf.algorithm).toBe(4);
  });

  it('falls back to the fastest algorithm that fits, and says why with the numbers', () => {
    const choice = chooseFastest('FORWARD', reported, budget(64 * MiB));
    expect(choice.fellBack).toBe(true);
    expect(choice.perf.algorithm).toBe(7);
    expect(choice.reason).toContain('the fastest algorithm FFT needs 314572800 bytes (300.00 MiB)');
    expect(choice.reason).toContain('using WINOGRAD_NONFUSED (41943040 bytes (40.00 MiB)), the fastest that fits');
    expect(choice.reason).toContain('test budget 67108864');
    // A budget just under 40 MiB skips WINOGRAD_NONFUSED too.
    expect(chooseFastest('FORWARD', reported, budget(40 * MiB - 1)).perf.algorithm).toBe(0);
  });

  it('compares the pool-aligned size with the budget', () => {
    const odd = [perf(1, 1000), perf(0, 0)];
    expect(chooseFastest('FORWARD', odd, budget(1024)).perf.algorithm).toBe(1);
    expect(chooseFastest('FORWARD', odd, budget(1000)).perf.algorithm).toBe(0);
  });

  it('skips algorithms cuDNN reports as unusable, even the fastest', () => {
    const choice = chooseFastest('BACKWARD_FILTER', [perf(2, MiB, 9), perf(1, 2 * MiB), perf(0, 0)], budget(4 * MiB));
    expect(choice).toMatchObject({ fellBack: false });
    expect(algorithmName('BACKWARD_FILTER', choice.perf.algorithm)).toBe('ALGO_1');
  });

  it('refuses when no usable algorithm fits (RESOURCE_EXHAUSTED) or none is usable (FAILED_PRECONDITION)', () => {
    const tooBig = thrown(() => chooseFastest('FORWARD', [perf(4, 300 * MiB), perf(1, 10 * MiB)], budget(MiB)));
    expect(tooBig.kind).toBe('RESOURCE_EXHAUSTED');
    expect(tooBig.message).toContain('the smallest (IMPLICIT_PRECOMP_GEMM) needs 10485760 bytes (10.00 MiB), the lease can take 1048576 bytes (1.00 MiB)');
    expect(tooBig.message).toContain('the pool cap limits it). Try: free arrays, CUDNN_ALGO_MODE_NO_WORKSPACE, or a larger --maxbytes.');
    expect(tooBig.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(tooBig.metadata).toEqual({ used_bytes: '7', requested_bytes: String(10 * MiB), budget_bytes: String(MiB), limited_by: 'pool' });
    // The tenant's quota is what limits the lease: QUOTA_EXCEEDED, which a larger --maxbytes would not cure.
    const overQuota = thrown(() => chooseFastest('FORWARD', [perf(4, 300 * MiB), perf(1, 10 * MiB)], budget(MiB, 'quota')));
    expect(overQuota.kind).toBe('RESOURCE_EXHAUSTED');
    expect(overQuota.reason).toBe('QUOTA_EXCEEDED');
    expect(overQuota.message).toContain("the tenant's quota alone refuses it (1048576 bytes (1.00 MiB) of it left, with the scratch held)). Try: free arrays, CUDNN_ALGO_MODE_NO_WORKSPACE, or a larger quota in the tenants file.");
    // As AllocateArray (the quota is checked before the pool) and a scratch's growth (scratchRefusal): the
    // quota alone refusing it is QUOTA_EXCEEDED, also where the pool cap's headroom is the smaller one.
    const both = thrown(() => chooseFastest('FORWARD', [perf(4, 300 * MiB), perf(1, 10 * MiB)], budget(MiB, 'pool', 2 * MiB)));
    expect(both.reason).toBe('QUOTA_EXCEEDED');
    expect(both.metadata).toEqual({ used_bytes: '5', quota_bytes: '9', requested_bytes: String(10 * MiB), budget_bytes: String(MiB), limited_by: 'quota' });
    expect(both.message).toContain("the tenant's quota alone refuses it (2097152 bytes (2.00 MiB) of it left");
    expect(both.message).toContain('or a larger quota in the tenants file.');
    // The quota's own headroom fits the smallest: the pool is what refuses.
    const poolOnly = thrown(() => chooseFastest('FORWARD', [perf(4, 300 * MiB), perf(1, 10 * MiB)], budget(MiB, 'pool', 20 * MiB)));
    expect(poolOnly.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(poolOnly.metadata).toMatchObject({ used_bytes: '7', limited_by: 'pool' });
    const none = thrown(() => chooseFastest('BACKWARD_DATA', [perf(2, 0, 9)], budget(MiB)));
    expect(none.kind).toBe('FAILED_PRECONDITION');
    expect(none.message).toContain('FFT: CUDNN_STATUS_NOT_SUPPORTED');
  });

  it('NO_WORKSPACE takes the first usable algorithm that needs no workspace', () => {
    expect(chooseNoWorkspace(reported)?.algorithm).toBe(0);
    expect(chooseNoWorkspace([perf(4, MiB), perf(0, 0, 9)])).toBeUndefined();
  });
});

describe('validateConvolution', () => {
  it('normalises a 2-D float32 convolution into the cuDNN query and computes the output dims', () => {
    const conv = validateConvolution(CONV);
    expect(conv.direction).toBe('FORWARD');
    expect(conv.outputDims).toEqual([32, 128, 56, 56]);
    expect(conv.query).toEqual({ direction: 0, inputDims: [32, 64, 56, 56], filterDims: [128, 64, 3, 3], pads: [1, 1], strides: [1, 1], dilations: [1, 1], dataType: 0, computeType: 0, mathType: 0, groupCount: 1 });
  });

  it('defaults empty pads/strides/dilations, maps half types to FLOAT32 compute on tensor cores, accepts 3-D and groups', () => {
    const conv = validateConvolution({ ...CONV, input_dims: [2, 8, 9, 9, 9], filter_dims: [4, 2, 3, 3, 3], pads: [], strides: [2, 2, 2], dilations: [], data_type: 'DATA_TYPE_FLOAT16', group_count: 4, direction: 'CONVOLUTION_DIRECTION_BACKWARD_DATA' });
    expect(conv.query).toMatchObject({ direction: 1, pads: [0, 0, 0], dilations: [1, 1, 1], dataType: 2, computeType: 0, mathType: 1, groupCount: 4 });
    expect(conv.outputDims).toEqual([2, 4, 4, 4, 4]);
  });

  it.each([
    [{ input_dims: [1, 3, 8] }, 'convolution.input_dims', '3 dims'],
    [{ input_dims: [1, 3, 0, 8] }, 'convolution.input_dims[2]', 'received 0'],
    [{ input_dims: [1, 3, 2 ** 31, 8] }, 'convolution.input_dims[2]', 'received 2147483648'],
    [{ filter_dims: [4, 64, 3] }, 'convolution.filter_dims', '3 dims'],
    [{ filter_dims: [128, 32, 3, 3] }, 'convolution.filter_dims[1]', 'received 32'],
    [{ pads: [1] }, 'convolution.pads', '1 entries'],
    [{ strides: [1, 0] }, 'convolution.strides[1]', 'received 0'],
    [{ dilations: [0, 1] }, 'convolution.dilations[0]', 'received 0'],
    [{ filter_dims: [128, 64, 60, 3], pads: [0, 0] }, 'convolution.filter_dims[2]', 'received 60'],
    [{ group_count: 3 }, 'convolution.group_count', 'received 3'],
    [{ data_type: 'DATA_TYPE_INT32' }, 'convolution.data_type', '"DATA_TYPE_INT32"'],
    [{ direction: 'SIDEWAYS' }, 'convolution.direction', '"SIDEWAYS"'],
    // Each dim fits an int, but one sample (or filter) has more elements than cuDNN's int strides hold.
    [{ input_dims: [2, 256, 4096, 4096], filter_dims: [128, 256, 3, 3] }, 'convolution.input_dims', 'received "[2, 256, 4096, 4096]"'],
    [{ input_dims: [1, 1048576, 8, 8], filter_dims: [8, 1048576, 64, 64], pads: [28, 28] }, 'convolution.filter_dims', 'received "[8, 1048576, 64, 64]"'],
    [{ input_dims: [1, 1, 40000, 40000], filter_dims: [2, 1, 1, 1], pads: [0, 0] }, 'convolution.input_dims', 'received "[1, 2, 40000, 40000] (output)"'],
  ])('refuses %j naming %s', (change, field, received) => {
    const error = thrown(() => validateConvolution({ ...CONV, ...change } as ConvolutionDescriptorInput));
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.metadata.field).toBe(field);
    expect(error.message).toContain(received);
  });
});

describe('names, modes and versions', () => {
  it("parses algorithm names per direction, with or without cuDNN's enum prefix", () => {
    expect(parseAlgorithm('FORWARD', 'winograd_nonfused')).toBe(7);
    expect(parseAlgorithm('FORWARD', 'CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING')).toBe(5);
    expect(parseAlgorithm('BACKWARD_FILTER', 'ALGO_3')).toBe(3);
    expect(parseAlgorithm('BACKWARD_DATA', 'CUDNN_CONVOLUTION_BWD_DATA_ALGO_1')).toBe(1);
    const error = thrown(() => parseAlgorithm('BACKWARD_DATA', 'ALGO_3'));
    expect(error.message).toBe('Expected a backward data algorithm (ALGO_0, ALGO_1, FFT, FFT_TILING, WINOGRAD, WINOGRAD_NONFUSED) for algorithm but received "ALGO_3"');
  });

  it('treats an unspecified mode as PREFER_FASTEST and refuses unknown ones', () => {
    expect(parseAlgoMode('CUDNN_ALGO_MODE_UNSPECIFIED')).toBe('PREFER_FASTEST');
    expect(parseAlgoMode('CUDNN_ALGO_MODE_NO_WORKSPACE')).toBe('NO_WORKSPACE');
    expect(thrown(() => parseAlgoMode(7)).metadata.field).toBe('mode');
  });

  it("decodes cudnnGetVersion in cuDNN 9's and 8's encodings", () => {
    expect(cudnnVersionText(92400)).toBe('9.24.0');
    expect(cudnnVersionText(90100)).toBe('9.1.0');
    expect(cudnnVersionText(8907)).toBe('8.9.7');
  });

  it('tries --cudnn-library first, then the standard sonames; "none" tries nothing', () => {
    expect(cudnnCandidates(undefined)).toEqual(['libcudnn.so.9', 'libcudnn.so.8']);
    expect(cudnnCandidates('/opt/cudnn/lib/libcudnn.so.9')).toEqual(['/opt/cudnn/lib/libcudnn.so.9', 'libcudnn.so.9', 'libcudnn.so.8']);
    expect(cudnnCandidates('none')).toEqual([]);
  });
});

describe('cuDNN refusing a query (CudnnLibrary)', () => {
  // The addon as cuDNN answers through it: a NativeError naming the call and the cudnnStatus_t.
  const refusing = (call: string, status: string) => {
    const error = Object.assign(new Error(`${call}: ${status}`), { code: 'CUDA_ERROR', cudaError: status });
    const fail = () => {
      throw error;
    };
    return new CudnnLibrary({ cudnnLoad: fail, cudnnFindAlgorithms: fail, cudnnWorkspaceSize: fail } as never, { loaded: true, path: 'libcudnn.so.9', version: 90100 });
  };
  const query = validateConvolution({ ...CONV, strides: [2, 2] }).query;

  it('names the convolution it refused with its numbers, and the call', () => {
    const error = thrown(() => refusing('cudnnSetConvolutionNdDescriptor', 'CUDNN_STATUS_BAD_PARAM').findAlgorithms(0, query));
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.metadata.field).toBe('convolution');
    expect(error.message).toContain('cudnnSetConvolutionNdDescriptor: CUDNN_STATUS_BAD_PARAM');
    expect(error.message).toContain('input [32, 64, 56, 56], filter [128, 64, 3, 3], pads [1, 1], strides [2, 2], dilations [1, 1], group_count 1, cudnnDataType_t 0 on device 0');
  });

  it("USER_SPECIFIED: an algorithm cuDNN does not support for the convolution names algorithm, not the convolution", () => {
    const error = thrown(() => refusing('cudnnGetConvolutionForwardWorkspaceSize', 'CUDNN_STATUS_NOT_SUPPORTED').workspaceSize(0, query, 4));
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.metadata.field).toBe('algorithm');
    expect(error.message).toContain('FFT');
    expect(error.message).toContain('cudnnGetConvolutionForwardWorkspaceSize: CUDNN_STATUS_NOT_SUPPORTED');
    expect(error.message).toContain('strides [2, 2]');
    // A descriptor refused before the size is asked is still the convolution's.
    expect(thrown(() => refusing('cudnnSetTensorNdDescriptor(input)', 'CUDNN_STATUS_BAD_PARAM').workspaceSize(0, query, 4)).metadata.field).toBe('convolution');
  });
});
