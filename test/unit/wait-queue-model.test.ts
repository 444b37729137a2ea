/**
 * Model-based check of AllocateArray with wait_for_memory and the device's wait queue, in-process
 * through the LeaseService, ArrayService and MemoryService handlers of a daemon started here (host
 * backend, a tenants file reloaded with Daemon.reloadTenants as SIGHUP does, Date and the deadline
 * timers driven by a fake clock, the sweep run by hand): random sequences of OpenLease, AllocateArray
 * (waiting, with and without a deadline, and failing fast), FreeArray, CloseLease, EvictLease, a
 * waiting call cancelled, the clock passing deadlines and TTLs, the sweep, and tenants-file reloads
 * (quotas, guarantees and max_arrays raised and lowered), against a reference model written from the
 * README ("Backpressure", "Hard quotas", "Guarantees", the drain) and proto/tensormem/v1/array.proto
 * (wait_for_memory), not from the implementation.
 *
 * After each step: which waiting calls were answered and with what (status code, reason, close_reason
 * and the figures of the refusal: a waiter's DEADLINE_EXCEEDED carries its last out-of-memory
 * refusal's), GetMemoryInfo's figures (the pool's used bytes, waiting_allocations, each tenant's
 * bytes and arrays) and the queue itself (tenants in turn, each one's waiters first come first served,
 * with the figures of their last refusal) must be the model's. Bursts of 2 to 4 calls issued in the same
 * tick must answer, and leave the queue, as some order of them one at a time would, the queue being
 * retried after any of them (frees that come together are served together). At the end every
 * waiter has its answer (the daemon drains: UNAVAILABLE / SHUTTING_DOWN, or every lease is closed) and
 * all memory is back.
 *
 * Every device array is exportable: a dedicated chunk of its own, given back when freed, so that the
 * pool has no fragmentation and "fits" is a matter of bytes (README "Guarantees": guarantees count
 * bytes, not contiguous space).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/config';
import { Daemon, startDaemon } from '../../src/daemon';
import { errorInfoOf } from '../../src/rpc-status';
import { ArrayService } from '../../src/service/array-service';
import { STATUS_BY_KIND } from '../../src/service/errors';
import { LeaseService } from '../../src/service/lease-service';
import { MemoryService } from '../../src/service/memory-service';
import { KiB } from '../../src/units';
import { rng } from '../helpers/rng';
import { permutations } from '../helpers/permutations';
import { type Handler, type HandlerFailure, serviceHandlers, unaryCallOf } from '../helpers/service-handlers';
import { tokenSha256 } from '../helpers/tenants-file';
import { totalsOverSeeds } from '../helpers/seeded-totals';

const CAP = 64 * KiB;
const MAX_WAIT_MS = 20_000;
const NAMES = ['a', 'b', 'c'];
const SIZES = [4 * KiB, 8 * KiB, 12 * KiB, 16 * KiB, 24 * KiB, 32 * KiB];
const tokenOf = (tenant: string) => `tok-${tenant}`;
const CODE_NAMES = Object.fromEntries(Object.entries(STATUS_BY_KIND).map(([name, code]) => [code, name]));

interface Spec {
  name: string;
  quota: number;
  guarantee: number;
  maxArrays: number;
}

interface MArray {
  id: string;
  bytes: number;
}
interface MLease {
  id: string;
  token: string;
  tenant: string;
  expiresAt: number;
  state: 'open' | 'closed' | 'expired' | 'evicted';
  arrays: MArray[];
}
interface MWaiter {
  /** The call's index (Model.calls). */
  call: number;
  lease: number;
  bytes: number;
  deadlineAt: number;
  /** The figures of its last refusal; undefined while it waited behind its tenant's earlier requests untried. */
  last?: string;
}
interface Model {
  now: number;
  specs: Spec[];
  leases: MLease[];
  /** Tenants in turn, each with its waiters in arrival order. */
  queue: Array<{ tenant: string; waiters: MWaiter[] }>;
  /** Each AllocateArray's answer, once it has one. */
  answers: Array<string | undefined>;
}

const cloneModel = (m: Model): Model => ({
  now: m.now,
  specs: m.specs.map((s) => ({ ...s })),
  leases: m.leases.map((l) => ({ ...l, arrays: [...l.arrays] })),
  queue: m.queue.map((t) => ({ tenant: t.tenant, waiters: t.waiters.map((w) => ({ ...w })) })),
  answers: [...m.answers],
});

// ---- what the model says, from the README and array.proto ----

const specOf = (m: Model, tenant: string) => m.specs.find((s) => s.name === tenant)!;
const held = (m: Model, tenant?: string) => m.leases.filter((l) => l.state === 'open' && (tenant === undefined || l.tenant === tenant));
const arraysOf = (m: Model, tenant?: string) => held(m, tenant).flatMap((l) => l.arrays);
const used = (m: Model, tenant?: string) => arraysOf(m, tenant).reduce((sum, a) => sum + a.bytes, 0);
const waiting = (m: Model) => m.queue.reduce((n, t) => n + t.waiters.length, 0);
const oom = (cap: number, usedBytes: number, requested: number) => `RESOURCE_EXHAUSTED DEVICE_OUT_OF_MEMORY cap ${cap} used ${usedBytes} requested ${requested}`;

const reservedFor = (m: Model, tenant: string) => m.specs.filter((s) => s.name !== tenant).reduce((sum, s) => sum + Math.max(0, s.guarantee - used(m, s.name)), 0);

type Check = { kind: 'ok' } | { kind: 'fail'; text: string } | { kind: 'oom'; text: string };

/** README: max_arrays and quotas are QUOTA_EXCEEDED, and "Quota refusals never wait": the refusal of `bytes` more for `tenant` now, if any. */
function quotaRefusal(m: Model, tenant: string, bytes: number): string | undefined {
  const spec = specOf(m, tenant);
  const arrays = arraysOf(m, tenant).length;
  if (spec.maxArrays > 0 && arrays >= spec.maxArrays) return `RESOURCE_EXHAUSTED QUOTA_EXCEEDED arrays ${arrays} max_arrays ${spec.maxArrays}`;
  const mine = used(m, tenant);
  if (spec.quota > 0 && mine + bytes > spec.quota) return `RESOURCE_EXHAUSTED QUOTA_EXCEEDED quota ${spec.quota} used ${mine} requested ${bytes}`;
  return undefined;
}

/** One try of a request of `bytes` on lease `index`: what the README's limits say, in the order it gives them. */
function tryAllocate(m: Model, index: number, bytes: number): Check {
  const lease = m.leases[index];
  // README: a waiter whose lease is closed, expires or is evicted fails with LEASE_EXPIRED (its token's answer).
  if (lease.state !== 'open') return { kind: 'fail', text: `UNAUTHENTICATED LEASE_EXPIRED ${lease.state}` };
  if (m.now >= lease.expiresAt) return { kind: 'fail', text: 'UNAUTHENTICATED LEASE_EXPIRED expired' };
  const refused = quotaRefusal(m, lease.tenant, bytes);
  if (refused !== undefined) return { kind: 'fail', text: refused };
  // README "Guarantees": U + R + Σ others max(0, guarantee − used) ≤ C; a pool refusal is what waiting is for.
  const reserved = reservedFor(m, lease.tenant);
  if (used(m) + bytes + reserved > CAP) return { kind: 'oom', text: oom(CAP - reserved, used(m), bytes) };
  return { kind: 'ok' };
}

function serve(m: Model, w: MWaiter, arrayId: string): void {
  m.leases[w.lease].arrays.push({ id: arrayId, bytes: w.bytes });
  m.answers[w.call] = `OK ${w.bytes}`;
}

/** Takes a waiter out; true when it was its tenant's head (the one behind it may be tried now). */
function removeWaiter(m: Model, w: MWaiter): boolean {
  const t = m.queue.find((q) => q.waiters.includes(w))!;
  const head = t.waiters[0] === w;
  t.waiters.splice(t.waiters.indexOf(w), 1);
  if (t.waiters.length === 0) m.queue.splice(m.queue.indexOf(t), 1);
  return head;
}

/**
 * array.proto: "a queue per device that takes tenants in turn (first come first served within a
 * tenant)", retried "whenever device memory is freed"; a request that still does not fit does not hold
 * up other tenants' (README). A served tenant takes its next turn after the others.
 */
function drain(m: Model, ids: IdSource, fragmented: Fragmented = () => false): void {
  let progress = true;
  while (progress) {
    progress = false;
    for (const tenant of m.queue.map((t) => t.tenant)) {
      const t = m.queue.find((q) => q.tenant === tenant);
      const w = t?.waiters[0];
      if (!w) continue;
      let result = tryAllocate(m, w.lease, w.bytes);
      // README "Guarantees": bytes, not contiguous space: the pool may still refuse, naming a largest free block smaller than the request.
      if (result.kind === 'ok' && fragmented(w.bytes)) result = { kind: 'oom', text: oom(CAP, used(m), w.bytes) };
      if (result.kind === 'oom') {
        w.last = result.text;
        continue;
      }
      removeWaiter(m, w);
      progress = true;
      if (result.kind === 'fail') {
        m.answers[w.call] = result.text;
        continue;
      }
      serve(m, w, ids(w.call));
      const rest = m.queue.find((q) => q.tenant === tenant);
      if (rest) {
        m.queue.splice(m.queue.indexOf(rest), 1);
        m.queue.push(rest);
      }
    }
  }
}

/** Whether the daemon's pool refused a waiter of `bytes` for want of a free block that large (see drain). */
type Fragmented = (bytes: number) => boolean;

/** The array id the daemon gave a call (the model cannot know ids). */
type IdSource = (call: number) => string;

type Op =
  | { kind: 'open'; tenant: string; ttl: number }
  | { kind: 'allocate'; lease: number; bytes: number; wait: boolean; deadlineMs: number }
  | { kind: 'free'; lease: number; arrayId: string }
  | { kind: 'close'; lease: number }
  | { kind: 'evict'; lease: number }
  | { kind: 'cancel'; call: number }
  | { kind: 'advance'; ms: number; sweep: boolean }
  | { kind: 'reload'; specs: Spec[] };

const describeOp = (op: Op) => JSON.stringify(op, (key, value) => (key === 'specs' ? (value as Spec[]).map((s) => `${s.name}:q${s.quota / KiB}/g${s.guarantee / KiB}/n${s.maxArrays}`).join(' ') : value));

/** What an op does to the model at once; returns whether it asks for the queue to be retried (a free, a reload, a head leaving, a request queued untried). */
function applyNow(m: Model, op: Op, call: number | undefined, ids: IdSource, opened?: { id: string; token: string }, fragmented: Fragmented = () => false, refusedLargest?: number): { text: string; retry: boolean } {
  switch (op.kind) {
    case 'open':
      m.leases.push({ id: opened!.id, token: opened!.token, tenant: op.tenant, expiresAt: m.now + op.ttl * 1000, state: 'open', arrays: [] });
      return { text: 'OK opened', retry: false };
    case 'allocate': {
      const lease = m.leases[op.lease];
      const answer = (text: string) => {
        m.answers[call!] = text;
        return { text, retry: false };
      };
      if (lease.state !== 'open') return answer(`UNAUTHENTICATED LEASE_EXPIRED ${lease.state}`);
      if (m.now >= lease.expiresAt) return answer('UNAUTHENTICATED LEASE_EXPIRED expired');
      // array.proto: a waiting request queues behind those already waiting; otherwise it is tried now.
      if (op.wait && waiting(m) > 0) {
        // "Quota refusals never wait": also not behind the tenant's earlier waiters, which hold its turn.
        const refused = quotaRefusal(m, lease.tenant, op.bytes);
        if (refused !== undefined) return answer(refused);
        const w: MWaiter = { call: call!, lease: op.lease, bytes: op.bytes, deadlineAt: m.now + Math.min(MAX_WAIT_MS, op.deadlineMs) };
        let t = m.queue.find((q) => q.tenant === lease.tenant);
        if (!t) m.queue.push((t = { tenant: lease.tenant, waiters: [] }));
        t.waiters.push(w);
        return { text: 'queued', retry: true };
      }
      let result = tryAllocate(m, op.lease, op.bytes);
      // Bytes, not contiguous space (see drain): the daemon's refusal named a largest free block smaller than the request.
      if (result.kind === 'ok' && (op.wait ? fragmented(op.bytes) : refusedLargest !== undefined && refusedLargest < op.bytes)) result = { kind: 'oom', text: oom(CAP, used(m), op.bytes) };
      if (result.kind === 'ok') {
        serve(m, { call: call!, lease: op.lease, bytes: op.bytes, deadlineAt: 0 }, ids(call!));
        return { text: m.answers[call!]!, retry: false };
      }
      if (result.kind === 'fail' || !op.wait) return answer(result.text);
      m.queue.push({ tenant: lease.tenant, waiters: [{ call: call!, lease: op.lease, bytes: op.bytes, deadlineAt: m.now + Math.min(MAX_WAIT_MS, op.deadlineMs), last: result.text }] });
      return { text: 'queued', retry: false };
    }
    case 'free': {
      const lease = m.leases[op.lease];
      if (lease.state !== 'open') return { text: `UNAUTHENTICATED LEASE_EXPIRED ${lease.state}`, retry: false };
      if (m.now >= lease.expiresAt) return { text: 'UNAUTHENTICATED LEASE_EXPIRED expired', retry: false };
      const index = lease.arrays.findIndex((a) => a.id === op.arrayId);
      if (index < 0) return { text: 'NOT_FOUND ARRAY_NOT_FOUND', retry: false };
      const [array] = lease.arrays.splice(index, 1);
      return { text: `OK freed ${array.bytes}`, retry: true };
    }
    case 'close':
    case 'evict': {
      const lease = m.leases[op.lease];
      if (lease.state !== 'open') return { text: op.kind === 'close' ? `UNAUTHENTICATED LEASE_EXPIRED ${lease.state}` : 'NOT_FOUND LEASE_NOT_FOUND', retry: false };
      if (m.now >= lease.expiresAt && op.kind === 'close') return { text: 'UNAUTHENTICATED LEASE_EXPIRED expired', retry: false };
      const freed = used(m) - used(m) + lease.arrays.reduce((sum, a) => sum + a.bytes, 0);
      const retry = endLease(m, op.lease, op.kind === 'close' ? 'closed' : m.now >= lease.expiresAt ? 'expired' : 'evicted');
      return { text: `OK freed ${freed}`, retry };
    }
    case 'cancel': {
      const w = m.queue.flatMap((t) => t.waiters).find((x) => x.call === op.call);
      if (!w) return { text: 'OK nothing to cancel', retry: false };
      m.answers[w.call] = 'CANCELLED';
      return { text: 'OK cancelled', retry: removeWaiter(m, w) };
    }
    case 'advance': {
      m.now += op.ms;
      let retry = false;
      // array.proto: at the deadline (at most --max-wait), DEADLINE_EXCEEDED with the last out-of-memory message.
      const due = m.queue.flatMap((t) => t.waiters).filter((w) => w.deadlineAt <= m.now).sort((x, y) => x.deadlineAt - y.deadlineAt || x.call - y.call);
      for (const w of due) {
        const last = w.last ?? oom(CAP, used(m), w.bytes);
        m.answers[w.call] = `DEADLINE_EXCEEDED ${last.replace(/^RESOURCE_EXHAUSTED /, '')}`;
        if (removeWaiter(m, w)) retry = true;
      }
      if (op.sweep) for (const [index, lease] of m.leases.entries()) if (lease.state === 'open' && m.now >= lease.expiresAt && endLease(m, index, 'expired')) retry = true;
      return { text: 'OK advanced', retry };
    }
    case 'reload':
      m.specs = op.specs.map((s) => ({ ...s }));
      // A reload retries the queue (a quota raised, a guarantee lowered); a lowered quota refuses the head when tried.
      return { text: 'OK reloaded', retry: waiting(m) > 0 };
  }
}

/** README: the lease's waiters fail at once with LEASE_EXPIRED (its close_reason), and its arrays are freed. */
function endLease(m: Model, index: number, reason: 'closed' | 'expired' | 'evicted'): boolean {
  const lease = m.leases[index];
  let retry = lease.arrays.length > 0;
  lease.state = reason;
  lease.arrays = [];
  for (const w of m.queue.flatMap((t) => t.waiters).filter((x) => x.lease === index)) {
    m.answers[w.call] = `UNAUTHENTICATED LEASE_EXPIRED ${reason}`;
    if (removeWaiter(m, w)) retry = true;
  }
  return retry;
}

// ---- the daemon, driven through its handlers ----

interface Harness {
  daemon: Daemon;
  handlers: Record<string, Handler>;
  dir: string;
  write(specs: Spec[]): void;
}

function fileText(specs: Spec[]): string {
  const lines = ['tenants:', '  - name: ops', `    token_sha256: "${tokenSha256(tokenOf('ops'))}"`, '    admin: true'];
  for (const s of specs) {
    lines.push(`  - name: ${s.name}`, `    token_sha256: "${tokenSha256(tokenOf(s.name))}"`);
    if (s.quota) lines.push(`    quota: { device: ${s.quota} }`);
    if (s.guarantee) lines.push(`    guarantee: { device: ${s.guarantee} }`);
    if (s.maxArrays) lines.push(`    max_arrays: ${s.maxArrays}`);
  }
  return `${lines.join('\n')}\n`;
}

async function startHarness(specs: Spec[], startMs: number): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'tensormem-wait-model-'));
  chmodSync(dir, 0o700);
  const path = join(dir, 'tenants.yaml');
  const write = (next: Spec[]) => writeFileSync(path, fileText(next), { mode: 0o600 });
  write(specs);
  const config = loadConfig(
    ['--backend', 'host', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--data-listen', 'off', '--emulated-device', '1M', '--allow-small-device', '--maxbytes', String(CAP), '--host-maxbytes', '1M', '--pool-chunk', '4K', '--reclaim-interval', '1h', '--lease-ttl', '30s', '--max-wait', `${MAX_WAIT_MS}ms`, '--mirror', 'lazy', '--tenants', path],
    {},
  );
  const daemon = await startDaemon(config, pino({ level: 'silent' }));
  daemon.context.registry.stopSweeping();
  // The deadlines' timers and the leases' clock; the queue's retries (setImmediate) stay real.
  vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'], now: startMs });
  const handlers = serviceHandlers(daemon.context, [LeaseService, ArrayService, MemoryService]);
  return { daemon, handlers, dir, write };
}

function largestOf(failure: { metadata: Metadata }): number | undefined {
  const value = errorInfoOf(failure.metadata)?.metadata?.largest_free_block_bytes;
  return value === undefined ? undefined : Number(value);
}

function answerOfError(failure: HandlerFailure): string {
  const info = errorInfoOf(failure.metadata);
  const meta = info?.metadata ?? {};
  const code = CODE_NAMES[failure.code] ?? String(failure.code);
  // CANCELLED: the caller went away; no reason is promised for it.
  if (code === 'CANCELLED') return code;
  let extra = meta.close_reason ? ` ${meta.close_reason}` : '';
  if (info?.reason === 'QUOTA_EXCEEDED') extra = meta.max_arrays !== undefined ? ` arrays ${meta.arrays} max_arrays ${meta.max_arrays}` : ` quota ${meta.quota_bytes} used ${meta.used_bytes} requested ${meta.requested_bytes}`;
  if (info?.reason === 'DEVICE_OUT_OF_MEMORY') extra = ` cap ${meta.cap_bytes} used ${meta.used_bytes} requested ${meta.requested_bytes}`;
  return `${code} ${info?.reason ?? '?'}${extra}`;
}

interface Pending {
  call: ReturnType<typeof unaryCallOf>;
  /** A pool refusal's largest free block. */
  largest?: number;
  answer?: string;
  arrayId?: string;
}

function unaryCall(h: Harness, name: string, request: object, token: string, deadline: Date | number = Infinity): { call: Pending['call']; done: Promise<{ error?: string; largest?: number; response?: Record<string, any> }> } {
  const call = unaryCallOf(request, token, deadline);
  const done = new Promise<{ error?: string; largest?: number; response?: Record<string, any> }>((resolve) => {
    h.handlers[name](call, (failure, response) => resolve(failure ? { error: answerOfError(failure), largest: largestOf(failure) } : { response: response as Record<string, any> }));
  });
  return { call, done };
}

/** Lets the queue's retries (setImmediate) and the answers (promise callbacks) run until nothing moves. */
async function settle(h: Harness): Promise<void> {
  const queue = h.daemon.context.memory.waitQueue(0) as unknown as { draining: boolean };
  for (let quiet = 0, turns = 0; quiet < 3 && turns < 1000; turns++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    quiet = queue.draining ? 0 : quiet + 1;
  }
}

class Driver {
  readonly calls: Pending[] = [];
  constructor(
    readonly h: Harness,
    readonly m: () => Model,
  ) {}

  ids: IdSource = (call) => this.calls[call].arrayId ?? `missing-${call}`;

  /** Issues an op's calls; the answer of an immediate call (all but AllocateArray) once they have run. */
  issue(op: Op, view: Model): { call?: number; done: Promise<{ text: string; opened?: { id: string; token: string } }> } {
    const h = this.h;
    const text = async (p: Promise<{ error?: string; response?: Record<string, any> }>, shape: (r: Record<string, any>) => string) => {
      const r = await p;
      return { text: r.error ?? shape(r.response!) };
    };
    switch (op.kind) {
      case 'open': {
        const { done } = unaryCall(h, 'OpenLease', { tenant: '', client_name: 'model', ttl_seconds: op.ttl, labels: {} }, tokenOf(op.tenant));
        return { done: done.then((r) => ({ text: r.error ?? 'OK opened', opened: r.response && { id: r.response.lease.lease_id, token: r.response.lease.token } })) };
      }
      case 'allocate': {
        const index = this.calls.length;
        const deadline = op.deadlineMs === Infinity ? Infinity : new Date(Date.now() + op.deadlineMs);
        const request = { lease_id: '', data_type: 'DATA_TYPE_UINT8', shape: [op.bytes], placement: 'PLACEMENT_DEVICE', device: 0, workspace_id: '', zero: false, label: '', request_id: '', wait_for_memory: op.wait, exportable: true };
        const { call, done } = unaryCall(h, 'AllocateArray', request, view.leases[op.lease].token, deadline);
        const pending: Pending = { call };
        this.calls.push(pending);
        done.then((r) => {
          pending.answer = r.error ?? `OK ${Number(r.response!.array.byte_size)}`;
          pending.largest = r.largest;
          if (r.response) pending.arrayId = r.response.array.array_id;
        });
        return { call: index, done: Promise.resolve({ text: 'issued' }) };
      }
      case 'free':
        return { done: text(unaryCall(h, 'FreeArray', { array_id: op.arrayId }, view.leases[op.lease].token).done, (r) => `OK freed ${Number(r.freed_bytes)}`) };
      case 'close':
        return { done: text(unaryCall(h, 'CloseLease', { lease_id: '' }, view.leases[op.lease].token).done, (r) => `OK freed ${Number(r.freed_bytes)}`) };
      case 'evict':
        return { done: text(unaryCall(h, 'EvictLease', { lease_id: view.leases[op.lease].id, tenant: '' }, tokenOf('ops')).done, (r) => `OK freed ${Number(r.freed_bytes)}`) };
      case 'cancel': {
        const pending = this.calls[op.call];
        const waitingNow = view.queue.some((t) => t.waiters.some((w) => w.call === op.call));
        pending.call.cancelled = true;
        pending.call.emit('cancelled');
        return { done: Promise.resolve({ text: waitingNow ? 'OK cancelled' : 'OK nothing to cancel' }) };
      }
      case 'advance':
        vi.advanceTimersByTime(op.ms);
        if (op.sweep) h.daemon.context.registry.sweep();
        return { done: Promise.resolve({ text: 'OK advanced' }) };
      case 'reload':
        h.write(op.specs);
        return {
          done: h.daemon.reloadTenants().then((took) => {
            if (!took) throw new Error(`reload refused: ${describeOp(op)}`);
            return { text: 'OK reloaded' };
          }),
        };
    }
  }

  /** The requests the daemon's queue holds that its pool refused for want of a free block as large (README "Guarantees": bytes, not contiguous space). */
  fragmented(): Fragmented {
    const byTenant = (this.h.daemon.context.memory.waitQueue(0) as unknown as { byTenant: Map<string, Iterable<{ requestedBytes: number; lastRefusal?: { metadata: Record<string, string> } }>> }).byTenant;
    const sizes = new Set<number>();
    for (const ws of byTenant.values()) for (const w of ws) if (w.lastRefusal && Number(w.lastRefusal.metadata.largest_free_block_bytes) < w.requestedBytes) sizes.add(w.requestedBytes);
    return (bytes) => sizes.has(bytes);
  }

  /** What the daemon shows: GetMemoryInfo's figures and the queue (tenants in turn, waiters with their last refusal). */
  async observe(debug = false): Promise<string> {
    const { done } = unaryCall(this.h, 'GetMemoryInfo', {}, tokenOf('ops'));
    const r = (await done).response!;
    const device = r.info.devices[0];
    const rows = r.info.tenants.filter((t: Record<string, any>) => t.tenant !== 'ops').map((t: Record<string, any>) => `${t.tenant}:${Number(t.device_used_bytes)}/${Number(t.arrays)}`);
    const byTenant = (this.h.daemon.context.memory.waitQueue(0) as unknown as { byTenant: Map<string, Iterable<{ requestedBytes: number; lastRefusal?: { metadata: Record<string, string> } }>> }).byTenant;
    const queue = [...byTenant].map(([tenant, ws]) => `${tenant}[${[...ws].map((w) => `${w.requestedBytes}${w.lastRefusal ? ` cap ${w.lastRefusal.metadata.cap_bytes} used ${w.lastRefusal.metadata.used_bytes}${debug ? ` (${(w.lastRefusal as unknown as Error).message})` : ''}` : ' untried'}`).join(', ')}]`);
    return `used ${Number(device.used_bytes)} waiting ${device.waiting_allocations} ${rows.join(' ')} queue ${queue.join(' ')}`;
  }
}

function expectedView(m: Model): string {
  const rows = NAMES.filter((n) => m.specs.some((s) => s.name === n) || held(m, n).length > 0).map((n) => `${n}:${used(m, n)}/${arraysOf(m, n).length}`);
  const queue = m.queue.map((t) => `${t.tenant}[${t.waiters.map((w) => `${w.bytes}${w.last ? ` ${/cap \d+ used \d+/.exec(w.last)![0]}` : ' untried'}`).join(', ')}]`);
  return `used ${used(m)} waiting ${waiting(m)} ${rows.join(' ')} queue ${queue.join(' ')}`;
}

/** The answers of calls that have one now (index: answer). */
const answered = (answers: Array<string | undefined>) => answers.map((a, i) => (a === undefined ? '' : `${i}: ${a}`)).filter(Boolean).join('\n');

// ---- random steps ----

function randomSpecs(random: () => number): Spec[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  let guarantees = 0;
  return NAMES.map((name) => {
    const quota = pick([0, 0, 24 * KiB, 40 * KiB]);
    let guarantee = pick([0, 0, 0, 8 * KiB, 16 * KiB]);
    if ((quota > 0 && guarantee > quota) || guarantees + guarantee > CAP) guarantee = 0;
    guarantees += guarantee;
    return { name, quota, guarantee, maxArrays: pick([0, 0, 0, 2, 4]) };
  });
}

function randomOp(random: () => number, m: Model): Op {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const open = m.leases.map((l, i) => (l.state === 'open' && m.now < l.expiresAt ? i : -1)).filter((i) => i >= 0);
  const r = random();
  if (open.length === 0 || (r < 0.08 && open.length < 6)) return { kind: 'open', tenant: pick(NAMES), ttl: pick([3, 30, 30, 30]) };
  const lease = random() < 0.9 ? pick(open) : Math.floor(random() * m.leases.length);
  // Each request a size no other waiting request has (a few 256-byte units over a size of SIZES), so that the queue's waiters can be told apart by size.
  const taken = new Set(m.queue.flatMap((t) => t.waiters.map((w) => w.bytes)));
  const base = pick(SIZES);
  let bytes = base;
  for (let unit = Math.floor(random() * 8); taken.has(bytes); unit++) bytes = base + (unit % 16) * 256 + Math.floor(unit / 16) * 4096;
  if (r < 0.5) return { kind: 'allocate', lease, bytes, wait: random() < 0.85, deadlineMs: pick([Infinity, Infinity, 1000, 3000, 8000, 30_000]) };
  if (r < 0.7) {
    const arrays = m.leases[lease].arrays;
    return { kind: 'free', lease, arrayId: arrays.length > 0 && random() < 0.9 ? pick(arrays).id : 'arr-000000000000000000000000' };
  }
  if (r < 0.74) return { kind: 'close', lease };
  if (r < 0.77) return { kind: 'evict', lease };
  const waiters = m.queue.flatMap((t) => t.waiters);
  if (r < 0.82 && waiters.length > 0) return { kind: 'cancel', call: pick(waiters).call };
  if (r < 0.93) return { kind: 'advance', ms: pick([500, 1000, 2500, 6000]), sweep: random() < 0.5 };
  return { kind: 'reload', specs: randomSpecs(random) };
}

async function finish(h: Harness, d: Driver, m: Model, how: 'drain' | 'close'): Promise<void> {
  const memory = h.daemon.context.memory;
  if (how === 'close') {
    for (const [index, lease] of m.leases.entries()) {
      if (lease.state !== 'open') continue;
      const op: Op = { kind: 'evict', lease: index };
      await d.issue(op, m).done;
      await settle(h);
      if (applyNow(m, op, undefined, d.ids).retry) drain(m, d.ids, d.fragmented());
    }
    expect(answered(d.calls.map((c) => c.answer))).toBe(answered(m.answers));
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
  }
  vi.useRealTimers();
  const stopped = h.daemon.shutdown('test');
  await settle(h);
  // README: "allocations waiting for memory (wait_for_memory) fail at once with UNAVAILABLE / SHUTTING_DOWN".
  if (how === 'drain') for (const w of m.queue.flatMap((t) => t.waiters)) m.answers[w.call] = 'UNAVAILABLE SHUTTING_DOWN';
  expect(answered(d.calls.map((c) => c.answer))).toBe(answered(m.answers));
  expect(memory.waitQueue(0).size).toBe(0);
  await stopped;
  expect(memory.deviceReports()[0].usedBytes).toBe(0);
  rmSync(h.dir, { recursive: true, force: true });
}

async function run(seed: number, steps: number): Promise<Record<string, number>> {
  const random = rng(seed);
  const specs = randomSpecs(random);
  const m: Model = { now: Date.UTC(2030, 0, 1), specs, leases: [], queue: [], answers: [] };
  const h = await startHarness(specs, m.now);
  const d = new Driver(h, () => m);
  const history: string[] = [];
  const counts: Record<string, number> = { served: 0, deadline: 0, lease: 0, quota: 0, cancelled: 0, untried: 0 };
  try {
    for (let step = 0; step < steps; step++) {
      const op = randomOp(random, m);
      const issued = d.issue(op, cloneModel(m));
      const result = await issued.done;
      await settle(h);
      const answersBefore = [...m.answers];
      const fragmented = d.fragmented();
      const now = applyNow(m, op, issued.call, d.ids, result.opened, fragmented, issued.call === undefined ? undefined : d.calls[issued.call].largest);
      if (now.retry) drain(m, d.ids, fragmented);
      history.push(`${step} ${describeOp(op)} → ${result.text}${issued.call !== undefined ? ` call ${issued.call}` : ''}`);
      const where = () => `seed ${seed} step ${step} ${describeOp(op)}\n${history.slice(-16).join('\n')}`;
      if (issued.call === undefined && result.text !== now.text) throw new Error(`${where()}\nanswered ${result.text}\nmodel    ${now.text}`);
      const real = answered(d.calls.map((c) => c.answer));
      const model = answered(m.answers);
      if (real !== model) {
        const mine = new Set(model.split('\n'));
        const theirs = new Set(real.split('\n'));
        throw new Error(`${where()}\nanswered ${real.split('\n').filter((l) => !mine.has(l)).join('; ')}\nmodel    ${model.split('\n').filter((l) => !theirs.has(l)).join('; ')}\nqueue ${expectedView(m)}\nshows ${await d.observe(true)}`);
      }
      for (const [i, a] of m.answers.entries()) {
        if (a === undefined || answersBefore[i] !== undefined) continue;
        if (a.startsWith('OK') && d.calls[i].call.request) counts.served++;
        if (a.startsWith('DEADLINE')) counts.deadline++;
        if (a.includes('LEASE_EXPIRED')) counts.lease++;
        if (a.includes('QUOTA_EXCEEDED')) counts.quota++;
        if (a === 'CANCELLED') counts.cancelled++;
      }
      if (m.queue.some((t) => t.waiters.some((w) => !w.last))) counts.untried++;
      const shown = await d.observe();
      const expected = expectedView(m);
      if (shown !== expected) throw new Error(`${where()}\nshows ${shown}\nmodel ${expected}`);
      h.daemon.context.memory.checkInvariants();
    }
    await finish(h, d, m, seed % 2 === 0 ? 'drain' : 'close');
  } catch (error) {
    vi.useRealTimers();
    await h.daemon.shutdown('test');
    throw error;
  }
  return counts;
}

// ---- bursts ----

/** Burst ops: calls a client can issue together (no clock step, no reload: those are not calls). */
function randomBurstOp(random: () => number, m: Model): Op | undefined {
  for (let i = 0; i < 50; i++) {
    const op = randomOp(random, m);
    if (op.kind !== 'advance' && op.kind !== 'open' && op.kind !== 'reload') return op;
  }
  return undefined;
}

async function runBursts(seed: number, rounds: number): Promise<number> {
  const random = rng(5000 + seed);
  const specs = randomSpecs(random);
  let m: Model = { now: Date.UTC(2030, 0, 1), specs, leases: [], queue: [], answers: [] };
  const h = await startHarness(specs, m.now);
  const d = new Driver(h, () => m);
  let unlike = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < 2; i++) {
        const op = randomOp(random, m);
        const issued = d.issue(op, cloneModel(m));
        const result = await issued.done;
        await settle(h);
        const fragmented = d.fragmented();
        const now = applyNow(m, op, issued.call, d.ids, result.opened, fragmented, issued.call === undefined ? undefined : d.calls[issued.call].largest);
        if (now.retry) drain(m, d.ids, fragmented);
        const real = answered(d.calls.map((c) => c.answer));
        if (issued.call === undefined && result.text !== now.text) throw new Error(`bursts seed ${seed} round ${round} setup ${describeOp(op)}: ${result.text}, model ${now.text}`);
        if (real !== answered(m.answers) || (await d.observe()) !== expectedView(m)) throw new Error(`bursts seed ${seed} round ${round} setup ${describeOp(op)}:\n${real}\nmodel\n${answered(m.answers)}\n${await d.observe()}\n${expectedView(m)}`);
      }
      const drawn = Array.from({ length: 2 + Math.floor(random() * 3) }, () => randomBurstOp(random, m)).filter((op): op is Op => op !== undefined);
      // One cancel per call at most. Several AllocateArray calls of one tenant may come together: each
      // takes its place in its tenant's order when issued, however its first try comes back. Each of
      // them a size of its own (randomOp keeps sizes apart from the queue's only): the daemon's waiters
      // are told apart by size (Driver.fragmented, observe).
      const ops = drawn.filter(
        (op, i) =>
          (op.kind !== 'cancel' || drawn.findIndex((o) => o.kind === 'cancel' && o.call === op.call) === i) &&
          (op.kind !== 'allocate' || drawn.findIndex((o) => o.kind === 'allocate' && o.bytes === op.bytes) === i),
      );
      if (ops.length === 0) continue;
      const start = cloneModel(m);
      const issued = ops.map((op) => d.issue(op, start));
      const results = await Promise.all(issued.map((i) => i.done));
      await settle(h);
      const real = answered(d.calls.map((c) => c.answer));
      const shown = await d.observe();
      const fragmented = d.fragmented();
      let matched: Model | undefined;
      const tried: string[] = [];
      for (const order of permutations(ops.map((_, i) => i))) {
        // The queue retried after any of the ops, or only at the end (retries triggered together run once).
        for (let mask = 0; mask < 1 << (ops.length - 1); mask++) {
          const trial = cloneModel(start);
          const texts: string[] = [];
          let pendingRetry = false;
          for (const [position, i] of order.entries()) {
            const now = applyNow(trial, ops[i], issued[i].call, d.ids, undefined, fragmented, issued[i].call === undefined ? undefined : d.calls[issued[i].call!].largest);
            texts[i] = now.text;
            pendingRetry ||= now.retry;
            if (pendingRetry && (position === order.length - 1 || mask & (1 << position))) {
              drain(trial, d.ids, fragmented);
              pendingRetry = false;
            }
          }
          const same = ops.every((op, i) => issued[i].call !== undefined || op.kind === 'cancel' || texts[i] === results[i].text) && answered(trial.answers) === real && expectedView(trial) === shown;
          if (same) {
            matched = trial;
            if (mask !== (1 << (ops.length - 1)) - 1) unlike++;
            break;
          }
          if (tried.length < 6) tried.push(`order ${order.join(',')} mask ${mask}: ${texts.join(' | ')}\n${answered(trial.answers).split('\n').slice(-6).join('; ')}\n${expectedView(trial)}`);
        }
        if (matched) break;
      }
      if (!matched) {
        throw new Error(`bursts seed ${seed} round ${round}\n${ops.map((op, i) => `${describeOp(op)} → ${results[i].text}${issued[i].call !== undefined ? ` call ${issued[i].call}` : ''}`).join('\n')}\nanswers ${real.split('\n').slice(-8).join('; ')}\nshows ${shown}\n${tried.join('\n')}`);
      }
      m = matched;
      h.daemon.context.memory.checkInvariants();
    }
    await finish(h, d, m, seed % 2 === 0 ? 'close' : 'drain');
  } catch (error) {
    vi.useRealTimers();
    await h.daemon.shutdown('test');
    throw error;
  }
  return unlike;
}

describe('AllocateArray wait_for_memory and the wait queue, model-based', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('serves, refuses and times out waiting allocations as the README and array.proto say over random sequences (seeded)', async () => {
    const totals = await totalsOverSeeds(1, 12, (seed) => run(seed, 150));
    // The sequences reach what they are for.
    expect(totals.served).toBeGreaterThan(100);
    expect(totals.deadline).toBeGreaterThan(10);
    expect(totals.lease).toBeGreaterThan(10);
    expect(totals.quota).toBeGreaterThan(5);
    expect(totals.cancelled).toBeGreaterThan(5);
    expect(totals.untried).toBeGreaterThan(5);
  });

  it("fails a waiter whose lease's TTL has passed when memory comes, rather than serving a lease its token no longer opens", async () => {
    const specs: Spec[] = NAMES.map((name) => ({ name, quota: 0, guarantee: 0, maxArrays: 0 }));
    const h = await startHarness(specs, Date.UTC(2030, 0, 1));
    try {
      const open = async (tenant: string, ttl: number) => (await unaryCall(h, 'OpenLease', { tenant: '', client_name: 'model', ttl_seconds: ttl, labels: {} }, tokenOf(tenant)).done).response!.lease as { token: string };
      const allocate = (token: string, bytes: number, wait: boolean) =>
        unaryCall(h, 'AllocateArray', { lease_id: '', data_type: 'DATA_TYPE_UINT8', shape: [bytes], placement: 'PLACEMENT_DEVICE', device: 0, workspace_id: '', zero: false, label: '', request_id: '', wait_for_memory: wait, exportable: false }, token).done;
      const holder = await open('b', 30);
      const full = (await allocate(holder.token, CAP, false)).response!.array.array_id as string;
      const shortLived = await open('a', 3);
      let answer: string | undefined;
      void allocate(shortLived.token, 16 * KiB, true).then((r) => (answer = r.error ?? 'OK'));
      await settle(h);
      expect(h.daemon.context.memory.waitQueue(0).size).toBe(1);
      // Its TTL passes (the sweep not yet run): its token answers LEASE_EXPIRED from now on.
      vi.advanceTimersByTime(3000);
      await unaryCall(h, 'FreeArray', { array_id: full }, holder.token).done;
      await settle(h);
      expect(answer).toBe('UNAUTHENTICATED LEASE_EXPIRED expired');
      expect(h.daemon.context.memory.deviceReports()[0].usedBytes).toBe(0);
      expect(h.daemon.context.memory.waitQueue(0).size).toBe(0);
    } finally {
      vi.useRealTimers();
      await h.daemon.shutdown('test');
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('answers bursts of calls issued together as some order of them one at a time (seeded)', async () => {
    for (let seed = 1; seed <= 8; seed++) await runBursts(seed, 25);
  });
});
