/**
 * The GPU suite's one question: can this process create the cuda backend? When it cannot, every GPU case
 * skips and its title says why, with the CUDA error (e.g. "CUDA_ERROR cudaErrorInsufficientDriver: ...",
 * or "UNSUPPORTED ... built without CUDA"); a GPU case never passes without a GPU.
 */
import { afterEach } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { createBackend } from '../../src/native/addon';
import type { NativeBackend } from '../../src/native/backend';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

export interface CudaProbe {
  backend?: NativeBackend;
  /** Why there is no cuda backend here; undefined when there is one. */
  reason?: string;
}

let probed: CudaProbe | undefined;

export function probeCuda(): CudaProbe {
  if (probed) return probed;
  try {
    const backend = createBackend('cuda', {});
    probed = backend.deviceCount() > 0 ? { backend } : { reason: 'the cuda backend sees no device' };
  } catch (error) {
    const e = error as Error & { code?: string; cudaError?: string };
    probed = { reason: [e.code, e.message].filter(Boolean).join(' ') };
  }
  return probed;
}

/**
 * Whether the cuda backend runs on the fake CUDA runtime (scripts/fake-cuda-check.sh), whose FAKE_CUDA_*
 * switches make a GPU misbehave on purpose; a real runtime ignores them, so such suites skip on a GPU.
 */
export function isFakeCuda(probe: CudaProbe = probeCuda()): boolean {
  return probe.backend !== undefined && probe.backend.deviceInfo(0).name.startsWith('Fake CUDA');
}

/** The title note of a suite that needs the fake runtime: why it skips, or "". */
export function fakeOnlyNote(why: string, probe: CudaProbe = probeCuda()): string {
  return probe.backend && !isFakeCuda(probe) ? ` (skipped: ${why}; the fake runtime can)` : skipNote(probe);
}

/** " (skipped: <reason>)" for a suite title when there is no GPU, else "". */
export function skipNote(probe: CudaProbe = probeCuda()): string {
  return probe.backend ? '' : ` (skipped: ${probe.reason})`;
}

/** --device-reserve's default (DESIGN.md §3): 2 GiB on devices of 16 GiB or more, else 1 GiB. */
export function defaultDeviceReserveBytes(totalBytes: number): number {
  const GiB = 1024 ** 3;
  return totalBytes >= 16 * GiB ? 2 * GiB : GiB;
}

/** Where the GPU suite writes its figures (gpu-run.sh sets it), or undefined. */
export function resultsDir(): string | undefined {
  return process.env.TENSORMEM_GPU_RESULTS || undefined;
}

/**
 * A daemon on the cuda backend per test: `start(flags, env)` runs tensormemd --backend cuda with the
 * flags (and `env` added to its environment: the fake runtime's switches) and connects a client on its
 * unix socket; both are closed after each test of the calling suite (a test may stop them first).
 */
export function cudaDaemonPerTest(): (flags?: string[], env?: NodeJS.ProcessEnv) => Promise<{ daemon: DaemonProcess; client: TensormemClient }> {
  let current: { daemon: DaemonProcess; client: TensormemClient } | undefined;
  afterEach(async () => {
    current?.client.close();
    await current?.daemon.stop();
    current = undefined;
  });
  return async (flags = [], env = {}) => {
    const daemon = await startDaemon(['--backend', 'cuda', ...flags], env);
    current = { daemon, client: new TensormemClient(daemon.unixAddress) };
    return current;
  };
}
