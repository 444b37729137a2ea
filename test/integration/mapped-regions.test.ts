/**
 * --max-mapped-regions: exportable arrays' regions and MMAP workspaces are each a mapping of the
 * daemon's process. Unbounded, one tenant's 65,000 one-byte exportable arrays (or MMAP workspaces of one
 * small file, charged to quota.mmap once) took the kernel's vm.max_map_count, and the daemon died of
 * std::bad_alloc with every tenant's leases.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { failure } from '../helpers/thrown';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const TOKENS = { a: randomBytes(24).toString('hex'), b: randomBytes(24).toString('hex'), c: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };
const MAX_REGIONS = 4;
const mmap = { initial_size: 4096, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path: 'shared.bin' };

describe('--max-mapped-regions', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let mmapDir: string;

  beforeAll(async () => {
    const tenants = writeTenantsFile(`tenants:
  - name: team-a
    token_sha256: "${tokenSha256(TOKENS.a)}"
  - name: team-b
    token_sha256: "${tokenSha256(TOKENS.b)}"
    quota: { host: 1G, mmap: 1M }
  - name: team-c
    token_sha256: "${tokenSha256(TOKENS.c)}"
    max_mapped_regions: 2
  - name: ops
    token_sha256: "${tokenSha256(TOKENS.admin)}"
    admin: true
`);
    mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-'));
    daemon = await startDaemon(['--tenants', tenants, '--maxbytes', '32M', '--host-maxbytes', '64M', '--pool-chunk', '4M', '--max-mapped-regions', String(MAX_REGIONS), '--mmap-dir', mmapDir]);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
    rmSync(mmapDir, { recursive: true, force: true });
  });

  it("refuses a tenant's exportable arrays and MMAP workspaces past the cap, changing nothing, and takes them again once one goes", async () => {
    const b = await client.openLease({ tenantToken: TOKENS.b });
    const exportable = () => b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
    const arrays = [await exportable(), await exportable()];
    // An MMAP workspace's file charged to quota.mmap once still maps anew for each workspace.
    await b.createWorkspace('first', mmap);
    await b.createWorkspace('second', mmap);

    const overArrays = await failure(exportable());
    expect([overArrays.code, overArrays.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'MAPPING_LIMIT']);
    expect(overArrays.details).toContain(`the daemon holds ${MAX_REGIONS} mapped regions`);
    expect(overArrays.details).toContain(`its cap (max-mapped-regions) is ${MAX_REGIONS}`);
    expect(overArrays.errorMetadata).toMatchObject({ mapped_regions: String(MAX_REGIONS), max_mapped_regions: String(MAX_REGIONS) });
    const overWorkspace = await failure(b.createWorkspace('third', mmap));
    expect([overWorkspace.code, overWorkspace.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'MAPPING_LIMIT']);
    // A plain array's move into a region of its own is refused the same way, and the array stays where it was.
    const plain = await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_HOST_ONLY' });
    expect((await failure(b.exportArray(plain.array_id))).reason).toBe('MAPPING_LIMIT');
    expect(await b.get(plain.array_id)).toMatchObject({ host_exportable: false });
    expect((await b.list()).map((array) => array.array_id)).toEqual([...arrays.map((array) => array.array_id), plain.array_id]);
    expect((await b.listWorkspaces()).map((workspace) => workspace.name)).toEqual(['first', 'second']);

    // Another tenant's pool memory is untouched by the cap.
    const a = await client.openLease({ tenantToken: TOKENS.a });
    await a.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024], placement: 'PLACEMENT_HOST_ONLY' });

    await b.free(arrays[0].array_id);
    expect((await b.exportArray(plain.array_id)).moved).toBe(true);
    expect((await failure(exportable())).reason).toBe('MAPPING_LIMIT');
    // Closing the lease gives every region back.
    await b.close();
    const again = await client.openLease({ tenantToken: TOKENS.b });
    for (let i = 0; i < MAX_REGIONS; i++) await again.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
    await again.close();
    await a.close();
  });

  it("holds a tenant to its max_mapped_regions (QUOTA_EXCEEDED, nothing changed), leaving the rest of the cap to the others", async () => {
    const c = await client.openLease({ tenantToken: TOKENS.c });
    const regionsOf = async (tenant: string) => (await client.memoryInfo(TOKENS.admin)).tenants.find((t) => t.tenant === tenant);
    const exportable = (lease: typeof c) => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
    const held = [await exportable(c), await c.createWorkspace('mapped', mmap)];
    expect(await regionsOf('team-c')).toMatchObject({ mapped_regions: 2, max_mapped_regions: 2 });
    const hostBefore = (await client.memoryInfo(TOKENS.admin)).host!.used_bytes;

    const overArray = await failure(exportable(c));
    expect([overArray.code, overArray.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'QUOTA_EXCEEDED']);
    expect(overArray.details).toBe(
      `Can't map a region of its own for an exportable array (1 bytes (1 B)): tenant "team-c" holds 2 mapped regions (exported arrays' regions and MMAP workspaces), its max_mapped_regions is 2: free exported arrays or destroy MMAP workspaces first`,
    );
    expect(overArray.errorMetadata).toMatchObject({ tenant: 'team-c', mapped_regions: '2', max_mapped_regions: '2' });
    const overWorkspace = await failure(c.createWorkspace('third', mmap));
    expect([overWorkspace.code, overWorkspace.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'QUOTA_EXCEEDED']);
    expect(overWorkspace.details).toContain('shared.bin for an MMAP workspace: tenant "team-c" holds 2 mapped regions');
    // A plain array's move into a region of its own: refused, the array stays in its pool block.
    const plain = await c.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_HOST_ONLY' });
    expect((await failure(c.exportArray(plain.array_id))).reason).toBe('QUOTA_EXCEEDED');
    expect(await c.get(plain.array_id)).toMatchObject({ host_exportable: false, held_bytes: 256 });
    expect((await c.listWorkspaces()).map((workspace) => workspace.name)).toEqual(['mapped']);
    expect(await regionsOf('team-c')).toMatchObject({ mapped_regions: 2 });
    expect((await client.memoryInfo(TOKENS.admin)).host!.used_bytes).toBe(hostBefore + 256);

    // The rest of --max-mapped-regions is the others': team-a takes it, and then the daemon's cap says no.
    const a = await client.openLease({ tenantToken: TOKENS.a });
    await exportable(a);
    await exportable(a);
    expect((await failure(exportable(a))).reason).toBe('MAPPING_LIMIT');
    expect(await regionsOf('team-a')).toMatchObject({ mapped_regions: 2, max_mapped_regions: 0 });
    await a.close();

    // One freed: the move goes through.
    await c.free((held[0] as { array_id: string }).array_id);
    expect(await regionsOf('team-c')).toMatchObject({ mapped_regions: 1 });
    expect((await c.exportArray(plain.array_id)).moved).toBe(true);
    expect(await regionsOf('team-c')).toMatchObject({ mapped_regions: 2 });
    await c.close();
    expect(await regionsOf('team-c')).toMatchObject({ mapped_regions: 0, max_mapped_regions: 2 });
  });
});
