/**
 * AcquireCudnnWorkspace's sizing: which algorithm and how many bytes, from cuDNN when it can be used
 * (library loaded, cuda backend) and from the request's bytes otherwise. The scratch itself is the
 * lease's (Lease.acquireCudnnScratch, grow-only per device).
 */
import { invalidArgument } from '../errors';
import type { CudnnAlgorithmPerf } from '../native/backend';
import {
  ConvolutionDescriptorInput,
  CudnnAlgoModeName,
  ValidatedConvolution,
  ScratchBudget,
  algorithmName,
  chooseFastest,
  chooseNoWorkspace,
  parseAlgoMode,
  parseAlgorithm,
  validateConvolution,
} from './cudnn-convolution';
import { CudnnLibrary, CudnnUnavailableError } from './cudnn-library';

export interface CudnnWorkspaceRequest {
  device: number;
  mode: unknown;
  convolution: ConvolutionDescriptorInput | null | undefined;
  algorithm: string;
  requestedBytes: unknown;
}

export interface CudnnWorkspacePlan {
  mode: CudnnAlgoModeName;
  bytes: number;
  /** Empty when no algorithm was chosen (no cuDNN and no named algorithm). */
  algorithm: string;
  fellBack: boolean;
  reason: string;
  /** "cudnn 9.1.0", "request bytes" or "no workspace". */
  sizeSource: string;
  candidates: CudnnAlgorithmPerf[];
  convolution?: ValidatedConvolution;
}

/** What the plan needs from its surroundings (the lease's budget; the backend). */
export interface CudnnWorkspaceContext {
  library: CudnnLibrary;
  backendName: string;
  budget: () => ScratchBudget;
}

/** Validates everything, then sizes the workspace. Throws INVALID_ARGUMENT naming the field; nothing is allocated here. */
export function planCudnnWorkspace(request: CudnnWorkspaceRequest, context: CudnnWorkspaceContext): CudnnWorkspacePlan {
  const mode = parseAlgoMode(request.mode);
  const convolution = request.convolution ? validateConvolution(request.convolution) : undefined;
  const direction = convolution?.direction ?? 'FORWARD';
  let userAlgorithm: number | undefined;
  if (mode === 'USER_SPECIFIED') userAlgorithm = parseAlgorithm(direction, request.algorithm);
  else if (request.algorithm !== '') throw invalidArgument('algorithm', 'an empty algorithm unless mode is CUDNN_ALGO_MODE_USER_SPECIFIED', request.algorithm);
  const requestedBytes = request.requestedBytes;
  if (typeof requestedBytes !== 'number' || !Number.isSafeInteger(requestedBytes) || requestedBytes < 0) {
    throw invalidArgument('requested_bytes', 'a byte count below 2^53', requestedBytes);
  }
  const unusable = context.library.unusableReason(context.backendName);
  if (unusable === undefined && !convolution) {
    throw invalidArgument('convolution', 'a convolution descriptor (cuDNN sizes the workspace from it)', 'none');
  }
  const base = { mode, fellBack: false, candidates: [] as CudnnAlgorithmPerf[], convolution };
  const fromRequest = (reason: string): CudnnWorkspacePlan =>
    mode === 'NO_WORKSPACE'
      ? { ...base, bytes: 0, algorithm: '', reason, sizeSource: 'no workspace' }
      : { ...base, bytes: requestedBytes, algorithm: userAlgorithm === undefined ? '' : algorithmName(direction, userAlgorithm), reason, sizeSource: 'request bytes' };
  if (unusable !== undefined || !convolution) return fromRequest(unusable ?? '');
  const sizeSource = `cudnn ${context.library.versionText}`;
  try {
    if (mode === 'USER_SPECIFIED') {
      const bytes = context.library.workspaceSize(request.device, convolution.query, userAlgorithm!);
      return { ...base, bytes, algorithm: algorithmName(direction, userAlgorithm!), reason: '', sizeSource };
    }
    const candidates = context.library.findAlgorithms(request.device, convolution.query);
    if (mode === 'NO_WORKSPACE') {
      const chosen = chooseNoWorkspace(candidates);
      const reason = chosen ? '' : 'cuDNN reports no usable algorithm without workspace for this convolution';
      return { ...base, candidates, bytes: 0, algorithm: chosen ? algorithmName(direction, chosen.algorithm) : '', reason, sizeSource: 'no workspace' };
    }
    const choice = chooseFastest(direction, candidates, context.budget());
    return { ...base, candidates, bytes: choice.perf.memoryBytes, algorithm: algorithmName(direction, choice.perf.algorithm), fellBack: choice.fellBack, reason: choice.reason, sizeSource };
  } catch (error) {
    if (error instanceof CudnnUnavailableError) return fromRequest(error.message);
    throw error;
  }
}
