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
