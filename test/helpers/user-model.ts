/**
 * The user-model fuzz's harness (test/integration/user-model-fuzz.test.ts; user-model-lifecycle-fuzz.test.ts
 * extends it): a daemon process, three tenants, the model and the steps.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ArrayInfo, LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from './daemon-process';
import { rng } from './rng';
import { tokenSha256, writeTenantsFile } from './tenants-file';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const TENANTS = ['t0', 't1', 't2'] as const;
export type Tenant = (typeof TENANTS)[number];
/** Each tenant's quotas and max_leases as the tenants file starts them. */
export const QUOTA = { device: 3 * MiB, host: 2 * MiB };
export const MAX_LEASES = 3;
export const roundUp = (bytes: number, unit: number) => Math.ceil(bytes / unit) * unit;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface MArray {
  id: string;
  lease: MLease;
  size: number;
  placement: 'PLACEMENT_DEVICE' | 'PLACEMENT_HOST_ONLY';
  exportable: boolean;
  /** Device arrays: a host mirror is held. */
  mirror: boolean;
  /** The host side lives in a region of its own (exportable, or exported). */
  hostRegion: boolean;
  /** null: unknown (a write was cut). */
  bytes: Uint8Array | null;
}

export interface MLease {
  session: LeaseSession;
  tenant: Tenant;
  arrays: Map<string, MArray>;
  /** Byte sizes of arrays in a workspace by id (their memory is the workspace's held_bytes). */
  attached: Map<string, number>;
  workspaces: Set<string>;
}

/** Bytes a detached array holds in the device and host pools (or regions of its own). */
export function held(array: MArray): { device: number; host: number } {
  const block = (region: boolean) => (region ? roundUp(Math.max(array.size, 1), 4096) : roundUp(Math.max(array.size, 1), 256));
  if (array.placement === 'PLACEMENT_HOST_ONLY') return { device: 0, host: block(array.hostRegion) };
  // The host backend's emulated device memory is never exported (no CUDA IPC): its block stays in the pool.
  return { device: block(false), host: array.mirror ? block(array.hostRegion) : 0 };
}

export const ALLOWED: Record<string, Status[]> = {
  openLease: [Status.OK, Status.RESOURCE_EXHAUSTED],
  allocate: [Status.OK, Status.RESOURCE_EXHAUSTED, Status.FAILED_PRECONDITION],
  allocateWait: [Status.OK, Status.RESOURCE_EXHAUSTED, Status.FAILED_PRECONDITION, Status.DEADLINE_EXCEEDED, Status.CANCELLED],
  read: [Status.OK, Status.RESOURCE_EXHAUSTED],
  write: [Status.OK],
  export: [Status.OK, Status.RESOURCE_EXHAUSTED],
  duplicate: [Status.OK, Status.RESOURCE_EXHAUSTED],
  sync: [Status.OK, Status.RESOURCE_EXHAUSTED],
  attached: [Status.OK, Status.FAILED_PRECONDITION, Status.NOT_FOUND, Status.RESOURCE_EXHAUSTED],
  workspace: [Status.OK, Status.FAILED_PRECONDITION, Status.RESOURCE_EXHAUSTED],
  createWorkspace: [Status.OK, Status.RESOURCE_EXHAUSTED, Status.INVALID_ARGUMENT, Status.ALREADY_EXISTS],
};

/**
 * A lease with workspaces may have one current: a new array goes into it, which refuses what its
 * kind cannot hold (INVALID_ARGUMENT: HOST_ONLY in a FULL workspace, exportable) and, outside its
 * scope, any new array (FAILED_PRECONDITION, ARRAY_OUT_OF_SCOPE).
 */
function allowedIn(lease: MLease, codes: Status[]): Status[] {
  return lease.workspaces.size > 0 ? [...codes, Status.INVALID_ARGUMENT, Status.FAILED_PRECONDITION] : codes;
}

export class Harness {
  readonly random: () => number;
  readonly leases: MLease[] = [];
  readonly log: string[] = [];
  readonly tokens: Record<Tenant | 'admin', string>;
  client!: TensormemClient;
  daemon!: DaemonProcess;
  dataAddress = '';
  labelCount = 0;
  /** Each tenant's used bytes at the last check. */
  readonly lastUsed = new Map<Tenant, { device: number; host: number }>();

  constructor(readonly seed: number) {
    this.random = rng(seed);
    this.tokens = { t0: randomBytes(16).toString('hex'), t1: randomBytes(16).toString('hex'), t2: randomBytes(16).toString('hex'), admin: randomBytes(16).toString('hex') };
  }

  int(below: number): number {
    return Math.floor(this.random() * below);
  }
  pick<T>(values: readonly T[]): T {
    return values[this.int(values.length)];
  }
  chance(p: number): boolean {
    return this.random() < p;
  }

  /** The tenants file: `tenant`'s entry with `quota` (YAML flow mapping text) and `maxLeases`, and the admin. */
  tenantsYaml(entries: Array<{ tenant: Tenant; quota: string; maxLeases: number }>): string {
    const lines = entries.map(({ tenant, quota, maxLeases }) => `  - name: ${tenant}\n    token_sha256: "${tokenSha256(this.tokens[tenant])}"\n    quota: { ${quota} }\n    max_leases: ${maxLeases}`);
    return `tenants:\n${lines.join('\n')}\n  - name: ops\n    token_sha256: "${tokenSha256(this.tokens.admin)}"\n    admin: true\n`;
  }

  /** The daemon's flags: the tenants file is `tenantsPath`. */
  daemonFlags(tenantsPath: string): string[] {
    return ['--tenants', tenantsPath, '--maxbytes', '5M', '--host-maxbytes', '16M', '--pool-chunk', '1M', '--data-listen', '127.0.0.1:0', '--max-wait', '3s', '--log-level', 'info'];
  }

  /** The tenants file as the daemon starts. */
  initialTenants(): string {
    return this.tenantsYaml(TENANTS.map((tenant) => ({ tenant, quota: 'device: 3M, host: 2M', maxLeases: MAX_LEASES })));
  }

  // The limits in force for a tenant (a reload may change them: see the lifecycle harness).
  quotaOf(_tenant: Tenant): { device: number; host: number } {
    return QUOTA;
  }
  maxLeasesOf(_tenant: Tenant): number {
    return MAX_LEASES;
  }

  async start(): Promise<void> {
    this.daemon = await startDaemon(this.daemonFlags(writeTenantsFile(this.initialTenants())));
    this.dataAddress = this.daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    this.client = new TensormemClient(this.daemon.tcpAddress, { dataPlane: { thresholdBytes: 0 }, chunkBytes: 64 * KiB });
  }

  async stop(): Promise<void> {
    this.client?.close();
    expect(await this.daemon?.stop()).toBe(0);
  }

  /** Runs `call`; its outcome as a status code (OK or the error's). Anything else thrown is rethrown. */
  async outcome<T>(what: string, allowed: Status[], call: () => Promise<T>): Promise<{ code: Status; value?: T; error?: TensormemClientError }> {
    try {
      const value = await call();
      this.log.push(`  ${what}: OK`);
      return { code: Status.OK, value };
    } catch (error) {
      if (!(error instanceof TensormemClientError)) throw error;
      this.log.push(`  ${what}: ${Status[error.code]} ${error.reason ?? ''} ${error.details.slice(0, 160)}`);
      if (!allowed.includes(error.code)) throw new Error(`${what}: ${Status[error.code]} (${error.reason}) is not one of ${allowed.map((c) => Status[c]).join(', ')}: ${error.details}`);
      return { code: error.code, error };
    }
  }

  detached(lease?: MLease): MArray[] {
    return (lease ? [lease] : this.leases).flatMap((l) => [...l.arrays.values()]);
  }

  newLabel(): string {
    return `fuzz-${this.seed}-${++this.labelCount}`;
  }

  /** The model's record of an array the daemon answered. */
  adopt(lease: MLease, info: ArrayInfo, exportable: boolean, bytes: Uint8Array | null): void {
    if (info.workspace_id !== '' || info.attached) {
      lease.attached.set(info.array_id, Number(info.byte_size));
      return;
    }
    const size = Number(info.byte_size);
    lease.arrays.set(info.array_id, {
      id: info.array_id,
      lease,
      size,
      placement: info.placement as MArray['placement'],
      exportable,
      mirror: false,
      hostRegion: exportable,
      bytes,
    });
  }

  // ---- steps ----

  async openLease(): Promise<void> {
    const tenant = this.pick(TENANTS);
    const open = this.leases.filter((l) => l.tenant === tenant).length;
    const result = await this.outcome(`openLease ${tenant}`, [...ALLOWED.openLease, Status.UNAUTHENTICATED], () => this.client.openLease({ tenantToken: this.tokens[tenant], ttlSeconds: 300 }));
    expect(Status[result.code], `OpenLease of ${tenant} with ${open} leases open`).toBe(Status[this.expectedOpen(tenant, open)]);
    if (result.code === Status.OK) this.leases.push({ session: result.value!, tenant, arrays: new Map(), attached: new Map(), workspaces: new Set() });
  }

  /** What OpenLease of `tenant` answers while it has `open` leases: max_leases refuses past the limit. */
  expectedOpen(tenant: Tenant, open: number): Status {
    return open < this.maxLeasesOf(tenant) ? Status.OK : Status.RESOURCE_EXHAUSTED;
  }

  /** A lease that ended (closed, evicted, expired) leaves the model. */
  forget(lease: MLease): void {
    this.leases.splice(this.leases.indexOf(lease), 1);
  }

  /** A workspace that DestroyWorkspace destroyed leaves the model. */
  forgetWorkspace(lease: MLease, id: string): void {
    lease.workspaces.delete(id);
  }

  async closeLease(lease: MLease): Promise<void> {
    const expected = await this.leaseBytes(lease);
    const freed = await lease.session.close();
    this.log.push(`  close ${lease.session.leaseId}: freed ${freed}, model ${expected}`);
    expect(Number(freed), 'CloseLease freed_bytes').toBe(expected);
    await this.ended([lease]);
  }

  /** Bytes a lease gives back when it ends: its detached arrays and its workspaces' buffers. */
  async leaseBytes(lease: MLease): Promise<number> {
    return this.detached(lease).reduce((sum, a) => sum + held(a).device + held(a).host, 0) + (await this.workspaceHeld(lease));
  }

  /**
   * `leases` ended: they leave the model; a tenant with none left uses no byte, and once no lease is
   * open /dev/shm holds no region of the daemon.
   */
  async ended(leases: MLease[]): Promise<void> {
    for (const lease of leases) this.forget(lease);
    for (const tenant of new Set(leases.map((lease) => lease.tenant))) {
      if (this.leases.some((l) => l.tenant === tenant)) continue;
      const row = await this.tenantRow(tenant);
      expect(Number(row?.used_bytes ?? 0), `tenant ${tenant} used bytes after its last lease`).toBe(0);
    }
    if (this.leases.length === 0) expect(this.shmNames(), '/dev/shm regions once no lease is open').toEqual([]);
  }

  async workspaceHeld(lease: MLease): Promise<number> {
    if (lease.workspaces.size === 0) return 0;
    const workspaces = await lease.session.listWorkspaces();
    return workspaces.reduce((sum, w) => sum + (w.config?.location_policy === 'LOCATION_POLICY_MMAP' ? 0 : Number(w.held_bytes)), 0);
  }

  async allocate(lease: MLease, wait: boolean): Promise<void> {
    const size = this.pick([0, 1, 100, 256, 1000, 4096, 5000, 65536, 300 * KiB, 1 * MiB, 2 * MiB]);
    const placement = this.pick(['PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY'] as const);
    const exportable = this.chance(0.25);
    const label = this.newLabel();
    const abort = wait && this.chance(0.5) ? new AbortController() : undefined;
    const options = { dataType: 'DATA_TYPE_UINT8' as const, shape: [size], placement, exportable, zero: this.chance(0.3), label, waitForMemory: wait, deadlineMs: wait ? 100 + this.int(900) : undefined, signal: abort?.signal };
    if (abort) setTimeout(() => abort.abort(new Error('fuzz abort')), this.int(400)).unref();
    const result = await this.outcome(`allocate ${lease.tenant} ${placement} ${size} exportable=${exportable} wait=${wait} ${label}`, allowedIn(lease, wait ? ALLOWED.allocateWait : ALLOWED.allocate), () => lease.session.allocate(options));
    if (result.code === Status.OK) this.adopt(lease, result.value!, exportable, new Uint8Array(size));
    else if (result.code === Status.CANCELLED || result.code === Status.DEADLINE_EXCEEDED) {
      // An abort or deadline after the daemon allocated leaves the array in the lease (README).
      await sleep(50);
      const found = (await lease.session.list()).find((a) => a.label === label);
      this.log.push(`    after ${Status[result.code]}: ${found ? 'allocated' : 'not allocated'}`);
      if (found) this.adopt(lease, found, exportable, new Uint8Array(size));
    }
  }

  /** A waiting allocation of one tenant and a free of another's device array beside it. */
  async waitWhileFreeing(): Promise<void> {
    const waiter = this.pick(this.leases);
    const victims = this.detached().filter((a) => a.lease.tenant !== waiter.tenant && a.placement === 'PLACEMENT_DEVICE');
    const waiting = this.allocate(waiter, true);
    if (victims.length > 0) {
      await sleep(this.int(100));
      await this.free(this.pick(victims));
    }
    await waiting;
  }

  async free(array: MArray): Promise<void> {
    const expected = held(array).device + held(array).host;
    const freed = await array.lease.session.free(array.id);
    this.log.push(`  free ${array.id} (${array.placement} ${array.size} mirror=${array.mirror} region=${array.hostRegion}): freed ${freed}, model ${expected}`);
    array.lease.arrays.delete(array.id);
    expect(Number(freed), 'FreeArray freed_bytes').toBe(expected);
  }

  randomRange(array: MArray): { offset: number; length: number } {
    if (array.size === 0 || this.chance(0.3)) return { offset: 0, length: array.size };
    const offset = this.int(array.size);
    return { offset, length: 1 + this.int(array.size - offset) };
  }

  async write(array: MArray): Promise<void> {
    const { offset, length } = this.randomRange(array);
    const data = randomBytes(length);
    const viaHttp = this.chance(0.5);
    const result = await this.outcome(`write ${array.id} @${offset}+${length} via ${viaHttp ? 'http' : 'grpc'}`, ALLOWED.write, () =>
      viaHttp ? array.lease.session.write(array.id, data, offset) : array.lease.session.writeGrpc(array.id, data, offset),
    );
    if (result.code === Status.OK) {
      expect(result.value).toBe(length);
      array.bytes?.set(data, offset);
    }
  }

  async read(array: MArray): Promise<void> {
    const { offset, length } = this.randomRange(array);
    const viaHttp = this.chance(0.5);
    const askLength = length === array.size - offset && this.chance(0.5) ? 0 : length;
    const result = await this.outcome(`read ${array.id} @${offset}+${askLength} via ${viaHttp ? 'http' : 'grpc'}`, ALLOWED.read, () =>
      viaHttp ? array.lease.session.read(array.id, offset, askLength) : array.lease.session.readGrpc(array.id, offset, askLength),
    );
    if (result.code !== Status.OK) return;
    // A read of no bytes (a 0-byte array) makes no mirror; SyncArray(TO_HOST) does.
    if (array.placement === 'PLACEMENT_DEVICE' && length > 0) array.mirror = true;
    expect(result.value!.length).toBe(length);
    if (array.bytes) expect(Buffer.compare(result.value!, Buffer.from(array.bytes.subarray(offset, offset + length))), `bytes of ${array.id} @${offset}+${length}`).toBe(0);
  }

  async exportArray(array: MArray): Promise<void> {
    const side = array.placement === 'PLACEMENT_DEVICE' ? 'EXPORT_SIDE_HOST' : this.pick(['EXPORT_SIDE_HOST', 'EXPORT_SIDE_UNSPECIFIED'] as const);
    const result = await this.outcome(`export ${array.id} ${side}`, ALLOWED.export, () => array.lease.session.exportArray(array.id, { side }));
    if (result.code !== Status.OK) return;
    const hadMirror = array.placement === 'PLACEMENT_HOST_ONLY' || array.mirror;
    const expectedMoved = hadMirror && !array.hostRegion;
    this.log.push(`    moved ${result.value!.moved} (model ${expectedMoved})`);
    expect(result.value!.moved, 'ExportArray moved').toBe(expectedMoved);
    array.hostRegion = true;
    if (array.placement === 'PLACEMENT_DEVICE') array.mirror = true;
    if (array.bytes) expect(Buffer.compare(result.value!.bytes!, Buffer.from(array.bytes)), `exported bytes of ${array.id}`).toBe(0);
  }

  async duplicate(array: MArray): Promise<void> {
    const placement = this.pick(['PLACEMENT_UNSPECIFIED', 'PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY'] as const);
    const detached = this.chance(0.7);
    const result = await this.outcome(`duplicate ${array.id} ${placement} detached=${detached}`, allowedIn(array.lease, ALLOWED.duplicate), () => array.lease.session.duplicate(array.id, { placement, detached }));
    if (result.code === Status.OK) this.adopt(array.lease, result.value!, false, array.bytes ? array.bytes.slice() : null);
  }

  async sync(array: MArray): Promise<void> {
    const direction = this.pick(['SYNC_DIRECTION_TO_HOST', 'SYNC_DIRECTION_TO_DEVICE'] as const);
    const result = await this.outcome(`sync ${array.id} (${array.placement} ${array.size} mirror=${array.mirror} region=${array.hostRegion}) ${direction}`, ALLOWED.sync, () => array.lease.session.sync(array.id, direction));
    if (result.code === Status.OK && direction === 'SYNC_DIRECTION_TO_HOST' && array.placement === 'PLACEMENT_DEVICE') array.mirror = true;
  }

  /** Another tenant's lease names this array: NOT_FOUND, over gRPC and HTTP alike, and nothing changes. */
  async crossTenant(array: MArray): Promise<void> {
    const others = this.leases.filter((l) => l.tenant !== array.lease.tenant);
    if (others.length === 0) return;
    const other = this.pick(others).session;
    const length = Math.max(array.size, 1);
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['get', () => other.get(array.id)],
      ['read http', () => other.read(array.id, 0, length)],
      ['read grpc', () => other.readGrpc(array.id, 0, length)],
      ['write http', () => other.write(array.id, Buffer.alloc(length, 7))],
      ['write grpc', () => other.writeGrpc(array.id, Buffer.alloc(length, 7))],
      ['free', () => other.free(array.id)],
      ['export', () => other.exportArray(array.id, { side: 'EXPORT_SIDE_HOST' })],
      ['duplicate', () => other.duplicate(array.id, { detached: true })],
      ['sync', () => other.sync(array.id, 'SYNC_DIRECTION_TO_HOST')],
    ];
    const [name, call] = this.pick(calls);
    const result = await this.outcome(`cross-tenant ${name} of ${array.id}`, [Status.NOT_FOUND], call);
    expect(result.code, `another tenant's ${name}`).toBe(Status.NOT_FOUND);
  }

  /** Bad input through the raw stubs (past the client's own checks): exact codes, nothing changed. */
  async badInput(array: MArray): Promise<void> {
    const md = this.client.metadata(array.lease.session.token);
    const unary = (invoke: (cb: (error: { code: Status } | null) => void) => void) => new Promise<Status>((resolve) => invoke((error) => resolve(error ? error.code : Status.OK)));
    const kinds = ['shape', 'dtype', 'readPastEnd', 'writePastEnd', 'wrongToken', 'freeUnknown'] as const;
    const kind = this.pick(kinds);
    let code: Status;
    let expected: Status;
    if (kind === 'shape') {
      expected = Status.INVALID_ARGUMENT;
      code = await unary((cb) => this.client.arrays.AllocateArray({ lease_id: array.lease.session.leaseId, data_type: 'DATA_TYPE_UINT8', shape: [-5], placement: 'PLACEMENT_DEVICE' }, md, cb));
    } else if (kind === 'dtype') {
      expected = Status.INVALID_ARGUMENT;
      code = await unary((cb) => this.client.arrays.AllocateArray({ lease_id: array.lease.session.leaseId, data_type: 99 as unknown as 'DATA_TYPE_UINT8', shape: [4], placement: 'PLACEMENT_DEVICE' }, md, cb));
    } else if (kind === 'freeUnknown') {
      expected = Status.NOT_FOUND;
      code = await unary((cb) => this.client.arrays.FreeArray({ array_id: `${array.id}x` }, md, cb));
    } else if (kind === 'wrongToken') {
      expected = Status.UNAUTHENTICATED;
      code = await unary((cb) => this.client.arrays.FreeArray({ array_id: array.id }, this.client.metadata('not-a-token'), cb));
    } else if (kind === 'readPastEnd') {
      expected = Status.OUT_OF_RANGE;
      code = await new Promise<Status>((resolve) => {
        const stream = this.client.arrays.ReadArray({ array_id: array.id, offset: array.size + 1, length: 0 }, md);
        stream.on('data', () => {});
        stream.on('error', (error: { code: Status }) => resolve(error.code));
        stream.on('end', () => resolve(Status.OK));
      });
    } else {
      // One chunk that passes the end: refused, and none of it written.
      expected = Status.OUT_OF_RANGE;
      code = await new Promise<Status>((resolve) => {
        const stream = this.client.arrays.WriteArray(md, (error: { code: Status } | null) => resolve(error ? error.code : Status.OK));
        stream.write({ header: { array_id: array.id, offset: Math.max(array.size - 1, 0) } });
        stream.write({ chunk: Buffer.alloc(2, 0xee) });
        stream.end();
      });
    }
    this.log.push(`  bad input ${kind} on ${array.id}: ${Status[code]}`);
    expect(code, `bad input ${kind}`).toBe(expected);
  }

  /** A ReadArray or WriteArray stream cancelled by the client after its first message. */
  async cancelMidStream(array: MArray): Promise<void> {
    const md = this.client.metadata(array.lease.session.token);
    if (this.chance(0.5)) {
      const code = await new Promise<Status>((resolve) => {
        const stream = this.client.arrays.ReadArray({ array_id: array.id, offset: 0, length: 0 }, md);
        stream.on('data', () => stream.cancel());
        stream.on('error', (error: { code: Status }) => resolve(error.code));
        stream.on('end', () => resolve(Status.OK));
      });
      this.log.push(`  cancelled read of ${array.id}: ${Status[code]}`);
      // RESOURCE_EXHAUSTED: no room for a device array's mirror.
      expect([Status.OK, Status.CANCELLED, Status.RESOURCE_EXHAUSTED]).toContain(code);
      if (code === Status.RESOURCE_EXHAUSTED) return;
      if (array.placement === 'PLACEMENT_DEVICE' && array.size > 0) array.mirror = true;
    } else {
      const code = await new Promise<Status>((resolve) => {
        const stream = this.client.arrays.WriteArray(md, (error: { code: Status } | null) => resolve(error ? error.code : Status.OK));
        stream.write({ header: { array_id: array.id, offset: 0 } });
        stream.write({ chunk: Buffer.alloc(Math.min(array.size, 1000), 0x5a) });
        setTimeout(() => stream.cancel(), this.int(20));
      });
      this.log.push(`  cancelled write of ${array.id}: ${Status[code]}`);
      expect([Status.OK, Status.CANCELLED]).toContain(code);
      array.bytes = null;
    }
  }

  /** A client process writing the array (or an array of a lease of its own) killed mid-transfer. */
  async killedChild(array: MArray): Promise<void> {
    const via = this.pick(['http', 'grpc']);
    const own = this.chance(0.4);
    const token = own ? this.tokens[array.lease.tenant] : array.lease.session.token;
    const bytes = own ? 1 * MiB : array.size;
    const child: ChildProcess = spawn(process.execPath, [join(__dirname, 'transfer-process.js'), this.daemon.tcpAddress, token, array.id, String(bytes), via, this.dataAddress, own ? '1' : '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const started = await new Promise<string>((resolve) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', () => resolve('exited'));
    });
    await sleep(this.int(30));
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
    this.log.push(`  child ${via} own=${own} on ${array.id} (${array.size}): ${started}, killed`);
    if (!own) {
      if (array.size > 0) array.bytes = null;
    }
    if (own) await this.untilLeaseCount(array.lease.tenant);
    if (started.startsWith('failed')) {
      // Its own lease could be refused (max_leases, quota): fine; a write of the parent's array must start.
      expect(own, `child: ${started}`).toBe(true);
    }
  }

  /**
   * The killed child's own lease ends once the daemon sees its KeepAlive stream drop (release on
   * disconnect), or by its 2 s TTL when it was killed before the stream was open: within 5 s.
   */
  async untilLeaseCount(tenant: Tenant): Promise<void> {
    const expected = this.leases.filter((l) => l.tenant === tenant).length;
    const started = Date.now();
    for (;;) {
      const row = await this.tenantRow(tenant);
      if (Number(row?.leases ?? 0) === expected) return;
      if (Date.now() - started > 5000) throw new Error(`tenant ${tenant} still has ${row?.leases} leases 5 s after its killed child's (model ${expected})`);
      await sleep(50);
    }
  }

  async createWorkspace(lease: MLease): Promise<void> {
    const config = {
      initial_size: this.pick([0, 0, 4096, 64 * KiB, 512 * KiB]),
      learning_policy: this.pick(['LEARNING_POLICY_FIRST_LOOP', 'LEARNING_POLICY_OVER_TIME', 'LEARNING_POLICY_NONE'] as const),
      spill_policy: this.pick(['SPILL_POLICY_EXTERNAL', 'SPILL_POLICY_REALLOCATE', 'SPILL_POLICY_FAIL'] as const),
      reset_policy: this.pick(['RESET_POLICY_BLOCK_LEFT', 'RESET_POLICY_ENDOFBUFFER_REACHED'] as const),
      mirroring_policy: this.pick(['MIRRORING_POLICY_FULL', 'MIRRORING_POLICY_HOST_ONLY'] as const),
      allocation_policy: this.pick(['ALLOCATION_POLICY_STRICT', 'ALLOCATION_POLICY_OVERALLOCATE'] as const),
      cycles_before_initialization: this.int(3),
    };
    const name = `ws-${this.int(3)}`;
    const result = await this.outcome(`createWorkspace ${name} ${JSON.stringify(config)}`, ALLOWED.createWorkspace, () => lease.session.createWorkspace(name, config));
    if (result.code === Status.OK) lease.workspaces.add(result.value!.workspace_id);
  }

  async workspaceStep(lease: MLease): Promise<void> {
    const ids = [...lease.workspaces];
    if (ids.length === 0) return this.createWorkspace(lease);
    const id = this.pick(ids);
    const op = this.pick(['enter', 'enter', 'leave', 'leave', 'scopeOut', 'borrow', 'destroy', 'initialize', 'allocateIn', 'allocateIn', 'allocateIn'] as const);
    const s = lease.session;
    if (op === 'allocateIn') {
      const size = this.pick([16, 100, 1000, 4096, 65536, 300 * KiB]);
      const placement = this.pick(['PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY'] as const);
      const named = this.chance(0.5);
      const result = await this.outcome(`allocate in ${named ? id : 'current'} ${placement} ${size}`, allowedIn(lease, ALLOWED.allocate), () =>
        s.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement, workspaceId: named ? id : undefined, label: this.newLabel() }),
      );
      if (result.code === Status.OK) this.adopt(lease, result.value!, false, new Uint8Array(size));
      return;
    }
    const calls = { enter: () => s.enterWorkspace(id), leave: () => s.leaveWorkspace(id), scopeOut: () => s.scopeOut(), borrow: () => s.borrowWorkspace(id), destroy: () => s.destroyWorkspace(id), initialize: () => s.initializeWorkspace(id) };
    const result = await this.outcome(`${op} ${id}`, ALLOWED.workspace, calls[op]);
    if (op === 'destroy' && result.code === Status.OK) this.forgetWorkspace(lease, id);
  }

  /** An attached array used as a detached one would be: read, write, free, export, duplicate. */
  async attachedStep(lease: MLease): Promise<void> {
    const [id, size] = this.pick([...lease.attached]);
    const s = lease.session;
    const op = this.pick(['read', 'write', 'free', 'export', 'duplicate'] as const);
    const calls: Record<typeof op, () => Promise<unknown>> = {
      read: () => s.readGrpc(id, 0, 0),
      write: () => s.writeGrpc(id, Buffer.alloc(Math.min(size, 16), 1)),
      free: () => s.free(id),
      export: () => s.exportArray(id, { side: 'EXPORT_SIDE_HOST' }),
      duplicate: () => s.duplicate(id, { detached: true }),
    };
    const result = await this.outcome(`attached ${op} ${id}`, ALLOWED.attached, calls[op]);
    if (op === 'export' && result.code === Status.OK) throw new Error(`ExportArray of attached array ${id} succeeded`);
    if (op === 'free' && result.code === Status.OK) lease.attached.delete(id);
    if (op === 'duplicate' && result.code === Status.OK) this.adopt(lease, result.value as ArrayInfo, false, null);
  }

  async tenantRow(tenant: Tenant) {
    const info = await this.client.memoryInfo(this.tokens.admin);
    return info.tenants.find((t) => t.tenant === tenant);
  }

  /** Per tenant, the daemon's used bytes are the model's. */
  async checkAccounting(): Promise<void> {
    const info = await this.client.memoryInfo(this.tokens.admin);
    let deviceSum = 0;
    let hostSum = 0;
    for (const tenant of TENANTS) {
      const row = info.tenants.find((t) => t.tenant === tenant);
      const leases = this.leases.filter((l) => l.tenant === tenant);
      let device = 0;
      let host = 0;
      for (const array of this.detached().filter((a) => a.lease.tenant === tenant)) {
        device += held(array).device;
        host += held(array).host;
      }
      let workspaces = 0;
      for (const lease of leases) workspaces += await this.workspaceHeld(lease);
      const usedDevice = Number(row?.device_used_bytes ?? 0);
      const usedHost = Number(row?.host_used_bytes ?? 0);
      deviceSum += usedDevice;
      hostSum += usedHost;
      const where = `tenant ${tenant}: daemon device ${usedDevice} host ${usedHost}, model device ${device} host ${host} workspaces ${workspaces}`;
      expect(Number(row?.leases ?? 0), where).toBe(leases.length);
      // A reload that lowers a quota below the use refuses new allocations only: use that grew is within it.
      const before = this.lastUsed.get(tenant) ?? { device: 0, host: 0 };
      if (usedDevice > before.device) expect(usedDevice, `${where}: device quota`).toBeLessThanOrEqual(this.quotaOf(tenant).device);
      if (usedHost > before.host) expect(usedHost, `${where}: host quota`).toBeLessThanOrEqual(this.quotaOf(tenant).host);
      this.lastUsed.set(tenant, { device: usedDevice, host: usedHost });
      if (workspaces === 0 && !leases.some((l) => l.workspaces.size > 0)) {
        expect({ device: usedDevice, host: usedHost }, where).toEqual({ device, host });
      } else expect(usedDevice + usedHost, where).toBe(device + host + workspaces);
    }
    expect(Number(info.devices[0].used_bytes), 'device pool used = the tenants').toBe(deviceSum);
    expect(Number(info.host!.used_bytes), 'host pool used = the tenants').toBe(hostSum);
  }

  async step(): Promise<void> {
    if (this.leases.length === 0 || (this.leases.length < 5 && this.chance(0.06))) return this.openLease();
    const lease = this.pick(this.leases);
    const arrays = this.detached(lease);
    const roll = this.random();
    if (roll < 0.03) return this.closeLease(lease);
    if (roll < 0.2 || arrays.length === 0) return this.allocate(lease, this.chance(0.15));
    if (roll < 0.24) return this.waitWhileFreeing();
    if (roll < 0.42) return this.createWorkspaceOrStep(lease);
    if (roll < 0.48 && lease.attached.size > 0) return this.attachedStep(lease);
    const array = this.pick(arrays);
    const ops: Array<() => Promise<void>> = [
      () => this.free(array),
      () => this.write(array),
      () => this.write(array),
      () => this.read(array),
      () => this.read(array),
      () => this.exportArray(array),
      () => this.duplicate(array),
      () => this.sync(array),
      () => this.crossTenant(array),
      () => this.badInput(array),
      () => this.cancelMidStream(array),
    ];
    if (this.chance(0.03)) return this.killedChild(array);
    if (this.chance(0.15)) return this.burst(lease);
    return this.pick(ops)();
  }

  /**
   * 2 to 4 calls at once on one lease's arrays (transfers, free, export, duplicate, sync, allocate, at
   * times the lease's close). Each may answer only as some order of them would: an array no call freed
   * (and whose lease no call closed) is never NOT_FOUND, and after the burst the accounting is exact
   * again (a mirror exists once a host access of it answered OK).
   */
  async burst(lease: MLease): Promise<void> {
    const arrays = this.detached(lease);
    const targets = [this.pick(arrays), this.pick(arrays)];
    const s = lease.session;
    type Op = { name: string; array?: MArray; kind: string; run: () => Promise<unknown> };
    const ops: Op[] = [];
    const count = 2 + this.int(3);
    for (let i = 0; i < count; i++) {
      const array = this.pick(targets);
      const length = array.size;
      const kind = this.chance(0.04) ? 'close' : this.pick(['readHttp', 'readGrpc', 'writeHttp', 'writeGrpc', 'free', 'export', 'duplicate', 'syncToHost', 'allocate'] as const);
      const data = randomBytes(length);
      const runs: Record<string, () => Promise<unknown>> = {
        readHttp: () => s.read(array.id, 0, length),
        readGrpc: () => s.readGrpc(array.id, 0, length),
        writeHttp: () => s.write(array.id, data),
        writeGrpc: () => s.writeGrpc(array.id, data),
        free: () => s.free(array.id),
        export: () => s.exportArray(array.id, { side: 'EXPORT_SIDE_HOST' }),
        duplicate: () => s.duplicate(array.id, { detached: true }),
        syncToHost: () => s.sync(array.id, 'SYNC_DIRECTION_TO_HOST'),
        allocate: () => s.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [this.pick([100, 4096, 300 * KiB])], placement: this.pick(['PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY'] as const) }),
        close: () => s.close(),
      };
      ops.push({ name: `${kind} ${array.id}`, array: kind === 'close' || kind === 'allocate' ? undefined : array, kind, run: runs[kind] });
    }
    this.log.push(`  burst: ${ops.map((o) => o.name).join(', ')}`);
    const allowed = [Status.OK, Status.NOT_FOUND, Status.FAILED_PRECONDITION, Status.UNAUTHENTICATED, Status.RESOURCE_EXHAUSTED, Status.INVALID_ARGUMENT];
    const results = await Promise.all(ops.map((op) => this.outcome(`  ${op.name}`, allowed, op.run)));
    const closed = ops.some((op, i) => op.kind === 'close' && results[i].code === Status.OK);
    const freed = new Set(ops.filter((op, i) => op.kind === 'free' && results[i].code === Status.OK).map((op) => op.array!.id));
    for (const [i, op] of ops.entries()) {
      const code = results[i].code;
      const mayBeGone = closed || ops.some((o) => o.kind === 'close') || (op.array && ops.some((o) => o.kind === 'free' && o.array === op.array));
      if (code !== Status.OK && code !== Status.RESOURCE_EXHAUSTED && !mayBeGone) {
        // INVALID_ARGUMENT: a workspace of the lease refuses what it cannot hold; FAILED_PRECONDITION: its scope is not open.
        const workspaceRefusal = (op.kind === 'allocate' || op.kind === 'duplicate') && lease.workspaces.size > 0 && (code === Status.INVALID_ARGUMENT || code === Status.FAILED_PRECONDITION);
        if (!workspaceRefusal) throw new Error(`burst: ${op.name} answered ${Status[code]} (${results[i].error?.details}) with no free or close of it beside it`);
      }
      if (code === Status.OK && op.kind === 'write') expect(results[i].value).toBe(op.array!.size);
    }
    if (closed) {
      this.forget(lease);
      return;
    }
    // A close that failed: the lease lives (its calls around it answered as they would).
    for (const array of targets) {
      if (freed.has(array.id)) {
        lease.arrays.delete(array.id);
        continue;
      }
      const on = ops.map((op, i) => ({ op, result: results[i] })).filter(({ op }) => op.array === array);
      const ok = (kinds: string[]) => on.some(({ op, result }) => kinds.includes(op.kind) && result.code === Status.OK);
      if (array.placement === 'PLACEMENT_DEVICE' && (ok(['syncToHost', 'export']) || (array.size > 0 && ok(['readHttp', 'readGrpc'])))) array.mirror = true;
      if (ok(['export'])) array.hostRegion = true;
      if (on.some(({ op }) => op.kind.startsWith('write'))) array.bytes = null;
    }
    for (const [i, op] of ops.entries()) {
      if (results[i].code !== Status.OK) continue;
      if (op.kind === 'allocate') {
        const info = results[i].value as ArrayInfo;
        this.adopt(lease, info, false, new Uint8Array(Number(info.byte_size)));
      }
      if (op.kind === 'duplicate') {
        const source = op.array!;
        const written = ops.some((o) => o.kind.startsWith('write') && o.array === source);
        this.adopt(lease, results[i].value as ArrayInfo, false, written || !source.bytes ? null : source.bytes.slice());
      }
    }
  }

  createWorkspaceOrStep(lease: MLease): Promise<void> {
    return lease.workspaces.size === 0 || this.chance(0.15) ? this.createWorkspace(lease) : this.workspaceStep(lease);
  }

  /** /dev/shm names of this daemon's regions. */
  shmNames(): string[] {
    return readdirSync('/dev/shm').filter((name) => name.startsWith(`tensormem-${this.daemon.child.pid}-`));
  }

  async run(steps: number): Promise<void> {
    for (let i = 0; i < steps; i++) {
      this.log.push(`step ${i}`);
      await this.step();
      await this.checkAccounting();
    }
    while (this.leases.length > 0) await this.closeLease(this.leases[0]);
    await this.checkAccounting();
    const info = await this.client.memoryInfo(this.tokens.admin);
    expect(Number(info.devices[0].used_bytes)).toBe(0);
    expect(Number(info.host!.used_bytes)).toBe(0);
    expect(this.shmNames(), '/dev/shm regions after every lease ended').toEqual([]);
  }
}

/**
 * One vitest case per seed: `make(seed)` started, run for the steps, stopped. `PREFIX`_SEED (first seed,
 * default 1), `PREFIX`_SEEDS (how many, default 1), `PREFIX`_STEPS (default `steps`) and `PREFIX`_LOG (a
 * file name prefix: each seed's step log is written to it) from the environment.
 */
export function fuzzSeeds(title: string, prefix: string, steps: number, make: (seed: number) => Harness): void {
  const firstSeed = Number(process.env[`${prefix}_SEED`] ?? 1);
  const seeds = Number(process.env[`${prefix}_SEEDS`] ?? 1);
  const stepCount = Number(process.env[`${prefix}_STEPS`] ?? steps);
  const logPrefix = process.env[`${prefix}_LOG`];
  describe(title, () => {
    for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
      it(`seed ${seed}, ${stepCount} steps`, { timeout: 60_000 + stepCount * 2000 }, async () => {
        const harness = make(seed);
        await harness.start();
        try {
          await harness.run(stepCount);
        } catch (error) {
          const tail = harness.log.slice(-40).join('\n');
          throw new Error(`seed ${seed}: ${(error as Error).message}\nlast steps:\n${tail}`, { cause: error });
        } finally {
          if (logPrefix) writeFileSync(`${logPrefix}-${seed}.log`, harness.log.join('\n'));
          await harness.stop();
        }
      });
    }
  });
}
