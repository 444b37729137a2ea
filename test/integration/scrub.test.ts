/**
 * --scrub (default on): memory a lease freed is reused by the pools, and no other lease may read what
 * it held. New detached arrays, HOST_ONLY arrays and workspace buffers come zeroed; with --scrub off
 * they hold whatever the memory held.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const secret = (bytes: number) => Buffer.alloc(bytes, 0x5a);

describe.each([
  ['on (the default)', [] as string[], true],
  ['off', ['--scrub', 'off'], false],
])('--scrub %s', (_, flags, scrubbed) => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '16M', ...flags]);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    await daemon?.stop();
  });

  it.each([
    ['a device array', 'PLACEMENT_DEVICE', 4096],
    ['a HOST_ONLY array', 'PLACEMENT_HOST_ONLY', 4096],
    ['a device array above --async-copy-threshold', 'PLACEMENT_DEVICE', 2 * MiB],
  ] as const)(`another tenant's new %s ${scrubbed ? 'reads zeros' : 'holds the freed bytes'}`, async (_, placement, bytes) => {
    const a = await client.openLease({ tenant: 'scrub-a' });
    const b = await client.openLease({ tenant: 'scrub-b' });
    try {
      const first = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], placement });
      await a.write(first.array_id, secret(bytes));
      await a.free(first.array_id);
      // Best fit takes the block just freed.
      const second = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], placement });
      const seen = await b.read(second.array_id);
      expect(seen.equals(scrubbed ? Buffer.alloc(bytes) : secret(bytes))).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it(`another tenant's new workspace ${scrubbed ? 'reads zeros' : 'holds the freed bytes'} in its attached arrays`, async () => {
    const config = { initial_size: 64 * 1024, learning_policy: 'LEARNING_POLICY_NONE' as const };
    const a = await client.openLease({ tenant: 'scrub-a' });
    const b = await client.openLease({ tenant: 'scrub-b' });
    try {
      const wsA = await a.createWorkspace('ws', config);
      await a.enterWorkspace(wsA.workspace_id);
      const attached = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
      await a.write(attached.array_id, secret(4096));
      await a.leaveWorkspace(wsA.workspace_id);
      await a.destroyWorkspace(wsA.workspace_id);
      const wsB = await b.createWorkspace('ws', config);
      await b.enterWorkspace(wsB.workspace_id);
      const mine = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
      expect(mine.attached).toBe(true);
      expect((await b.read(mine.array_id)).equals(scrubbed ? Buffer.alloc(4096) : secret(4096))).toBe(true);
      await b.leaveWorkspace(wsB.workspace_id);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('a DuplicateArray copy under --scrub on', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    // One thread-pool thread: the copies below run one after the other, so the last one is queued for a while.
    daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '256M', '--pool-chunk', '64M'], { UV_THREADPOOL_SIZE: '1' });
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    await daemon?.stop();
  });

  it("is not listed or readable before its bytes are in, so it never shows another tenant's freed bytes", async () => {
    const a = await client.openLease({ tenant: 'scrub-a' });
    const b = await client.openLease({ tenant: 'scrub-b' });
    try {
      const filler = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [32 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
      const mine = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY' });
      await b.write(mine.array_id, Buffer.alloc(MiB, 0x42));
      const first = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY' });
      await a.write(first.array_id, secret(MiB));
      await a.free(first.array_id);
      // Copies that keep the thread pool busy, then the duplicate that best fit puts in A's freed block.
      const busy = [1, 2, 3].map(() => b.duplicate(filler.array_id));
      let done = false;
      const duplicate = b.duplicate(mine.array_id).finally(() => (done = true));
      let seen: Buffer | undefined;
      while (!seen && !done) {
        const copy = (await b.list()).find((array) => array.array_id !== mine.array_id && Number(array.byte_size) === MiB);
        if (copy) seen = await b.read(copy.array_id, MiB - 64 * 1024, 64 * 1024);
      }
      const copy = await duplicate;
      await Promise.all(busy);
      seen ??= await b.read(copy.array_id, MiB - 64 * 1024, 64 * 1024);
      expect(seen.equals(Buffer.alloc(64 * 1024, 0x42))).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
