/**
 * Copies into an attached array never land on its workspace's next cycle: a client (another thread) may
 * leave and re-enter the workspace while a large DuplicateArray or WriteArray into it is under way, and
 * allocate and write the next cycle's arrays in the same bytes. Those arrays must keep what was written
 * to them; the copy in flight fails (ARRAY_OUT_OF_SCOPE) or ended before the cycle moved on.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const u8 = (n: number) => ({ dataType: 'DATA_TYPE_UINT8' as const, shape: [n] });

describe("copies into an attached array and its workspace's next cycle", () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '1G', '--host-maxbytes', '512M', '--pool-chunk', '256M']);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  /** Runs `copy` (into the workspace's first array), moves the workspace on meanwhile, and checks the next cycle's first array. */
  async function nextCycleKeepsItsBytes(copy: 'duplicate' | 'write'): Promise<void> {
    const lease = await client.openLease({ clientName: `cycle-${copy}` });
    try {
      const source = await lease.allocate(u8(128 * MiB));
      await lease.write(source.array_id, Buffer.alloc(128 * MiB, 0xaa));
      const ws = await lease.createWorkspace('W', { initial_size: 200 * MiB });
      await lease.enterWorkspace(ws.workspace_id);
      let inFlight: Promise<unknown>;
      if (copy === 'duplicate') {
        inFlight = lease.duplicate(source.array_id, { workspaceId: ws.workspace_id });
      } else {
        const target = await lease.allocate({ ...u8(128 * MiB), workspaceId: ws.workspace_id });
        inFlight = lease.write(target.array_id, Buffer.alloc(128 * MiB, 0xaa), 0, 3 * MiB);
      }
      const outcome = inFlight.then(() => undefined, (error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 2));
      await lease.leaveWorkspace(ws.workspace_id);
      await lease.enterWorkspace(ws.workspace_id);
      // Where a WriteArray's chunk in flight lands is not known: as large as the copy, the next array covers it.
      const nextBytes = copy === 'duplicate' ? MiB : 128 * MiB;
      const next = await lease.allocate({ ...u8(nextBytes), workspaceId: ws.workspace_id });
      const pattern = Buffer.alloc(nextBytes, 0x11);
      await lease.write(next.array_id, pattern);
      const error = await outcome;
      if (error !== undefined) {
        expect(error).toBeInstanceOf(TensormemClientError);
        expect((error as TensormemClientError).reason, String(error)).toBe('ARRAY_OUT_OF_SCOPE');
      }
      expect(sha256(await lease.read(next.array_id))).toBe(sha256(pattern));
    } finally {
      await lease.close();
    }
  }

  it('DuplicateArray into the workspace', async () => {
    for (let i = 0; i < 3; i++) await nextCycleKeepsItsBytes('duplicate');
  }, 60_000);

});
