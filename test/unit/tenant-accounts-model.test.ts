/**
 * Model-based check of the tenant accounting: random sequences of lease, array, mirror, export,
 * duplicate, workspace and tenants-file reload operations over two emulated devices, with the
 * invariants checked after every step: pools within their caps, each tenant's counters equal to what
 * its leases hold, no allocation taking a tenant past its quota or into others' unused guarantees,
 * refusals quoting the figures as they were, and everything back once every lease is closed.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import type { Lease, LeaseCloseReason } from '../../src/leases/lease';
import { LeaseRegistry } from '../../src/leases/lease-registry';
import { TenantRegistry } from '../../src/leases/tenant-registry';
import type { TenantSpec } from '../../src/leases/tenants-file';
import { MemoryManager } from '../../src/memory/memory-manager';
import { givenLimits } from '../../src/memory/limits';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import { createBackend } from '../../src/native/addon';
import { KiB, MiB } from '../../src/units';
import { rng } from '../helpers/rng';

const CAP = 8 * MiB;
const DEVICES = [0, 1];
const NAMES = ['a', 'b', 'c'];
const SIZES = [0, 100, 4 * KiB, 100 * KiB, 512 * KiB, MiB, 1.5 * MiB, 3 * MiB];

type Usage = ReturnType<MemoryManager['tenants']['usage']>;
interface Figures {
  device: number[];
  host: number;
  tenants: Record<string, Usage>;
}

async function run(seed: number, steps: number): Promise<void> {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  /** A tenants file: random quotas and guarantees (adding up to at most the cap), some tenants left out. */
  const tenantsFile = (): TenantSpec[] => {
    let guarantees = 0;
    return NAMES.flatMap((name, index) => {
      const deviceQuotaBytes = pick([0, 2 * MiB, 3 * MiB, 5 * MiB]);
      let deviceGuaranteeBytes = pick([0, 0, MiB, 2 * MiB]);
      if ((deviceQuotaBytes > 0 && deviceGuaranteeBytes > deviceQuotaBytes) || guarantees + deviceGuaranteeBytes > CAP) deviceGuaranteeBytes = 0;
      guarantees += deviceGuaranteeBytes;
      const spec = { name, tokenSha256: String(index).repeat(64), deviceQuotaBytes, hostQuotaBytes: pick([0, 2 * MiB, 4 * MiB]), mmapQuotaBytes: 0, maxArrays: 0, maxMappedRegions: 0, deviceGuaranteeBytes, maxLeases: 0, admin: false };
      return random() < 0.85 ? [spec] : [];
    });
  };

  const backend = createBackend('host', { deviceCapacityBytes: 2 * CAP, deviceCount: DEVICES.length });
  const memory = new MemoryManager(
    backend,
    givenLimits([CAP, CAP], CAP),
    { poolChunkBytes: 2 * MiB, asyncCopyThresholdBytes: MiB },
    new PhysicalMemoryGuard(0),
  );
  const tenants = new TenantRegistry(tenantsFile());
  const reload = (specs: TenantSpec[]) => {
    tenants.replace(specs);
    memory.setTenantLimits((name) => tenants.limitsOf(name));
    memory.tenants.declare(specs.map((spec) => spec.name));
  };
  memory.setTenantLimits((name) => tenants.limitsOf(name));
  memory.tenants.declare(tenants.list().map((spec) => spec.name));
  const registry = new LeaseRegistry(memory, 3_600_000, random() < 0.5, pino({ level: 'silent' }));
  const leases: Lease[] = [];
  const history: string[] = [];

  const figures = (): Figures => ({
    device: memory.deviceReports().map((report) => report.usedBytes),
    host: memory.hostReport().usedBytes,
    tenants: Object.fromEntries(NAMES.map((name) => [name, memory.tenants.usage(name)])),
  });
  const total = (usage: Usage) => usage.deviceBytes.reduce((sum, bytes) => sum + bytes, 0) + usage.hostBytes;
  const othersUnused = (before: Figures, tenant: string, device: number) =>
    NAMES.filter((name) => name !== tenant).reduce((sum, name) => sum + Math.max(0, before.tenants[name].deviceGuaranteeBytes - before.tenants[name].deviceBytes[device]), 0);

  const checkState = (tenant: string | undefined, before: Figures) => {
    memory.checkInvariants();
    const after = figures();
    for (const report of memory.deviceReports()) expect(report.usedBytes).toBeLessThanOrEqual(report.maxBytes);
    const host = memory.hostReport();
    expect(host.usedBytes).toBeLessThanOrEqual(host.maxBytes);
    expect(host.mirrorBytes + host.hostOnlyBytes).toBe(host.usedBytes);
    for (const name of NAMES) {
      const open = leases.filter((lease) => lease.tenant === name && !lease.closed);
      const usage = after.tenants[name];
      expect(total(usage) - usage.hostBytes).toBe(open.reduce((sum, lease) => sum + lease.deviceBytes(), 0));
      expect(usage.hostBytes).toBe(open.reduce((sum, lease) => sum + lease.hostBytes(), 0));
      // What grew stays within the quota (a quota lowered by reload refuses new allocations only).
      for (const device of DEVICES) {
        if (usage.deviceQuotaBytes > 0 && usage.deviceBytes[device] > before.tenants[name].deviceBytes[device]) expect(usage.deviceBytes[device]).toBeLessThanOrEqual(usage.deviceQuotaBytes);
      }
      if (usage.hostQuotaBytes > 0 && usage.hostBytes > before.tenants[name].hostBytes) expect(usage.hostBytes).toBeLessThanOrEqual(usage.hostQuotaBytes);
    }
    // U + R + Σ others' unused guarantees ≤ C for whatever the step took.
    for (const device of DEVICES) {
      const grew = after.device[device] - before.device[device];
      if (grew > 0 && tenant !== undefined) expect(before.device[device] + grew + othersUnused(before, tenant, device)).toBeLessThanOrEqual(CAP);
    }
  };

  /** A refusal quotes the figures as they were before the step. */
  const checkRefusal = (error: TensormemError, before: Figures, tenant: string) => {
    const facts = error.metadata;
    if (facts.requested_bytes === undefined) return;
    const device = facts.device === undefined ? undefined : Number(facts.device);
    const usage = before.tenants[facts.tenant ?? tenant];
    if (error.reason === 'QUOTA_EXCEEDED') {
      expect(Number(facts.used_bytes)).toBe(device === undefined ? usage.hostBytes : usage.deviceBytes[device]);
      expect(Number(facts.quota_bytes)).toBe(device === undefined ? usage.hostQuotaBytes : usage.deviceQuotaBytes);
    } else if (error.reason === 'DEVICE_OUT_OF_MEMORY' || error.reason === 'HOST_OUT_OF_MEMORY') {
      expect(Number(facts.used_bytes)).toBe(device === undefined ? before.host : before.device[device]);
      if (error.message.includes('unused guarantees')) expect(Number(facts.cap_bytes)).toBe(CAP - othersUnused(before, tenant, device!));
      if (facts.tenant !== undefined) {
        expect(Number(facts.tenant_used_bytes)).toBe(device === undefined ? usage.hostBytes : usage.deviceBytes[device]);
        expect(Number(facts.tenant_quota_bytes)).toBe(device === undefined ? usage.hostQuotaBytes : usage.deviceQuotaBytes);
      }
    }
  };

  const usable = (lease: Lease) => [...lease.arrays.values()].filter((array) => !array.isFreed);

  for (let step = 0; step < steps; step++) {
    const open = leases.filter((lease) => !lease.closed);
    const lease = open.length > 0 ? pick(open) : undefined;
    const before = figures();
    const op = random();
    let what = '';
    try {
      if (lease === undefined || op < 0.08) {
        const tenant = pick(NAMES);
        what = `open ${tenant}`;
        leases.push(registry.open({ tenant, clientName: 'model', ttlSeconds: 0, labels: {} }).lease);
      } else if (op < 0.12) {
        what = `close ${lease.leaseId}`;
        const freed = registry.close(lease, pick<LeaseCloseReason>(['closed', 'expired', 'evicted']));
        expect(freed).toBe(total(before.tenants[lease.tenant]) - total(memory.tenants.usage(lease.tenant)));
      } else if (op < 0.16) {
        const specs = tenantsFile();
        what = `reload ${specs.map((spec) => spec.name).join(',')}`;
        reload(specs);
        if (random() < 0.3) {
          const holders = new Set(registry.list().map((open) => open.tenant));
          memory.tenants.releaseAllIdle((tenant) => holders.has(tenant));
        }
      } else if (op < 0.5) {
        const placement = random() < 0.7 ? 'PLACEMENT_DEVICE' : 'PLACEMENT_HOST_ONLY';
        const device = pick(DEVICES);
        const bytes = pick(SIZES);
        const exportable = random() < 0.2 && lease.workspaces.current === null;
        what = `allocate ${lease.tenant} ${placement} device ${device} ${bytes} exportable ${exportable} in ${lease.workspaces.current?.name ?? '-'}`;
        await lease.allocateArray({ dataType: 'DATA_TYPE_UINT8', shape: [bytes], placement, device, workspaceId: '', zero: random() < 0.3, label: '', requestId: '', exportable });
      } else if (op < 0.62) {
        const array = pick([...lease.arrays.values()]);
        if (array === undefined) continue;
        what = `free ${lease.tenant} ${array.arrayId}`;
        const freed = lease.freeArray(array.arrayId);
        expect(freed).toBe(total(before.tenants[lease.tenant]) - total(memory.tenants.usage(lease.tenant)));
      } else if (op < 0.7) {
        const array = pick(usable(lease));
        if (array === undefined) continue;
        what = `read ${lease.tenant} ${array.arrayId}`;
        await array.read(0, new Uint8Array(Math.min(array.byteSize, 16)));
      } else if (op < 0.76) {
        const array = pick(usable(lease));
        if (array === undefined) continue;
        what = `export ${lease.tenant} ${array.arrayId}`;
        await array.exportHost();
      } else if (op < 0.84) {
        const array = pick(usable(lease));
        if (array === undefined) continue;
        what = `duplicate ${lease.tenant} ${array.arrayId}`;
        await lease.duplicateArray(array.arrayId, pick(['PLACEMENT_UNSPECIFIED', 'PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY']), '', '', random() < 0.5);
      } else if (op < 0.9) {
        const name = pick(['w1', 'w2']);
        what = `enter ${lease.tenant} ${name}`;
        const config = { initialSize: pick([0, 256 * KiB, MiB]), mirroringPolicy: pick(['MIRRORING_POLICY_FULL', 'MIRRORING_POLICY_HOST_ONLY']), device: pick(DEVICES) };
        const workspace = lease.workspaces.create(name, config);
        if (!workspace.scopeActive) lease.workspaces.enter(workspace.workspaceId);
      } else if (op < 0.96) {
        const current = lease.workspaces.current;
        if (!current) continue;
        what = `leave ${lease.tenant} ${current.name}`;
        lease.workspaces.leave(current.workspaceId);
        lease.retireOutOfScope(current);
      } else {
        const workspace = pick(lease.workspaces.list());
        if (workspace === undefined) continue;
        what = `destroy ${lease.tenant} ${workspace.name}`;
        lease.workspaces.destroy(workspace.workspaceId);
        lease.retireOutOfScope(workspace);
      }
      history.push(what);
    } catch (error) {
      if (!(error instanceof TensormemError)) throw new Error(`seed ${seed} step ${step} ${what}: ${(error as Error).stack}\n${history.slice(-10).join('\n')}`);
      history.push(`${what} → ${error.reason}`);
      try {
        checkRefusal(error, before, lease!.tenant);
      } catch (failure) {
        throw new Error(`seed ${seed} step ${step} ${what}: ${error.message}\n${(failure as Error).message}\n${history.slice(-10).join('\n')}`);
      }
    }
    try {
      checkState(lease?.tenant, before);
    } catch (failure) {
      throw new Error(`seed ${seed} step ${step}: ${(failure as Error).message}\n${history.slice(-10).join('\n')}`);
    }
  }
  for (const lease of leases) registry.close(lease, 'closed');
  for (const report of memory.deviceReports()) expect(report.usedBytes).toBe(0);
  expect(memory.hostReport().usedBytes).toBe(0);
  for (const name of NAMES) expect(total(memory.tenants.usage(name))).toBe(0);
  memory.checkInvariants();
  memory.release();
}

describe('tenant accounting, model-based', () => {
  it('keeps caps, quotas, guarantees and counters over random operation sequences (seeded)', async () => {
    for (let seed = 1; seed <= 20; seed++) await run(seed, 180);
  });
});
