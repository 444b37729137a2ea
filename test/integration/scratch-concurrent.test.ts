/** Two AcquireCudnnWorkspace calls of one lease at once (threads of one client): one scratch, nothing left over. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const CONV = { input_dims: [32, 64, 56, 56], filter_dims: [128, 64, 3, 3], pads: [1, 1], strides: [1, 1], dilations: [1, 1], data_type: 'DATA_TYPE_FLOAT32' as const };

describe.each(['on', 'off'])('concurrent AcquireCudnnWorkspace (--scrub %s)', (scrub) => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '256M', '--pool-chunk', '4M', '--scrub', scrub, '--cudnn-library', '/nonexistent/libcudnn.so.9']);
    client = new TensormemClient(daemon.tcpAddress);
  });
  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('answers the same scratch to both and holds only that one', async () => {
    const lease = await client.openLease({ clientName: 'cudnn' });
    const ask = () => lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', convolution: CONV, requested_bytes: 32 * MiB });
    const answers = await Promise.all([ask(), ask(), ask(), ask()]);
    const ids = new Set(answers.map((a) => a.scratch?.array_id));
    const used = Number((await client.memoryInfo()).devices[0].used_bytes);
    expect({ ids: ids.size, used }).toEqual({ ids: 1, used: 32 * MiB });
    await lease.close();
  });
});

/**
 * The scratch grows while the client reads the old one (so the old one is given back after the new one
 * is made) and frees the old one meanwhile: the growth answers the new scratch. Before, it answered
 * NOT_FOUND for the old scratch's id, while keeping the new one.
 */
describe('AcquireCudnnWorkspace growing while the client frees the old scratch', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '512M', '--host-maxbytes', '256M', '--pool-chunk', '16M', '--scrub', 'on', '--async-copy-threshold', '64K', '--cudnn-library', '/nonexistent/libcudnn.so.9']);
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
  });
  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('answers the grown scratch and holds only it', async () => {
    const lease = await client.openLease({ clientName: 'cudnn' });
    const ask = (bytes: number) => lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', convolution: CONV, requested_bytes: bytes });
    const old = (await ask(64 * MiB)).scratch!.array_id;
    // In one batch: the read fills the old scratch's mirror (a copy in flight), the growth makes the new
    // scratch (zeroed under --scrub, off the event loop), and the free comes during that.
    const [read, grown, freed] = await Promise.all([lease.readGrpc(old, 0, 16), ask(128 * MiB), lease.free(old)]);
    expect(read.byteLength).toBe(16);
    expect(freed).toBe(128 * MiB); // its device bytes and the mirror the read made
    expect({ grew: grown.grew, bytes: Number(grown.scratch!.byte_size) }).toEqual({ grew: true, bytes: 128 * MiB });
    expect((await lease.list()).map((array) => array.array_id)).toEqual([grown.scratch!.array_id]);
    expect(Number((await client.memoryInfo()).devices[0].used_bytes)).toBe(128 * MiB);
    await lease.close();
    const info = await client.memoryInfo();
    expect([Number(info.devices[0].used_bytes), Number(info.host!.used_bytes)]).toEqual([0, 0]);
  });
});
