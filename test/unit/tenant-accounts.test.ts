/** MemoryManager's tenant accounts with leases over the host backend: quotas, guarantees and their reload, waiters. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OutOfMemoryError, TensormemError } from '../../src/errors';
import pino from 'pino';
import { AllocateParams, Lease } from '../../src/leases/lease';
import { allocateParams } from '../helpers/allocate-params';
import { LeaseRegistry } from '../../src/leases/lease-registry';
import { chooseFastest } from '../../src/memory/cudnn-convolution';
import { MemoryManager } from '../../src/memory/memory-manager';
import type { TenantLimits } from '../../src/memory/tenant-accounts';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { PoolWorkspaceBacking } from '../../src/memory/pool-workspace-backing';
import { createBackend } from '../../src/native/addon';
import { MiB } from '../../src/units';
import { thrownBy } from '../helpers/thrown';

const NONE: TenantLimits = { deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxArrays: 0, maxMappedRegions: 0 };

/** Pools capped at `capBytes` on `devices` emulated devices, host cap the same. */
function manager(capBytes: number, devices = 1, physical = new PhysicalMemoryGuard(0)): MemoryManager {
  const backend = createBackend('host', { deviceCapacityBytes: 2 * capBytes, deviceCount: devices });
  return new MemoryManager(
    backend,
    givenLimits(Array(devices).fill(capBytes), capBytes, physical.maxPhysicalBytes),
    { poolChunkBytes: MiB, asyncCopyThresholdBytes: MiB },
    physical,
  );
}

/**
 * A daemon's memory and leases where the next chunk taken passes --maxphysicalbytes until the relief
 * (the lease sweep, as tensormemd wires it) has run once: the sweep then runs inside that allocation.
 */
function sweptDuringAllocation() {
  let rss = 0;
  let registry: LeaseRegistry | undefined;
  const physical = new PhysicalMemoryGuard(
    64 * MiB,
    () => {
      registry!.sweep();
      rss = 0;
    },
    () => rss,
  );
  const memory = manager(8 * MiB, 1, physical);
  registry = new LeaseRegistry(memory, 60_000, false, pino({ level: 'silent' }));
  const { lease } = registry.open({ tenant: 'trainer', clientName: 'client', ttlSeconds: 0, labels: {} });
  return {
    memory,
    lease,
    /** The lease's TTL ends now (its call authenticated a moment earlier) and the next chunk needs relief. */
    expireDuringNextChunk: () => {
      lease.expiresAtMs = Date.now();
      rss = 64 * MiB;
    },
  };
}

/** What the daemon does at start and on SIGHUP: limits from the file, its tenants declared. */
function loadTenants(memory: MemoryManager, limits: Record<string, TenantLimits>): void {
  memory.setTenantLimits((tenant) => limits[tenant] ?? NONE);
  memory.tenants.declare(Object.keys(limits));
}

const lease = (memory: MemoryManager, tenant: string) => new Lease(`lease-${tenant}`, `hash-${tenant}`, tenant, 'client', {}, 3_600_000, memory, false);

const params = (bytes: number, extra: Partial<AllocateParams> = {}): AllocateParams => allocateParams({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], ...extra });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('tenant accounts', () => {
  it("serves a request waiting behind another tenant's guarantee as soon as a reload lowers that guarantee", async () => {
    const memory = manager(8 * MiB);
    loadTenants(memory, { a: NONE, b: { ...NONE, deviceGuaranteeBytes: 6 * MiB } });
    const a = lease(memory, 'a');
    await a.allocateArray(params(MiB));
    // 1 MiB used + 2 MiB + b's unused 6 MiB > 8 MiB: it waits.
    let outcome: unknown;
    const waiting = a.allocateArray(params(2 * MiB, { waitForMemory: { waitMs: 10_000 } })).then(
      (array) => (outcome = array),
      (error: unknown) => (outcome = error),
    );
    await sleep(20);
    expect(outcome).toBeUndefined();
    loadTenants(memory, { a: NONE, b: NONE });
    await sleep(50);
    // Without the fix it waited for the next free (or its deadline): nothing was freed.
    expect(outcome).not.toBeInstanceOf(TensormemError);
    expect(outcome).toBeDefined();
    await waiting;
    expect(memory.tenants.usage('a').deviceBytes).toEqual([3 * MiB]);
    a.close();
    memory.release();
  });

  it("keeps other tenants' unused guarantees out of the cuDNN scratch budget, so PREFER_FASTEST falls back to what fits", async () => {
    const memory = manager(8 * MiB);
    loadTenants(memory, { a: NONE, b: { ...NONE, deviceGuaranteeBytes: 6 * MiB } });
    const a = lease(memory, 'a');
    const budget = a.scratchBudget(0);
    // The pool has 8 MiB free, 6 MiB of it b's: a may take 2 MiB.
    expect(budget.bytes).toBe(2 * MiB);
    expect(budget.detail).toContain("other tenants' unused guarantees 6291456 bytes (6.00 MiB)");
    const perf = (algorithm: number, memoryBytes: number) => ({ algorithm, status: 0, statusName: 'CUDNN_STATUS_SUCCESS', timeMs: -1, memoryBytes, deterministic: true, mathType: 0 });
    const choice = chooseFastest('FORWARD', [perf(1, 4 * MiB), perf(0, MiB)], budget);
    // Without the fix the budget was 8 MiB: the 4 MiB algorithm was chosen and its scratch then refused.
    expect(choice).toMatchObject({ fellBack: true, perf: { algorithm: 0 } });
    const { scratch } = await a.acquireCudnnScratch(0, choice.perf.memoryBytes);
    expect(scratch!.byteSize).toBe(MiB);
    // A grow past the guarantees is refused before the scratch held is given back, naming them.
    const refusal = await a.acquireCudnnScratch(0, 4 * MiB).then(() => undefined, (error: unknown) => error);
    expect(refusal).toBeInstanceOf(OutOfMemoryError);
    // Used as GetMemoryInfo shows it (the scratch held included), the scratch given back first apart.
    expect((refusal as OutOfMemoryError).message).toContain("pool cap (maxbytes) less other tenants' unused guarantees (6.00 MiB) 2097152 bytes (2.00 MiB), used 1048576 bytes (1.00 MiB)");
    expect((refusal as OutOfMemoryError).message).toContain('; the cuDNN scratch it replaces, 1048576 bytes (1.00 MiB) of the used bytes, is given back first.');
    expect(a.cudnnScratchOf(0)).toBe(scratch);
    a.close();
    memory.release();
  });

  it("counts only the unused part of other tenants' guarantees against the cuDNN scratch budget", async () => {
    const memory = manager(8 * MiB);
    loadTenants(memory, { a: NONE, b: { ...NONE, deviceGuaranteeBytes: 6 * MiB } });
    const a = lease(memory, 'a');
    const b = lease(memory, 'b');
    await b.allocateArray(params(4 * MiB));
    // 8 MiB cap, 4 MiB used (b's), b's guarantee has 2 MiB unused: a may take 2 MiB, not 8 - 4 - 6 < 0.
    expect(memory.othersUnusedGuaranteeBytes(0, 'a')).toBe(2 * MiB);
    expect(memory.othersUnusedGuaranteeBytes(0, 'b')).toBe(0);
    expect(a.scratchBudget(0).bytes).toBe(2 * MiB);
    const { scratch } = await a.acquireCudnnScratch(0, 2 * MiB);
    expect(scratch!.byteSize).toBe(2 * MiB);
    a.close();
    b.close();
    memory.release();
  });

  it('keeps the account of a tenant without a lease while it still holds host bytes', () => {
    const memory = manager(8 * MiB);
    const owner = { tenant: 'visitor', leaseId: 'lease-gone', purpose: 'mirror' };
    const block = memory.allocateHost(MiB, owner, 'host_only');
    // Its lease closed while a host view was still lent: the bytes are still the tenant's.
    expect(memory.tenants.releaseIdle('visitor')).toBe(false);
    expect(memory.tenants.names()).toContain('visitor');
    expect(memory.tenants.usage('visitor').hostBytes).toBe(MiB);
    memory.deallocateHost(block, 'host_only');
    expect(memory.tenants.usage('visitor').hostBytes).toBe(0);
    expect(memory.tenants.releaseIdle('visitor')).toBe(true);
    expect(memory.tenants.names()).not.toContain('visitor');
    memory.release();
  });

  it('keeps the old cuDNN scratch when the pool cannot place a larger one after all (fragmentation)', async () => {
    const memory = manager(8 * MiB);
    const a = lease(memory, 'a');
    const half = MiB / 2;
    const { scratch: old } = await a.acquireCudnnScratch(0, half);
    // 16 blocks of 512 KiB fill the cap's 8 chunks of 1 MiB; every other one freed leaves 512 KiB holes, no chunk empty.
    const arrays = [];
    for (let i = 1; i < 16; i++) arrays.push(await a.allocateArray(params(half)));
    for (let i = 2; i < 16; i += 2) a.freeArray(arrays[i - 1].arrayId);
    expect(a.scratchBudget(0).bytes).toBeGreaterThanOrEqual(MiB);
    const refusal = await a.acquireCudnnScratch(0, MiB).then(() => undefined, (error: unknown) => error);
    expect(refusal).toBeInstanceOf(OutOfMemoryError);
    // The old scratch was given back before the attempt; its size is taken again, not lost.
    const kept = a.cudnnScratchOf(0);
    expect(kept).toBeDefined();
    expect(kept).not.toBe(old);
    expect(kept!.byteSize).toBe(half);
    expect(memory.tenants.usage('a').deviceBytes).toEqual([9 * half]);
    a.close();
    memory.release();
  });

  it('gives the copy back when a DuplicateArray copy fails', async () => {
    const memory = manager(8 * MiB);
    const a = lease(memory, 'a');
    const source = await a.allocateArray(params(MiB));
    const failure = new Error('copy failed');
    source.copyInto = () => Promise.reject(failure);
    const error = await a.duplicateArray(source.arrayId, 'PLACEMENT_UNSPECIFIED', '', 'copy').then(() => undefined, (e: unknown) => e);
    expect(error).toBe(failure);
    // The half-made copy neither stays in the lease nor holds the tenant's bytes.
    expect([...a.arrays.keys()]).toEqual([source.arrayId]);
    expect(memory.tenants.usage('a').deviceBytes).toEqual([MiB]);
    expect(memory.deviceReports()[0].usedBytes).toBe(MiB);
    a.close();
    memory.release();
  });

  it("refuses a lease's token once its TTL has passed, before the sweep has closed it", () => {
    const memory = manager(8 * MiB);
    const registry = new LeaseRegistry(memory, 60_000, false, pino({ level: 'silent' }));
    const { lease: opened, token } = registry.open({ tenant: 't', clientName: 'client', ttlSeconds: 0, labels: {} });
    expect(registry.authenticate(token)).toBe(opened);
    opened.expiresAtMs = Date.now() - 1;
    const error = (() => {
      try {
        registry.authenticate(token);
      } catch (e) {
        return e as TensormemError;
      }
      return undefined;
    })();
    expect(error?.reason).toBe('LEASE_EXPIRED');
    expect(error?.metadata).toMatchObject({ lease_id: opened.leaseId, close_reason: 'expired' });
    expect(opened.closed).toBe(false);
    registry.closeAll();
    memory.release();
  });

  it('keeps saying a lease past its TTL expired when an eviction or a KeepAlive drop closes it before the sweep does', () => {
    const memory = manager(8 * MiB);
    const registry = new LeaseRegistry(memory, 60_000, false, pino({ level: 'silent' }));
    const refusalOf = (token: string) => {
      try {
        registry.authenticate(token);
      } catch (e) {
        return e as TensormemError;
      }
      return undefined;
    };
    for (const reason of ['evicted', 'disconnected'] as const) {
      const { lease: opened, token } = registry.open({ tenant: 't', clientName: 'client', ttlSeconds: 0, labels: {} });
      opened.expiresAtMs = Date.now() - 1;
      // Its token has answered "has expired" already.
      expect(refusalOf(token)?.metadata.close_reason).toBe('expired');
      registry.close(opened, reason);
      // It ended when its TTL passed, not when the eviction or the drop freed it: the same answer as before.
      const refused = refusalOf(token);
      expect({ reason, code: refused?.kind, why: refused?.reason, message: refused?.message, closeReason: refused?.metadata.close_reason }).toEqual({
        reason,
        code: 'UNAUTHENTICATED',
        why: 'LEASE_EXPIRED',
        message: `lease ${opened.leaseId} has expired: open a new lease`,
        closeReason: 'expired',
      });
      // A lease inside its TTL closed the same way says so.
      const { lease: live, token: liveToken } = registry.open({ tenant: 't', clientName: 'client', ttlSeconds: 0, labels: {} });
      registry.close(live, reason);
      expect(refusalOf(liveToken)?.metadata.close_reason).toBe(reason);
    }
    expect(registry.closedTotal).toMatchObject({ expired: 2, evicted: 1, disconnected: 1 });
    memory.release();
  });

  it('counts an array being zeroed in its tenant\'s arrays as max_arrays counts it, beside its bytes', async () => {
    const memory = manager(8 * MiB);
    loadTenants(memory, { a: { ...NONE, maxArrays: 1 } });
    const one = lease(memory, 'a');
    // Zeroed off the event loop (--async-copy-threshold 1 MiB): its bytes are held before it joins the lease.
    const making = one.allocateArray(params(MiB, { zero: true }));
    const refused = (await one.allocateArray(params(16)).then(() => undefined, (error: unknown) => error)) as TensormemError;
    expect(refused.message).toBe('tenant "a" has 1 live arrays, its max_arrays is 1: free arrays first');
    expect(memory.tenants.usage('a')).toMatchObject({ deviceBytes: [MiB], arrays: 1, maxArrays: 1 });
    await making;
    expect(memory.tenants.usage('a')).toMatchObject({ deviceBytes: [MiB], arrays: 1, maxArrays: 1 });
    one.close();
    expect(memory.tenants.usage('a')).toMatchObject({ deviceBytes: [0], arrays: 0 });
    memory.release();
  });

  it("leaves an allocation still being zeroed out of CloseLease's freed bytes (it fails LEASE_EXPIRED, as if after the close); its memory comes back when the zeroing ends", async () => {
    const memory = manager(8 * MiB);
    loadTenants(memory, { a: NONE });
    const one = lease(memory, 'a');
    await one.allocateArray(params(16));
    // Zeroed off the event loop (--async-copy-threshold 1 MiB): its memory is taken, it is not in the lease yet.
    const making = one.allocateArray(params(2 * MiB, { zero: true })).then(
      () => 'made',
      (error: TensormemError) => error.reason,
    );
    expect(memory.deviceReports()[0].usedBytes).toBe(2 * MiB + 256);
    // Only what the client could see: the answers read as the close first, then the allocation.
    expect(one.close()).toBe(256);
    expect(await making).toBe('LEASE_EXPIRED');
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
    expect(memory.tenants.usage('a')).toMatchObject({ deviceBytes: [0], arrays: 0 });
    memory.release();
  });

  it("counts refusals for others' guarantees in the pool's failed allocations, a waiting request once", async () => {
    // DevicePoolInfo.failed_allocations_total (tensormem_pool_failed_allocations_total) counts what the
    // pool or its cap refused; a guarantee refusal names the cap ("pool cap (maxbytes) less other
    // tenants' unused guarantees") but was checked before the pool and counted nowhere: on a host with
    // guarantees the counter stayed at 0 while every refusal was of that kind.
    const memory = manager(8 * MiB);
    loadTenants(memory, { a: NONE, b: { ...NONE, deviceGuaranteeBytes: 6 * MiB } });
    const a = lease(memory, 'a');
    await a.allocateArray(params(MiB));
    const failed = () => memory.deviceReports()[0].failedAllocationsTotal;
    expect(failed()).toBe(0);
    const refused = await a.allocateArray(params(2 * MiB)).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(OutOfMemoryError);
    expect(failed()).toBe(1);
    // A cuDNN scratch the same cap refuses (checked against the budget before the pool) counts too.
    const scratch = await a.acquireCudnnScratch(0, 2 * MiB).then(() => undefined, (e: unknown) => e);
    expect(scratch).toBeInstanceOf(OutOfMemoryError);
    expect(failed()).toBe(2);
    // A wait_for_memory request counts once, however often it is tried again while it waits.
    const waiting = a.allocateArray(params(2 * MiB, { waitForMemory: { waitMs: 10_000 } }));
    await sleep(20);
    await a.allocateArray(params(16)).then((array) => a.freeArray(array.arrayId));
    await sleep(20);
    expect(failed()).toBe(3);
    loadTenants(memory, { a: NONE, b: NONE });
    await waiting;
    expect(failed()).toBe(3);
    a.close();
    memory.release();
  });

  it("reports the tenant's own quota, not others' guarantees, when both refuse a device request", async () => {
    const memory = manager(8 * MiB);
    loadTenants(memory, { a: { ...NONE, deviceQuotaBytes: 2 * MiB }, b: { ...NONE, deviceGuaranteeBytes: 6 * MiB } });
    const a = lease(memory, 'a');
    // 3 MiB is past a's 2 MiB quota and past the 2 MiB that b's unused guarantee leaves: waiting can cure only the second.
    const error = await a.allocateArray(params(3 * MiB)).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(TensormemError);
    expect((error as TensormemError).reason).toBe('QUOTA_EXCEEDED');
    expect(memory.tenants.usage('a').deviceBytes).toEqual([0]);
    a.close();
    memory.release();
  });

  it("counts a lease's mapped files apart, in neither its device nor its host bytes", () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-'));
    try {
      const backend = createBackend('host', { deviceCapacityBytes: 16 * MiB, deviceCount: 1 });
      const memory = new MemoryManager(backend, givenLimits([8 * MiB], 8 * MiB, 0), { poolChunkBytes: MiB, asyncCopyThresholdBytes: MiB, mmapDir: dir }, new PhysicalMemoryGuard(0));
      const backing = new PoolWorkspaceBacking(memory, { leaseId: 'lease-1', tenant: 't' });
      const mapped = backing.mapFile({ path: undefined, createBytes: 64 * 1024, workspaceId: 'ws-1', workspaceName: 'mapped' });
      const host = backing.allocateBuffer({ location: 'HOST', mirror: false, bytes: MiB, device: 0, workspaceId: 'ws-1', workspaceName: 'mapped', purpose: 'workspace' });
      expect(backing.heldBytes()).toEqual({ deviceBytes: 0, hostBytes: host.bytes, mmapBytes: mapped.fileBytes });
      expect(memory.hostReport().mmapBytes).toBe(mapped.fileBytes);
      backing.free(mapped.block);
      backing.free(host);
      expect(backing.heldBytes()).toEqual({ deviceBytes: 0, hostBytes: 0, mmapBytes: 0 });
      memory.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('MMAP files: quota.mmap and --mmap-maxbytes', () => {
    /** A manager whose MMAP files go to a fresh folder; `run` gets it and the folder, which is removed after. */
    function withMmap(mmapMaxBytes: number, run: (memory: MemoryManager, dir: string) => void): void {
      const dir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-'));
      const backend = createBackend('host', { deviceCapacityBytes: 16 * MiB, deviceCount: 1 });
      const memory = new MemoryManager(backend, givenLimits([8 * MiB], 8 * MiB, 0), { poolChunkBytes: MiB, asyncCopyThresholdBytes: MiB, mmapDir: dir, mmapMaxBytes }, new PhysicalMemoryGuard(0));
      try {
        run(memory, dir);
      } finally {
        memory.release();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const map = (backing: PoolWorkspaceBacking, bytes: number, path?: string) => backing.mapFile({ path, createBytes: bytes, workspaceId: 'ws', workspaceName: 'mapped' });
    const refusal = (fn: () => unknown): TensormemError => thrownBy(fn, TensormemError);

    it("refuses a file past the tenant's quota.mmap before creating it, and counts only that tenant", () => {
      withMmap(0, (memory, dir) => {
        loadTenants(memory, { a: { ...NONE, mmapQuotaBytes: 256 * 1024 }, b: NONE });
        const a = new PoolWorkspaceBacking(memory, { leaseId: 'lease-a', tenant: 'a' });
        const b = new PoolWorkspaceBacking(memory, { leaseId: 'lease-b', tenant: 'b' });
        const first = map(a, 192 * 1024, 'first.bin');
        const error = refusal(() => map(a, 128 * 1024, 'second.bin'));
        expect(error.kind).toBe('RESOURCE_EXHAUSTED');
        expect(error.reason).toBe('QUOTA_EXCEEDED');
        expect(error.message).toBe(
          `Can't map [MMAP] file: 131072 bytes (128.00 KiB) for tenant "a": quota 262144 bytes (256.00 KiB), used 196608 bytes (192.00 KiB). Try: destroy MMAP workspaces, a smaller initial_size, or a larger quota.mmap in the tenants file.`,
        );
        expect(error.metadata).toMatchObject({ tenant: 'a', requested_bytes: String(128 * 1024), quota_bytes: String(256 * 1024), used_bytes: String(192 * 1024) });
        // Nothing was created for the refused file, and nothing counted.
        expect(existsSync(join(dir, 'tenant-a', 'second.bin'))).toBe(false);
        expect(memory.tenants.usage('a')).toMatchObject({ mmapBytes: 192 * 1024, mmapQuotaBytes: 256 * 1024 });
        expect(memory.hostReport().mmapBytes).toBe(192 * 1024);
        // Another tenant has no quota.mmap: its files are not held to a's.
        const other = map(b, 512 * 1024);
        expect(memory.tenants.usage('b').mmapBytes).toBe(512 * 1024);
        b.free(other.block);
        a.free(first.block);
        expect(memory.tenants.usage('a').mmapBytes).toBe(0);
        expect(map(a, 256 * 1024).fileBytes).toBe(256 * 1024);
      });
    });

    it('refuses re-creating a file a live workspace maps as such (FAILED_PRECONDITION), not as past the quota its new length would pass', () => {
      withMmap(0, (memory, dir) => {
        loadTenants(memory, { a: { ...NONE, mmapQuotaBytes: 256 * 1024 } });
        const a = new PoolWorkspaceBacking(memory, { leaseId: 'lease-a', tenant: 'a' });
        const first = map(a, 192 * 1024, 'shared.bin');
        // 128 KiB more would pass the quota, but the file cannot be re-created anyway: that is what is said.
        const error = refusal(() => map(a, 320 * 1024, 'shared.bin'));
        expect([error.kind, error.reason]).toEqual(['FAILED_PRECONDITION', 'FAILED_PRECONDITION']);
        expect(error.message).toContain(`cannot map ${join(dir, 'tenant-a', 'shared.bin')} for an MMAP workspace: cannot create it with 327680 bytes (320.00 KiB): the file is mapped by a live chunk of this process`);
        expect(error.message).toContain('an initial_size no larger than the file (196608 bytes (192.00 KiB)) maps it as it is');
        expect(statSync(join(dir, 'tenant-a', 'shared.bin')).size).toBe(192 * 1024);
        expect(memory.tenants.usage('a')).toMatchObject({ mmapBytes: 192 * 1024 });
        a.free(first.block);
      });
    });

    it('refuses a file past --mmap-maxbytes, all tenants together, with the numbers', () => {
      withMmap(512 * 1024, (memory, dir) => {
        const a = new PoolWorkspaceBacking(memory, { leaseId: 'lease-a', tenant: 'a' });
        const b = new PoolWorkspaceBacking(memory, { leaseId: 'lease-b', tenant: 'b' });
        const held = map(a, 384 * 1024);
        const filesBefore = readdirSync(dir).length;
        const error = refusal(() => map(b, 256 * 1024));
        expect(error.kind).toBe('RESOURCE_EXHAUSTED');
        expect(error.reason).toBe('MMAP_LIMIT');
        expect(error.message).toBe(
          "Can't map [MMAP] file: 262144 bytes (256.00 KiB): mmap cap (mmap-maxbytes) 524288 bytes (512.00 KiB), mapped 393216 bytes (384.00 KiB). Try: destroy MMAP workspaces, a smaller initial_size, or a larger --mmap-maxbytes.",
        );
        expect(readdirSync(dir).length).toBe(filesBefore);
        expect(memory.hostReport()).toMatchObject({ mmapBytes: 384 * 1024, mmapMaxBytes: 512 * 1024 });
        expect(map(b, 128 * 1024).fileBytes).toBe(128 * 1024);
        a.free(held.block);
        expect(memory.hostReport().mmapBytes).toBe(128 * 1024);
      });
    });

    it('charges an existing file mapped as it is by its length, and refuses it whole past the quota', () => {
      withMmap(0, (memory, dir) => {
        loadTenants(memory, { a: { ...NONE, mmapQuotaBytes: MiB } });
        mkdirSync(join(dir, 'tenant-a'), { recursive: true });
        writeFileSync(join(dir, 'tenant-a', 'big.bin'), Buffer.alloc(2 * MiB, 7));
        const a = new PoolWorkspaceBacking(memory, { leaseId: 'lease-a', tenant: 'a' });
        expect(refusal(() => map(a, 0, 'big.bin')).reason).toBe('QUOTA_EXCEEDED');
        // Refused before mapping: the file is as it was.
        expect(readFileSync(join(dir, 'tenant-a', 'big.bin')).equals(Buffer.alloc(2 * MiB, 7))).toBe(true);
        loadTenants(memory, { a: { ...NONE, mmapQuotaBytes: 4 * MiB } });
        const mapped = map(a, 0, 'big.bin');
        expect(mapped.fileBytes).toBe(2 * MiB);
        expect(memory.tenants.usage('a').mmapBytes).toBe(2 * MiB);
        a.free(mapped.block);
      });
    });

    it("keeps the account of a tenant not in the tenants file while it has a mapped file", () => {
      withMmap(0, (memory) => {
        const a = new PoolWorkspaceBacking(memory, { leaseId: 'lease-a', tenant: 'open-mode-client' });
        const mapped = map(a, 64 * 1024);
        expect(memory.tenants.releaseIdle('open-mode-client')).toBe(false);
        expect(memory.tenants.usage('open-mode-client').mmapBytes).toBe(64 * 1024);
        a.free(mapped.block);
        expect(memory.tenants.releaseIdle('open-mode-client')).toBe(true);
      });
    });
  });

  it("holds a tenant to max_arrays across its leases, whichever way its arrays come and go", async () => {
    const memory = manager(64 * MiB);
    loadTenants(memory, { a: { ...NONE, maxArrays: 3 }, b: NONE });
    const one = lease(memory, 'a');
    const two = lease(memory, 'a');
    const other = lease(memory, 'b');
    const x = await one.allocateArray(params(16));
    await one.duplicateArray(x.arrayId, 'PLACEMENT_UNSPECIFIED', '', '', true);
    const ws = two.workspaces.create('w', { initialSize: 64 * 1024, learningPolicy: 'NONE' });
    two.workspaces.enter(ws.workspaceId);
    await two.allocateArray(params(16, { workspaceId: ws.workspaceId }));
    expect(memory.tenants.usage('a')).toMatchObject({ arrays: 3, maxArrays: 3 });
    const refused = await one.allocateArray(params(16)).then(() => undefined, (error: unknown) => error);
    expect(refused).toBeInstanceOf(TensormemError);
    expect((refused as TensormemError).reason).toBe('QUOTA_EXCEEDED');
    expect((refused as TensormemError).message).toBe('tenant "a" has 3 live arrays, its max_arrays is 3: free arrays first');
    expect((await one.duplicateArray(x.arrayId, 'PLACEMENT_UNSPECIFIED', '', '', true).then(() => undefined, (error: TensormemError) => error))?.reason).toBe('QUOTA_EXCEEDED');
    // Another tenant is not held to a's cap.
    await other.allocateArray(params(16));
    // A workspace moving on retires its attached arrays: they no longer count.
    two.workspaces.leave(ws.workspaceId);
    two.workspaces.enter(ws.workspaceId);
    two.retireOutOfScope(ws);
    expect(memory.tenants.usage('a').arrays).toBe(2);
    await one.allocateArray(params(16));
    one.freeArray(x.arrayId);
    expect(memory.tenants.usage('a').arrays).toBe(2);
    one.close();
    expect(memory.tenants.usage('a').arrays).toBe(0);
    two.close();
    other.close();
    memory.release();
  });

  it('gives a refused allocation\'s place under max_arrays back at once: another issued with it is not refused for it', async () => {
    const memory = manager(64 * MiB);
    loadTenants(memory, { a: { ...NONE, deviceQuotaBytes: MiB, maxArrays: 2 } });
    const one = lease(memory, 'a');
    await one.allocateArray(params(16));
    for (const placement of ['PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY'] as const) {
      // Issued together: the first is refused (device: the quota; host: the host pool's cap), the
      // second fits under max_arrays (1 live array of 2) whichever runs first.
      const refused = one.allocateArray(params(placement === 'PLACEMENT_DEVICE' ? 2 * MiB : 128 * MiB, { placement }));
      const fits = one.allocateArray(params(16));
      const [first, second] = await Promise.allSettled([refused, fits]);
      expect({ placement, first: first.status === 'rejected' && (first.reason as TensormemError).reason, second: second.status === 'fulfilled' ? 'ok' : (second.reason as Error).message }).toEqual({
        placement,
        first: placement === 'PLACEMENT_DEVICE' ? 'QUOTA_EXCEEDED' : 'HOST_OUT_OF_MEMORY',
        second: 'ok',
      });
      one.freeArray((await fits).arrayId);
    }
    expect(memory.tenants.usage('a')).toMatchObject({ arrays: 1, maxArrays: 2 });
    one.close();
    memory.release();
  });

  it('closes every expired lease in one sweep and gives their memory back', async () => {
    const memory = manager(8 * MiB);
    const registry = new LeaseRegistry(memory, 60_000, false, pino({ level: 'silent' }));
    const open = (tenant: string) => registry.open({ tenant, clientName: 'client', ttlSeconds: 0, labels: {} }).lease;
    const [x, y, z] = [open('x'), open('y'), open('z')];
    for (const held of [x, y, z]) await held.allocateArray(params(MiB));
    x.expiresAtMs = y.expiresAtMs = Date.now() - 1;
    expect(registry.sweep()).toBe(2);
    expect([x.closed, y.closed, z.closed]).toEqual([true, true, false]);
    expect(registry.reclaimedTotal).toBe(2);
    expect(memory.deviceReports()[0].usedBytes).toBe(MiB);
    // Open-mode tenants whose last lease closed leave no account behind, without waiting for a GetMemoryInfo.
    expect(memory.tenants.names()).toEqual(['z']);
    registry.closeAll();
    memory.release();
  });

  it('keeps the account of an open-mode tenant whose last lease is swept while it allocates (no negative usage)', async () => {
    const { memory, lease, expireDuringNextChunk } = sweptDuringAllocation();
    expireDuringNextChunk();
    const error = await lease.allocateArray(params(MiB)).then(() => undefined, (e: unknown) => e);
    expect((error as TensormemError).reason).toBe('LEASE_EXPIRED');
    expect(lease.closed).toBe(true);
    // Without the fix the sweep dropped the account mid-allocation and the release made a new one at -1 MiB.
    expect(memory.tenants.usage('trainer').deviceBytes).toEqual([0]);
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
    memory.release();
  });

  it('gives back a workspace buffer taken while the sweep closed its lease', async () => {
    const { memory, lease, expireDuringNextChunk } = sweptDuringAllocation();
    const workspace = lease.workspaces.create('loop');
    lease.workspaces.enter(workspace.workspaceId);
    expireDuringNextChunk();
    // The workspace's first allocation spills: a block from the device pool, whose chunk needs relief.
    const error = await lease.allocateArray(params(MiB)).then(() => undefined, (e: unknown) => e);
    expect((error as TensormemError).reason).toBe('LEASE_EXPIRED');
    expect(lease.closed).toBe(true);
    // Without the fix the spill went to the destroyed workspace and stayed in the pool for good.
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
    expect(memory.tenants.usage('trainer').deviceBytes).toEqual([0]);
    memory.release();
  });
});
