/**
 * The tenants file's max_mapped_regions through every path that takes or gives back a region of a
 * tenant: exportable arrays (HOST_ONLY, a device array's eager and lazy mirrors), ExportArray's move of
 * a plain array (HOST_ONLY, and a device array's first mirror), MMAP workspaces (named and temporary
 * files, one file mapped twice), FreeArray, DestroyWorkspace, CloseLease, a tenants file reload (SIGHUP)
 * that lowers the limit or drops the tenant. TenantUsage.mapped_regions must say what the tenant holds
 * after each step, come back to 0, and the cap hold exactly (one more refused, one fewer taken).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LeaseSession } from '../../src/client/lease-session';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { waitForLog } from '../helpers/daemon-process';
import { failure } from '../helpers/thrown';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const mmap = (path?: string) => ({ initial_size: 4096, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, ...(path ? { temp_file_path: path } : {}) });
const tenantsFile = (teamA: string) => `tenants:\n  - name: ops\n    token_sha256: "${tokenSha256('admin')}"\n    admin: true\n${teamA}`;
const teamA = (max: number) => `  - name: team-a\n    token_sha256: "${tokenSha256('token-a')}"\n    max_mapped_regions: ${max}\n`;
const tenantsPath = writeTenantsFile(tenantsFile(teamA(4)));

describe('max_mapped_regions through every path', () => {
  const test = daemonForTests(['--tenants', tenantsPath, '--maxbytes', '32M', '--host-maxbytes', '64M', '--pool-chunk', '4M', '--mmap-dir', join(dirname(tenantsPath), 'mmap')]);
  /** Writes the tenants file (team-a's entry, or none) and has the daemon reload it (SIGHUP). */
  const reload = async (entry: string) => {
    writeFileSync(tenantsPath, tenantsFile(entry));
    const seen = test.daemon.logs.length;
    test.daemon.child.kill('SIGHUP');
    await waitForLog(test.daemon, 'tenants_reloaded', seen);
  };
  const usage = async () => (await test.client.memoryInfo('admin')).tenants.find((t) => t.tenant === 'team-a');
  const regions = async () => (await usage())?.mapped_regions ?? 0;

  const exportableHost = (lease: LeaseSession) => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8], placement: 'PLACEMENT_HOST_ONLY', exportable: true });
  const refusedAt = async (held: number, attempt: Promise<unknown>) => {
    const error = await failure(attempt);
    expect(error.reason).toBe('QUOTA_EXCEEDED');
    expect(error.errorMetadata).toMatchObject({ tenant: 'team-a', mapped_regions: String(held) });
    return error;
  };

  it('counts each region once, refuses exactly at the cap, and gives every one back', async () => {
    const lease = await test.client.openLease({ tenantToken: 'token-a' });
    // A device array that is exportable: on the host backend its mirror is its region, made on first read.
    const device = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8], placement: 'PLACEMENT_DEVICE', exportable: true });
    expect(await regions()).toBe(0);
    await lease.read(device.array_id);
    expect(await regions()).toBe(1);
    await lease.read(device.array_id);
    expect(await regions()).toBe(1);
    // A plain device array's first export makes its mirror in a region of its own.
    const plainDevice = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8], placement: 'PLACEMENT_DEVICE' });
    expect((await lease.exportArray(plainDevice.array_id, { map: false, side: 'EXPORT_SIDE_HOST' })).moved).toBe(false);
    expect(await regions()).toBe(2);
    // A plain HOST_ONLY array's move: one region in, its pool block out.
    const plainHost = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8], placement: 'PLACEMENT_HOST_ONLY' });
    expect((await lease.exportArray(plainHost.array_id, { map: false })).moved).toBe(true);
    expect((await lease.exportArray(plainHost.array_id, { map: false })).moved).toBe(false);
    expect(await regions()).toBe(3);
    const named = await lease.createWorkspace('named', mmap('shared.bin'));
    expect(await regions()).toBe(4);
    // At the cap: every kind refused, nothing changed.
    await refusedAt(4, exportableHost(lease));
    await refusedAt(4, lease.createWorkspace('again', mmap('shared.bin')));
    await refusedAt(4, lease.createWorkspace('temporary', mmap()));
    const another = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8], placement: 'PLACEMENT_HOST_ONLY' });
    await refusedAt(4, lease.exportArray(another.array_id, { map: false }));
    // An exportable device array's lazy mirror is a region: its refusal says so, not that mirrors count in bytes.
    const lazy = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8], placement: 'PLACEMENT_DEVICE', exportable: true });
    const mirror = await refusedAt(4, lease.read(lazy.array_id));
    expect(mirror.details).toContain(`The [HOST] memory is the host mirror of device array ${lazy.array_id}`);
    expect(mirror.details).toContain("an exportable array's mirror is a mapped region of its own, counted against --max-mapped-regions and the tenant's max_mapped_regions.");
    expect(mirror.details).not.toContain('--host-maxbytes');
    await lease.free(lazy.array_id);
    expect(await regions()).toBe(4);
    // Duplicates of exportable arrays take pool memory, not regions.
    await lease.duplicate(device.array_id);
    await lease.duplicate(plainHost.array_id);
    expect(await regions()).toBe(4);

    // One given back each way, one taken again in its place.
    await lease.free(device.array_id);
    expect(await regions()).toBe(3);
    const temporary = await lease.createWorkspace('temporary', mmap());
    expect(await regions()).toBe(4);
    await lease.destroyWorkspace(named.workspace_id);
    expect(await regions()).toBe(3);
    await lease.createWorkspace('again', mmap('shared.bin'));
    expect(await regions()).toBe(4);
    await refusedAt(4, exportableHost(lease));

    // A reload that lowers the limit: held regions stay, none is taken until below it.
    await reload(teamA(2));
    expect(await usage()).toMatchObject({ mapped_regions: 4, max_mapped_regions: 2 });
    await lease.free(plainHost.array_id);
    await lease.destroyWorkspace(temporary.workspace_id);
    expect(await regions()).toBe(2);
    await refusedAt(2, exportableHost(lease));
    // Dropped from the file: its last limit still binds its open lease.
    await reload('');
    await refusedAt(2, exportableHost(lease));
    await reload(teamA(3));
    await exportableHost(lease);
    expect(await regions()).toBe(3);
    await refusedAt(3, exportableHost(lease));

    await lease.close();
    expect(await usage()).toMatchObject({ mapped_regions: 0, max_mapped_regions: 3 });
    // The whole cap again for a new lease.
    const next = await test.client.openLease({ tenantToken: 'token-a' });
    for (let i = 0; i < 3; i++) await exportableHost(next);
    await refusedAt(3, exportableHost(next));
    await next.close();
    expect(await regions()).toBe(0);
  });

  it('takes regions of calls issued in the same tick one at a time, never past the cap', async () => {
    await reload(teamA(3));
    const lease = await test.client.openLease({ tenantToken: 'token-a' });
    const calls = [
      ...Array.from({ length: 4 }, () => exportableHost(lease)),
      ...Array.from({ length: 3 }, (_, i) => lease.createWorkspace(`burst-${i}`, mmap(i % 2 === 0 ? 'burst.bin' : undefined))),
    ];
    const results = await Promise.allSettled(calls);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(3);
    expect(await regions()).toBe(3);
    await lease.close();
    expect(await regions()).toBe(0);
  });
});
