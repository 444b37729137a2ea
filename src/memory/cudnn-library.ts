/**
 * cuDNN for AcquireCudnnWorkspace: opened at run time by the addon (dlopen; never linked) from
 * --cudnn-library (TENSORMEM_CUDNN_LIBRARY), then libcudnn.so.9 and libcudnn.so.8 as the dynamic
 * loader finds them. The library is process-wide, so it is loaded once per process. Nothing fails
 * when it is absent: the sizes then come from the request, and the reply says why.
 */
import { TensormemError, invalidArgument } from '../errors';
import type { CudnnAlgorithmPerf, CudnnConvolutionQuery, CudnnLoadResult, NativeCudnn } from '../native/backend';
import { isNativeError } from '../native/backend';
import { loadAddon } from '../native/addon';
import { algorithmName, directionOfNumber } from './cudnn-convolution';

/** Sonames tried after --cudnn-library (cuDNN 9's libcudnn.so.9 dispatches to libcudnn_cnn.so.9 and the rest). */
export const CUDNN_DEFAULT_CANDIDATES = ['libcudnn.so.9', 'libcudnn.so.8'];

/** "9.1.0" from cudnnGetVersion(): major·10000 + minor·100 + patch since cuDNN 9, major·1000 + minor·100 + patch before. */
export function cudnnVersionText(version: number): string {
  const [major, rest] = version >= 90000 ? [Math.floor(version / 10000), version % 10000] : [Math.floor(version / 1000), version % 1000];
  return `${major}.${Math.floor(rest / 100)}.${rest % 100}`;
}

export class CudnnLibrary {
  constructor(
    private readonly addon: NativeCudnn,
    readonly load: CudnnLoadResult,
  ) {}

  get loaded(): boolean {
    return this.load.loaded;
  }

  /** "9.1.0" when loaded. */
  get versionText(): string | undefined {
    return this.load.loaded && this.load.version !== undefined ? cudnnVersionText(this.load.version) : undefined;
  }

  /** What GetConfig shows: "9.1.0 (libcudnn.so.9)" or "not loaded: <reason>". */
  get describe(): string {
    return this.load.loaded ? `${this.versionText} (${this.load.path})` : `not loaded: ${this.load.error}`;
  }

  /**
   * Why cuDNN cannot size a workspace on this backend, or undefined when it can: it needs the
   * library and a CUDA device (the host backend's emulated device has none).
   */
  unusableReason(backendName: string): string | undefined {
    if (!this.load.loaded) return `cuDNN not loaded: ${this.load.error}`;
    if (backendName !== 'cuda') return `cuDNN ${this.versionText} is loaded but the ${backendName} backend has no CUDA device`;
    return undefined;
  }

  findAlgorithms(device: number, query: CudnnConvolutionQuery): CudnnAlgorithmPerf[] {
    return this.call(device, query, undefined, () => this.addon.cudnnFindAlgorithms(device, query));
  }

  workspaceSize(device: number, query: CudnnConvolutionQuery, algorithm: number): number {
    return this.call(device, query, algorithm, () => this.addon.cudnnWorkspaceSize(device, query, algorithm));
  }

  /**
   * cuDNN refusing the descriptor (BAD_PARAM, NOT_SUPPORTED) is INVALID_ARGUMENT naming the convolution
   * with its numbers, or `algorithm` when the workspace-size call itself refused the named algorithm
   * (USER_SPECIFIED: FFT for a strided convolution); any other failure is CudnnUnavailableError.
   */
  private call<T>(device: number, query: CudnnConvolutionQuery, algorithm: number | undefined, operation: () => T): T {
    try {
      return operation();
    } catch (error) {
      if (!isNativeError(error)) throw error;
      const status = error.cudaError ?? '';
      if (!/^CUDNN_STATUS_(BAD_PARAM|NOT_SUPPORTED)/.test(status)) throw new CudnnUnavailableError(error.message);
      const list = (values: readonly number[]) => `[${values.join(', ')}]`;
      const convolution =
        `input ${list(query.inputDims)}, filter ${list(query.filterDims)}, pads ${list(query.pads)}, strides ${list(query.strides)}, ` +
        `dilations ${list(query.dilations)}, group_count ${query.groupCount}, cudnnDataType_t ${query.dataType} on device ${device}`;
      if (algorithm !== undefined && /^cudnnGetConvolution\w*WorkspaceSize:/.test(error.message)) {
        const name = algorithmName(directionOfNumber(query.direction), algorithm);
        throw invalidArgument('algorithm', `an algorithm cuDNN supports for this convolution (${convolution})`, `${name}, which it refused (${error.message})`);
      }
      throw invalidArgument('convolution', 'a convolution cuDNN supports', `one it refused (${convolution}: ${error.message})`);
    }
  }
}

/** cuDNN failed for a reason other than the descriptor (no driver, handle creation): the caller falls back to the request's bytes. */
export class CudnnUnavailableError extends TensormemError {
  constructor(detail: string) {
    super('UNAVAILABLE', 'BACKEND_ERROR', `cuDNN failed: ${detail}`);
  }
}

/** The candidates for a --cudnn-library value: it first, then the defaults; "none" = no cuDNN. */
export function cudnnCandidates(flagValue: string | undefined): string[] {
  const value = flagValue?.trim() ?? '';
  if (value === 'none') return [];
  return value === '' ? [...CUDNN_DEFAULT_CANDIDATES] : [value, ...CUDNN_DEFAULT_CANDIDATES];
}

let processLibrary: CudnnLibrary | undefined;

/** The process's cuDNN, loaded on first use from `flagValue` (the --cudnn-library value). */
export function cudnnLibrary(flagValue: string | undefined): CudnnLibrary {
  if (processLibrary) return processLibrary;
  const addon = loadAddon();
  const candidates = cudnnCandidates(flagValue);
  const load: CudnnLoadResult = candidates.length === 0 ? { loaded: false, error: 'disabled by --cudnn-library none' } : addon.cudnnLoad(candidates);
  processLibrary = new CudnnLibrary(addon, load);
  return processLibrary;
}
