/**
 * Loads the native addon (build/Release/tensormem_native.node, built by `npm run build:native`) and
 * gives it the types of ./backend. Nothing else in the project touches the .node file.
 *
 * The package root (src/package-root.ts) is found from src/native/addon.ts (vitest) and from
 * dist/src/native/addon.js alike.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { BackendName, NativeBackend, NativeCudnn } from './backend';
import { isNativeError } from './backend';
import { packageRoot } from '../package-root';

/** Options of the `host` backend: an emulated device in host RAM. */
export interface HostBackendOptions {
  /** Number of emulated devices (default 1). */
  deviceCount?: number;
  /** Capacity of each emulated device in bytes: allocDevice beyond it fails with OUT_OF_MEMORY. */
  deviceCapacityBytes: number;
  /** Reported by deviceInfo().name (default "tensormem emulated device"). */
  deviceName?: string;
}

/** The `cuda` backend takes no options today. */
export type CudaBackendOptions = Record<string, never>;

export interface AddonBuildInfo {
  /** Whether the addon was compiled with the cuda backend (a CUDA toolkit was found at build time). */
  cuda: boolean;
  /** CUDART_VERSION the addon was compiled against (e.g. 13000 for CUDA 13.0); absent without CUDA. */
  cudaRuntimeVersion?: number;
  /**
   * Without CUDA, why, as CMake saw it when the build folder was configured: "TENSORMEM_CUDA=OFF", no
   * toolkit found, or a CUDA compiler found that could not build (its path). Absent with CUDA.
   */
  withoutCudaReason?: string;
}

/** What the .node file exports (cuDNN functions included). */
export interface NativeAddon extends NativeCudnn {
  createBackend(name: BackendName, options?: HostBackendOptions | CudaBackendOptions): NativeBackend;
  buildInfo(): AddonBuildInfo;
  /**
   * Gives the C heap's free memory back to the system (glibc malloc_trim(0)): freed buffers of bulk
   * transfers otherwise stay in malloc's arenas, resident. true when any was given back.
   */
  trimMallocHeap(): boolean;
  /**
   * Maps the whole POSIX shared-memory object `name` (MAP_SHARED; read-only unless writable) as an
   * external ArrayBuffer, no copy. Throws code SYSTEM_ERROR naming the object and errno (ENOENT once
   * unlinked, EACCES for another user's object). The client side of ExportArray.
   */
  mapSharedMemory(name: string, writable: boolean): ArrayBuffer;
  /**
   * The CRC-32C of data (read in place, never copied) continuing from previous (an unsigned 32-bit CRC
   * of the bytes before it; default 0): the CPU's crc32 instruction where it has one, else a table;
   * portable: the table even then. Unsigned 32-bit.
   */
  crc32c(data: Uint8Array, previous?: number, portable?: boolean): number;
  /** The path crc32c takes on this CPU: "sse4.2", "armv8-crc" or "table". */
  crc32cImplementation(): 'sse4.2' | 'armv8-crc' | 'table';
  /** munmap of a mapSharedMemory result, now; the ArrayBuffer is detached (its views read as empty). false when it was not a live mapping. */
  unmapSharedMemory(buffer: ArrayBuffer): boolean;
}

const ADDON_RELATIVE_PATH = path.join('build', 'Release', 'tensormem_native.node');
const BUILD_NEEDS = '(needs cmake and a C++ compiler; CUDA toolkit optional)';

/**
 * How to build the addon where this copy of the package is. In a checkout: `npm run build:native`. As an
 * installed dependency (its root under node_modules, the install script skipped: --ignore-scripts, a
 * package manager that runs no dependency's build scripts unless allowed, a failed build) that script is
 * not the user's project's: `npm rebuild tensormem` there runs the package's install script again.
 */
export function addonBuildHint(root: string = packageRoot()): string {
  return root.split(path.sep).includes('node_modules')
    ? `run \`npm rebuild tensormem\` in the project that installed it (\`npm rebuild -g tensormem\` for a global install): it reruns the package's install script, which builds the addon ${BUILD_NEEDS}`
    : `run \`npm run build:native\` ${BUILD_NEEDS}`;
}

// Not "install the CUDA toolkit": the reason before the hint may be a toolkit found whose nvcc could not build.
const CUDA_TOOLKIT_NEEDED = 'with a CUDA toolkit that CMake can build with (nvcc, and a host compiler that nvcc supports)';

/**
 * How to get the cuda backend into an addon built without it, where this copy of the package is: the
 * toolkit and TENSORMEM_CUDA are looked at when build/ is configured, which the install script does
 * afresh (`npm rebuild tensormem` as an installed dependency) and `npm run build:native` does not.
 */
export function cudaBuildHint(root: string = packageRoot()): string {
  return root.split(path.sep).includes('node_modules')
    ? `${CUDA_TOOLKIT_NEEDED}, run \`npm rebuild tensormem\` in the project that installed it (\`npm rebuild -g tensormem\` for a global install) with TENSORMEM_CUDA unset or ON: it builds the addon afresh`
    : `${CUDA_TOOLKIT_NEEDED}, build the addon afresh with TENSORMEM_CUDA unset or ON: \`npx cmake-js rebuild --directory native --out build\``;
}

/**
 * Absolute path of the compiled addon. TENSORMEM_NATIVE_ADDON names another build of it (a check build,
 * e.g. scripts/fake-cuda-check.sh's cuda backend on a fake CUDA runtime); it is inherited by the daemons
 * and helper processes that tests start.
 */
export function addonPath(): string {
  return process.env.TENSORMEM_NATIVE_ADDON || path.join(packageRoot(), ADDON_RELATIVE_PATH);
}

let cachedAddon: NativeAddon | undefined;

/** Loads the addon once per module instance; throws an Error that says how to build it. */
export function loadAddon(): NativeAddon {
  if (cachedAddon !== undefined) return cachedAddon;
  const file = addonPath();
  if (!fs.existsSync(file)) {
    throw new Error(`tensormem native addon not found at ${file}: ${addonBuildHint()}`);
  }
  // process.dlopen rather than require: it works the same under CommonJS and vitest's module runner.
  const module: { exports: unknown } = { exports: {} };
  try {
    process.dlopen(module, file);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`tensormem native addon at ${file} failed to load: ${addonBuildHint()}. Cause: ${reason}`, { cause: error });
  }
  cachedAddon = module.exports as NativeAddon;
  return cachedAddon;
}

/**
 * Creates a backend. `host` needs `deviceCapacityBytes`; `cuda` throws an Error with code CUDA_ERROR
 * (and `cudaError`, e.g. "cudaErrorInsufficientDriver") when no usable device or driver is found, or
 * code UNSUPPORTED when the addon was built without CUDA.
 */
export function createBackend(name: 'host', options: HostBackendOptions): NativeBackend;
export function createBackend(name: 'cuda', options?: CudaBackendOptions): NativeBackend;
export function createBackend(name: BackendName, options?: HostBackendOptions | CudaBackendOptions): NativeBackend;
export function createBackend(name: BackendName, options?: HostBackendOptions | CudaBackendOptions): NativeBackend {
  const addon = loadAddon();
  try {
    return addon.createBackend(name, options ?? {});
  } catch (error) {
    // Built without CUDA: what to run depends on where the package is (a checkout or node_modules).
    if (name === 'cuda' && isNativeError(error) && error.code === 'UNSUPPORTED') error.message = `${error.message}; ${cudaBuildHint()}`;
    throw error;
  }
}

/** How the loaded addon was built. */
export function addonBuildInfo(): AddonBuildInfo {
  return loadAddon().buildInfo();
}
