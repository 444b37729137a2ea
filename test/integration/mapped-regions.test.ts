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

const TOKENS = { a: randomBytes(24).toString('hex'), b: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };
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
});
