/**
 * Many calls of two leases of one tenant at once, in a seeded random mix (allocate in workspaces or
 * detached, with request ids and wait_for_memory; scope operations; writes and reads over gRPC and the
 * data plane; free, duplicate, sync, export, cuDNN scratch), one lease closed in the middle of it all.
 * Whatever each call answers, none is INTERNAL, nothing is logged at error, and once both leases are
 * closed every counter is back to exactly zero: pools, host, tenants, the snapshot's blocks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const KiB = 1024;
const MiB = 1024 * KiB;

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const CONFIGS = [
  { initial_size: 8 * MiB },
  { initial_size: 0, learning_policy: 'LEARNING_POLICY_FIRST_LOOP', spill_policy: 'SPILL_POLICY_REALLOCATE' },
  { initial_size: 512 * KiB, reset_policy: 'RESET_POLICY_ENDOFBUFFER_REACHED', learning_policy: 'LEARNING_POLICY_NONE', allocation_policy: 'ALLOCATION_POLICY_STRICT' },
  { initial_size: 8 * MiB, mirroring_policy: 'MIRRORING_POLICY_HOST_ONLY' },
  { initial_size: 256 * KiB, spill_policy: 'SPILL_POLICY_EXTERNAL' },
];
const SIZES = [64, 4 * KiB, 64 * KiB, 300 * KiB, MiB, 4 * MiB];

describe.each(['on', 'off'])('concurrent calls of one tenant (--scrub %s)', (scrub) => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '256M', '--pool-chunk', '8M', '--async-copy-threshold', '16K', '--data-listen', '127.0.0.1:0', '--scrub', scrub]);
    client = new TensormemClient(daemon.tcpAddress, { dataPlane: { thresholdBytes: 1 } });
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it.each([1, 2, 3])('seed %i: no internal error, and everything back to zero', async (seed) => {
    const next = random(seed * 7919);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
    const leases: LeaseSession[] = [await client.openLease({ tenant: 't' }), await client.openLease({ tenant: 't' })];
    const workspaces: Array<{ lease: LeaseSession; id: string }> = [];
    for (const lease of leases) {
      for (let i = 0; i < 3; i++) workspaces.push({ lease, id: (await lease.createWorkspace(`w${i}`, pick(CONFIGS) as never)).workspace_id });
    }
    const arrays: Array<{ lease: LeaseSession; id: string; size: number }> = [];
    const failures: string[] = [];
    const call = async (lease: LeaseSession, kind: number, delayMs: number): Promise<void> => {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      const workspace = () => pick(workspaces.filter((w) => w.lease === lease)).id;
      const own = arrays.filter((a) => a.lease === lease);
      if (kind < 0.25) {
        const array = await lease.allocate({
          dataType: 'DATA_TYPE_UINT8',
          shape: [pick(SIZES)],
          workspaceId: next() < 0.6 ? workspace() : '',
          zero: next() < 0.5,
          requestId: next() < 0.2 ? `request-${Math.floor(next() * 5)}` : '',
          placement: next() < 0.2 ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_DEVICE',
          waitForMemory: next() < 0.1,
          deadlineMs: 2000,
        });
        arrays.push({ lease, id: array.array_id, size: Number(array.byte_size) });
      } else if (kind < 0.35) await lease.enterWorkspace(workspace());
      else if (kind < 0.45) await lease.leaveWorkspace(workspace());
      else if (kind < 0.48) await lease.borrowWorkspace(workspace());
      else if (kind < 0.5) await lease.scopeOut();
      else if (kind < 0.52) await lease.initializeWorkspace(workspace());
      else if (kind < 0.54) await lease.destroyWorkspace(workspace());
      else if (own.length > 0) {
        const { id, size } = pick(own);
        if (kind < 0.62) await (next() < 0.5 ? lease.write(id, Buffer.alloc(size, 7)) : lease.writeGrpc(id, Buffer.alloc(size, 7)));
        else if (kind < 0.7) await (next() < 0.5 ? lease.read(id) : lease.readGrpc(id));
        else if (kind < 0.76) await lease.free(id);
        else if (kind < 0.82) await lease.duplicate(id, { detached: next() < 0.5, workspaceId: next() < 0.5 ? workspace() : '' });
        else if (kind < 0.88) await lease.sync(id, next() < 0.5 ? 'SYNC_DIRECTION_TO_HOST' : 'SYNC_DIRECTION_TO_DEVICE');
        else if (kind < 0.92) await lease.exportArray(id, { map: false });
        else if (kind < 0.96) await lease.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', requested_bytes: pick(SIZES) } as never);
        else await lease.get(id);
      }
    };
    const calls: Array<Promise<unknown>> = [];
    // Mostly allocations in the first 20 ms, then everything until 120 ms; lease 0 closes at about 90 ms.
    for (let n = 0; n < 400; n++) {
      const early = n < 120;
      const kind = early && next() < 0.7 ? next() * 0.25 : next();
      calls.push(call(pick(leases), kind, early ? Math.floor(next() * 20) : 20 + Math.floor(next() * 100)).catch((error: Error) => failures.push(error.message)));
    }
    calls.push(new Promise((resolve) => setTimeout(resolve, 80 + Math.floor(next() * 20))).then(() => leases[0].close()));
    await Promise.all(calls);
    await leases[1].close();

    expect(failures.filter((message) => /^(INTERNAL|UNKNOWN)/.test(message))).toEqual([]);
    const info = await client.memoryInfo();
    const snapshot = await client.memorySnapshot();
    expect({
      deviceUsed: Number(info.devices[0].used_bytes),
      deviceBlocks: Number(info.devices[0].allocation_count),
      hostUsed: Number(info.host!.used_bytes),
      mirrors: Number(info.host!.mirror_bytes),
      hostOnly: Number(info.host!.host_only_bytes),
      tenants: info.tenants.map((tenant) => [tenant.tenant, Number(tenant.used_bytes), tenant.leases]),
      liveBlocks: snapshot.pools.flatMap((pool) => pool.segments.flatMap((segment) => segment.blocks.filter((block) => !block.free))).length,
      errorsLogged: daemon.logs.filter((entry) => (entry.level as number) >= 50).map((entry) => entry.msg),
    }).toEqual({ deviceUsed: 0, deviceBlocks: 0, hostUsed: 0, mirrors: 0, hostOnly: 0, tenants: [], liveBlocks: 0, errorsLogged: [] });
  }, 60_000);
});
