/**
 * SIGTERM in the middle of every kind of work at once (gRPC and data plane transfers, allocations
 * waiting for memory, exported and mapped arrays, workspace cycles, MMAP workspaces, KeepAlive and
 * WatchMemory streams), with a --shutdown-timeout too short for the transfers: the daemon exits 0 with
 * its "stopped" line, every call ends (none hangs past the drain) with OK or UNAVAILABLE (a cut call said
 * CANCELLED before: drain-cut-status.test.ts), and neither /dev/shm nor --mmap-dir keeps a file of it.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import type { LeaseSession } from '../../src/client/tensormem-client';
import { startDaemon } from '../helpers/daemon-process';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MIB = 1024 * 1024;

describe('SIGTERM under load', () => {
  it('exits 0 and ends every call with OK or UNAVAILABLE, leaving nothing in /dev/shm or --mmap-dir', async () => {
    const mmapDir = join(mkdtempSync(join(tmpdir(), 'tensormem-drain-load-')), 'mmap');
    const daemon = await startDaemon(['--data-listen', '127.0.0.1:0', '--mmap-dir', mmapDir, '--shutdown-timeout', '300ms', '--log-level', 'info']);
    const clients: TensormemClient[] = [];
    const outcomes: Array<{ name: string; result?: string }> = [];
    const streamErrors: string[] = [];
    let signalled = false;
    /** Runs `call`, noting how it ended: OK, or the code's name and the reason. */
    const track = async <T>(name: string, call: Promise<T>): Promise<T> => {
      const outcome: { name: string; result?: string } = { name };
      outcomes.push(outcome);
      try {
        const value = await call;
        outcome.result = 'OK';
        return value;
      } catch (error) {
        outcome.result = error instanceof TensormemClientError ? `${status[error.code]}/${error.reason ?? ''}` : `not a TensormemClientError: ${String(error)}`;
        throw error;
      }
    };
    /** A client and a lease running `body` in a loop until the drain refuses it. */
    const worker = async (options: ConstructorParameters<typeof TensormemClient>[1], body: (lease: LeaseSession, client: TensormemClient, round: number) => Promise<void>) => {
      const client = new TensormemClient(daemon.tcpAddress, options);
      clients.push(client);
      const lease = await track('OpenLease', client.openLease());
      for (let round = 0; ; round++) {
        try {
          await body(lease, client, round);
        } catch (error) {
          if (signalled) return;
          throw error;
        }
      }
    };
    const transfer = (bytes: number, placement: 'PLACEMENT_HOST_ONLY' | 'PLACEMENT_UNSPECIFIED') => async (lease: LeaseSession) => {
      const array = await track('AllocateArray', lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], placement, waitForMemory: true }));
      await track('write', lease.write(array.array_id, Buffer.alloc(bytes, 7)));
      expect((await track('read', lease.read(array.array_id))).subarray(-1)[0]).toBe(7);
      await track('FreeArray', lease.free(array.array_id));
    };
    const workspaceCycles = (config: Parameters<LeaseSession['createWorkspace']>[1]) => async (lease: LeaseSession, _client: TensormemClient, round: number) => {
      const workspace = await track('CreateWorkspace', lease.createWorkspace(`ws-${round}`, config));
      for (let cycle = 0; cycle < 3; cycle++) {
        await track('EnterWorkspace', lease.enterWorkspace(workspace.workspace_id));
        const array = await track('AllocateArray', lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [64 * 1024] }));
        await track('write', lease.write(array.array_id, Buffer.alloc(4096, 1)));
        await track('LeaveWorkspace', lease.leaveWorkspace(workspace.workspace_id));
      }
      await track('DestroyWorkspace', lease.destroyWorkspace(workspace.workspace_id));
    };
    const workers = [
      worker({ dataPlane: false }, transfer(128 * MIB, 'PLACEMENT_HOST_ONLY')),
      worker({ dataPlane: false }, transfer(48 * MIB, 'PLACEMENT_UNSPECIFIED')),
      worker({}, transfer(64 * MIB, 'PLACEMENT_UNSPECIFIED')),
      // Two of 640 MiB where the device's --maxbytes is 1 GiB (half the emulated 2 GiB): one waits for the other.
      ...[0, 1].map(() =>
        worker({}, async (lease) => {
          const array = await track('AllocateArray(wait_for_memory)', lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [640 * MIB], waitForMemory: true }));
          await sleep(100);
          await track('FreeArray', lease.free(array.array_id));
        }),
      ),
      worker({}, async (lease) => {
        const array = await track('AllocateArray', lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MIB], placement: 'PLACEMENT_HOST_ONLY', exportable: true }));
        const exported = await track('ExportArray', lease.exportArray(array.array_id, { writable: true }));
        exported.bytes!.fill(3);
        await track('FreeArray', lease.free(array.array_id));
      }),
      worker({}, workspaceCycles({ initial_size: 4 * MIB })),
      worker({}, workspaceCycles({ initial_size: 4 * MIB, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_NONE' })),
      worker({}, async (lease, client, round) => {
        if (round === 0) {
          lease.startKeepAlive(1000, { releaseOnDisconnect: true, onError: (error) => streamErrors.push(`KeepAlive ${status[error.code]}/${error.reason}`) });
          client.watchMemory(50, () => undefined, (error) => streamErrors.push(`WatchMemory ${status[error.code]}/${error.reason}`));
        }
        await track('ListArrays', lease.list());
        await sleep(50);
      }),
    ];
    const working = Promise.allSettled(workers);
    const succeeded = (name?: string) => outcomes.filter((outcome) => outcome.result === 'OK' && (name === undefined || outcome.name === name)).length;
    try {
      // The signal comes once every kind of work is under way: an allocation that waited for memory was
      // served, the streams are open (the ListArrays worker opened them in its first round), and the rest
      // is running (a fixed 1.5 s was too short on a loaded machine: no 640 MiB allocation served yet).
      await expect
        .poll(() => ({ waitedAndServed: succeeded('AllocateArray(wait_for_memory)') > 0, streamsOpen: succeeded('ListArrays') > 0, busy: succeeded() > 20 }), { timeout: 30_000, interval: 50 })
        .toEqual({ waitedAndServed: true, streamsOpen: true, busy: true });
      signalled = true;
      const signalledAt = Date.now();
      expect(await daemon.stop('SIGTERM')).toBe(0);
      // The drain: 300 ms for calls in flight, the cut calls' statuses, the freeing.
      expect(Date.now() - signalledAt).toBeLessThan(5_000);
      // Every call has ended once the daemon is gone (a client left waiting would hang here).
      const settled = await Promise.race([working, sleep(5_000).then(() => undefined)]);
      expect(settled, `calls still pending: ${JSON.stringify(outcomes.filter((outcome) => !outcome.result))}`).toBeDefined();
      expect(settled!.filter((worker) => worker.status === 'rejected')).toEqual([]);
      expect(outcomes.filter((outcome) => outcome.result !== 'OK' && !outcome.result!.startsWith('UNAVAILABLE/'))).toEqual([]);
      expect(streamErrors.length).toBeGreaterThan(0);
      expect(streamErrors.filter((error) => !error.endsWith(' UNAVAILABLE/SHUTTING_DOWN'))).toEqual([]);
      expect(daemon.otherStderr).toEqual([]);
      expect(daemon.logs.filter((entry) => (entry.level as number) >= 50)).toEqual([]);
      expect(daemon.logs.at(-1)).toMatchObject({ event: 'stopped', liveChunks: { device: 0, host: 0 } });
      expect(readdirSync('/dev/shm').filter((name) => name.startsWith(`tensormem-${daemon.child.pid}-`))).toEqual([]);
      expect(readdirSync(mmapDir).filter((name) => name.startsWith('tensormem-ws-'))).toEqual([]);
    } finally {
      for (const client of clients) client.close();
      rmSync(join(mmapDir, '..'), { recursive: true, force: true });
    }
  }, 60_000);
});
