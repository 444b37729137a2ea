/**
 * Model-based check of leases and tenant limits, in-process through the LeaseService, ArrayService and
 * MemoryService handlers of a daemon started here (host backend, a tenants file reloaded with
 * Daemon.reloadTenants as SIGHUP does, the clock driven by a fake Date, the sweep run by hand):
 * random sequences of OpenLease, AllocateArray, FreeArray, RenewLease, KeepAlive (messages with and
 * without release_on_disconnect and no_renew, and the stream dropping), CloseLease, EvictLease (one lease, a
 * tenant), the clock passing TTLs and the sweep, tenants-file reloads (quotas, guarantees, max_leases
 * and max_arrays changed, tenants dropped and brought back), ListLeases and GetMemoryInfo, against a
 * reference model written from the README ("Operating a shared GPU host") and
 * proto/tensormem/v1/lease.proto, not from the implementation. Per tenant the model knows its limits
 * (a dropped tenant's open leases keep its last quotas, not its guarantee), per lease its state (open,
 * or ended: closed, expired, evicted, disconnected), TTL, expiry and arrays; after each step the exact
 * status code, reason and close_reason of the answer, and the GetMemoryInfo and ListLeases figures,
 * must be the model's. Bursts of 2 to 4 calls issued in the same tick on overlapping leases and
 * tenants must answer, and leave the daemon, as some order of them one at a time would.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/config';
import { Daemon, startDaemon } from '../../src/daemon';
import type { LeaseRegistry } from '../../src/leases/lease-registry';
import { errorInfoOf } from '../../src/rpc-status';
import { ArrayService } from '../../src/service/array-service';
import { STATUS_BY_KIND } from '../../src/service/errors';
import { LeaseService } from '../../src/service/lease-service';
import { MemoryService } from '../../src/service/memory-service';
import { KiB } from '../../src/units';
import { rng } from '../helpers/rng';
import { permutations } from '../helpers/permutations';
import { type Handler, type HandlerFailure, bearerMetadata, serviceHandlers, unaryCallOf } from '../helpers/service-handlers';
import { tokenSha256 } from '../helpers/tenants-file';
import { totalsOverSeeds } from '../helpers/seeded-totals';

const DEVICE_CAP = 96 * KiB;
const HOST_CAP = 40 * KiB;
const DEFAULT_TTL_MS = 4000;
const MAX_TTL_SECONDS = 7 * 24 * 3600;
const NAMES = ['a', 'b', 'c'];
const SIZES = [100, 1000, 4096, 8192, 12000, 20000, 24576];
const align = (bytes: number) => Math.ceil(Math.max(bytes, 1) / 256) * 256;
const tokenOf = (tenant: string) => `tok-${tenant}`;
const CODE_NAMES = Object.fromEntries(Object.entries(STATUS_BY_KIND).map(([name, code]) => [code, name]));

type Reason = 'closed' | 'expired' | 'evicted' | 'disconnected';

interface Spec {
  name: string;
  deviceQuota: number;
  hostQuota: number;
  guarantee: number;
  maxLeases: number;
  maxArrays: number;
}
interface Limits {
  deviceQuota: number;
  hostQuota: number;
  guarantee: number;
  maxLeases: number;
  maxArrays: number;
}
const NO_LIMITS: Limits = { deviceQuota: 0, hostQuota: 0, guarantee: 0, maxLeases: 0, maxArrays: 0 };

interface MArray {
  id: string;
  bytes: number;
  device: boolean;
  /**
   * Bursts: an allocation under way (its memory taken, being zeroed) when its lease ended, which then
   * answered LEASE_EXPIRED with that reason (README: "so does any other call of that lease still under
   * way"). Its bytes count for its tenant until the lease ends, not in the lease's own figures.
   */
  inflight?: Reason;
}
interface MLease {
  id: string;
  token: string;
  tenant: string;
  ttlMs: number;
  expiresAt: number;
  createdAt: number;
  serial: number;
  /** open, or why it ended. */
  state: 'open' | Reason;
  arrays: MArray[];
  /** Its KeepAlive stream: release_on_disconnect as its last message said; ended: the daemon ended it (an error). */
  stream?: { rod: boolean; ended: boolean };
}
interface Model {
  now: number;
  file: Spec[];
  /** Tenants a reload dropped while they had leases: their last limits (max_leases among them, as their row shows), guarantee 0. */
  dropped: Map<string, Limits>;
  leases: MLease[];
  serial: number;
  /** An order a burst cannot have run in (an allocation under way ended by another reason than it answered). */
  invalid?: boolean;
}

const cloneModel = (m: Model): Model => ({
  now: m.now,
  file: m.file.map((spec) => ({ ...spec })),
  dropped: new Map([...m.dropped].map(([name, limits]) => [name, { ...limits }])),
  leases: m.leases.map((lease) => ({ ...lease, arrays: [...lease.arrays], stream: lease.stream && { ...lease.stream } })),
  serial: m.serial,
});

// ---- what the model says, from the README and lease.proto ----

const specOf = (m: Model, tenant: string) => m.file.find((spec) => spec.name === tenant);
/** README: a reload keeps open leases; a dropped tenant's leases keep the quotas it last had (no guarantee). */
const limitsOf = (m: Model, tenant: string): Limits => specOf(m, tenant) ?? m.dropped.get(tenant) ?? NO_LIMITS;
/** Leases the daemon still holds: open, past their TTL or not (the sweep frees an expired one). */
const held = (m: Model, tenant?: string) => m.leases.filter((lease) => lease.state === 'open' && (tenant === undefined || lease.tenant === tenant));
const arraysOf = (m: Model, tenant?: string) => held(m, tenant).flatMap((lease) => lease.arrays);
const deviceUsed = (m: Model, tenant?: string) => arraysOf(m, tenant).reduce((sum, a) => sum + (a.device ? a.bytes : 0), 0);
const hostUsed = (m: Model, tenant?: string) => arraysOf(m, tenant).reduce((sum, a) => sum + (a.device ? 0 : a.bytes), 0);
const leaseBytes = (lease: MLease) => lease.arrays.reduce((sum, a) => sum + (a.inflight ? 0 : a.bytes), 0);

/** README "Reclamation": the lease ends; everything it holds is freed. */
function endLease(lease: MLease, reason: Reason, m?: Model): number {
  if (m && lease.arrays.some((a) => a.inflight !== undefined && a.inflight !== reason)) m.invalid = true;
  const freed = leaseBytes(lease);
  lease.state = reason;
  lease.arrays = [];
  return freed;
}

function sweepModel(m: Model, tenant?: string): number {
  let count = 0;
  for (const lease of held(m, tenant)) {
    if (m.now >= lease.expiresAt) {
      endLease(lease, 'expired', m);
      count++;
    }
  }
  return count;
}

interface Answer {
  /** What is compared: the status code, reason and close_reason of a refusal (with its figures), or what a reply says. */
  text: string;
  leaseId?: string;
  token?: string;
  arrayId?: string;
  meta?: Record<string, string>;
}
const error = (code: string, reason: string, extra = ''): Answer => ({ text: `${code} ${reason}${extra}` });
const ok = (value: unknown): Answer => ({ text: `OK ${JSON.stringify(value)}` });

/** README "An ended lease's token": UNAUTHENTICATED / LEASE_EXPIRED with close_reason; past its TTL it has expired already. */
function tokenRefusal(m: Model, lease: MLease): Answer | undefined {
  if (lease.state !== 'open') return error('UNAUTHENTICATED', 'LEASE_EXPIRED', ` ${lease.state}`);
  if (m.now >= lease.expiresAt) return error('UNAUTHENTICATED', 'LEASE_EXPIRED', ' expired');
  return undefined;
}

type Caller = { kind: 'admin' } | { kind: 'tenant'; tenant: string } | { kind: 'lease'; lease: number } | { kind: 'unknown' };

type Op =
  | { kind: 'open'; tenant: string; token: 'own' | 'unknown' | 'other-field'; ttl: number }
  | { kind: 'allocate'; lease: number; bytes: number; device: boolean }
  | { kind: 'free'; lease: number; arrayId: string }
  | { kind: 'renew'; lease: number; leaseId: 'empty' | 'own' | 'other'; ttl: number }
  | { kind: 'close'; lease: number; leaseId: 'empty' | 'own' | 'other' }
  | { kind: 'kaSend'; lease: number; rod: boolean; noRenew: boolean }
  | { kind: 'kaDrop'; lease: number }
  | { kind: 'evictLease'; caller: Caller; lease: number | 'bogus'; withTenant: boolean }
  | { kind: 'evictTenant'; caller: Caller; tenant: string }
  | { kind: 'advance'; ms: number; sweep: 'none' | 'sweep' | 'turns' }
  | { kind: 'reload'; specs: Spec[] }
  | { kind: 'list'; caller: Caller; tenant: string; pageSize: number }
  | { kind: 'info'; caller: Caller };

const describeOp = (op: Op) => JSON.stringify(op, (key, value) => (key === 'specs' ? (value as Spec[]).map((s) => `${s.name}:q${s.deviceQuota / KiB}/h${s.hostQuota / KiB}/g${s.guarantee / KiB}/l${s.maxLeases}/n${s.maxArrays}`).join(' ') : value));

/** What a caller's token is, for the calls that take a tenant or a lease token (README "Auth"). */
function callerRefusal(m: Model, caller: Caller): Answer | undefined {
  if (caller.kind === 'unknown') return error('UNAUTHENTICATED', 'UNAUTHENTICATED');
  if (caller.kind === 'tenant' && !specOf(m, caller.tenant)) return error('UNAUTHENTICATED', 'UNAUTHENTICATED');
  if (caller.kind === 'lease') return tokenRefusal(m, m.leases[caller.lease]);
  return undefined;
}

/**
 * README "Auth" for the admin calls: a tenant's own token, or the token of one of its open unexpired
 * leases, authenticates the tenant but is not an admin's (PERMISSION_DENIED); any other token UNAUTHENTICATED.
 */
function adminRefusal(m: Model, caller: Caller): Answer | undefined {
  if (caller.kind === 'admin') return undefined;
  if (caller.kind === 'tenant' && specOf(m, caller.tenant)) return error('PERMISSION_DENIED', 'PERMISSION_DENIED');
  const lease = caller.kind === 'lease' ? m.leases[caller.lease] : undefined;
  if (lease && lease.state === 'open' && m.now < lease.expiresAt) return error('PERMISSION_DENIED', 'PERMISSION_DENIED');
  return error('UNAUTHENTICATED', 'UNAUTHENTICATED');
}

const summary = (m: Model, lease: MLease) => ({
  id: lease.id,
  tenant: lease.tenant,
  arrays: lease.arrays.filter((a) => !a.inflight).length,
  device: lease.arrays.reduce((sum, a) => sum + (a.device && !a.inflight ? a.bytes : 0), 0),
  host: lease.arrays.reduce((sum, a) => sum + (a.device || a.inflight ? 0 : a.bytes), 0),
  ttl: Math.max(1, Math.round(lease.ttlMs / 1000)),
  expires: lease.expiresAt,
  age: Math.floor((m.now - lease.createdAt) / 1000),
});

function tenantRow(m: Model, tenant: string) {
  const limits = limitsOf(m, tenant);
  const device = deviceUsed(m, tenant);
  const host = hostUsed(m, tenant);
  return {
    tenant,
    used: device + host,
    device,
    host,
    leases: held(m, tenant).length,
    arrays: arraysOf(m, tenant).length,
    quota: limits.deviceQuota,
    hostQuota: limits.hostQuota,
    guarantee: limits.guarantee,
    maxLeases: limits.maxLeases,
    maxArrays: limits.maxArrays,
  };
}

/** The tenants GetMemoryInfo shows: the file's (the admin ops among them), and any other still holding a lease. */
const rowNames = (m: Model) => [...new Set(['ops', ...m.file.map((spec) => spec.name), ...held(m).map((lease) => lease.tenant)])].sort();

function applyModel(m: Model, op: Op, real: Answer, counts: { fragmentation: number }): Answer {
  switch (op.kind) {
    case 'open': {
      // lease.proto OpenLease: the tenant's token; a tenant field naming another tenant is refused.
      const spec = specOf(m, op.tenant);
      if (op.token === 'unknown' || !spec || op.token === 'other-field') return error('UNAUTHENTICATED', 'UNAUTHENTICATED');
      if (op.ttl > MAX_TTL_SECONDS) return error('INVALID_ARGUMENT', 'INVALID_ARGUMENT');
      if (spec.maxLeases > 0) {
        // README "Reclamation": OpenLease closes the tenant's expired leases before it counts.
        if (held(m, op.tenant).length >= spec.maxLeases) sweepModel(m, op.tenant);
        const open = held(m, op.tenant).length;
        if (open >= spec.maxLeases) return error('RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', ` leases ${open} max_leases ${spec.maxLeases}`);
      }
      const ttlMs = op.ttl === 0 ? DEFAULT_TTL_MS : op.ttl * 1000;
      if (real.leaseId === undefined) return ok({ tenant: op.tenant, ttl: Math.max(1, Math.round(ttlMs / 1000)), expires: m.now + ttlMs });
      m.leases.push({ id: real.leaseId, token: real.token!, tenant: op.tenant, ttlMs, expiresAt: m.now + ttlMs, createdAt: m.now, serial: ++m.serial, state: 'open', arrays: [] });
      return ok({ tenant: op.tenant, ttl: Math.max(1, Math.round(ttlMs / 1000)), expires: m.now + ttlMs });
    }
    case 'allocate': {
      const lease = m.leases[op.lease];
      const refused = tokenRefusal(m, lease);
      if (refused) return refused;
      const limits = limitsOf(m, lease.tenant);
      const aligned = align(op.bytes);
      // README: max_arrays, live arrays of all its leases together.
      const arrays = arraysOf(m, lease.tenant).length;
      if (limits.maxArrays > 0 && arrays >= limits.maxArrays) return error('RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', ` arrays ${arrays} max_arrays ${limits.maxArrays}`);
      const quota = op.device ? limits.deviceQuota : limits.hostQuota;
      const used = op.device ? deviceUsed(m, lease.tenant) : hostUsed(m, lease.tenant);
      // README "Hard quotas": QUOTA_EXCEEDED with the quota, the used bytes and the request.
      if (quota > 0 && used + aligned > quota) return error('RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', ` quota ${quota} used ${used} requested ${op.bytes}`);
      if (op.device) {
        // README "Guarantees": U + R + Σ others max(0, guarantee − used) ≤ C.
        const reserved = m.file.filter((spec) => spec.name !== lease.tenant).reduce((sum, spec) => sum + Math.max(0, spec.guarantee - deviceUsed(m, spec.name)), 0);
        if (deviceUsed(m) + aligned + reserved > DEVICE_CAP) return error('RESOURCE_EXHAUSTED', 'DEVICE_OUT_OF_MEMORY', ` cap ${DEVICE_CAP - reserved} used ${deviceUsed(m)}`);
      } else if (hostUsed(m) + aligned > HOST_CAP) return error('RESOURCE_EXHAUSTED', 'HOST_OUT_OF_MEMORY', ` cap ${HOST_CAP} used ${hostUsed(m)}`);
      // Guarantees count bytes, not contiguous space: a pool whose free bytes are in pieces refuses,
      // naming its largest free block, which is then smaller than the request (README "Guarantees").
      if (real.text.includes('_OUT_OF_MEMORY') && Number(real.meta?.largest_free_block_bytes) < aligned) {
        counts.fragmentation++;
        return real;
      }
      if (real.arrayId !== undefined) lease.arrays.push({ id: real.arrayId, bytes: aligned, device: op.device });
      // Bursts: taken, then ended with its lease while being zeroed (valid only if the lease ends so later in the order).
      const ended = /^UNAUTHENTICATED LEASE_EXPIRED (\w+)$/.exec(real.text);
      if (ended) {
        lease.arrays.push({ id: `inflight-${lease.arrays.length}`, bytes: aligned, device: op.device, inflight: ended[1] as Reason });
        return real;
      }
      return ok({ bytes: op.bytes, held: aligned });
    }
    case 'free': {
      const lease = m.leases[op.lease];
      const refused = tokenRefusal(m, lease);
      if (refused) return refused;
      const index = lease.arrays.findIndex((a) => a.id === op.arrayId);
      if (index < 0) return error('NOT_FOUND', 'ARRAY_NOT_FOUND');
      const [array] = lease.arrays.splice(index, 1);
      return ok({ freed: array.bytes });
    }
    case 'renew': {
      const lease = m.leases[op.lease];
      const refused = tokenRefusal(m, lease);
      if (refused) return refused;
      if (op.leaseId === 'other') return error('NOT_FOUND', 'LEASE_NOT_FOUND');
      if (op.ttl > MAX_TTL_SECONDS) return error('INVALID_ARGUMENT', 'INVALID_ARGUMENT');
      // lease.proto RenewLease: extends the TTL from now; 0 keeps the lease's TTL.
      if (op.ttl > 0) lease.ttlMs = op.ttl * 1000;
      lease.expiresAt = m.now + lease.ttlMs;
      return ok({ ttl: Math.max(1, Math.round(lease.ttlMs / 1000)), expires: lease.expiresAt });
    }
    case 'close': {
      const lease = m.leases[op.lease];
      const refused = tokenRefusal(m, lease);
      if (refused) return refused;
      if (op.leaseId === 'other') return error('NOT_FOUND', 'LEASE_NOT_FOUND');
      return ok({ freed: endLease(lease, 'closed', m) });
    }
    case 'kaSend': {
      const lease = m.leases[op.lease];
      const stream = (lease.stream ??= { rod: false, ended: false });
      if (stream.ended) return ok('stream ended');
      const refused = tokenRefusal(m, lease);
      if (refused) {
        stream.ended = true;
        return refused;
      }
      // lease.proto KeepAlive: each message renews (but one with no_renew) and says release_on_disconnect anew.
      if (!op.noRenew) lease.expiresAt = m.now + lease.ttlMs;
      stream.rod = op.rod;
      return ok({ ttl: Math.max(1, Math.round(lease.ttlMs / 1000)), expires: lease.expiresAt });
    }
    case 'kaDrop': {
      const lease = m.leases[op.lease];
      const stream = lease.stream;
      lease.stream = undefined;
      // lease.proto KeepAlive: a release_on_disconnect lease is closed as soon as the stream drops.
      if (stream && !stream.ended && stream.rod && lease.state === 'open') endLease(lease, m.now >= lease.expiresAt ? 'expired' : 'disconnected', m);
      return ok('dropped');
    }
    case 'evictLease': {
      // lease.proto EvictLease: an admin tenant token; another tenant's token PERMISSION_DENIED.
      const refused = adminRefusal(m, op.caller);
      if (refused) return refused;
      if (op.withTenant) return error('INVALID_ARGUMENT', 'INVALID_ARGUMENT');
      const lease = op.lease === 'bogus' ? undefined : m.leases[op.lease];
      if (!lease || lease.state !== 'open') return error('NOT_FOUND', 'LEASE_NOT_FOUND');
      return ok({ freed: endLease(lease, m.now >= lease.expiresAt ? 'expired' : 'evicted', m), evicted: 1 });
    }
    case 'evictTenant': {
      const refused = adminRefusal(m, op.caller);
      if (refused) return refused;
      const leases = held(m, op.tenant);
      // NOT_FOUND for a name with no open lease that the tenants file does not hold either.
      if (leases.length === 0 && !specOf(m, op.tenant)) return error('NOT_FOUND', 'TENANT_NOT_FOUND');
      let freed = 0;
      for (const lease of leases) freed += endLease(lease, m.now >= lease.expiresAt ? 'expired' : 'evicted', m);
      return ok({ freed, evicted: leases.length });
    }
    case 'advance':
      m.now += op.ms;
      if (op.sweep !== 'none') sweepModel(m);
      return ok('advanced');
    case 'reload': {
      // README: "Edit the file and send SIGHUP to apply it; open leases are kept".
      const kept = new Set(op.specs.map((spec) => spec.name));
      for (const spec of m.file) if (!kept.has(spec.name)) m.dropped.set(spec.name, { deviceQuota: spec.deviceQuota, hostQuota: spec.hostQuota, guarantee: 0, maxLeases: spec.maxLeases, maxArrays: spec.maxArrays });
      for (const name of kept) m.dropped.delete(name);
      m.file = op.specs.map((spec) => ({ ...spec }));
      for (const name of [...m.dropped.keys()]) if (held(m, name).length === 0) m.dropped.delete(name);
      return ok('reloaded');
    }
    case 'list': {
      const refused = callerRefusal(m, op.caller);
      if (refused) return refused;
      if (op.caller.kind === 'lease') {
        const lease = m.leases[op.caller.lease];
        if (op.tenant !== '' && op.tenant !== lease.tenant) return error('PERMISSION_DENIED', 'PERMISSION_DENIED');
        return ok({ leases: [summary(m, lease)], total: 1 });
      }
      if (op.caller.kind === 'tenant' && op.tenant !== '' && op.tenant !== op.caller.tenant) return error('PERMISSION_DENIED', 'PERMISSION_DENIED');
      const tenant = op.caller.kind === 'tenant' ? op.caller.tenant : op.tenant === '' ? undefined : op.tenant;
      const leases = held(m, tenant).sort((x, y) => x.serial - y.serial);
      return ok({ leases: leases.map((lease) => summary(m, lease)), total: leases.length });
    }
    case 'info': {
      const refused = callerRefusal(m, op.caller);
      if (refused) return refused;
      const own = op.caller.kind === 'tenant' ? op.caller.tenant : op.caller.kind === 'lease' ? m.leases[op.caller.lease].tenant : undefined;
      const names = rowNames(m).filter((name) => own === undefined || name === own);
      // A lease's tenant shows its row even when the file no longer names it.
      if (own !== undefined && !names.includes(own)) names.push(own);
      return ok({ device: deviceUsed(m), host: hostUsed(m), rows: names.map((name) => tenantRow(m, name)) });
    }
  }
}

// ---- the daemon, driven through its handlers ----

interface Harness {
  daemon: Daemon;
  registry: LeaseRegistry;
  handlers: Record<string, Handler>;
  dir: string;
  write(specs: Spec[]): void;
}

function fileText(specs: Spec[]): string {
  const lines = ['tenants:', '  - name: ops', `    token_sha256: "${tokenSha256(tokenOf('ops'))}"`, '    admin: true'];
  for (const spec of specs) {
    lines.push(`  - name: ${spec.name}`, `    token_sha256: "${tokenSha256(tokenOf(spec.name))}"`);
    const quota = [spec.deviceQuota ? `device: ${spec.deviceQuota}` : '', spec.hostQuota ? `host: ${spec.hostQuota}` : ''].filter(Boolean);
    if (quota.length > 0) lines.push(`    quota: { ${quota.join(', ')} }`);
    if (spec.guarantee) lines.push(`    guarantee: { device: ${spec.guarantee} }`);
    if (spec.maxLeases) lines.push(`    max_leases: ${spec.maxLeases}`);
    if (spec.maxArrays) lines.push(`    max_arrays: ${spec.maxArrays}`);
  }
  return `${lines.join('\n')}\n`;
}

async function startHarness(specs: Spec[], startMs: number): Promise<Harness> {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(startMs);
  const dir = mkdtempSync(join(tmpdir(), 'tensormem-lease-model-'));
  chmodSync(dir, 0o700);
  const path = join(dir, 'tenants.yaml');
  const write = (next: Spec[]) => writeFileSync(path, fileText(next), { mode: 0o600 });
  write(specs);
  const config = loadConfig(
    ['--backend', 'host', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--data-listen', 'off', '--emulated-device', '1M', '--allow-small-device', '--maxbytes', String(DEVICE_CAP), '--host-maxbytes', String(HOST_CAP), '--pool-chunk', '32K', '--async-copy-threshold', '1', '--reclaim-interval', '1h', '--lease-ttl', `${DEFAULT_TTL_MS}ms`, '--mirror', 'lazy', '--tenants', path],
    {},
  );
  const daemon = await startDaemon(config, pino({ level: 'silent' }));
  daemon.context.registry.stopSweeping();
  const handlers = serviceHandlers(daemon.context, [LeaseService, ArrayService, MemoryService]);
  return { daemon, registry: daemon.context.registry, handlers, dir, write };
}

async function stopHarness(h: Harness): Promise<void> {
  vi.useRealTimers();
  await h.daemon.shutdown('test');
  rmSync(h.dir, { recursive: true, force: true });
}

function answerOfError(failure: HandlerFailure): Answer {
  const info = errorInfoOf(failure.metadata);
  const meta = info?.metadata ?? {};
  const code = CODE_NAMES[failure.code] ?? String(failure.code);
  let extra = meta.close_reason ? ` ${meta.close_reason}` : '';
  if (info?.reason === 'QUOTA_EXCEEDED') {
    extra = meta.max_leases !== undefined ? ` leases ${meta.leases} max_leases ${meta.max_leases}` : meta.max_arrays !== undefined ? ` arrays ${meta.arrays} max_arrays ${meta.max_arrays}` : ` quota ${meta.quota_bytes} used ${meta.used_bytes} requested ${meta.requested_bytes}`;
  }
  if (info?.reason === 'DEVICE_OUT_OF_MEMORY' || info?.reason === 'HOST_OUT_OF_MEMORY') extra = ` cap ${meta.cap_bytes} used ${meta.used_bytes}`;
  return { text: `${code} ${info?.reason ?? '?'}${extra}`, meta: { ...meta, details: failure.details } };
}

/** One unary call through its handler; a handler that answers without waiting has answered when this returns. */
function unaryCall(h: Harness, name: string, request: object, token: string | undefined): Promise<{ error?: Answer; response?: Record<string, any> }> {
  return new Promise((resolve) => {
    const call = unaryCallOf(request, token);
    h.handlers[name](call, (failure, response) => resolve(failure ? { error: answerOfError(failure) } : { response: response as Record<string, any> }));
  });
}

const msOf = (ts: { seconds: number; nanos: number }) => Number(ts.seconds) * 1000 + Math.round(ts.nanos / 1e6);

/** A KeepAlive call's stream, driven by hand. */
class FakeStream extends EventEmitter {
  cancelled = false;
  readonly written: Array<Record<string, any>> = [];
  readonly errors: Array<{ code: number; details: string; metadata: Metadata }> = [];
  constructor(readonly metadata: Metadata) {
    super();
    this.on('error', (failure) => this.errors.push(failure));
  }
  write(message: Record<string, any>) {
    this.written.push(message);
    return true;
  }
  end() {}
}

interface RealLease {
  stream?: FakeStream;
}

async function execute(h: Harness, m: Model, real: RealLease[], op: Op): Promise<Answer> {
  const leaseToken = (index: number) => m.leases[index].token;
  const tokenFor = (caller: Caller) => (caller.kind === 'admin' ? tokenOf('ops') : caller.kind === 'tenant' ? tokenOf(caller.tenant) : caller.kind === 'lease' ? leaseToken(caller.lease) : 'tok-nobody');
  const answer = async (name: string, request: object, token: string | undefined, shape: (response: Record<string, any>) => Answer) => {
    const result = await unaryCall(h, name, request, token);
    return result.error ?? shape(result.response!);
  };
  switch (op.kind) {
    case 'open':
      return answer(
        'OpenLease',
        { tenant: op.token === 'other-field' ? NAMES.find((name) => name !== op.tenant)! : '', client_name: 'model', ttl_seconds: op.ttl, labels: {} },
        op.token === 'unknown' ? 'tok-nobody' : tokenOf(op.tenant),
        (r) => ({ ...ok({ tenant: r.lease.tenant, ttl: r.lease.ttl_seconds, expires: msOf(r.lease.expires_at) }), leaseId: r.lease.lease_id, token: r.lease.token }),
      );
    case 'allocate':
      return answer(
        'AllocateArray',
        { lease_id: '', data_type: 'DATA_TYPE_UINT8', shape: [op.bytes], placement: op.device ? 'PLACEMENT_DEVICE' : 'PLACEMENT_HOST_ONLY', device: 0, workspace_id: '', zero: false, label: '', request_id: '', wait_for_memory: false, exportable: false },
        leaseToken(op.lease),
        (r) => ({ ...ok({ bytes: Number(r.array.byte_size), held: Number(r.array.held_bytes) }), arrayId: r.array.array_id }),
      );
    case 'free':
      return answer('FreeArray', { array_id: op.arrayId }, leaseToken(op.lease), (r) => ok({ freed: Number(r.freed_bytes) }));
    case 'renew':
    case 'close': {
      const lease = m.leases[op.lease];
      const other = m.leases.find((l) => l !== lease)?.id ?? 'lease-000';
      const leaseId = op.leaseId === 'empty' ? '' : op.leaseId === 'own' ? lease.id : other;
      if (op.kind === 'renew') return answer('RenewLease', { lease_id: leaseId, ttl_seconds: op.ttl }, lease.token, (r) => ok({ ttl: r.lease.ttl_seconds, expires: msOf(r.lease.expires_at) }));
      return answer('CloseLease', { lease_id: leaseId }, lease.token, (r) => ok({ freed: Number(r.freed_bytes) }));
    }
    case 'kaSend': {
      const slot = (real[op.lease] ??= {});
      if (!slot.stream) {
        slot.stream = new FakeStream(bearerMetadata(leaseToken(op.lease)));
        h.handlers.KeepAlive(slot.stream, () => undefined);
      }
      const stream = slot.stream;
      if (stream.errors.length > 0) return ok('stream ended');
      const written = stream.written.length;
      stream.emit('data', { lease_id: '', release_on_disconnect: op.rod, no_renew: op.noRenew });
      if (stream.errors.length > 0) return answerOfError(stream.errors[0]);
      const reply = stream.written[written];
      return ok({ ttl: reply.ttl_seconds, expires: msOf(reply.expires_at) });
    }
    case 'kaDrop': {
      const stream = real[op.lease]?.stream;
      if (stream) {
        real[op.lease].stream = undefined;
        stream.cancelled = true;
        stream.emit('cancelled');
      }
      return ok('dropped');
    }
    case 'evictLease': {
      const leaseId = op.lease === 'bogus' ? 'lease-000000000000000000000000' : m.leases[op.lease].id;
      return answer('EvictLease', { lease_id: leaseId, tenant: op.withTenant ? 'a' : '' }, tokenFor(op.caller), (r) => ok({ freed: Number(r.freed_bytes), evicted: r.evicted_leases }));
    }
    case 'evictTenant':
      return answer('EvictLease', { lease_id: '', tenant: op.tenant }, tokenFor(op.caller), (r) => ok({ freed: Number(r.freed_bytes), evicted: r.evicted_leases }));
    case 'advance': {
      m.now += op.ms;
      vi.setSystemTime(m.now);
      if (op.sweep === 'sweep') h.registry.sweep();
      // The periodic sweep's own path (CLOSE_BATCH a turn).
      else if (op.sweep === 'turns') await (h.registry as unknown as { sweepInTurns(): Promise<void> }).sweepInTurns();
      return ok('advanced');
    }
    case 'reload':
      h.write(op.specs);
      if (!(await h.daemon.reloadTenants())) throw new Error(`reload refused: ${describeOp(op)}`);
      return ok('reloaded');
    case 'list': {
      const listed: unknown[] = [];
      let pageToken = '';
      let total = 0;
      for (let page = 0; page < 100; page++) {
        const result = await unaryCall(h, 'ListLeases', { tenant: op.tenant, page_size: op.pageSize, page_token: pageToken, order: 'LEASE_ORDER_UNSPECIFIED' }, tokenFor(op.caller));
        if (result.error) return result.error;
        const r = result.response!;
        for (const s of r.leases) {
          listed.push({ id: s.lease_id, tenant: s.tenant, arrays: s.array_count, device: Number(s.device_bytes), host: Number(s.host_bytes), ttl: s.ttl_seconds, expires: msOf(s.expires_at), age: Number(s.age_seconds) });
        }
        total = r.total_count;
        if (r.next_page_token === '') break;
        pageToken = r.next_page_token;
      }
      return ok({ leases: listed, total });
    }
    case 'info':
      return answer('GetMemoryInfo', {}, tokenFor(op.caller), (r) =>
        ok({
          device: Number(r.info.devices[0].used_bytes),
          host: Number(r.info.host.used_bytes),
          rows: r.info.tenants.map((t: Record<string, any>) => ({
            tenant: t.tenant,
            used: Number(t.used_bytes),
            device: Number(t.device_used_bytes),
            host: Number(t.host_used_bytes),
            leases: t.leases,
            arrays: Number(t.arrays),
            quota: Number(t.quota_bytes),
            hostQuota: Number(t.host_quota_bytes),
            guarantee: Number(t.guarantee_bytes),
            maxLeases: t.max_leases,
            maxArrays: Number(t.max_arrays),
          })),
        }),
      );
  }
}

// ---- random steps ----

function randomSpecs(random: () => number): Spec[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  let guarantees = 0;
  const specs: Spec[] = [];
  for (const name of NAMES) {
    if (random() < 0.15) continue;
    const deviceQuota = pick([0, 0, 32 * KiB, 48 * KiB]);
    let guarantee = pick([0, 0, 16 * KiB, 32 * KiB]);
    if ((deviceQuota > 0 && guarantee > deviceQuota) || guarantees + guarantee > DEVICE_CAP) guarantee = 0;
    guarantees += guarantee;
    specs.push({ name, deviceQuota, hostQuota: pick([0, 0, 16 * KiB]), guarantee, maxLeases: pick([0, 1, 2, 3]), maxArrays: pick([0, 0, 3, 8]) });
  }
  return specs;
}

function randomCaller(random: () => number, m: Model): Caller {
  const r = random();
  if (r < 0.45 || m.leases.length === 0) return { kind: 'admin' };
  if (r < 0.7) return { kind: 'tenant', tenant: NAMES[Math.floor(random() * NAMES.length)] };
  if (r < 0.93) return { kind: 'lease', lease: Math.floor(random() * m.leases.length) };
  return { kind: 'unknown' };
}

/** A random lease index, mostly of held ones. */
function randomLease(random: () => number, m: Model): number | undefined {
  if (m.leases.length === 0) return undefined;
  const open = m.leases.map((lease, index) => (lease.state === 'open' ? index : -1)).filter((index) => index >= 0);
  if (open.length > 0 && random() < 0.85) return open[Math.floor(random() * open.length)];
  return Math.floor(random() * m.leases.length);
}

function randomOp(random: () => number, m: Model, allow: { reads: boolean } = { reads: true }): Op {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const lease = randomLease(random, m);
  const r = random();
  if (lease === undefined || r < 0.1) return { kind: 'open', tenant: pick(NAMES), token: random() < 0.9 ? 'own' : pick(['unknown', 'other-field'] as const), ttl: random() < 0.03 ? MAX_TTL_SECONDS + 1 : pick([0, 0, 1, 2, 5, 30, 30]) };
  if (r < 0.48) return { kind: 'allocate', lease, bytes: pick(SIZES), device: random() < 0.7 };
  if (r < 0.56) {
    const arrays = m.leases[lease].arrays;
    const other = m.leases.flatMap((l) => l.arrays).map((a) => a.id);
    const arrayId = arrays.length > 0 && random() < 0.85 ? pick(arrays).id : other.length > 0 && random() < 0.5 ? pick(other) : 'arr-000000000000000000000000';
    return { kind: 'free', lease, arrayId };
  }
  if (r < 0.63) return { kind: 'renew', lease, leaseId: pick(['empty', 'empty', 'own', 'other'] as const), ttl: random() < 0.03 ? MAX_TTL_SECONDS + 1 : pick([0, 0, 1, 3, 20]) };
  if (r < 0.67) {
    // noRenew from the same draw as rod (a fifth of the messages with it, almost a third of those
    // without), so that every seed draws the sequence it drew before no_renew was modelled.
    const v = random();
    return { kind: 'kaSend', lease, rod: v < 0.6, noRenew: v < 0.12 || v >= 0.88 };
  }
  if (r < 0.69) return { kind: 'kaDrop', lease };
  if (r < 0.72) return { kind: 'close', lease, leaseId: pick(['empty', 'empty', 'own', 'other'] as const) };
  if (r < 0.75) return { kind: 'evictLease', caller: random() < 0.8 ? { kind: 'admin' } : randomCaller(random, m), lease: random() < 0.9 ? lease : 'bogus', withTenant: random() < 0.05 };
  if (r < 0.77) return { kind: 'evictTenant', caller: random() < 0.85 ? { kind: 'admin' } : randomCaller(random, m), tenant: pick([...NAMES, 'zed']) };
  if (r < 0.85) return { kind: 'advance', ms: pick([300, 1000, 2500, 6000]), sweep: pick(['none', 'sweep', 'turns'] as const) };
  if (r < 0.91) return { kind: 'reload', specs: randomSpecs(random) };
  if (!allow.reads) return { kind: 'advance', ms: pick([300, 1000]), sweep: 'none' };
  if (r < 0.96) {
    const caller = randomCaller(random, m);
    return { kind: 'list', caller, tenant: random() < 0.6 ? '' : pick([...NAMES, 'zed']), pageSize: pick([0, 1, 2, 5]) };
  }
  return { kind: 'info', caller: randomCaller(random, m) };
}

const leasesTouched = (op: Op): number[] => ('lease' in op && typeof op.lease === 'number' ? [op.lease] : 'caller' in op && op.caller.kind === 'lease' ? [op.caller.lease] : []);

/** What the daemon shows now: every tenant's row, every lease listed, and what each of `tokens` gets from ListLeases. */
async function observe(h: Harness, m: Model, real: RealLease[], tokens: string[]): Promise<string> {
  const parts: string[] = [];
  for (const op of [{ kind: 'info', caller: { kind: 'admin' } }, { kind: 'list', caller: { kind: 'admin' }, tenant: '', pageSize: 0 }] as Op[]) parts.push((await execute(h, m, real, op)).text);
  for (const [index, token] of tokens.entries()) {
    const result = await unaryCall(h, 'ListLeases', { tenant: '', page_size: 0, page_token: '', order: 'LEASE_ORDER_UNSPECIFIED' }, token);
    parts.push(`lease ${index}: ${result.error ? result.error.text : `OK ${result.response!.leases.length}`}`);
  }
  return parts.join('\n');
}
/** What the model says `observe` shows, the tokens being those of `probe`'s leases. */
function expectedView(m: Model, probe: number[]): string {
  const counts = { fragmentation: 0 };
  const none: Answer = { text: '' };
  const parts = [applyModel(m, { kind: 'info', caller: { kind: 'admin' } }, none, counts).text, applyModel(m, { kind: 'list', caller: { kind: 'admin' }, tenant: '', pageSize: 0 }, none, counts).text];
  for (const [index, lease] of probe.entries()) {
    const refused = lease < m.leases.length ? tokenRefusal(m, m.leases[lease]) : error('UNAUTHENTICATED', 'UNAUTHENTICATED');
    parts.push(`lease ${index}: ${refused ? refused.text : 'OK 1'}`);
  }
  return parts.join('\n');
}

async function run(seed: number, steps: number): Promise<{ refusals: number; ended: number; pool: number; fragmentation: number }> {
  const random = rng(seed);
  const specs = randomSpecs(random);
  const m: Model = { now: Date.UTC(2030, 0, 1), file: specs, dropped: new Map(), leases: [], serial: 0 };
  const h = await startHarness(specs, m.now);
  const real: RealLease[] = [];
  const history: string[] = [];
  const counts = { refusals: 0, ended: 0, pool: 0, fragmentation: 0 };
  try {
    for (let step = 0; step < steps; step++) {
      const op = randomOp(random, m);
      const before = cloneModel(m);
      const actual = await execute(h, before, real, op);
      // execute moves the clock itself; the model's step starts from the clock before it.
      const expected = applyModel(m, op, actual, counts);
      history.push(`${step} ${describeOp(op)} → ${actual.text}`);
      const where = () => `seed ${seed} step ${step} ${describeOp(op)}\n${history.slice(-14).join('\n')}`;
      if (actual.text !== expected.text) throw new Error(`${where()}\nanswered ${actual.text}${actual.meta ? ` (${actual.meta.details})` : ''}\nmodel    ${expected.text}`);
      if (!actual.text.startsWith('OK')) counts.refusals++;
      if (actual.text.includes('LEASE_EXPIRED')) counts.ended++;
      if (actual.text.includes('_OUT_OF_MEMORY')) counts.pool++;
      const probe = [...new Set([...leasesTouched(op), ...(m.leases.length > 0 ? [Math.floor(random() * m.leases.length)] : [])])];
      const shown = await observe(h, m, real, probe.map((index) => m.leases[index].token));
      const model = expectedView(m, probe);
      if (shown !== model) throw new Error(`${where()}\nshows ${shown}\nmodel ${model}`);
      h.daemon.context.memory.checkInvariants();
    }
    // Every byte back: every lease ends (some by their TTL and the sweep).
    for (const [index, lease] of m.leases.entries()) if (lease.state === 'open' && random() < 0.5) await execute(h, m, real, { kind: 'evictLease', caller: { kind: 'admin' }, lease: index, withTenant: false });
    await execute(h, m, real, { kind: 'advance', ms: 8 * 24 * 3600 * 1000, sweep: 'turns' });
    const memory = h.daemon.context.memory;
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
    expect(memory.hostReport().usedBytes).toBe(0);
    expect(h.registry.size).toBe(0);
    for (const name of memory.tenants.names()) expect({ name, ...memory.tenants.usage(name) }).toMatchObject({ name, deviceBytes: [0], hostBytes: 0, arrays: 0 });
    memory.checkInvariants();
  } finally {
    await stopHarness(h);
  }
  return counts;
}

// ---- bursts ----

async function runBursts(seed: number, rounds: number): Promise<number> {
  const random = rng(1000 + seed);
  const specs = randomSpecs(random);
  const m: Model = { now: Date.UTC(2030, 0, 1), file: specs, dropped: new Map(), leases: [], serial: 0 };
  const h = await startHarness(specs, m.now);
  const real: RealLease[] = [];
  const counts = { fragmentation: 0 };
  let interleaved = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      // A little history one step at a time.
      for (let i = 0; i < 3; i++) {
        const op = randomOp(random, m, { reads: false });
        const actual = await execute(h, cloneModel(m), real, op);
        const expected = applyModel(m, op, actual, counts);
        if (actual.text !== expected.text) throw new Error(`bursts seed ${seed} round ${round} setup ${describeOp(op)}: ${actual.text}, model ${expected.text}`);
      }
      // 2 to 4 calls at once; one OpenLease at most (its lease takes the next index whatever the order).
      const drawn = Array.from({ length: 2 + Math.floor(random() * 3) }, () => randomOp(random, m));
      // One read (ListLeases or GetMemoryInfo) at most: an allocation being zeroed holds its bytes for its
      // tenant (GetMemoryInfo) before its lease lists it (ListLeases), so two reads around one need not
      // agree on one order.
      const firstOpen = drawn.findIndex((op) => op.kind === 'open');
      const firstRead = drawn.findIndex((op) => op.kind === 'list' || op.kind === 'info');
      const ops = drawn.filter((op, i) => (op.kind !== 'open' || i === firstOpen) && ((op.kind !== 'list' && op.kind !== 'info') || i === firstRead));
      const start = cloneModel(m);
      // Each call issued, none awaited before the next starts (a clock step moves the clock at once).
      const clock = { now: start.now };
      const pending = ops.map((op) => {
        const view = cloneModel(start);
        view.now = clock.now;
        if (op.kind === 'advance') clock.now += op.ms;
        return execute(h, view, real, op);
      });
      const answers = await Promise.all(pending);
      const probe = start.leases.map((_, index) => index);
      const tokens = start.leases.map((lease) => lease.token);
      const opened = answers.find((a) => a.token !== undefined);
      if (opened) {
        probe.push(start.leases.length);
        tokens.push(opened.token!);
      }
      const shown = await observe(h, start, real, tokens);
      // The model's view needs the lease an OpenLease made: pass the real answers along.
      let matched: Model | undefined;
      const tried: string[] = [];
      for (const order of permutations(ops.map((_, i) => i))) {
        const trial = cloneModel(start);
        const modelled: Answer[] = [];
        for (const i of order) modelled[i] = applyModel(trial, ops[i], answers[i], counts);
        const settled = !trial.invalid && trial.leases.every((lease) => lease.arrays.every((a) => !a.inflight));
        const same = settled && modelled.every((answer, i) => answer.text === answers[i].text) && expectedView(trial, probe) === shown;
        if (same) {
          matched = trial;
          // Only an order other than the one they were issued in: a call overtook another (an
          // allocation zeroed off the event loop finished after a later call).
          if (order.some((i, position) => i !== position)) interleaved++;
          break;
        }
        tried.push(`order ${order.join(',')}: ${modelled.map((a) => a.text.slice(0, 900)).join(' | ')}\n${expectedView(trial, probe).split('\n').slice(2).join(' ')}`);
      }
      if (!matched) {
        throw new Error(`bursts seed ${seed} round ${round}\n${ops.map((op, i) => `${describeOp(op)} → ${answers[i].text.slice(0, 900)}`).join('\n')}\nshows ${shown.slice(0, 900)}\n${tried.slice(0, 6).join('\n')}`);
      }
      Object.assign(m, matched);
      vi.setSystemTime(m.now);
      h.daemon.context.memory.checkInvariants();
    }
    await execute(h, m, real, { kind: 'advance', ms: 8 * 24 * 3600 * 1000, sweep: 'sweep' });
    expect(h.daemon.context.memory.deviceReports()[0].usedBytes).toBe(0);
    expect(h.daemon.context.memory.hostReport().usedBytes).toBe(0);
  } finally {
    await stopHarness(h);
  }
  return interleaved;
}

describe('leases and tenant limits, model-based', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers lease, array and tenant calls as the README and lease.proto say over random sequences (seeded)', async () => {
    const totals = await totalsOverSeeds(1, 16, (seed) => run(seed, 250));
    // The sequences reach what they are for: refusals (the pools' and others' guarantees' among them), and ended leases' tokens.
    expect(totals.refusals).toBeGreaterThan(200);
    expect(totals.pool).toBeGreaterThan(10);
    expect(totals.ended).toBeGreaterThan(50);
  });

  it('answers bursts of calls issued together as some order of them one at a time (seeded)', async () => {
    let interleaved = 0;
    for (let seed = 1; seed <= 16; seed++) interleaved += await runBursts(seed, 30);
    // Some bursts answered only as an order other than the one they were issued in.
    expect(interleaved).toBeGreaterThan(3);
  });

  it('remembers why the last 10,000 ended leases ended; the token of one before them is unknown', async () => {
    const h = await startHarness([{ name: 'a', deviceQuota: 0, hostQuota: 0, guarantee: 0, maxLeases: 0, maxArrays: 0 }], Date.UTC(2030, 0, 1));
    try {
      const open = async () => (await unaryCall(h, 'OpenLease', { tenant: '', client_name: 'model', ttl_seconds: 0, labels: {} }, tokenOf('a'))).response!.lease as { lease_id: string; token: string };
      const renew = async (token: string) => {
        const result = await unaryCall(h, 'RenewLease', { lease_id: '', ttl_seconds: 0 }, token);
        return result.error ? `${result.error.text}: ${result.error.meta!.details}` : 'OK';
      };
      const oldest = await open();
      await unaryCall(h, 'CloseLease', { lease_id: '' }, oldest.token);
      const evicted = await open();
      await unaryCall(h, 'EvictLease', { lease_id: evicted.lease_id, tenant: '' }, tokenOf('ops'));
      expect(await renew(oldest.token)).toBe(`UNAUTHENTICATED LEASE_EXPIRED closed: lease ${oldest.lease_id} was closed by CloseLease: open a new lease`);
      // 9,999 more: `evicted` is the 10,000th most recent, `oldest` the 10,001st.
      for (let i = 0; i < 9_999; i++) await unaryCall(h, 'CloseLease', { lease_id: '' }, (await open()).token);
      expect(await renew(evicted.token)).toBe(`UNAUTHENTICATED LEASE_EXPIRED evicted: lease ${evicted.lease_id} was evicted by an admin: open a new lease`);
      expect(await renew(oldest.token)).toMatch(/^UNAUTHENTICATED UNAUTHENTICATED: unknown lease token \(this daemon has run since /);
    } finally {
      await stopHarness(h);
    }
  });
});
