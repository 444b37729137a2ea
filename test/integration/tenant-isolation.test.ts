/**
 * Two tenants of one daemon (a tenants file), driven by the typed client: whatever tenant A wrote (its
 * arrays of every size and placement, their mirrors, exported regions, workspace buffers and spills, its
 * cuDNN scratch, a write still in flight), tenant B finds none of it in anything it is handed afterwards
 * (new arrays read over the data plane and over gRPC, whole exported regions, duplicates, workspace
 * arrays, a scratch), however A's lease ended. scrub.test.ts checks single paths, and --scrub off.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { tenantsYaml, writeTenantsFile } from '../helpers/tenants-file';

const KiB = 1024;
const MiB = 1024 * KiB;
const TOKENS = { 'team-a': randomBytes(24).toString('hex'), 'team-b': randomBytes(24).toString('hex'), ops: randomBytes(24).toString('hex') };
const MARK = Buffer.from('SECRET-OF-TEAM-A');
/** Sizes around the pool's 256-byte blocks, pages, --async-copy-threshold (64K here) and the 1 MiB attached-copy slice. */
const SIZES = [1, 100, 4095, 4096, 5000, 60 * KiB, 300 * KiB, MiB + 3];
const PLACEMENTS = ['PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY'] as const;
const MIRRORINGS = ['MIRRORING_POLICY_FULL', 'MIRRORING_POLICY_HOST_ONLY'] as const;
const SCRATCH = { device: 0, mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', requested_bytes: 2 * MiB } as const;

function marked(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let at = 0; at < bytes; at += MARK.length) MARK.copy(out, at);
  return out;
}

/** Whether any 9 bytes of the mark are in `bytes` (an array of 9 bytes or more holding a piece of it). */
const holdsMark = (bytes: Buffer) => bytes.indexOf(MARK.subarray(0, 9)) >= 0 || bytes.indexOf(MARK.subarray(7)) >= 0;

const workspaceConfig = (mirroring: (typeof MIRRORINGS)[number]) => ({ initial_size: 2 * MiB, mirroring_policy: mirroring, learning_policy: 'LEARNING_POLICY_NONE' as const });
const placementOf = (mirroring: (typeof MIRRORINGS)[number]) => (mirroring === 'MIRRORING_POLICY_FULL' ? 'PLACEMENT_DEVICE' : 'PLACEMENT_HOST_ONLY');

/** Fills every kind of memory a lease can hold with the mark, reading each back (mirrors) and exporting some (regions). */
async function writeEverywhere(a: LeaseSession): Promise<void> {
  for (const size of SIZES) {
    for (const placement of PLACEMENTS) {
      for (const exportable of [false, true]) {
        const array = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement, exportable });
        await a.write(array.array_id, marked(size));
        await a.read(array.array_id);
        // Moved into a region of its own: the pool block it leaves holds the mark.
        if (!exportable && size > 4000) await a.exportArray(array.array_id, { side: 'EXPORT_SIDE_HOST', map: false });
      }
    }
  }
  for (const mirroring of MIRRORINGS) {
    const workspace = await a.createWorkspace(mirroring, workspaceConfig(mirroring));
    await a.enterWorkspace(workspace.workspace_id);
    // The last one does not fit the 2 MiB buffer: a spill.
    for (const size of [100, 5000, 600 * KiB, 3 * MiB]) {
      const array = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: placementOf(mirroring) });
      await a.write(array.array_id, marked(size));
      await a.read(array.array_id);
    }
    await a.leaveWorkspace(workspace.workspace_id);
  }
  const { scratch } = await a.acquireCudnnWorkspace(SCRATCH);
  await a.write(scratch!.array_id, marked(Number(scratch!.byte_size)));
}

/** Everything B is handed that holds a piece of the mark, named. */
async function markSeenBy(b: LeaseSession, client: TensormemClient): Promise<string[]> {
  const seen: string[] = [];
  for (const size of SIZES) {
    for (const placement of PLACEMENTS) {
      for (const exportable of [false, true]) {
        const what = `${placement} array of ${size} bytes${exportable ? ', exportable' : ''}`;
        const array = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement, exportable });
        if (holdsMark(await b.read(array.array_id))) seen.push(`read of a ${what}`);
        if (holdsMark(await b.readGrpc(array.array_id))) seen.push(`ReadArray of a ${what}`);
        const { shm } = await b.exportArray(array.array_id, { side: 'EXPORT_SIDE_HOST' });
        if (holdsMark(Buffer.from(client.mappings.map(shm!.name, false)))) seen.push(`the whole exported region of a ${what}`);
        const copy = await b.duplicate(array.array_id);
        if (holdsMark(await b.read(copy.array_id))) seen.push(`a duplicate of a ${what}`);
      }
    }
  }
  for (const mirroring of MIRRORINGS) {
    const workspace = await b.createWorkspace(mirroring, workspaceConfig(mirroring));
    await b.enterWorkspace(workspace.workspace_id);
    for (const size of [100, 5000, 600 * KiB, 3 * MiB]) {
      const array = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: placementOf(mirroring) });
      if (holdsMark(await b.read(array.array_id))) seen.push(`an array of ${size} bytes in a ${mirroring} workspace`);
    }
    await b.leaveWorkspace(workspace.workspace_id);
  }
  const { scratch } = await b.acquireCudnnWorkspace(SCRATCH);
  if (holdsMark(await b.read(scratch!.array_id))) seen.push('the cuDNN scratch');
  return seen;
}

describe.each(['lazy', 'eager'])("another tenant's bytes (--mirror %s)", (mirror) => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    const tenants = writeTenantsFile(tenantsYaml(TOKENS, ['ops']));
    daemon = await startDaemon(['--tenants', tenants, '--maxbytes', '48M', '--host-maxbytes', '48M', '--pool-chunk', '16M', '--async-copy-threshold', '64K', '--data-listen', '127.0.0.1:0', '--mirror', mirror]);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    await daemon?.stop();
  });

  it.each(['closed', 'evicted', 'expired with writes in flight'])('are never seen by a tenant that comes after its lease %s', async (end) => {
    const aClient = new TensormemClient(daemon.tcpAddress);
    const expires = end === 'expired with writes in flight';
    try {
      const a = await aClient.openLease({ tenantToken: TOKENS['team-a'], ttlSeconds: expires ? 4 : 60 });
      await writeEverywhere(a);
      if (end === 'closed') await a.close();
      else if (end === 'evicted') await client.evictLease(a.leaseId, TOKENS.ops);
      else {
        const big = await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [6 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
        void a.writeGrpc(big.array_id, marked(6 * MiB)).catch(() => undefined);
        void a.write(big.array_id, marked(6 * MiB)).catch(() => undefined);
        // The client goes away mid-write; the lease is left to expire.
        await new Promise((resolve) => setTimeout(resolve, 5));
        aClient.close();
        await new Promise((resolve) => setTimeout(resolve, 6000));
      }
    } finally {
      aClient.close();
    }
    const b = await client.openLease({ tenantToken: TOKENS['team-b'] });
    try {
      expect(await markSeenBy(b, client)).toEqual([]);
    } finally {
      await b.close();
    }
  }, 60_000);
});
