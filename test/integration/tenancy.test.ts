/** A shared host: tenants file, token auth, quotas, guarantees, max leases, admin eviction, SIGHUP reload, dead trainers. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, runTensormemd, startDaemon, waitForLog } from '../helpers/daemon-process';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { failure } from '../helpers/thrown';
import { tokenSha256 } from '../helpers/tenants-file';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const TOKENS = { a: randomBytes(24).toString('hex'), b: randomBytes(24).toString('hex'), c: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };

function tenantsYaml(aQuota: string | null): string {
  const teamA =
    aQuota === null
      ? ''
      : `
  - name: team-a
    token_sha256: "${tokenSha256(TOKENS.a)}"
    quota: { device: ${aQuota}, host: 4M, mmap: 1M }
    max_leases: 2`;
  return `tenants:${teamA}
  - name: team-b
    token_sha256: "${tokenSha256(TOKENS.b)}"
    guarantee: { device: 16M }
  - name: team-c
    token_sha256: "${tokenSha256(TOKENS.c)}"
    max_arrays: 4
  - name: ops
    token_sha256: "${tokenSha256(TOKENS.admin)}"
    admin: true
`;
}

describe('a shared GPU host', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let tenantsPath: string;

  beforeAll(async () => {
    tenantsPath = join(mkdtempSync(join(tmpdir(), 'tensormem-tenants-')), 'tenants.yaml');
    writeFileSync(tenantsPath, tenantsYaml('8M'));
    daemon = await startDaemon(['--tenants', tenantsPath, '--maxbytes', '32M', '--pool-chunk', '4M', '--lease-ttl', '60s', '--mmap-maxbytes', '3M', '--mmap-dir', mkdtempSync(join(tmpdir(), 'tensormem-mmap-'))]);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('opens leases only with a tenant token, and never for another tenant', async () => {
    expect((await failure(client.openLease({ tenant: 'team-a' }))).code).toBe(status.UNAUTHENTICATED);
    expect((await failure(client.openLease({ tenantToken: 'guess' }))).details).toBe('unknown tenant token');
    expect((await failure(client.openLease({ tenant: 'team-b', tenantToken: TOKENS.a }))).code).toBe(status.UNAUTHENTICATED);
    const lease = await client.openLease({ tenantToken: TOKENS.a });
    expect(lease.lease.tenant).toBe('team-a');
    // Memory views need a token once there is a tenants file.
    expect((await failure(client.memoryInfo())).code).toBe(status.UNAUTHENTICATED);
    await lease.close();
    expect(daemon.logs.some((entry) => JSON.stringify(entry).includes(TOKENS.a))).toBe(false);
  });

  it('tells a memory or lease view without a known token that a tenant token works too, not only a lease token', async () => {
    // tensormemctl info / tenants / leases / top / config / doctor with no --token, or a mistyped admin
    // token: "missing lease token (the token OpenLease returned)" and "unknown lease token" sent the
    // operator after a lease token.
    const views: Array<[string, (token?: string) => Promise<unknown>]> = [
      ['GetMemoryInfo', (token) => client.memoryInfo(token)],
      ['GetConfig', (token) => client.config(token)],
      ['ListLeases', (token) => client.listLeases(token)],
    ];
    for (const [name, view] of views) {
      const missing = await failure(view());
      expect([name, missing.code, missing.details]).toEqual([name, status.UNAUTHENTICATED, expect.stringContaining('tenant token')]);
      expect(missing.details).not.toContain('missing lease token');
      const unknown = await failure(view('not-a-token'));
      expect([name, unknown.code, unknown.details]).toEqual([name, status.UNAUTHENTICATED, expect.stringMatching(/^unknown token: neither a tenant token of the tenants file nor the token of a lease \(this daemon has run since /)]);
    }
    const watched = await new Promise<TensormemClientError>((resolve) => {
      const stop = client.watchMemory(1000, () => {}, (error) => {
        stop();
        resolve(error);
      }, 'not-a-token');
    });
    expect([watched.code, watched.details]).toEqual([status.UNAUTHENTICATED, expect.stringMatching(/^unknown token: neither a tenant token of the tenants file nor the token of a lease \(this daemon has run since /)]);
    // A lease token is still taken, and its tenant's row shown.
    const lease = await client.openLease({ tenantToken: TOKENS.b });
    expect((await client.memoryInfo(lease.token)).tenants.map((usage) => usage.tenant)).toEqual(['team-b']);
    await lease.close();
  });

  it('tells a call that takes a lease token, sent a tenant token, to open a lease with it', async () => {
    // A session whose "lease token" is the tenant's own token, as a user who skipped OpenLease has.
    const misused = new LeaseSession(client, { lease_id: '', token: TOKENS.b, ttl_seconds: 0, expires_at: null, tenant: '', client_name: '' });
    const refused = await failure(misused.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] }));
    expect(refused.code).toBe(status.UNAUTHENTICATED);
    expect(refused.details).toContain('this is a tenant token, and this call takes a lease token');
    expect(refused.details).toContain('OpenLease');
    // A token that is neither still gets the plain answer, and nothing was allocated.
    const unknown = new LeaseSession(client, { lease_id: '', token: 'not-a-token', ttl_seconds: 0, expires_at: null, tenant: '', client_name: '' });
    expect((await failure(unknown.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] }))).details).toMatch(/^unknown lease token \(this daemon has run since /);
    expect((await client.memoryInfo(TOKENS.b)).tenants[0].used_bytes).toBe(0);
  });

  it('holds a tenant to its hard quota, with the numbers, and to its max leases', async () => {
    const first = await client.openLease({ tenantToken: TOKENS.a });
    const second = await client.openLease({ tenantToken: TOKENS.a });
    const third = await failure(client.openLease({ tenantToken: TOKENS.a }));
    expect(third.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(third.reason).toBe('QUOTA_EXCEEDED');
    expect(third.details).toContain('max_leases is 2');

    await first.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [6 * MiB] });
    const before = await client.memoryInfo(TOKENS.admin);
    const over = await failure(second.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [3 * MiB] }));
    expect(over.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(over.reason).toBe('QUOTA_EXCEEDED');
    expect(over.details).toContain('for tenant "team-a": quota 8388608 bytes (8.00 MiB), used 6291456 bytes (6.00 MiB)');
    const hostOver = await failure(second.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [5 * MiB], placement: 'PLACEMENT_HOST_ONLY' }));
    expect(hostOver.details).toContain('[HOST] memory');
    const after = await client.memoryInfo(TOKENS.admin);
    expect(after.devices[0].used_bytes).toBe(before.devices[0].used_bytes);
    expect(after.host!.used_bytes).toBe(before.host!.used_bytes);

    // Tenants see their own row; admins see every row.
    const own = await client.memoryInfo(TOKENS.a);
    expect(own.tenants.map((t) => t.tenant)).toEqual(['team-a']);
    expect(own.tenants[0]).toMatchObject({ device_used_bytes: 6 * MiB, quota_bytes: 8 * MiB, host_quota_bytes: 4 * MiB, leases: 2, max_leases: 2 });
    expect(after.tenants.map((t) => t.tenant)).toEqual(expect.arrayContaining(['team-a', 'team-b', 'team-c', 'ops']));
    expect((await failure(client.memorySnapshot(TOKENS.a))).code).toBe(status.PERMISSION_DENIED);
    expect((await client.memorySnapshot(TOKENS.admin)).pools.length).toBeGreaterThan(0);
    await first.close();
    await second.close();
  });

  it("holds a tenant's MMAP workspace files to its quota.mmap and all of them to --mmap-maxbytes, and gives the bytes back at CloseLease", async () => {
    const mmap = (initial_size: number) => ({ initial_size, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const });
    const a = await client.openLease({ tenantToken: TOKENS.a });
    const c = await client.openLease({ tenantToken: TOKENS.c });
    await a.createWorkspace('weights', mmap(768 * 1024));
    const overQuota = await failure(a.createWorkspace('more', mmap(512 * 1024)));
    expect(overQuota.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(overQuota.reason).toBe('QUOTA_EXCEEDED');
    expect(overQuota.details).toBe(
      `Can't map [MMAP] file: 524288 bytes (512.00 KiB) for tenant "team-a": quota 1048576 bytes (1.00 MiB), used 786432 bytes (768.00 KiB). Try: destroy MMAP workspaces, a smaller initial_size, or a larger quota.mmap in the tenants file.`,
    );
    expect((await client.memoryInfo(TOKENS.a)).tenants[0]).toMatchObject({ tenant: 'team-a', mmap_used_bytes: 768 * 1024, mmap_quota_bytes: MiB, host_used_bytes: 0 });
    // team-c has no quota.mmap; the daemon's cap (3 MiB, all tenants) still holds it.
    await c.createWorkspace('scratch', mmap(2 * MiB));
    const overCap = await failure(c.createWorkspace('scratch-2', mmap(512 * 1024)));
    expect(overCap.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(overCap.reason).toBe('MMAP_LIMIT');
    expect(overCap.details).toContain('mmap cap (mmap-maxbytes) 3145728 bytes (3.00 MiB), mapped 2883584 bytes (2.75 MiB)');
    expect((await c.listWorkspaces()).map((w) => w.name)).toEqual(['scratch']);
    const during = await client.memoryInfo(TOKENS.admin);
    expect(during.host).toMatchObject({ mmap_bytes: 2.75 * MiB, mmap_max_bytes: 3 * MiB });
    expect(during.tenants.find((t) => t.tenant === 'team-c')).toMatchObject({ mmap_used_bytes: 2 * MiB, mmap_quota_bytes: 0 });
    const byLease = new Map((await client.listLeases(TOKENS.admin)).map((l) => [l.lease_id, l]));
    expect(byLease.get(a.leaseId)).toMatchObject({ mmap_bytes: 768 * 1024, host_bytes: 0 });
    expect(byLease.get(c.leaseId)).toMatchObject({ mmap_bytes: 2 * MiB, host_bytes: 0 });
    await a.close();
    await c.close();
    const after = await client.memoryInfo(TOKENS.admin);
    expect(after.host!.mmap_bytes).toBe(0);
    for (const tenant of ['team-a', 'team-c']) expect(after.tenants.find((t) => t.tenant === tenant)!.mmap_used_bytes).toBe(0);
  });

  it("charges a tenant's file that two of its leases map (the same temp_file_path) once, until the last of them unmaps it", async () => {
    // team-a: quota.mmap 1 MiB, max_leases 2. 768 KiB twice would be 1.5 MiB; the file takes 768 KiB of disk.
    const shared = { initial_size: 768 * 1024, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path: 'weights.mmap' };
    const first = await client.openLease({ tenantToken: TOKENS.a });
    const second = await client.openLease({ tenantToken: TOKENS.a });
    await first.createWorkspace('weights', shared);
    await second.createWorkspace('weights', shared);
    const usage = async () => {
      const info = await client.memoryInfo(TOKENS.admin);
      return [Number(info.host!.mmap_bytes), Number(info.tenants.find((t) => t.tenant === 'team-a')!.mmap_used_bytes)];
    };
    expect(await usage()).toEqual([768 * 1024, 768 * 1024]);
    // Each lease shows the file it maps.
    const byLease = new Map((await client.listLeases(TOKENS.admin)).map((l) => [l.lease_id, Number(l.mmap_bytes)]));
    expect([byLease.get(first.leaseId), byLease.get(second.leaseId)]).toEqual([768 * 1024, 768 * 1024]);
    // A second file still counts: 768 KiB + 512 KiB passes the quota.
    expect((await failure(second.createWorkspace('more', { ...shared, initial_size: 512 * 1024, temp_file_path: 'other.mmap' }))).reason).toBe('QUOTA_EXCEEDED');
    await first.close();
    expect(await usage()).toEqual([768 * 1024, 768 * 1024]);
    await second.close();
    expect(await usage()).toEqual([0, 0]);
  });

  it('holds a tenant to its max_arrays, all its leases together, and shows the count', async () => {
    const first = await client.openLease({ tenantToken: TOKENS.c });
    const second = await client.openLease({ tenantToken: TOKENS.c });
    const zero = { dataType: 'DATA_TYPE_UINT8' as const, shape: [0] };
    const held = [await first.allocate(zero), await first.allocate(zero), await second.allocate(zero), await second.allocate(zero)];
    const refused = await failure(second.allocate(zero));
    expect([refused.code, refused.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'QUOTA_EXCEEDED']);
    expect(refused.details).toBe('tenant "team-c" has 4 live arrays, its max_arrays is 4: free arrays first');
    expect((await client.memoryInfo(TOKENS.c)).tenants[0]).toMatchObject({ tenant: 'team-c', arrays: 4, max_arrays: 4 });
    // Another tenant's arrays are not held to it.
    const b = await client.openLease({ tenantToken: TOKENS.b });
    await b.allocate(zero);
    await b.close();
    await first.free(held[0].array_id);
    await second.allocate(zero);
    await first.close();
    await second.close();
    expect((await client.memoryInfo(TOKENS.admin)).tenants.find((t) => t.tenant === 'team-c')).toMatchObject({ arrays: 0, max_arrays: 4 });
  });

  it('holds concurrent allocations to max_arrays too (zeroed off the event loop, they are not counted until done)', async () => {
    const lease = await client.openLease({ tenantToken: TOKENS.c });
    // 1 MiB zeroed: at least --async-copy-threshold, so each allocation awaits its fill.
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], zero: true })));
    const allocated = results.filter((result) => result.status === 'fulfilled').length;
    const refused = results.flatMap((result) => (result.status === 'rejected' ? [(result.reason as TensormemClientError).reason] : []));
    expect(allocated).toBe(4);
    expect(refused).toEqual(['QUOTA_EXCEEDED', 'QUOTA_EXCEEDED', 'QUOTA_EXCEEDED', 'QUOTA_EXCEEDED']);
    expect((await client.memoryInfo(TOKENS.c)).tenants[0]).toMatchObject({ arrays: 4, max_arrays: 4 });
    expect(await lease.list()).toHaveLength(4);
    await lease.close();
    expect((await client.memoryInfo(TOKENS.c)).tenants[0]).toMatchObject({ arrays: 0, max_arrays: 4 });
  });

  it("lets a tenant borrow only what leaves another tenant's guarantee free", async () => {
    const c = await client.openLease({ tenantToken: TOKENS.c });
    const b = await client.openLease({ tenantToken: TOKENS.b });
    // Cap 32 MiB, team-b's guarantee 16 MiB: team-c may take 16 MiB, not a byte more.
    await c.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB] });
    const refused = await failure(c.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [256] }));
    expect(refused.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(refused.details).toContain("less other tenants' unused guarantees (16.00 MiB)");
    // team-b gets its whole guarantee although team-c borrowed everything else.
    await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB] });
    await b.close();
    await c.close();
  });

  it("names a tenant's quota and usage when the pool or others' guarantees refuse it, and only for a tenant with a quota", async () => {
    const a = await client.openLease({ tenantToken: TOKENS.a });
    const b = await client.openLease({ tenantToken: TOKENS.b });
    const c = await client.openLease({ tenantToken: TOKENS.c });
    try {
      await a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB] });
      await c.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [12 * MiB] });
      // Cap 32 MiB, 14 MiB used, team-b's 16 MiB guarantee unused: 4 MiB more is refused for the guarantee.
      const byGuarantee = await failure(a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] }));
      expect(byGuarantee.reason).toBe('DEVICE_OUT_OF_MEMORY');
      expect(byGuarantee.details).toContain("less other tenants' unused guarantees (16.00 MiB)");
      expect(byGuarantee.details).toContain('; tenant "team-a" quota 8388608 bytes (8.00 MiB), used 2097152 bytes (2.00 MiB). Try: ');
      expect(byGuarantee.errorMetadata).toMatchObject({ tenant: 'team-a', tenant_quota_bytes: String(8 * MiB), tenant_used_bytes: String(2 * MiB) });
      const noQuota = await failure(c.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] }));
      expect(noQuota.reason).toBe('DEVICE_OUT_OF_MEMORY');
      expect(noQuota.details).not.toContain('tenant "');
      expect(noQuota.errorMetadata.tenant).toBeUndefined();
      // team-b takes its guarantee: 30 MiB used, nothing reserved, and the pool cap itself refuses 4 MiB more.
      await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB] });
      const byPool = await failure(a.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] }));
      expect(byPool.reason).toBe('DEVICE_OUT_OF_MEMORY');
      expect(byPool.details).toContain('pool cap (maxbytes) 33554432 bytes (32.00 MiB), used 31457280 bytes (30.00 MiB)');
      expect(byPool.details).toContain('; tenant "team-a" quota 8388608 bytes (8.00 MiB), used 2097152 bytes (2.00 MiB). Try: ');
      expect(byPool.errorMetadata).toMatchObject({ tenant: 'team-a', tenant_quota_bytes: String(8 * MiB), tenant_used_bytes: String(2 * MiB) });
      const noQuotaByPool = await failure(c.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] }));
      expect(noQuotaByPool.details).toContain('pool cap (maxbytes)');
      expect(noQuotaByPool.details).not.toContain('tenant "');
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  it('lets an admin list and evict any lease, and no one else', async () => {
    const a = await client.openLease({ tenantToken: TOKENS.a });
    const b = await client.openLease({ tenantToken: TOKENS.b });
    await b.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
    expect((await client.listLeases(TOKENS.a)).map((l) => l.lease_id)).toEqual([a.leaseId]);
    expect((await client.listLeases(TOKENS.admin)).map((l) => l.lease_id)).toEqual(expect.arrayContaining([a.leaseId, b.leaseId]));
    expect((await failure(client.evictLease(b.leaseId, TOKENS.a))).code).toBe(status.PERMISSION_DENIED);
    // A live lease's token authenticates its tenant (ListLeases, GetMemoryInfo take it): on an admin call
    // it is PERMISSION_DENIED saying what it is, not UNAUTHENTICATED, which says the token is unknown.
    for (const refused of [await failure(client.evictLease(b.leaseId, a.token)), await failure(client.memorySnapshot(a.token))]) {
      expect([refused.code, refused.reason]).toEqual([status.PERMISSION_DENIED, 'PERMISSION_DENIED']);
      expect(refused.details).toBe(`this call needs an admin tenant token, and this is the token of lease ${a.leaseId} of tenant "team-a" (a lease token acts for its own lease only)`);
      expect(refused.errorMetadata).toEqual({ lease_id: a.leaseId, tenant: 'team-a' });
    }
    expect((await failure(client.evictLease(b.leaseId, 'never-issued'))).code).toBe(status.UNAUTHENTICATED);
    const seen = daemon.logs.length;
    expect(await client.evictLease(b.leaseId, TOKENS.admin)).toBe(MiB);
    // The line says which admin tenant evicted it: the trainer's owner asks why its lease ended.
    expect(await waitForLog(daemon, 'lease_evicted', seen)).toMatchObject({ leaseId: b.leaseId, tenant: 'team-b', by: 'ops', msg: 'lease evicted by ops' });
    expect((await failure(b.list())).code).toBe(status.UNAUTHENTICATED);
    expect((await failure(client.evictLease(b.leaseId, TOKENS.admin))).code).toBe(status.NOT_FOUND);
    await a.close();
  });

  it("ends a WatchMemory stream opened with a lease's token when the lease ends, with the error its token gets from then on", async () => {
    const watch = (token: string) => {
      const state: { frames: number; error?: TensormemClientError; stop: () => void } = { frames: 0, stop: () => {} };
      state.stop = client.watchMemory(50, () => state.frames++, (error) => (state.error = error), token);
      return state;
    };
    const closed = await client.openLease({ tenantToken: TOKENS.a });
    const evicted = await client.openLease({ tenantToken: TOKENS.c });
    const watches = { closed: watch(closed.token), evicted: watch(evicted.token), tenant: watch(TOKENS.c) };
    while (Object.values(watches).some((w) => w.frames < 2)) await sleep(20);
    await closed.close();
    await client.evictLease(evicted.leaseId, TOKENS.admin);
    for (let tries = 0; tries < 50 && !(watches.closed.error && watches.evicted.error); tries++) await sleep(20);
    expect(watches.closed.error).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'LEASE_EXPIRED' });
    expect(watches.closed.error!.details).toBe((await failure(client.memoryInfo(closed.token))).details);
    expect(watches.closed.error!.details).toContain('closed by CloseLease');
    expect(watches.evicted.error).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'LEASE_EXPIRED' });
    expect(watches.evicted.error!.details).toContain('evicted');
    // No message after the error; a tenant token's stream goes on.
    const frames = { closed: watches.closed.frames, evicted: watches.evicted.frames, tenant: watches.tenant.frames };
    await sleep(200);
    expect([watches.closed.frames, watches.evicted.frames]).toEqual([frames.closed, frames.evicted]);
    expect(watches.tenant.frames).toBeGreaterThan(frames.tenant);
    expect(watches.tenant.error).toBeUndefined();
    for (const w of Object.values(watches)) w.stop();
  });

  it("keeps no backlog for a WatchMemory client that stopped reading: its stream skips ticks, and the daemon's heap stays put", async () => {
    const watcher = spawn(process.execPath, [join(__dirname, '..', 'helpers', 'stalled-watcher.js'), daemon.tcpAddress, TOKENS.b, '300', '50'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => watcher.once('exit', resolve));
    try {
      await new Promise<void>((resolve) => createInterface({ input: watcher.stdout! }).once('line', () => resolve()));
      watcher.kill('SIGSTOP');
      await sleep(500);
      const before = (await client.memoryInfo(TOKENS.admin)).process!.heap_used_bytes;
      // 300 streams at 50 ms: 36 000 MemoryInfo messages in 6 s, each kept in the daemon until read.
      await sleep(6000);
      const after = (await client.memoryInfo(TOKENS.admin)).process!.heap_used_bytes;
      // Queued messages grew the heap 46 MiB in these 6 s. The reading counts garbage too: up to a young
      // generation's worth (16 MiB semi-spaces) may wait for the next scavenge (13.8 MiB was seen beside
      // other test runs, -1 to +5 MiB alone).
      expect(after - before).toBeLessThan(24 * MiB);
    } finally {
      watcher.kill('SIGKILL');
      await exited;
    }
  }, 30_000);

  it('reloads the tenants file on SIGHUP, keeps leases, and refuses a bad file keeping the old one', async () => {
    const lease = await client.openLease({ tenantToken: TOKENS.a });
    expect((await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [10 * MiB] }))).reason).toBe('QUOTA_EXCEEDED');
    writeFileSync(tenantsPath, tenantsYaml('12M'));
    daemon.child.kill('SIGHUP');
    // The line says what the reload changed, not only the tenants now in force.
    expect(await waitForLog(daemon, 'tenants_reloaded')).toMatchObject({ added: [], removed: [], changed: ['team-a'], removedWithLeases: [], overLimit: [] });
    const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [10 * MiB] });
    writeFileSync(tenantsPath, tenantsYaml('12Q'));
    daemon.child.kill('SIGHUP');
    const refusedLog = await waitForLog(daemon, 'tenants_reload_failed');
    expect(String(refusedLog.error)).toContain(`${tenantsPath}:4:`);
    expect((await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [3 * MiB] }))).details).toContain('quota 12582912 bytes (12.00 MiB)');
    // A quota lowered below what the tenant holds takes nothing back: the line names the tenant and both figures.
    writeFileSync(tenantsPath, tenantsYaml('8M'));
    daemon.child.kill('SIGHUP');
    const lowered = await waitForLog(daemon, 'tenants_reloaded');
    expect(lowered).toMatchObject({ changed: ['team-a'], overLimit: [{ tenant: 'team-a', limit: 'device', used: 10 * MiB, max: 8 * MiB }] });
    expect(lowered.msg).toContain('tenant team-a holds 10.00 MiB of device memory on a device, above its new quota.device 8.00 MiB');
    writeFileSync(tenantsPath, tenantsYaml('12M'));
    daemon.child.kill('SIGHUP');
    await waitForLog(daemon, 'tenants_reloaded');
    await lease.free(big.array_id);
    await lease.close();
  });

  it('keeps the last quota on the open leases of a tenant that a reload drops, and opens it no new lease', async () => {
    const lease = await client.openLease({ tenantToken: TOKENS.a });
    writeFileSync(tenantsPath, tenantsYaml(null));
    daemon.child.kill('SIGHUP');
    // The operator is told that the dropped tenant still has a lease open, and how to end it.
    const dropped = await waitForLog(daemon, 'tenants_reloaded');
    expect(dropped).toMatchObject({ removed: ['team-a'], removedWithLeases: [{ tenant: 'team-a', leases: 1 }] });
    expect(dropped.msg).toContain('removed tenant team-a still has 1 lease open (tensormemctl evict --tenant team-a ends them)');
    try {
      expect((await failure(client.openLease({ tenantToken: TOKENS.a }))).code).toBe(status.UNAUTHENTICATED);
      const refusal = await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [13 * MiB] }));
      expect(refusal.reason).toBe('QUOTA_EXCEEDED');
      expect(refusal.details).toContain('quota 12582912 bytes (12.00 MiB)');
      // Its row shows the limits it last had, max_leases with the rest (it was 0, "no limit").
      const row = (await client.memoryInfo(TOKENS.admin)).tenants.find((t) => t.tenant === 'team-a');
      expect(row).toMatchObject({ leases: 1, quota_bytes: 12 * MiB, host_quota_bytes: 4 * MiB, max_leases: 2 });
      const within = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB] });
      await lease.free(within.array_id);
      await lease.close();
    } finally {
      writeFileSync(tenantsPath, tenantsYaml('12M'));
      daemon.child.kill('SIGHUP');
      await waitForLog(daemon, 'tenants_reloaded');
    }
  });

  it("refuses a rotated tenant token at once, and leaves the leases opened with it to the admin's eviction (a tenant is its name)", async () => {
    const rotated = randomBytes(24).toString('hex');
    const lease = await client.openLease({ tenantToken: TOKENS.a, clientName: 'opened-with-old-token' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024] });
    writeFileSync(tenantsPath, tenantsYaml('12M').replace(tokenSha256(TOKENS.a), tokenSha256(rotated)));
    daemon.child.kill('SIGHUP');
    await waitForLog(daemon, 'tenants_reloaded');
    try {
      expect((await failure(client.openLease({ tenantToken: TOKENS.a }))).details).toBe('unknown tenant token');
      expect((await failure(client.listLeases(TOKENS.a))).code).toBe(status.UNAUTHENTICATED);
      // README: the lease keeps its own token until it ends; the new token's holder sees it as its tenant's.
      await lease.write(array.array_id, Buffer.alloc(1024, 7));
      await lease.renew();
      expect((await client.listLeases(rotated)).map((summary) => summary.client_name)).toEqual(['opened-with-old-token']);
      const seen = daemon.logs.length;
      expect(await client.evictTenant('team-a', TOKENS.admin)).toMatchObject({ evictedLeases: 1 });
      expect(await waitForLog(daemon, 'tenant_evicted', seen)).toMatchObject({ tenant: 'team-a', evicted: 1, by: 'ops', msg: 'tenant team-a: 1 lease evicted by ops' });
      const ended = await failure(lease.read(array.array_id));
      expect(ended.reason).toBe('LEASE_EXPIRED');
      expect(ended.errorMetadata.close_reason).toBe('evicted');
    } finally {
      writeFileSync(tenantsPath, tenantsYaml('12M'));
      daemon.child.kill('SIGHUP');
      await waitForLog(daemon, 'tenants_reloaded');
    }
  });

  it('gives back everything a SIGKILLed trainer held as soon as its KeepAlive stream drops (release on disconnect), leaving other leases intact', async () => {
    const survivor = await client.openLease({ tenantToken: TOKENS.c });
    const kept = await survivor.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
    const content = randomBytes(MiB);
    await survivor.write(kept.array_id, content);
    const baseline = (await client.memoryInfo(TOKENS.admin)).devices[0].used_bytes;

    const trainer = spawn(process.execPath, [join(__dirname, '..', 'helpers', 'trainer-process.js'), daemon.tcpAddress, TOKENS.b, String(4 * MiB), '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = await new Promise<string>((resolve) => createInterface({ input: trainer.stdout! }).once('line', resolve));
    expect(ready).toMatch(/^stage allocated lease-/);
    expect((await client.memoryInfo(TOKENS.admin)).devices[0].used_bytes).toBe(baseline + 4 * MiB);
    trainer.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    let used = -1;
    while (Date.now() < deadline && used !== baseline) {
      await sleep(100);
      used = (await client.memoryInfo(TOKENS.admin)).devices[0].used_bytes;
    }
    expect(used).toBe(baseline);
    expect(daemon.logs.some((entry) => entry.event === 'lease_disconnected' && entry.leaseId === ready.split(' ')[2])).toBe(true);
    expect((await survivor.read(kept.array_id)).equals(content)).toBe(true);
    await survivor.close();
  });
});

describe('release on disconnect', () => {
  it('keeps the lease when the client ends its KeepAlive stream itself', async () => {
    const daemon = await startDaemon();
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const lease = await client.openLease();
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
      lease.startKeepAlive(100, { releaseOnDisconnect: true });
      await sleep(300);
      lease.stopKeepAlive();
      await sleep(300);
      expect((await lease.list()).length).toBe(1);
      expect(daemon.logs.some((entry) => entry.event === 'lease_disconnected')).toBe(false);
      await lease.close();
    } finally {
      client.close();
      await daemon.stop();
    }
  });

  it('keeps the lease of a trainer that stops its KeepAlive cleanly and exits at once (its connection drops right after)', async () => {
    const daemon = await startDaemon(['--lease-ttl', '60s']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const trainer = spawn(process.execPath, [join(__dirname, '..', 'helpers', 'trainer-process.js'), daemon.tcpAddress, '', '0', '1', 'stopped'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve) => createInterface({ input: trainer.stdout! }).once('line', resolve));
      const leaseId = line.split(' ')[2];
      expect(line).toMatch(/^stage stopped lease-/);
      await new Promise((resolve) => trainer.once('exit', resolve));
      await sleep(500);
      expect((await client.listLeases()).map((lease) => lease.lease_id)).toContain(leaseId);
      expect(daemon.logs.some((entry) => entry.event === 'lease_disconnected' && entry.leaseId === leaseId)).toBe(false);
    } finally {
      client.close();
      await daemon.stop();
    }
  });

  // grpc-js's cancel() (and a passed deadline) half-closes the stream and resets it right after, so the
  // daemon sees an 'end' first, as for a graceful half-close: only the reset must release the lease.
  it.each([
    ['cancels its KeepAlive stream', 'cancel'],
    ['lets the deadline of its KeepAlive stream pass', 'deadline'],
  ] as const)('gives the lease and its memory back at once when the client %s (a reset)', async (_, mode) => {
    const daemon = await startDaemon(['--lease-ttl', '60s']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const baseline = (await client.memoryInfo()).devices[0].used_bytes;
      const lease = await client.openLease({ clientName: mode });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] });
      expect((await client.memoryInfo()).devices[0].used_bytes).toBe(baseline + 4 * MiB);
      const stream = client.leases.KeepAlive(client.metadata(lease.token), mode === 'deadline' ? { deadline: Date.now() + 500 } : {});
      const ended = new Promise<number>((resolve) => stream.on('error', (error: { code: number }) => resolve(error.code)));
      const answered = new Promise((resolve) => stream.once('data', resolve));
      stream.write({ lease_id: lease.leaseId, release_on_disconnect: true });
      await answered;
      if (mode === 'cancel') stream.cancel();
      expect(await ended).toBe(mode === 'cancel' ? status.CANCELLED : status.DEADLINE_EXCEEDED);
      const deadline = Date.now() + 1000;
      let used = -1;
      while (Date.now() < deadline && used !== baseline) {
        await sleep(50);
        used = (await client.memoryInfo()).devices[0].used_bytes;
      }
      expect(used).toBe(baseline);
      const gone = await failure(lease.list());
      expect([gone.code, gone.reason, gone.errorMetadata.close_reason]).toEqual([status.UNAUTHENTICATED, 'LEASE_EXPIRED', 'disconnected']);
      expect(gone.details).toContain('was released when its KeepAlive stream ended');
      expect(daemon.logs.some((entry) => entry.event === 'lease_disconnected' && entry.leaseId === lease.leaseId)).toBe(true);
    } finally {
      client.close();
      await daemon.stop();
    }
  });

  it('answers a half-close of a raw KeepAlive stream with OK and keeps the lease', async () => {
    const daemon = await startDaemon(['--lease-ttl', '60s']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const lease = await client.openLease();
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] });
      const stream = client.leases.KeepAlive(client.metadata(lease.token));
      stream.on('error', () => {});
      const closed = new Promise<number>((resolve) => stream.on('status', (s: { code: number }) => resolve(s.code)));
      const answered = new Promise((resolve) => stream.once('data', resolve));
      stream.on('data', () => {});
      stream.write({ lease_id: lease.leaseId, release_on_disconnect: true });
      await answered;
      stream.end();
      expect(await closed).toBe(status.OK);
      await sleep(300);
      expect((await lease.list()).length).toBe(1);
      expect(daemon.logs.some((entry) => entry.event === 'lease_disconnected')).toBe(false);
      expect(await lease.close()).toBe(4 * MiB);
    } finally {
      client.close();
      await daemon.stop();
    }
  });
});

// lease.proto KeepAliveRequest.no_renew: a message that only says release_on_disconnect anew. The typed
// client's stopKeepAlive ended its stream with a message that renewed the lease as every other does, and
// it travels on the stream, not with the unary calls: it could reach the daemon after a RenewLease sent
// just after it and push the lease past the expires_at that RenewLease had answered (a soak read arrays
// 15-146 ms past it). Each check here waits long enough (20 ms) for a renewal to move the expiry.
describe('a KeepAlive message that does not renew (no_renew)', () => {
  const setup = daemonForTests(['--lease-ttl', '60s']);
  const msOf = (ts: { seconds: number | string; nanos: number } | null | undefined) => Number(ts!.seconds) * 1000 + Math.round(ts!.nanos / 1e6);
  const expiresAt = async (lease: LeaseSession) => msOf((await setup.client.listLeases(lease.token))[0].expires_at);

  /** A raw KeepAlive stream of `lease`: send(message) resolves with its answer's expires_at; `ended` with the call's status code. */
  function rawStream(lease: LeaseSession) {
    const stream = setup.client.leases.KeepAlive(setup.client.metadata(lease.token));
    const answers: number[] = [];
    const waiting: Array<(expires: number) => void> = [];
    stream.on('data', (message: { expires_at: { seconds: number; nanos: number } }) => {
      answers.push(msOf(message.expires_at));
      waiting.shift()?.(answers[answers.length - 1]);
    });
    stream.on('error', () => {});
    const ended = new Promise<number>((resolve) => stream.on('status', (s: { code: number }) => resolve(s.code)));
    const send = (message: object) => {
      const answered = new Promise<number>((resolve) => waiting.push(resolve));
      stream.write({ lease_id: lease.leaseId, ...message });
      return answered;
    };
    return { stream, send, ended, answers };
  }

  /** A lease opened as `clientName`, 20 ms later (a renewal from then on moves its expiry) a raw KeepAlive stream of it. */
  async function leaseAndStream(clientName: string) {
    const lease = await setup.client.openLease({ clientName });
    const opened = msOf(lease.lease.expires_at);
    await sleep(20);
    return { lease, opened, raw: rawStream(lease) };
  }

  /**
   * The client's KeepAlive streams from now on, in `streams`; with `delayMs` each message and the
   * half-close written that late (in order), as when a stream's messages are overtaken by unary calls.
   */
  function keepAliveStreams(delayMs = 0, of = setup.client) {
    const streams: Array<ReturnType<typeof setup.client.leases.KeepAlive>> = [];
    const open = of.leases.KeepAlive.bind(of.leases);
    of.leases.KeepAlive = ((...args: Parameters<typeof open>) => {
      const stream = open(...args);
      if (delayMs > 0) {
        const write = stream.write.bind(stream);
        const end = stream.end.bind(stream);
        stream.write = ((message: object) => (setTimeout(() => write(message), delayMs), true)) as typeof stream.write;
        stream.end = (() => (setTimeout(() => end(), delayMs), stream)) as typeof stream.end;
      }
      streams.push(stream);
      return stream;
    }) as typeof setup.client.leases.KeepAlive;
    return { streams, restore: () => (of.leases.KeepAlive = open) };
  }

  it("stopKeepAlive's last message does not renew the lease: it expires when the last renewal the client saw said", async () => {
    const lease = await setup.client.openLease({ clientName: 'stop-no-renew' });
    const keepAlive = keepAliveStreams();
    try {
      lease.startKeepAlive(60_000, { releaseOnDisconnect: true });
      await new Promise((resolve) => keepAlive.streams[0].once('data', resolve));
      const renewed = msOf((await lease.renew(30)).expires_at);
      await sleep(20);
      const ended = new Promise<number>((resolve) => keepAlive.streams[0].on('status', (s: { code: number }) => resolve(s.code)));
      lease.stopKeepAlive();
      expect(await ended).toBe(status.OK);
      // Renewed by the last message, it would expire 30 s from the stop, 20 ms or more past `renewed`.
      expect(await expiresAt(lease)).toBe(renewed);
      expect(msOf(lease.lease.expires_at)).toBe(renewed);
      expect(setup.daemon.logs.some((entry) => entry.event === 'lease_disconnected' && entry.leaseId === lease.leaseId)).toBe(false);
    } finally {
      keepAlive.restore();
      await lease.close();
    }
  });

  it('renew() after stopKeepAlive waits until the renewals the keep-alive sent before the stop are answered, so that none lands after it', async () => {
    const lease = await setup.client.openLease({ clientName: 'stop-in-flight' });
    // The keep-alive's messages go 200 ms late: its first renewal is still on its way at the stop.
    const keepAlive = keepAliveStreams(200);
    try {
      lease.startKeepAlive(60_000);
      lease.stopKeepAlive();
      const ended = new Promise((resolve) => keepAlive.streams[0].on('status', resolve));
      const renewed = msOf((await lease.renew(30)).expires_at);
      await ended;
      // Landing after renew's, that renewal would have moved the expiry on.
      expect(await expiresAt(lease)).toBe(renewed);
      expect(msOf(lease.lease.expires_at)).toBe(renewed);
    } finally {
      keepAlive.restore();
      await lease.close();
    }
  });

  it("renew() after stopKeepAlive keeps the client's deadline: waiting for the stopped stream's last answer counts against it", async () => {
    const timed = new TensormemClient(setup.daemon.tcpAddress, { deadlineMs: 200 });
    const lease = await timed.openLease({ clientName: 'stop-then-renew-deadline' });
    // The keep-alive's messages go 800 ms late: its last answer comes well after renew's deadline.
    const keepAlive = keepAliveStreams(800, timed);
    try {
      lease.startKeepAlive(60_000);
      lease.stopKeepAlive();
      const ended = new Promise((resolve) => keepAlive.streams[0].on('status', resolve));
      const started = Date.now();
      const error = await failure(lease.renew(30));
      // Before, the deadline started once the wait was over: renew() succeeded some 800 ms on.
      expect(error.code).toBe(status.DEADLINE_EXCEEDED);
      expect(Date.now() - started).toBeLessThan(700);
      await ended;
    } finally {
      keepAlive.restore();
      await lease.close();
      timed.close();
    }
  });

  it('answers a stream whose only message is no_renew with the expiry unchanged, and ends it OK on a half-close', async () => {
    const { lease, opened, raw } = await leaseAndStream('only-no-renew');
    expect(await raw.send({ release_on_disconnect: false, no_renew: true })).toBe(opened);
    raw.stream.end();
    expect(await raw.ended).toBe(status.OK);
    expect(raw.answers).toEqual([opened]);
    expect(await expiresAt(lease)).toBe(opened);
    await lease.close();
  });

  it('keeps the lease, to expire when the last renewal said, when the stream drops after a no_renew message disarmed release_on_disconnect', async () => {
    const { lease, opened, raw } = await leaseAndStream('disarmed-then-dropped');
    // A message without no_renew (an older client's) renews, as before.
    const renewed = await raw.send({ release_on_disconnect: true });
    expect(renewed).toBeGreaterThan(opened);
    await sleep(20);
    expect(await raw.send({ release_on_disconnect: false, no_renew: true })).toBe(renewed);
    raw.stream.cancel();
    expect(await raw.ended).toBe(status.CANCELLED);
    await sleep(300);
    expect(await expiresAt(lease)).toBe(renewed);
    expect(setup.daemon.logs.some((entry) => entry.event === 'lease_disconnected' && entry.leaseId === lease.leaseId)).toBe(false);
    await lease.close();
  });

  it('arms release_on_disconnect with a no_renew message too: a drop then closes the lease', async () => {
    const { lease, opened, raw } = await leaseAndStream('armed-without-renewal');
    expect(await raw.send({ release_on_disconnect: true, no_renew: true })).toBe(opened);
    const seen = setup.daemon.logs.length;
    raw.stream.cancel();
    expect(await raw.ended).toBe(status.CANCELLED);
    expect((await waitForLog(setup.daemon, 'lease_disconnected', seen)).leaseId).toBe(lease.leaseId);
    const gone = await failure(lease.list());
    expect([gone.code, gone.reason, gone.errorMetadata.close_reason]).toEqual([status.UNAUTHENTICATED, 'LEASE_EXPIRED', 'disconnected']);
  });
});


describe('open mode', () => {
  it('refuses to listen beyond loopback without a tenants file', async () => {
    const result = await runTensormemd(['--backend', 'host', '--emulated-device', '2G', '--listen', '0.0.0.0:0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('loopback or unix: addresses only when no --tenants file is given (open mode)');
    expect(result.stderr).toContain('0.0.0.0:0');
  });
});
