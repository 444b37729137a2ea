/**
 * The heap guard refuses calls that make new objects; it must not change which error a bad request
 * gets, nor cost a lease what it already holds. Run with the heap full (a small heap, --heap-reserve
 * 80M, filled with leases as heap-limit.test.ts does) and one lease made before it filled.
 */
import { status } from '@grpc/grpc-js';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const CONV = { input_dims: [1, 1, 8, 8], filter_dims: [1, 1, 3, 3], pads: [1, 1], strides: [1, 1], dilations: [1, 1], data_type: 'DATA_TYPE_FLOAT32' as const };
const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: TensormemClientError) => error);

describe('the heap guard, with the heap full', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let lease: LeaseSession;
  const filler: LeaseSession[] = [];
  const mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-'));
  let fullWorkspaceId = '';
  let sourceId = '';
  let scratchId = '';

  beforeAll(async () => {
    daemon = await startDaemon(['--heap-reserve', '80M', '--mmap-dir', mmapDir, '--cudnn-library', 'none'], { NODE_OPTIONS: '--max-old-space-size=64' });
    client = new TensormemClient(daemon.unixAddress, { dataPlane: false });
    lease = await client.openLease({ clientName: 'before' });
    fullWorkspaceId = (await lease.createWorkspace('full', { initial_size: 64 * 1024, learning_policy: 'LEARNING_POLICY_NONE' })).workspace_id;
    sourceId = (await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })).array_id;
    scratchId = (await lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', convolution: CONV, requested_bytes: MiB } as never)).scratch!.array_id;
    // An empty file of the tenant's: mapping it with initial_size 0 is INVALID_ARGUMENT.
    mkdirSync(join(mmapDir, 'tenant-default'), { recursive: true, mode: 0o700 });
    writeFileSync(join(mmapDir, 'tenant-default', 'empty.mmap'), '');
    let refused: TensormemClientError | undefined;
    while (!refused && filler.length < 40_000) {
      const batch = await Promise.allSettled(Array.from({ length: 32 }, () => client.openLease({ clientName: 'leaky', labels: { job: 'x'.repeat(60) } })));
      for (const outcome of batch) {
        if (outcome.status === 'fulfilled') filler.push(outcome.value);
        else refused = outcome.reason as TensormemClientError;
      }
    }
    expect(refused?.reason).toBe('HEAP_LIMIT');
  }, 120_000);

  afterAll(async () => {
    for (let i = 0; i < filler.length; i += 256) await Promise.all(filler.slice(i, i + 256).map((l) => l.close()));
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  }, 60_000);

  // The guard reads the heap every 16th call once 5 s have passed since its last collection: make sure
  // it refuses now (a refusal collects, and refuses everything for 5 s), on a slow machine too.
  const refusing = async () => {
    for (let tries = 0; tries < 32; tries++) {
      const opened = await client.openLease({ clientName: 'probe' }).catch((error: TensormemClientError) => error);
      if (opened instanceof TensormemClientError && opened.reason === 'HEAP_LIMIT') return;
      if (!(opened instanceof TensormemClientError)) filler.push(opened);
    }
    throw new Error('the heap guard no longer refuses');
  };

  it('still answers INVALID_ARGUMENT for a request that could never succeed', async () => {
    await refusing();
    const hostInFull = await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_HOST_ONLY', workspaceId: fullWorkspaceId }));
    expect([hostInFull?.code, hostInFull?.reason, hostInFull?.errorMetadata.field]).toEqual([status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', 'placement']);
    const dupHostInFull = await failure(lease.duplicate(sourceId, { placement: 'PLACEMENT_HOST_ONLY', workspaceId: fullWorkspaceId }));
    expect([dupHostInFull?.code, dupHostInFull?.errorMetadata.field]).toEqual([status.INVALID_ARGUMENT, 'placement']);
    const emptyFile = await failure(lease.createWorkspace('weights', { initial_size: 0, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_NONE', temp_file_path: 'empty.mmap' }));
    expect([emptyFile?.code, emptyFile?.errorMetadata.field]).toEqual([status.INVALID_ARGUMENT, 'config.temp_file_path']);
    // Still refused for the heap: a valid allocation.
    expect((await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })))?.reason).toBe('HEAP_LIMIT');
  });

  it('keeps the cuDNN scratch a refused growth would have replaced', async () => {
    await refusing();
    const grow = await failure(lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', convolution: CONV, requested_bytes: 2 * MiB } as never));
    expect(grow?.reason).toBe('HEAP_LIMIT');
    expect((await lease.get(scratchId)).byte_size).toBe(MiB);
    const same = await lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', convolution: CONV, requested_bytes: MiB } as never);
    expect(same.scratch?.array_id).toBe(scratchId);
  });
});
