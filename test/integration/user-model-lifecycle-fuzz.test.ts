/**
 * The user-model fuzz (test/helpers/user-model.ts) with what it leaves out: MMAP workspaces, cuDNN
 * scratch, lease expiry, admin eviction and SIGHUP reloads of the tenants file, among its own steps on
 * live arrays. The model predicts each new step's exact status code (and reason), and after every step:
 *
 * - MMAP workspaces (README "Workspaces"): a `temp_file_path` of a tenant's is one file under
 *   `<mmap-dir>/tenant-<name>/`, shared by its leases, counted once while any workspace maps it and kept
 *   on disk after; a temporary file is never seen there; lengths are the `initial_size` rounded up to
 *   16 KiB, or an existing file's as it is; `quota.mmap` (QUOTA_EXCEEDED) then `--mmap-maxbytes`
 *   (MMAP_LIMIT) are checked before a file is made, and re-making a mapped file is FAILED_PRECONDITION.
 *   Checked: host `mmap_bytes`, each tenant's `mmap_used_bytes`, each lease's `mmap_bytes`, the files.
 * - cuDNN scratch (README "cuDNN workspaces"; the host backend sizes it from `requested_bytes`): grow-only,
 *   the same array while it is large enough, else a new one checked against the smaller of the pool's and
 *   the quota's headroom plus the old scratch (QUOTA_EXCEEDED or DEVICE_OUT_OF_MEMORY), a detached
 *   device array that the other steps then read, write, free and export.
 * - Expiry (a renewal to 1 s, then no keep-alive) and EvictLease of a lease or a tenant (freed bytes
 *   exact; a tenant token or a lease token is PERMISSION_DENIED; an ended lease's id NOT_FOUND): the
 *   lease's token then answers UNAUTHENTICATED / LEASE_EXPIRED with its `close_reason`, its MMAP files
 *   are unmapped, and a tenant left with no lease uses no byte.
 * - SIGHUP reloads (README "Tenants"): new quotas (device, host, mmap) and max_leases for the tenants the
 *   file keeps; a tenant it drops gets UNAUTHENTICATED at OpenLease while its open leases work on under the
 *   quotas it last had; each row's quotas are the model's. Lowering a quota refuses new allocations only
 *   (use that grew is within the quota), and right after a reload a HOST_ONLY allocation one pool block
 *   past a tenant's host quota is QUOTA_EXCEEDED and one of exactly the rest fits.
 *
 * TENSORMEM_LIFECYCLE_FUZZ_SEED (first seed, default 1), _SEEDS (default 1), _STEPS (default 90), _LOG.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { expect } from 'vitest';
import { TensormemClientError } from '../../src/client/tensormem-client';
import type { MemoryInfo__Output } from '../../src/generated/tensormem/v1/MemoryInfo';
import { waitForLog } from '../helpers/daemon-process';
import { fuzzSeeds, Harness, KiB, MAX_LEASES, MiB, MLease, QUOTA, roundUp, sleep, Tenant, TENANTS } from '../helpers/user-model';

const FILE_UNIT = 16 * KiB;
const MMAP_MAX = 16 * FILE_UNIT;
const POOL_BYTES = 5 * MiB;
const MMAP_QUOTAS = [4 * FILE_UNIT, 8 * FILE_UNIT, 12 * FILE_UNIT];

interface Limits {
  device: number;
  host: number;
  mmap: number;
  maxLeases: number;
}

/** A file under --mmap-dir: a tenant's named one, or a workspace's temporary one (never seen on disk). */
interface MFile {
  tenant: Tenant;
  path?: string;
  length: number;
  /** Live MMAP workspaces that map it, by id. */
  mappedBy: Set<string>;
}

interface MMapWorkspace {
  lease: MLease;
  name: string;
  initialSize: number;
  path?: string;
  file: string;
}

type Expected = { code: Status; reason?: string };

class LifecycleHarness extends Harness {
  readonly mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-lifecycle-fuzz-'));
  tenantsPath = '';
  readonly files = new Map<string, MFile>();
  readonly mmapWorkspaces = new Map<string, MMapWorkspace>();
  /** Each tenant's limits in force: the file's, or for a tenant it dropped the last it had. */
  readonly limits = Object.fromEntries(TENANTS.map((t) => [t, { ...QUOTA, mmap: MMAP_QUOTAS[1], maxLeases: MAX_LEASES }])) as Record<Tenant, Limits>;
  inFile = new Set<Tenant>(TENANTS);
  /** Each lease's cuDNN scratch (an array id; gone from the lease once freed). */
  readonly scratch = new Map<MLease, string>();
  readonly counts: Record<string, number> = {};

  tally(what: string): void {
    this.counts[what] = (this.counts[what] ?? 0) + 1;
  }

  override daemonFlags(tenantsPath: string): string[] {
    this.tenantsPath = tenantsPath;
    return [...super.daemonFlags(tenantsPath), '--mmap-dir', this.mmapDir, '--mmap-maxbytes', String(MMAP_MAX), '--reclaim-interval', '200ms'];
  }

  tenantsFile(): string {
    const quota = (l: Limits) => `device: ${l.device}, host: ${l.host}, mmap: ${l.mmap}`;
    return this.tenantsYaml(TENANTS.filter((t) => this.inFile.has(t)).map((tenant) => ({ tenant, quota: quota(this.limits[tenant]), maxLeases: this.limits[tenant].maxLeases })));
  }

  override initialTenants(): string {
    return this.tenantsFile();
  }

  override quotaOf(tenant: Tenant): { device: number; host: number } {
    return this.limits[tenant];
  }

  override maxLeasesOf(tenant: Tenant): number {
    return this.limits[tenant].maxLeases;
  }

  override expectedOpen(tenant: Tenant, open: number): Status {
    return this.inFile.has(tenant) ? super.expectedOpen(tenant, open) : Status.UNAUTHENTICATED;
  }

  override async stop(): Promise<void> {
    try {
      await super.stop();
    } finally {
      rmSync(this.mmapDir, { recursive: true, force: true });
    }
  }

  /** Pool bytes of the lease's workspaces: an MMAP workspace's held_bytes less its file (spills only). */
  override async workspaceHeld(lease: MLease): Promise<number> {
    if (lease.workspaces.size === 0) return 0;
    let bytes = 0;
    for (const info of await lease.session.listWorkspaces()) {
      const mmap = this.mmapWorkspaces.get(info.workspace_id);
      bytes += Number(info.held_bytes) - (mmap ? this.files.get(mmap.file)!.length : 0);
    }
    return bytes;
  }

  unmap(id: string): void {
    const workspace = this.mmapWorkspaces.get(id);
    if (!workspace) return;
    const file = this.files.get(workspace.file)!;
    file.mappedBy.delete(id);
    if (file.path === undefined) this.files.delete(workspace.file);
    this.mmapWorkspaces.delete(id);
  }

  override forget(lease: MLease): void {
    super.forget(lease);
    for (const id of lease.workspaces) this.unmap(id);
    this.scratch.delete(lease);
  }

  override forgetWorkspace(lease: MLease, id: string): void {
    super.forgetWorkspace(lease, id);
    this.unmap(id);
  }

  mappedBytes(where: (file: MFile) => boolean = () => true): number {
    return [...this.files.values()].filter((f) => f.mappedBy.size > 0 && where(f)).reduce((sum, f) => sum + f.length, 0);
  }

  /** Runs `call` where the model expects `expected`: the code (and the reason) must be it. */
  async expectOutcome<T>(what: string, expected: Expected, call: () => Promise<T>): Promise<{ code: Status; value?: T; error?: TensormemClientError }> {
    const all = Object.values(Status).filter((v): v is Status => typeof v === 'number');
    const result = await this.outcome(what, all, call);
    this.tally(`${what.trim().split(' ')[0]} ${Status[result.code]}${result.error?.reason ? `/${result.error.reason}` : ''}`);
    const got = { code: Status[result.code], reason: result.error?.reason };
    const want = { code: Status[expected.code], reason: expected.reason ?? (expected.code === Status.OK ? undefined : result.error?.reason) };
    expect(got, `${what}: ${result.error?.details ?? 'OK'}`).toEqual(want);
    return result;
  }

  // ---- MMAP workspaces ----

  /** CreateWorkspace of an MMAP workspace in the model (README Workspaces), in the daemon's order of checks. */
  predictMmap(lease: MLease, name: string, initialSize: number, path: string | undefined): Expected & { existing?: string; createBytes?: number } {
    if (path === undefined && initialSize === 0) return { code: Status.INVALID_ARGUMENT };
    const existing = [...this.mmapWorkspaces.entries()].find(([, w]) => w.lease === lease && w.name === name);
    if (existing) return existing[1].initialSize === initialSize && existing[1].path === path ? { code: Status.OK, existing: existing[0] } : { code: Status.ALREADY_EXISTS };
    const file = path === undefined ? undefined : this.files.get(`${lease.tenant}/${path}`);
    const length = file?.length ?? 0;
    const createBytes = length === 0 || length < initialSize ? roundUp(initialSize, FILE_UNIT) : 0;
    if (createBytes === 0 && length === 0) return { code: Status.INVALID_ARGUMENT };
    const mapped = (file?.mappedBy.size ?? 0) > 0;
    if (createBytes > 0 && mapped) return { code: Status.FAILED_PRECONDITION };
    const checked = createBytes > 0 ? createBytes : mapped ? 0 : length;
    if (this.mappedBytes((f) => f.tenant === lease.tenant) + checked > this.limits[lease.tenant].mmap) return { code: Status.RESOURCE_EXHAUSTED, reason: 'QUOTA_EXCEEDED' };
    if (this.mappedBytes() + checked > MMAP_MAX) return { code: Status.RESOURCE_EXHAUSTED, reason: 'MMAP_LIMIT' };
    return { code: Status.OK, createBytes };
  }

  async mmapCreate(lease: MLease): Promise<void> {
    const initialSize = this.pick([0, 1000, FILE_UNIT, 20000, 40000, 70000]);
    const path = this.pick(['a.bin', 'a.bin', 'd/b.bin', undefined, undefined]);
    const name = `mm-${this.int(3)}`;
    const expected = this.predictMmap(lease, name, initialSize, path);
    const config = { initial_size: initialSize, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path: path };
    const result = await this.expectOutcome(`createMmap ${lease.tenant} ${name} ${initialSize} ${path ?? '(temp)'}`, expected, () => lease.session.createWorkspace(name, config));
    if (result.code !== Status.OK) return;
    const id = result.value!.workspace_id;
    if (expected.existing) return expect(id, 'the same name and configuration: the same workspace').toBe(expected.existing);
    const key = path === undefined ? `temp:${id}` : `${lease.tenant}/${path}`;
    const file = this.files.get(key) ?? { tenant: lease.tenant, path, length: 0, mappedBy: new Set<string>() };
    if (expected.createBytes) file.length = expected.createBytes;
    file.mappedBy.add(id);
    this.files.set(key, file);
    this.mmapWorkspaces.set(id, { lease, name, initialSize, path, file: key });
    lease.workspaces.add(id);
  }

  /** --mmap-dir holds the tenants' named files (path: length), and no temporary file. */
  diskFiles(): Record<string, number> {
    const found: Record<string, number> = {};
    const walk = (folder: string, prefix: string) => {
      for (const entry of readdirSync(folder, { withFileTypes: true })) {
        const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
        if (entry.isDirectory()) walk(join(folder, entry.name), path);
        else found[path] = statSync(join(folder, entry.name)).size;
      }
    };
    walk(this.mmapDir, '');
    return found;
  }

  // ---- cuDNN scratch ----

  async cudnn(lease: MLease): Promise<void> {
    const mode = this.pick(['CUDNN_ALGO_MODE_PREFER_FASTEST', 'CUDNN_ALGO_MODE_UNSPECIFIED', 'CUDNN_ALGO_MODE_NO_WORKSPACE'] as const);
    const requested = this.pick([0, 1000, 4096, 65536, 300 * KiB, 1 * MiB, 2 * MiB]);
    const bytes = mode === 'CUDNN_ALGO_MODE_NO_WORKSPACE' ? 0 : requested;
    const currentId = this.scratch.get(lease);
    const current = currentId === undefined ? undefined : lease.arrays.get(currentId);
    let expected: Expected = { code: Status.OK };
    const info = await this.client.memoryInfo(this.tokens.admin);
    const row = info.tenants.find((t) => t.tenant === lease.tenant);
    const poolHeadroom = Math.max(0, POOL_BYTES - Number(info.devices[0].used_bytes));
    const quotaHeadroom = Math.max(0, this.limits[lease.tenant].device - Number(row?.device_used_bytes ?? 0));
    const grows = bytes > 0 && (current === undefined || current.size < bytes);
    // The old scratch is given back first; the quota is checked first (Lease.scratchRefusal).
    const givenBack = current ? roundUp(current.size, 256) : 0;
    if (grows && roundUp(bytes, 256) > Math.min(poolHeadroom, quotaHeadroom) + givenBack) {
      expected = { code: Status.RESOURCE_EXHAUSTED, reason: roundUp(bytes, 256) > quotaHeadroom + givenBack ? 'QUOTA_EXCEEDED' : 'DEVICE_OUT_OF_MEMORY' };
    }
    const what = `cudnn ${lease.tenant} ${mode} ${requested} (scratch ${current?.size ?? 'none'}, pool headroom ${poolHeadroom}, quota headroom ${quotaHeadroom})`;
    const all = Object.values(Status).filter((v): v is Status => typeof v === 'number');
    const result = await this.outcome(what, all, () => lease.session.acquireCudnnWorkspace({ mode, requested_bytes: requested }));
    this.tally(`cudnn ${Status[result.code]}${result.error?.reason ? `/${result.error.reason}` : ''}`);
    if (expected.code === Status.OK && grows && result.error?.reason === 'DEVICE_OUT_OF_MEMORY') {
      // The checks passed and the pool had no free block large enough: a new scratch of the old size (README).
      if (current) await this.replacedScratch(lease, current.id, current.size);
      return;
    }
    expect({ code: Status[result.code], reason: result.error?.reason }, `${what}: ${result.error?.details ?? 'OK'}`).toEqual({ code: Status[expected.code], reason: expected.reason });
    if (result.code !== Status.OK) return;
    const reply = result.value!;
    expect(reply.grew, `${what}: grew`).toBe(grows && current !== undefined);
    if (!grows) return expect(reply.scratch?.array_id, `${what}: the scratch held`).toBe(current?.id);
    expect(Number(reply.scratch!.byte_size), `${what}: scratch size`).toBe(bytes);
    if (current) lease.arrays.delete(current.id);
    this.adopt(lease, reply.scratch!, false, new Uint8Array(bytes));
    this.scratch.set(lease, reply.scratch!.array_id);
  }

  async replacedScratch(lease: MLease, oldId: string, size: number): Promise<void> {
    const made = (await lease.session.list()).filter((a) => a.label === 'cudnn-scratch');
    expect(made.map((a) => [a.array_id === oldId, Number(a.byte_size)]), 'after a scratch the pool could not place: one new scratch of the old size').toEqual([[false, size]]);
    lease.arrays.delete(oldId);
    this.adopt(lease, made[0], false, null);
    this.scratch.set(lease, made[0].array_id);
  }

  // ---- lease ends ----

  /** The token of a lease that ended answers UNAUTHENTICATED / LEASE_EXPIRED with its close_reason. */
  async expectEnded(lease: MLease, reason: string): Promise<void> {
    const result = await this.outcome(`list on ended ${lease.session.leaseId}`, [Status.UNAUTHENTICATED], () => lease.session.list());
    expect({ code: Status[result.code], reason: result.error?.reason, close: result.error?.errorMetadata.close_reason }).toEqual({ code: 'UNAUTHENTICATED', reason: 'LEASE_EXPIRED', close: reason });
  }

  /**
   * Where the lease's tenant has quota for it and the pool has not (another tenant's lease takes what is
   * over): a waiting allocation of one block more than the pool has free, which nothing frees while it
   * waits. Resolves once it answers, with how long it took.
   */
  async blockedWaiter(lease: MLease): Promise<(() => Promise<{ code: string; reason?: string; ms: number }>) | undefined> {
    if (lease.workspaces.size > 0 || this.chance(0.3)) return undefined;
    const headroom = (info: MemoryInfo__Output, tenant: Tenant) => this.limits[tenant].device - Number(info.tenants.find((t) => t.tenant === tenant)?.device_used_bytes ?? 0);
    let info = await this.client.memoryInfo(this.tokens.admin);
    const over = POOL_BYTES - Number(info.devices[0].used_bytes) + 256 - headroom(info, lease.tenant);
    const filler = this.leases.find((l) => l.tenant !== lease.tenant && l.workspaces.size === 0 && headroom(info, l.tenant) >= over);
    if (over > 0 && filler) {
      const result = await this.outcome(`  filler ${over} in ${filler.session.leaseId}`, [Status.RESOURCE_EXHAUSTED], () => filler.session.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [over], placement: 'PLACEMENT_DEVICE' }));
      if (result.value) this.adopt(filler, result.value, false, new Uint8Array(over));
      info = await this.client.memoryInfo(this.tokens.admin);
    }
    const size = POOL_BYTES - Number(info.devices[0].used_bytes) + 256;
    if (size > headroom(info, lease.tenant)) return undefined;
    const started = Date.now();
    const waiting = this.outcome(`  waiter ${size} on ${lease.session.leaseId}`, [Status.UNAUTHENTICATED], () =>
      lease.session.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: 'PLACEMENT_DEVICE', waitForMemory: true, deadlineMs: 2900 }),
    );
    await sleep(50);
    return async () => {
      const result = await waiting;
      this.tally(`waiter ${Status[result.code]}`);
      return { code: Status[result.code], reason: result.error?.reason, ms: Date.now() - started };
    };
  }

  /** A waiter of a lease that ended fails at once (before its deadline) with UNAUTHENTICATED / LEASE_EXPIRED. */
  async expectWaiterEnded(waiter: (() => Promise<{ code: string; reason?: string; ms: number }>) | undefined, ttl: number): Promise<void> {
    if (!waiter) return;
    const { code, reason, ms } = await waiter();
    expect({ code, reason, early: ms < ttl + 1500 }, `the waiter of a lease that ended (${ms} ms)`).toEqual({ code: 'UNAUTHENTICATED', reason: 'LEASE_EXPIRED', early: true });
  }

  async evictLease(lease: MLease): Promise<void> {
    const id = lease.session.leaseId;
    const waiter = await this.blockedWaiter(lease);
    if (this.chance(0.3)) {
      // A token the file no longer holds is no tenant's: UNAUTHENTICATED.
      const tenantCode = this.inFile.has(lease.tenant) ? Status.PERMISSION_DENIED : Status.UNAUTHENTICATED;
      await this.expectOutcome(`evict ${id} with a tenant token`, { code: tenantCode }, () => this.client.evictLease(id, this.tokens[lease.tenant]));
      await this.expectOutcome(`evict ${id} with its own token`, { code: Status.PERMISSION_DENIED }, () => this.client.evictLease(id, lease.session.token));
    }
    const expected = await this.leaseBytes(lease);
    const result = await this.expectOutcome(`evict ${id}`, { code: Status.OK }, () => this.client.evictLease(id, this.tokens.admin));
    this.log.push(`    freed ${result.value}, model ${expected}`);
    expect(Number(result.value), 'EvictLease freed_bytes').toBe(expected);
    await this.expectOutcome(`evict ${id} again`, { code: Status.NOT_FOUND }, () => this.client.evictLease(id, this.tokens.admin));
    await this.expectWaiterEnded(waiter, 0);
    await this.expectEnded(lease, 'evicted');
    await this.ended([lease]);
  }

  async evictTenant(): Promise<void> {
    const tenant = this.pick(TENANTS);
    const leases = this.leases.filter((l) => l.tenant === tenant);
    let expected = 0;
    for (const lease of leases) expected += await this.leaseBytes(lease);
    const code = leases.length === 0 && !this.inFile.has(tenant) ? Status.NOT_FOUND : Status.OK;
    const result = await this.expectOutcome(`evictTenant ${tenant} (${leases.length} leases)`, { code }, () => this.client.evictTenant(tenant, this.tokens.admin));
    if (code !== Status.OK) return;
    expect(result.value, `EvictLease of tenant ${tenant}`).toEqual({ evictedLeases: leases.length, freedBytes: expected });
    for (const lease of leases) await this.expectEnded(lease, 'evicted');
    await this.ended(leases);
  }

  /** Renewed to a TTL of 1 s and left: the sweep frees it within TTL + --reclaim-interval. */
  async expire(lease: MLease): Promise<void> {
    const id = lease.session.leaseId;
    const waiter = await this.blockedWaiter(lease);
    await lease.session.renew(1);
    const renewed = Date.now();
    this.log.push(`  expire ${id}`);
    this.tally('expire');
    while ((await this.client.listLeases(this.tokens.admin)).some((l) => l.lease_id === id)) {
      if (Date.now() - renewed > 4000) throw new Error(`lease ${id} still listed 4 s after its renewal to a 1 s TTL`);
      await sleep(100);
    }
    await this.expectWaiterEnded(waiter, 1000);
    await this.expectEnded(lease, 'expired');
    await this.ended([lease]);
  }

  /**
   * 1 to 3 calls of a lease (transfers of its arrays, a waiting allocation, a duplicate, an export, a
   * cuDNN scratch, an MMAP workspace on a temporary file) and, while they run, the lease's end: its
   * eviction, its tenant's, or its close. Each call answers as it would before the end, or
   * UNAUTHENTICATED / LEASE_EXPIRED (README: any call of the lease still under way); once they have
   * answered, the lease's memory is back (the tenant's others' as the model has them).
   */
  async endDuringCalls(lease: MLease): Promise<void> {
    const s = lease.session;
    const arrays = this.detached(lease);
    const kinds = ['allocateWait', 'cudnn', 'mmap', ...(arrays.length > 0 ? ['readHttp', 'readGrpc', 'writeHttp', 'writeGrpc', 'duplicate', 'export', 'sync'] : [])];
    const calls: Array<[string, () => Promise<unknown>]> = [];
    for (let i = 1 + this.int(3); i > 0; i--) {
      const kind = this.pick(kinds);
      const array = arrays.length > 0 ? this.pick(arrays) : undefined;
      const runs: Record<string, () => Promise<unknown>> = {
        allocateWait: () => s.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB], placement: 'PLACEMENT_DEVICE', waitForMemory: true, deadlineMs: 1500 }),
        cudnn: () => s.acquireCudnnWorkspace({ mode: 'CUDNN_ALGO_MODE_PREFER_FASTEST', requested_bytes: 1 * MiB }),
        mmap: () => s.createWorkspace(`end-${i}`, { initial_size: 40000, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_NONE' }),
        readHttp: () => s.read(array!.id, 0, array!.size),
        readGrpc: () => s.readGrpc(array!.id, 0, array!.size),
        writeHttp: () => s.write(array!.id, Buffer.alloc(array!.size, 3)),
        writeGrpc: () => s.writeGrpc(array!.id, Buffer.alloc(array!.size, 3)),
        duplicate: () => s.duplicate(array!.id, { detached: true }),
        export: () => s.exportArray(array!.id, { side: 'EXPORT_SIDE_HOST' }),
        sync: () => s.sync(array!.id, 'SYNC_DIRECTION_TO_HOST'),
      };
      calls.push([`${kind}${array && !['allocateWait', 'cudnn', 'mmap'].includes(kind) ? ` ${array.id} (${array.size})` : ''}`, runs[kind]]);
    }
    const how = this.pick(['evict', 'evict', 'evictTenant', 'close'] as const);
    const ending = how === 'evictTenant' ? this.leases.filter((l) => l.tenant === lease.tenant) : [lease];
    this.log.push(`  ${how} ${lease.session.leaseId} during ${calls.map(([name]) => name).join(', ')}`);
    // NOT_FOUND: the typed client's own shm_open of an export whose lease ended after the daemon answered.
    const allowed = [Status.OK, Status.UNAUTHENTICATED, Status.RESOURCE_EXHAUSTED, Status.DEADLINE_EXCEEDED, Status.FAILED_PRECONDITION, Status.INVALID_ARGUMENT, Status.NOT_FOUND];
    const running = calls.map(([name, call]) => this.outcome(`    ${name}`, allowed, call));
    await sleep(this.int(30));
    const end: () => Promise<unknown> = { evict: () => this.client.evictLease(s.leaseId, this.tokens.admin), evictTenant: () => this.client.evictTenant(lease.tenant, this.tokens.admin), close: () => s.close() }[how];
    await this.expectOutcome(`  ${how} ${s.leaseId}`, { code: Status.OK }, end);
    for (const [i, result] of (await Promise.all(running)).entries()) {
      this.tally(`during ${how}: ${calls[i][0].split(' ')[0]} ${Status[result.code]}`);
      if (result.code === Status.NOT_FOUND) expect(result.error?.details, `${calls[i][0]} during the lease's ${how}`).toMatch(/^exportArray .* shm_open .* No such file/);
      if (result.code === Status.UNAUTHENTICATED) expect(result.error?.reason, `${calls[i][0]} during the lease's ${how}: ${result.error?.details}`).toBe('LEASE_EXPIRED');
    }
    for (const ended of ending) await this.expectEnded(ended, how === 'close' ? 'closed' : 'evicted');
    await this.ended(ending);
  }

  // ---- reloads ----

  async reload(): Promise<void> {
    // At most one tenant dropped, most often one with leases open (a tenant dropped earlier may come back with the file's limits).
    const holders = TENANTS.filter((t) => this.leases.some((l) => l.tenant === t));
    const dropped = this.chance(0.4) ? this.pick(holders.length > 0 && this.chance(0.8) ? holders : TENANTS) : undefined;
    this.inFile = new Set(TENANTS.filter((t) => t !== dropped));
    for (const tenant of this.inFile) {
      this.limits[tenant] = { device: this.pick([2, 3, 4]) * MiB, host: this.pick([1, 2, 3]) * MiB, mmap: this.pick(MMAP_QUOTAS), maxLeases: 1 + this.int(3) };
    }
    writeFileSync(this.tenantsPath, this.tenantsFile());
    const seen = this.daemon.logs.length;
    this.daemon.child.kill('SIGHUP');
    await waitForLog(this.daemon, 'tenants_reloaded', seen);
    this.log.push(`  reload: ${TENANTS.map((t) => `${t} ${this.inFile.has(t) ? JSON.stringify(this.limits[t]) : 'dropped'}`).join('; ')}`);
    this.tally('reload');
    for (const tenant of TENANTS) await this.hostQuotaProbe(tenant);
  }

  /** A HOST_ONLY allocation one block past the tenant's host quota is QUOTA_EXCEEDED; one of exactly the rest fits. */
  async hostQuotaProbe(tenant: Tenant): Promise<void> {
    const lease = this.leases.find((l) => l.tenant === tenant && l.workspaces.size === 0);
    if (!lease) return;
    const used = Number((await this.tenantRow(tenant))?.host_used_bytes ?? 0);
    // Pool blocks are 256 bytes: a workspace buffer may leave a rest that is not a whole block.
    const rest = Math.floor(Math.max(0, this.limits[tenant].host - used) / 256) * 256;
    const allocate = (size: number) => () => lease.session.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement: 'PLACEMENT_HOST_ONLY' });
    await this.expectOutcome(`probe ${tenant} host ${rest + 256} (used ${used})`, { code: Status.RESOURCE_EXHAUSTED, reason: 'QUOTA_EXCEEDED' }, allocate(rest + 256));
    if (rest === 0) return;
    const result = await this.expectOutcome(`probe ${tenant} host ${rest} (used ${used})`, { code: Status.OK }, allocate(rest));
    await lease.session.free(result.value!.array_id);
  }

  // ---- steps and checks ----

  override async step(): Promise<void> {
    if (this.leases.length > 0) {
      const lease = this.pick(this.leases);
      const roll = this.random();
      if (roll < 0.025) return this.reload();
      if (roll < 0.045) return this.evictLease(lease);
      if (roll < 0.055) return this.evictTenant();
      if (roll < 0.065) return this.expire(lease);
      if (roll < 0.08) return this.endDuringCalls(lease);
      if (roll < 0.16) return this.mmapCreate(lease);
      if (roll < 0.21) return this.cudnn(lease);
    }
    return super.step();
  }

  override async checkAccounting(): Promise<void> {
    await super.checkAccounting();
    const info = await this.client.memoryInfo(this.tokens.admin);
    expect(Number(info.host!.mmap_bytes), 'host mmap_bytes').toBe(this.mappedBytes());
    for (const tenant of TENANTS) {
      const row = info.tenants.find((t) => t.tenant === tenant);
      const shown = { mmap: Number(row?.mmap_used_bytes ?? 0), limits: row && { device: Number(row.quota_bytes), host: Number(row.host_quota_bytes), mmap: Number(row.mmap_quota_bytes), maxLeases: row.max_leases } };
      const limits = row && { ...this.limits[tenant] };
      expect(shown, `tenant ${tenant} (${this.inFile.has(tenant) ? 'in the file' : 'dropped'})`).toEqual({ mmap: this.mappedBytes((f) => f.tenant === tenant), limits });
    }
    const summaries = new Map((await this.client.listLeases(this.tokens.admin)).map((l) => [l.lease_id, Number(l.mmap_bytes)]));
    for (const lease of this.leases) {
      const files = new Set([...this.mmapWorkspaces.values()].filter((w) => w.lease === lease).map((w) => w.file));
      const bytes = [...files].reduce((sum, key) => sum + this.files.get(key)!.length, 0);
      expect(summaries.get(lease.session.leaseId), `lease ${lease.session.leaseId} mmap_bytes`).toBe(bytes);
    }
    const named = Object.fromEntries([...this.files.values()].filter((f) => f.path !== undefined).map((f) => [`tenant-${f.tenant}/${f.path}`, f.length]));
    expect(this.diskFiles(), `files under --mmap-dir`).toEqual(named);
  }

  override async run(steps: number): Promise<void> {
    await super.run(steps);
    this.log.push(`counts: ${JSON.stringify(this.counts)}`);
  }
}

fuzzSeeds('user-model fuzz: MMAP workspaces, cuDNN scratch, expiry, eviction, reloads', 'TENSORMEM_LIFECYCLE_FUZZ', 90, (seed) => new LifecycleHarness(seed));
