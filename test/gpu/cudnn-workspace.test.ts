/**
 * GPU only: AcquireCudnnWorkspace on the cuda backend against cuDNN itself. The daemon's sizes must be
 * the ones cuDNN reports to the addon for the same descriptor; PREFER_FASTEST falls back when the
 * fastest algorithm's workspace does not fit. Skips, with the reason in the title, without a CUDA
 * device or a cuDNN library (TENSORMEM_CUDNN_LIBRARY, or libcudnn.so.9 / .8 on the loader's path).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { createBackend, loadAddon } from '../../src/native/addon';
import { cudnnCandidates } from '../../src/memory/cudnn-library';
import { validateConvolution } from '../../src/memory/cudnn-convolution';
import type { CudnnAlgorithmPerf } from '../../src/native/backend';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const CONV = { input_dims: [32, 64, 56, 56], filter_dims: [128, 64, 3, 3], pads: [1, 1], strides: [1, 1], dilations: [1, 1], data_type: 'DATA_TYPE_FLOAT32' as const, direction: 'CONVOLUTION_DIRECTION_FORWARD' as const, group_count: 1 };

/** Why these cases cannot run here, or undefined when a CUDA device and cuDNN are usable. */
function skipReason(): string | undefined {
  try {
    const cuda = createBackend('cuda');
    if (cuda.deviceCount() === 0) return 'no CUDA device';
  } catch (error) {
    return `no usable CUDA backend: ${(error as Error).message}`;
  }
  const load = loadAddon().cudnnLoad(cudnnCandidates(process.env.TENSORMEM_CUDNN_LIBRARY));
  return load.loaded ? undefined : `no cuDNN library: ${load.error}`;
}

const reason = skipReason();

describe.skipIf(reason !== undefined)(`cuDNN workspaces on the cuda backend${reason ? ` — skipped: ${reason}` : ''}`, () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let reported: CudnnAlgorithmPerf[];

  beforeAll(async () => {
    daemon = await startDaemon(['--backend', 'cuda', '--maxbytes', '4G', '--pool-chunk', '64M']);
    client = new TensormemClient(daemon.tcpAddress);
    // What cuDNN itself says for the descriptor, asked in this process.
    reported = loadAddon().cudnnFindAlgorithms(0, validateConvolution(CONV).query);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it("PREFER_FASTEST takes cuDNN's fastest usable algorithm and its workspace size", async () => {
    const config = await client.config();
    expect(config.values.find((value) => value.name === 'cudnn_version')!.value).toMatch(/^\d+\.\d+\.\d+ \(/);
    const lease = await client.openLease();
    const reply = await lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', convolution: CONV });
    const fastest = reported.find((perf) => perf.status === 0)!;
    expect(reply.size_source).toMatch(/^cudnn \d+\.\d+\.\d+$/);
    expect(reply.fell_back).toBe(false);
    expect(reply.workspace_bytes).toBe(fastest.memoryBytes);
    expect(reply.candidates.map((candidate) => candidate.workspace_bytes)).toEqual(reported.map((perf) => perf.memoryBytes));
    if (fastest.memoryBytes > 0) expect(reply.scratch!.byte_size).toBe(fastest.memoryBytes);
    await lease.close();
  });

  it('USER_SPECIFIED sizes the named algorithm as cuDNN does; NO_WORKSPACE is zero bytes', async () => {
    const lease = await client.openLease();
    const implicit = await lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_USER_SPECIFIED', algorithm: 'IMPLICIT_PRECOMP_GEMM', convolution: CONV });
    expect(implicit.workspace_bytes).toBe(loadAddon().cudnnWorkspaceSize(0, validateConvolution(CONV).query, 1));
    const none = await lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_NO_WORKSPACE', convolution: CONV });
    expect(none).toMatchObject({ workspace_bytes: 0, size_source: 'no workspace' });
    await lease.close();
  });

  it("falls back to the fastest algorithm that fits when the pool's headroom is below the fastest one's workspace", async (context) => {
    const usable = reported.filter((perf) => perf.status === 0);
    const fastest = usable[0];
    const smaller = usable.find((perf) => perf.memoryBytes < fastest.memoryBytes);
    if (fastest.memoryBytes < MiB || !smaller) {
      context.skip(`cuDNN's fastest algorithm needs ${fastest.memoryBytes} bytes and none needs less: nothing to fall back from`);
      return;
    }
    const lease = await client.openLease();
    const pool = (await client.memoryInfo()).devices[0];
    // Leave exactly fastest − 1 MiB of headroom under the cap.
    const filler = pool.max_bytes - pool.used_bytes - (fastest.memoryBytes - MiB);
    await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [filler] });
    const reply = await lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', convolution: CONV });
    expect(reply.fell_back).toBe(true);
    expect(reply.workspace_bytes).toBeLessThan(fastest.memoryBytes);
    expect(reply.reason).toContain('the fastest that fits');
    await lease.close();
  });
});
