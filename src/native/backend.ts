/**
 * The typed face of the native addon ("device driver"). It allocates and frees chunks, copies bytes
 * between Node buffers and chunks and between chunks, fills, and reports device memory. It knows
 * nothing of pools, leases or workspaces: policy lives in src/memory.
 *
 * Chunks are named by integer handles from a table inside the addon, so a stale or forged handle is
 * an error, never a wild pointer. Every offset/length is bounds-checked in C++ against the chunk size.
 * All sizes and offsets are non-negative safe integers in bytes.
 */

export type BackendName = 'cuda' | 'host';

export interface DeviceMemoryInfo {
  index: number;
  name: string;
  /** Physical VRAM (cuda: cudaMemGetInfo total) or the emulated device's capacity (host). */
  totalBytes: number;
  /** Free per the driver (cuda: cudaMemGetInfo free) or capacity minus live device chunks (host). */
  freeBytes: number;
  /** cuda: "major.minor"; host: "emulated". */
  computeCapability: string;
}

export interface HostChunkOptions {
  /**
   * When set, the chunk is a POSIX shared-memory object of this name (shm_open O_CREAT|O_EXCL, mode
   * 0600), mapped MAP_SHARED, so that another process on the host can map it (ExportArray). The object
   * is unlinked when the chunk is freed. Must start with "/" and contain no other "/".
   */
  shmName?: string;
}

export interface ChunkInfo {
  handle: number;
  kind: 'device' | 'host';
  device: number;
  bytes: number;
  shmName?: string;
  /** Host chunks made by mapFile. */
  filePath?: string;
}

export interface NativeBackend {
  readonly name: BackendName;
  deviceCount(): number;
  deviceInfo(device: number): DeviceMemoryInfo;

  /** Device memory (cudaMalloc, or host RAM standing in for the emulated device). Throws NativeError code 'OUT_OF_MEMORY' when refused. */
  allocDevice(device: number, bytes: number): number;
  /**
   * Host memory: pinned (cudaHostAlloc / cudaHostRegister) on cuda, page-aligned RAM on host. A shmName
   * chunk stays pageable where the device does not support cudaHostRegister (cudaErrorNotSupported, e.g.
   * confidential-computing mode) rather than failing.
   */
  allocHost(bytes: number, options?: HostChunkOptions): number;
  /**
   * A host chunk backed by the file at `path`, mapped whole with MAP_SHARED (MMAP workspaces): its
   * contents live in the file and survive the mapping. createBytes > 0: (re)create the file as that many
   * zero bytes first (mode 0600); 0: map the existing file as it is (its length must be > 0).
   * deleteOnFree: unlink the file when the chunk is freed (temporary files). On cuda the mapping stays
   * pageable (not cudaHostRegister'd: its pages belong to the file; cudaMemcpy stages copies). Throws SYSTEM_ERROR
   * naming the path and errno, OUT_OF_MEMORY when the disk is full (posix_fallocate); SYSTEM_ERROR,
   * the file untouched, for createBytes > 0 on a file a live chunk of this process maps (re-creating
   * it would truncate it under that mapping, whose pages would then SIGBUS).
   */
  mapFile(path: string, options: { createBytes: number; deleteOnFree: boolean }): { handle: number; bytes: number };
  /**
   * Frees a chunk. If an async copy on it is still running, the release happens when that copy ends.
   * On cuda a device chunk's memory goes back to the driver on a release thread of the addon's own
   * (cudaFree waits for every copy on the device): free() returns at once, and an allocDevice the
   * driver refuses meanwhile waits for those releases and asks again.
   */
  free(handle: number): void;
  /** Returns once every release so far has given its memory back (shutdown; blocks the thread). No-op on host. */
  settleReleases(): void;
  chunkInfo(handle: number): ChunkInfo;

  /**
   * Copies src into the chunk at offset (synchronous; for small copies). write and read (and their
   * async forms) throw UNSUPPORTED when the buffer overlaps the chunk range (a hostView of those bytes).
   */
  write(handle: number, offset: number, src: Uint8Array): void;
  /** Copies length bytes from the chunk at offset into dst (synchronous). */
  read(handle: number, offset: number, dst: Uint8Array): void;
  /** Chunk to chunk (device⇄device, host⇄device, host⇄host). */
  copy(dstHandle: number, dstOffset: number, srcHandle: number, srcOffset: number, bytes: number): void;
  /** Sets bytes to `value` (0..255). */
  fill(handle: number, offset: number, bytes: number, value: number): void;

  /**
   * The same operations off the event loop (Napi::AsyncWorker); src/dst must stay untouched until they settle.
   * The addon keeps the Uint8Array alive, not its memory: its ArrayBuffer must not be detached meanwhile
   * (transferred by structuredClone/postMessage, resized): the copy would then write into memory V8 has
   * freed (seen with AddressSanitizer: heap-use-after-free in the worker's memcpy). N-API cannot hold an
   * ArrayBuffer's backing store; views from hostView() and mappings from mapSharedMemory() are pinned.
   */
  writeAsync(handle: number, offset: number, src: Uint8Array): Promise<void>;
  readAsync(handle: number, offset: number, dst: Uint8Array): Promise<void>;
  copyAsync(dstHandle: number, dstOffset: number, srcHandle: number, srcOffset: number, bytes: number): Promise<void>;
  fillAsync(handle: number, offset: number, bytes: number, value: number): Promise<void>;

  /** cuda only: a cudaIpcMemHandle_t (64 bytes) for a device chunk this process allocated. Throws NativeError code 'UNSUPPORTED' on host, for host chunks and for chunks from openIpcHandle. */
  exportIpcHandle(handle: number): Buffer;
  /**
   * cuda only: maps another process's device allocation from the 64-byte handle its exportIpcHandle
   * gave (cudaIpcOpenMemHandle) and returns a device chunk over it; free() closes the mapping
   * (cudaIpcCloseMemHandle), never the memory, which stays the exporter's. `bytes` is the exported
   * chunk's size, as the exporter reports it (CUDA does not): copies are bounds-checked against it.
   * The handle cannot be opened in the process that exported it (cudaErrorInvalidContext or
   * cudaErrorInvalidResourceHandle). Throws UNSUPPORTED on host, CUDA_ERROR when the driver refuses.
   * Counted in liveChunks() as a device chunk of `bytes` while open.
   */
  openIpcHandle(device: number, ipcHandle: Uint8Array, bytes: number): number;

  /**
   * A view of [offset, offset + bytes) of a host chunk's memory, no copy (a data plane GET writes it to
   * its socket as it is). The chunk is pinned until releaseView(view): a free() meanwhile is carried
   * out then, so the view never outlives the memory. A view never released is unpinned when it is
   * garbage-collected. Throws UNSUPPORTED for a device chunk, OUT_OF_BOUNDS outside the chunk.
   */
  hostView(handle: number, offset: number, bytes: number): Uint8Array;
  /** Ends a hostView: the view reads as empty from now on and the chunk's pin is dropped. TypeError for anything else, or a view released already. */
  releaseView(view: Uint8Array): void;

  /** Live chunks and their bytes, by kind (the addon's own count, for leak checks). */
  liveChunks(): { device: number; host: number; deviceBytes: number; hostBytes: number };
}

export type NativeErrorCode = 'OUT_OF_MEMORY' | 'INVALID_HANDLE' | 'OUT_OF_BOUNDS' | 'CUDA_ERROR' | 'UNSUPPORTED' | 'SYSTEM_ERROR';

/** Errors thrown by the addon carry `code` (above) and, for CUDA errors, `cudaError` (e.g. "cudaErrorNoDevice"). */
export interface NativeError extends Error {
  code: NativeErrorCode;
  cudaError?: string;
  /** The errno of a failed system call (shm_open, mmap, open, ...), which the message names too. */
  errno?: number;
}

export function isNativeError(error: unknown): error is NativeError {
  return error instanceof Error && typeof (error as NativeError).code === 'string';
}

/**
 * cuDNN as the addon opens it at run time (dlopen; never linked). `version` is cudnnGetVersion():
 * major·10000 + minor·100 + patch from cuDNN 9 on, major·1000 + minor·100 + patch before.
 */
export interface CudnnLoadResult {
  loaded: boolean;
  /** The candidate that opened. */
  path?: string;
  version?: number;
  /** Why nothing loaded: every candidate tried, with dlopen's reason or the missing symbol. */
  error?: string;
}

/**
 * One convolution for cuDNN, normalised and validated by src/memory/cudnn-convolution.ts: packed
 * NCHW (NCDHW) input, KCRS filter, cross-correlation. Enum fields are cuDNN's numbers
 * (cudnnDataType_t, cudnnMathType_t); direction 0 forward, 1 backward data, 2 backward filter.
 */
export interface CudnnConvolutionQuery {
  direction: 0 | 1 | 2;
  inputDims: number[];
  filterDims: number[];
  pads: number[];
  strides: number[];
  dilations: number[];
  dataType: number;
  computeType: number;
  mathType: number;
  groupCount: number;
}

/** One row of cudnnGetConvolution*Algorithm_v7, in cuDNN's order (fastest expected first). */
export interface CudnnAlgorithmPerf {
  /** The cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t value. */
  algorithm: number;
  /** cudnnStatus_t for this algorithm: 0 = usable. */
  status: number;
  statusName: string;
  timeMs: number;
  memoryBytes: number;
  deterministic: boolean;
  mathType: number;
}

/**
 * The addon's cuDNN functions (module-level: the library is process-wide). Queries need the cuda
 * backend's device index and throw NativeError: UNSUPPORTED when cuDNN is not loaded or the addon has
 * no CUDA; CUDA_ERROR with cudaError set to the cudaError_t or cudnnStatus_t name when CUDA or cuDNN
 * refuses (e.g. "cudaErrorInsufficientDriver", "CUDNN_STATUS_NOT_SUPPORTED").
 */
export interface NativeCudnn {
  /** Tries the candidates in order (paths, or names dlopen searches); once loaded, returns that library. */
  cudnnLoad(candidates: string[]): CudnnLoadResult;
  cudnnFindAlgorithms(device: number, query: CudnnConvolutionQuery): CudnnAlgorithmPerf[];
  cudnnWorkspaceSize(device: number, query: CudnnConvolutionQuery, algorithm: number): number;
}
