/**
 * Not a row of `npm run bench`: how the daemon's bookkeeping scales with its population, in process
 * (no gRPC), at realistic and hostile sizes. Each part prints the best of a few runs, per call or in
 * all; compare a unary gRPC call (about 400 µs on a 2-core machine) and rerun a baseline on the same
 * machine before comparing.
 *
 *     npm run build:ts && node dist/bench/scale-bookkeeping.js [wait] [tenants] [meminfo] [guarantees] [sweep] [workspace]
 *
 * - wait: MemoryWaitQueue, one tenant's N waiters all cancelled (last first, then first first), and
 *   all served in order by one drain;
 * - tenants: TenantRegistry.match with N tenants (OpenLease, GetMemoryInfo, ListLeases, admin calls);
 * - meminfo: memoryInfo (GetMemoryInfo) with N tenants, one tenant's view and every tenant's;
 * - guarantees: a device AllocateArray + FreeArray while N tenants hold guarantees;
 * - sweep: LeaseRegistry's periodic sweep with N leases and none expired, and an OpenLease refused at
 *   a max_leases of N (it closes the tenant's expired leases first);
 * - workspace: a circular workspace with N arrays attached, one EnterWorkspace + LeaveWorkspace, each
 *   followed by Lease.retireOutOfScope as the service does.
 */
import { createHash, randomBytes } from 'node:crypto';
import pino from 'pino';
import { OutOfMemoryError } from '../src/errors';
import { Lease } from '../src/leases/lease';
import { LeaseRegistry } from '../src/leases/lease-registry';
import { TenantRegistry } from '../src/leases/tenant-registry';
import type { TenantSpec } from '../src/leases/tenants-file';
import { givenLimits } from '../src/memory/limits';
import { MemoryManager } from '../src/memory/memory-manager';
import { MemoryWaitQueue, WaitHandle } from '../src/memory/memory-wait-queue';
import { PhysicalMemoryGuard } from '../src/memory/physical-memory-guard';
import { createBackend } from '../src/native/addon';
import { memoryInfo } from '../src/service/memory-service';
import type { ServiceContext } from '../src/service/service-context';
import { MiB } from '../src/units';
import { nowNs } from './lib/stats';

const NO_LIMITS = { deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxArrays: 0, maxMappedRegions: 0 };
const silent = pino({ level: 'silent' });

/** The best of `runs` runs of `reps` calls of `call`, in µs per call. */
function perCall(call: () => void, reps: number, runs = 5): number {
  call();
  let best = Infinity;
  for (let run = 0; run < runs; run++) {
    const start = nowNs();
    for (let rep = 0; rep < reps; rep++) call();
    best = Math.min(best, Number(nowNs() - start) / 1000 / reps);
  }
  return best;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const fmt = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(2)} µs`);

function manager(deviceBytes = 256 * MiB, devices = 1): MemoryManager {
  return new MemoryManager(
    createBackend('host', { deviceCapacityBytes: deviceBytes, deviceCount: devices }),
    givenLimits(Array.from({ length: devices }, () => deviceBytes), deviceBytes, 0),
    { poolChunkBytes: 4 * MiB, asyncCopyThresholdBytes: MiB },
    new PhysicalMemoryGuard(0),
  );
}

async function waitQueue(): Promise<void> {
  const refuse = () => Promise.reject(new OutOfMemoryError({ memory: 'DEVICE', requestedBytes: 1, device: 0, capName: 'cap', capBytes: 10, usedBytes: 10, largestFreeBlockBytes: 0 }));
  console.log('\nMemoryWaitQueue: one tenant, N waiters');
  for (const n of [10, 1000, 10_000, 30_000, 60_000]) {
    const cells: string[] = [];
    for (const order of ['last first', 'first first']) {
      const queue = new MemoryWaitQueue();
      const handles: WaitHandle[] = [];
      const settled: Array<Promise<unknown>> = [];
      for (let i = 0; i <= n; i++) {
        settled.push(queue.run('t', refuse, () => undefined, 3_600_000, (handle) => handles.push(handle)).catch(() => undefined));
        if (i === 0) await turn();
      }
      await turn();
      const start = nowNs();
      for (const handle of order === 'last first' ? handles.reverse() : handles) handle.cancel();
      cells.push(`cancelled ${order} ${fmt(Number(nowNs() - start) / 1000 / n)} each`);
      await Promise.all(settled);
    }
    const queue = new MemoryWaitQueue();
    let fits = false;
    const attempt = () => (fits ? Promise.resolve(1) : refuse());
    const settled: Array<Promise<unknown>> = [queue.run('t', attempt, () => undefined, 3_600_000).catch(() => undefined)];
    await turn();
    for (let i = 0; i < n; i++) settled.push(queue.run('t', attempt, () => undefined, 3_600_000));
    await turn();
    fits = true;
    const start = nowNs();
    queue.notifyFreed();
    await Promise.all(settled);
    const servedUs = Number(nowNs() - start) / 1000;
    console.log(`  waiters ${n}: ${cells.join('; ')}; all served ${fmt(servedUs)} (${fmt(servedUs / n)} each)`);
  }
}

function tenants(): void {
  console.log('\nTenantRegistry.match: N tenants');
  for (const n of [10, 1000, 10_000, 100_000]) {
    const tokens = Array.from({ length: n }, () => randomBytes(32).toString('base64url'));
    const specs: TenantSpec[] = tokens.map((token, i) => ({ ...NO_LIMITS, name: `t${i}`, tokenSha256: createHash('sha256').update(token).digest('hex'), maxLeases: 0, admin: false }));
    const registry = new TenantRegistry(specs);
    const reps = Math.max(20, Math.min(20_000, Math.floor(2e6 / n)));
    console.log(`  tenants ${n}: last tenant's token ${fmt(perCall(() => registry.match(tokens[n - 1]), reps))}, unknown token ${fmt(perCall(() => registry.match('unknown'), reps))}`);
  }
}

function memInfo(): void {
  console.log('\nmemoryInfo (GetMemoryInfo): N tenants with a lease each');
  for (const n of [10, 1000, 10_000]) {
    const memory = manager();
    const registry = new LeaseRegistry(memory, 60_000, false, silent);
    for (let i = 0; i < n; i++) registry.open({ tenant: `t${i}`, clientName: 'c', ttlSeconds: 3600, labels: {} });
    const context = { memory, registry, tenants: new TenantRegistry(undefined) } as unknown as ServiceContext;
    const reps = Math.max(5, Math.min(2000, Math.floor(2e5 / n)));
    console.log(`  tenants ${n}: one tenant's view ${fmt(perCall(() => memoryInfo(context, { tenant: 't1' }), reps))}, every tenant's ${fmt(perCall(() => memoryInfo(context), reps))}`);
    registry.closeAll();
  }
}

async function guarantees(): Promise<void> {
  console.log('\nDevice AllocateArray + FreeArray of a tenant without a guarantee, N tenants holding one (1 KiB each, unused)');
  const params = { dataType: 'DATA_TYPE_UINT8', shape: [256], placement: 'PLACEMENT_DEVICE', device: 0, workspaceId: '', zero: false, label: '', requestId: '' } as const;
  for (const n of [0, 10, 1000, 10_000]) {
    const memory = manager();
    memory.setTenantLimits((name) => ({ ...NO_LIMITS, deviceGuaranteeBytes: name.startsWith('g') ? 1024 : 0 }));
    memory.tenants.declare(Array.from({ length: n }, (_, i) => `g${i}`));
    const lease = new Lease('lease-bench', 'hash', 'tenant', 'client', {}, 3_600_000, memory, false);
    const reps = 2000;
    let best = Infinity;
    for (let run = 0; run < 5; run++) {
      const start = nowNs();
      for (let rep = 0; rep < reps; rep++) lease.freeArray((await lease.allocateArray({ ...params, shape: [256] })).arrayId);
      best = Math.min(best, Number(nowNs() - start) / 1000 / reps);
    }
    console.log(`  guaranteed tenants ${n}: ${fmt(best)} a pair`);
    lease.close();
  }
}

async function sweep(): Promise<void> {
  console.log('\nLeaseRegistry: N leases of one tenant, none expired');
  for (const n of [10, 1000, 10_000, 100_000]) {
    const registry = new LeaseRegistry(manager(), 60_000, false, silent);
    for (let i = 0; i < n; i++) registry.open({ tenant: 'hog', clientName: 'c', ttlSeconds: 3600, labels: {} });
    const sweepInTurns = (registry as unknown as { sweepInTurns(): Promise<void> }).sweepInTurns.bind(registry);
    let tick = Infinity;
    for (let run = 0; run < 7; run++) {
      const start = nowNs();
      await sweepInTurns();
      tick = Math.min(tick, Number(nowNs() - start) / 1000);
    }
    const refused = perCall(
      () => {
        try {
          registry.open({ tenant: 'hog', clientName: 'c', ttlSeconds: 3600, labels: {} }, n);
        } catch {
          // refused at max_leases, as measured
        }
      },
      Math.max(5, Math.min(2000, Math.floor(1e6 / n))),
    );
    console.log(`  leases ${n}: sweep tick ${fmt(tick)}; OpenLease refused at max_leases ${n}: ${fmt(refused)}`);
    registry.closeAll();
  }
}

async function workspace(): Promise<void> {
  console.log('\nCircular workspace (STRICT, 4 MiB ring): N arrays of 16 bytes attached, none overwritten; one Enter + Leave');
  for (const n of [10, 1000, 10_000, 100_000]) {
    const lease = new Lease('lease-bench', 'hash', 'tenant', 'client', {}, 3_600_000, manager(), false);
    const ws = lease.workspaces.create('ws', { initialSize: 4 * MiB, resetPolicy: 'ENDOFBUFFER_REACHED', learningPolicy: 'NONE', allocationPolicy: 'STRICT' });
    lease.workspaces.enter(ws.workspaceId);
    for (let i = 0; i < n; i++) {
      await lease.allocateArray({ dataType: 'DATA_TYPE_UINT8', shape: [16], placement: 'PLACEMENT_DEVICE', device: 0, workspaceId: ws.workspaceId, zero: false, label: '', requestId: '' });
    }
    lease.workspaces.leave(ws.workspaceId);
    const withRetire = perCall(() => {
      lease.workspaces.enter(ws.workspaceId);
      lease.retireOutOfScope(ws);
      lease.workspaces.leave(ws.workspaceId);
      lease.retireOutOfScope(ws);
    }, 1, 7);
    const bare = perCall(() => lease.workspaces.leave(lease.workspaces.enter(ws.workspaceId).workspaceId), 1, 7);
    console.log(`  attached ${lease.arrays.size}: with retireOutOfScope ${fmt(withRetire)}, without ${fmt(bare)}`);
    lease.close();
  }
}

const parts: Record<string, () => void | Promise<void>> = { wait: waitQueue, tenants, meminfo: memInfo, guarantees, sweep, workspace };

async function main(): Promise<void> {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((name) => !(name in parts));
  if (unknown.length > 0) throw new Error(`unknown part ${unknown.join(', ')}: expected some of ${Object.keys(parts).join(', ')}`);
  for (const [name, run] of Object.entries(parts)) if (asked.length === 0 || asked.includes(name)) await run();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
