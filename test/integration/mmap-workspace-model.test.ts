/**
 * MMAP workspaces of a daemon process, model-based: two tenants (one with quota.mmap), two leases of
 * each, --mmap-maxbytes and --max-mapped-regions set low, driven through seeded random sequences of
 * CreateWorkspace (a named file of the tenant's, or a temporary one; sizes below, at and above a file's
 * length; names again with the same configuration), Enter/Leave/DestroyWorkspace, AllocateArray into a
 * workspace (zeroed or not: the file's bytes show), WriteArray / data plane PUT, ReadArray / data plane
 * GET, and CloseLease (a new lease of the tenant then). Most steps run one at a time; every few steps 2
 * to 4 calls of any leases are issued together, and their answers must be what some order of them one
 * at a time gives in the model.
 *
 * The model is README's Workspaces section ("MMAP workspaces map a real file ...") and
 * reference/nd4j-semantics.md §13 (sizes, 16 KiB rounding, contents kept), with the caps' order of
 * checks (quota.mmap, --mmap-maxbytes, --max-mapped-regions, then a file mapped already that would be
 * re-created) and their numbers. After each step: every workspace's counters, MemoryInfo's
 * host.mmap_bytes and host.used_bytes (spills), each tenant's mmap_used_bytes, each lease's
 * LeaseSummary.mmap_bytes (the files its workspaces map, each file once), the files on disk (names,
 * lengths and bytes; no temporary file left in --mmap-dir; no folder left by a refused workspace).
 */
import { createHash, randomBytes as cryptoRandomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import type { LeaseSession } from '../../src/client/lease-session';
import type { WorkspaceInfo__Output } from '../../src/generated/tensormem/v1/WorkspaceInfo';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { deepClone } from '../helpers/deep-clone';
import { permutations } from '../helpers/permutations';
import { rng } from '../helpers/rng';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';
import { align16, ModelBacking, ModelError, MScope, MWorkspace, poolBytes, refuseOutOfScopeArray } from '../helpers/workspace-model';
import type { MAlloc, ModelConfig } from '../helpers/workspace-model';

const FILL = 16384;
const rounded = (n: number) => Math.ceil(n / FILL) * FILL;
const QUOTA_A = 5 * FILL;
const MMAP_MAX = 9 * FILL;
const MAX_REGIONS = 6;
const TENANTS = ['qa', 'qb'] as const;
type Tenant = (typeof TENANTS)[number];
const TOKENS: Record<Tenant | 'admin', string> = { qa: cryptoRandomBytes(24).toString('hex'), qb: cryptoRandomBytes(24).toString('hex'), admin: cryptoRandomBytes(24).toString('hex') };
const QUOTAS: Record<Tenant, number> = { qa: QUOTA_A, qb: 0 };

/** qa with quota.mmap, qb without, and an admin (MemoryInfo, ListLeases of every lease). */
const TENANTS_FILE = `tenants:
  - name: qa
    token_sha256: "${tokenSha256(TOKENS.qa)}"
    quota: { mmap: ${QUOTA_A} }
  - name: qb
    token_sha256: "${tokenSha256(TOKENS.qb)}"
  - name: ops
    token_sha256: "${tokenSha256(TOKENS.admin)}"
    admin: true
`;

const INITIAL_SIZES = [0, 1000, 1000, 16384, 20000, 40000];
const PATHS = ['w.bin', 'w.bin', 'd/x.bin', 'd/e/y.bin', undefined, undefined];
const ARRAY_SIZES = [1, 16, 100, 1000, 4000, 9000];

const hex = (bytes: Uint8Array) => `${bytes.length}:${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`;

// ---------------------------------------------------------------------------------------------------
// The model.

/** A file of --mmap-dir: a tenant's named file (kept once unmapped) or a workspace's temporary one. */
interface MFile {
  tenant: Tenant;
  /** Relative to the tenant's folder; undefined for a temporary file. */
  path?: string;
  content: Uint8Array;
  /** Live workspaces that map it. */
  mappings: number;
}

interface MWs {
  ws: MWorkspace;
  name: string;
  initialSize: number;
  path?: string;
  file: string;
}

interface MLease {
  tenant: Tenant;
  closed: boolean;
  scope: MScope;
  backing: ModelBacking;
  workspaces: Map<string, MWs>;
}

interface MArray {
  lease: string;
  ws: string;
  size: number;
  alloc: MAlloc;
  /** The file and offset it lives at (in the workspace), or its own bytes (a spill). */
  file?: string;
  offset: number;
  own?: Uint8Array;
}

interface World {
  files: Map<string, MFile>;
  leases: Map<string, MLease>;
  arrays: Map<string, MArray>;
  regions: number;
}

type Op =
  | { kind: 'create'; lease: string; name: string; initialSize: number; path?: string }
  | { kind: 'enter' | 'leave' | 'destroy' | 'get'; lease: string; ws: string }
  | { kind: 'allocate'; lease: string; ws: string; bytes: number; zero: boolean }
  | { kind: 'read'; array: string; http: boolean }
  | { kind: 'write'; array: string; offset: number; data: Uint8Array; http: boolean }
  | { kind: 'close'; lease: string };

type Info = Record<string, number | boolean | string>;
type Outcome = { error?: string; meta?: Record<string, string>; info?: Info; id?: string; generation?: number; bytes?: string; ok?: true; freed?: number };

const fileKey = (tenant: Tenant, path: string) => `${tenant}/${path}`;
const mappedBytes = (world: World, tenant?: Tenant) => [...world.files.values()].filter((file) => file.mappings > 0 && (tenant === undefined || file.tenant === tenant)).reduce((sum, file) => sum + file.content.length, 0);

function configOf(initialSize: number, path?: string) {
  return { initial_size: initialSize, location_policy: 'LOCATION_POLICY_MMAP' as const, learning_policy: 'LEARNING_POLICY_NONE' as const, temp_file_path: path };
}

function modelConfig(initialSize: number): ModelConfig {
  return {
    initialSize,
    minSize: 0,
    maxSize: 0,
    overallocationLimit: 0.3,
    allocationPolicy: 'OVERALLOCATE',
    learningPolicy: 'NONE',
    spillPolicy: 'EXTERNAL',
    resetPolicy: 'BLOCK_LEFT',
    mirroringPolicy: 'FULL',
    locationPolicy: 'MMAP',
    cyclesBeforeInitialization: 0,
  };
}

function liveLease(world: World, id: string): MLease {
  const lease = world.leases.get(id)!;
  if (lease.closed) throw new ModelError('UNAUTHENTICATED', 'LEASE_EXPIRED');
  return lease;
}

function lookup(world: World, leaseId: string, id: string): MWs {
  const ws = liveLease(world, leaseId).workspaces.get(id);
  if (ws === undefined || ws.ws.destroyed) throw new ModelError('NOT_FOUND', 'WORKSPACE_NOT_FOUND');
  return ws;
}

function modelInfo(world: World, entry: MWs): Info {
  const { ws } = entry;
  const spills = ws.external.reduce((sum, { block }) => sum + (block.live ? poolBytes(block.bytes) : 0), 0);
  return {
    name: entry.name,
    current_size: ws.currentSize,
    primary_offset: ws.primaryOffset,
    spilled_size: ws.spilled,
    number_of_external_allocations: ws.externalCount,
    cycles_count: ws.cyclesCount,
    generation_id: ws.generation,
    scope_active: ws.isOpen,
    held_bytes: (ws.main?.live ? ws.main.bytes : 0) + spills,
  };
}

function realInfo(info: WorkspaceInfo__Output): Info {
  const n = (value: unknown) => Number(value);
  return {
    name: info.name,
    current_size: n(info.current_size),
    primary_offset: n(info.primary_offset),
    spilled_size: n(info.spilled_size),
    number_of_external_allocations: n(info.number_of_external_allocations),
    cycles_count: n(info.cycles_count),
    generation_id: n(info.generation_id),
    scope_active: info.scope_active,
    held_bytes: n(info.held_bytes),
  };
}

/** A workspace's mapping goes: a temporary file with it, a named one's charge once no workspace maps it. */
function unmap(world: World, entry: MWs): void {
  const file = world.files.get(entry.file)!;
  file.mappings--;
  if (file.path === undefined) world.files.delete(entry.file);
  world.regions--;
}

/** CreateWorkspace of an MMAP workspace (README Workspaces; §13), the caps checked in the daemon's order. */
function create(world: World, op: Extract<Op, { kind: 'create' }>, id: string): Outcome {
  const lease = liveLease(world, op.lease);
  // The config is validated before it is compared with an existing workspace of the name (WorkspaceRegistry.create).
  if (op.path === undefined && op.initialSize === 0) throw new ModelError('INVALID_ARGUMENT', 'INVALID_ARGUMENT');
  const found = [...lease.workspaces.entries()].find(([, entry]) => entry.name === op.name && !entry.ws.destroyed);
  if (found) {
    const [existingId, existing] = found;
    if (existing.initialSize !== op.initialSize || existing.path !== op.path) throw new ModelError('ALREADY_EXISTS', 'ALREADY_EXISTS');
    return { info: modelInfo(world, existing), id: existingId };
  }
  const key = op.path === undefined ? `temp:${id}` : fileKey(lease.tenant, op.path);
  const file = op.path === undefined ? undefined : world.files.get(key);
  const length = file?.content.length ?? 0;
  let createBytes = 0;
  if (op.path === undefined || length === 0 || length < op.initialSize) {
    if (op.initialSize === 0) throw new ModelError('INVALID_ARGUMENT', 'INVALID_ARGUMENT');
    createBytes = rounded(op.initialSize);
  }
  const mapped = (file?.mappings ?? 0) > 0;
  const checked = createBytes > 0 ? createBytes : mapped ? 0 : length;
  // Re-creating a file a live workspace maps is refused first, whatever the caps its new length would pass.
  if (createBytes > 0 && mapped) throw new ModelError('FAILED_PRECONDITION', 'FAILED_PRECONDITION');
  const tenantUsed = mappedBytes(world, lease.tenant);
  const quota = QUOTAS[lease.tenant];
  if (quota > 0 && tenantUsed + checked > quota) {
    return { error: 'RESOURCE_EXHAUSTED/QUOTA_EXCEEDED', meta: { requested_bytes: String(checked), quota_bytes: String(quota), used_bytes: String(tenantUsed) } };
  }
  const used = mappedBytes(world);
  if (used + checked > MMAP_MAX) return { error: 'RESOURCE_EXHAUSTED/MMAP_LIMIT', meta: { requested_bytes: String(checked), used_bytes: String(used), cap_bytes: String(MMAP_MAX) } };
  if (world.regions >= MAX_REGIONS) return { error: 'RESOURCE_EXHAUSTED/MAPPING_LIMIT', meta: { mapped_regions: String(world.regions), max_mapped_regions: String(MAX_REGIONS) } };
  const target = file ?? { tenant: lease.tenant, path: op.path, content: new Uint8Array(0), mappings: 0 };
  if (createBytes > 0) target.content = new Uint8Array(createBytes);
  target.mappings++;
  world.files.set(key, target);
  world.regions++;
  const ws = new MWorkspace(op.name, modelConfig(op.initialSize), lease.scope, lease.backing);
  ws.main!.bytes = target.content.length;
  ws.currentSize = op.initialSize > 0 ? op.initialSize : target.content.length;
  const entry: MWs = { ws, name: op.name, initialSize: op.initialSize, path: op.path, file: key };
  lease.workspaces.set(id, entry);
  return { info: modelInfo(world, entry), id };
}

function assertUsable(world: World, array: MArray): void {
  liveLease(world, array.lease);
  if (array.alloc.ws.validity(array.alloc) !== 'valid') throw new ModelError('FAILED_PRECONDITION', 'ARRAY_OUT_OF_SCOPE');
}

function bytesOf(world: World, array: MArray): Uint8Array {
  if (array.own) return array.own;
  return world.files.get(array.file!)!.content.subarray(array.offset, array.offset + array.size);
}

function applyModel(world: World, op: Op, key: string): Outcome {
  try {
    switch (op.kind) {
      case 'create':
        return create(world, op, key);
      case 'enter':
      case 'leave':
      case 'get': {
        const entry = lookup(world, op.lease, op.ws);
        if (op.kind === 'enter') entry.ws.enter();
        else if (op.kind === 'leave') entry.ws.leave();
        return { info: modelInfo(world, entry) };
      }
      case 'destroy': {
        const lease = liveLease(world, op.lease);
        const entry = lookup(world, op.lease, op.ws);
        if (lease.scope.holds(entry.ws)) throw new ModelError('FAILED_PRECONDITION', 'FAILED_PRECONDITION');
        if (lease.scope.current === entry.ws) lease.scope.current = null;
        entry.ws.destroy();
        unmap(world, entry);
        return { info: modelInfo(world, entry) };
      }
      case 'close': {
        const lease = liveLease(world, op.lease);
        const freed = [...lease.backing.live].reduce((sum, block) => sum + (block.location === 'HOST' ? poolBytes(block.bytes) : 0), 0);
        lease.scope.frames = [];
        lease.scope.current = null;
        for (const entry of lease.workspaces.values()) {
          if (entry.ws.destroyed) continue;
          entry.ws.isOpen = false;
          entry.ws.destroy();
          unmap(world, entry);
        }
        lease.closed = true;
        return { freed };
      }
      case 'allocate': {
        const entry = lookup(world, op.lease, op.ws);
        refuseOutOfScopeArray(entry.ws);
        const alloc = entry.ws.alloc(op.bytes, 'HOST');
        const array: MArray = { lease: op.lease, ws: op.ws, size: op.bytes, alloc, offset: alloc.offset };
        if (alloc.placement === 'workspace') {
          array.file = entry.file;
          if (op.zero) world.files.get(entry.file)!.content.fill(0, alloc.offset, alloc.offset + op.bytes);
        } else {
          array.own = new Uint8Array(op.bytes);
        }
        world.arrays.set(key, array);
        return { generation: alloc.generation };
      }
      case 'read': {
        const array = world.arrays.get(op.array)!;
        assertUsable(world, array);
        return { bytes: hex(bytesOf(world, array)) };
      }
      case 'write': {
        const array = world.arrays.get(op.array)!;
        assertUsable(world, array);
        bytesOf(world, array).set(op.data, op.offset);
        return { ok: true };
      }
    }
  } catch (error) {
    if (error instanceof ModelError) return { error: `${error.kind}/${error.reason}` };
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------
// The daemon's side.

describe('MMAP workspaces, model-based (files, caps, leases, bursts)', () => {
  let daemon: DaemonProcess;
  let mmapDir: string;
  const clients: TensormemClient[] = [];

  beforeAll(async () => {
    const tenants = writeTenantsFile(TENANTS_FILE);
    mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-model-'));
    daemon = await startDaemon([
      '--tenants', tenants, '--maxbytes', '64M', '--host-maxbytes', '64M', '--pool-chunk', '4M', '--async-copy-threshold', '1', '--data-listen', '127.0.0.1:0',
      '--mmap-dir', mmapDir, '--mmap-maxbytes', String(MMAP_MAX), '--max-mapped-regions', String(MAX_REGIONS),
    ]);
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    expect(await daemon?.stop()).toBe(0);
    if (mmapDir) rmSync(mmapDir, { recursive: true, force: true });
  });

  async function run(seed: number, steps: number): Promise<{ bursts: number; stats: Record<string, number> }> {
    const random = rng(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    const randomBytes = (length: number) => Uint8Array.from({ length }, () => Math.floor(random() * 256));
    const httpClient = new TensormemClient(daemon.tcpAddress, { dataPlane: { thresholdBytes: 1 } });
    const grpcClient = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
    clients.push(httpClient, grpcClient);
    const sessions = new Map<string, LeaseSession>();
    let worlds: World[] = [{ files: new Map(), leases: new Map(), arrays: new Map(), regions: 0 }];
    const history: string[] = [];
    const stats: Record<string, number> = {};
    const tally = (what: string) => (stats[what] = (stats[what] ?? 0) + 1);
    let bursts = 0;
    let names = 0;

    const openLease = async (tenant: Tenant): Promise<void> => {
      const session = await httpClient.openLease({ tenantToken: TOKENS[tenant], clientName: `mmap-model-${seed}`, ttlSeconds: 3600 });
      sessions.set(session.leaseId, session);
      history.push(`open ${tenant} ${session.leaseId}`);
      for (const world of worlds) world.leases.set(session.leaseId, { tenant, closed: false, scope: new MScope(), backing: new ModelBacking(), workspaces: new Map() });
    };
    for (const tenant of TENANTS) for (let i = 0; i < 2; i++) await openLease(tenant);

    const outcomeOf = (error: unknown): Outcome => {
      if (!(error instanceof TensormemClientError)) throw error;
      const outcome: Outcome = { error: `${Status[error.code]}/${error.reason ?? '(none)'}` };
      if (error.reason === 'QUOTA_EXCEEDED') outcome.meta = { requested_bytes: error.errorMetadata.requested_bytes, quota_bytes: error.errorMetadata.quota_bytes, used_bytes: error.errorMetadata.used_bytes };
      if (error.reason === 'MMAP_LIMIT') outcome.meta = { requested_bytes: error.errorMetadata.requested_bytes, used_bytes: error.errorMetadata.used_bytes, cap_bytes: error.errorMetadata.cap_bytes };
      if (error.reason === 'MAPPING_LIMIT') outcome.meta = { mapped_regions: error.errorMetadata.mapped_regions, max_mapped_regions: error.errorMetadata.max_mapped_regions };
      return outcome;
    };

    async function execute(op: Op): Promise<Outcome> {
      const arrayLease = op.kind === 'read' || op.kind === 'write' ? worlds[0].arrays.get(op.array)!.lease : undefined;
      const session = sessions.get('lease' in op ? op.lease : arrayLease!)!;
      try {
        switch (op.kind) {
          case 'create': {
            const info = await session.createWorkspace(op.name, configOf(op.initialSize, op.path));
            return { info: realInfo(info), id: info.workspace_id };
          }
          case 'enter':
            return { info: realInfo(await session.enterWorkspace(op.ws)) };
          case 'leave':
            return { info: realInfo(await session.leaveWorkspace(op.ws)) };
          case 'destroy':
            return { info: realInfo(await session.destroyWorkspace(op.ws)) };
          case 'get':
            return { info: realInfo(await session.getWorkspace(op.ws)) };
          case 'close':
            return { freed: await session.close() };
          case 'allocate': {
            const info = await session.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [op.bytes], placement: 'PLACEMENT_HOST_ONLY', workspaceId: op.ws, zero: op.zero });
            expect({ workspace: info.workspace_id, attached: info.attached }).toEqual({ workspace: op.ws, attached: true });
            return { generation: Number(info.generation), id: info.array_id };
          }
          case 'read': {
            const size = worlds[0].arrays.get(op.array)!.size;
            return { bytes: hex(op.http ? await session.read(op.array, 0, size) : await session.readGrpc(op.array, 0, size)) };
          }
          case 'write':
            if (op.http) await session.write(op.array, op.data, op.offset);
            else await session.writeGrpc(op.array, op.data, op.offset);
            return { ok: true };
        }
      } catch (error) {
        return outcomeOf(error);
      }
    }

    const describeOp = (op: Op): string => {
      switch (op.kind) {
        case 'create':
          return `create ${op.lease.slice(0, 8)} ${op.name} ${op.initialSize} ${op.path ?? '(temp)'}`;
        case 'allocate':
          return `allocate ${op.ws.slice(0, 10)} ${op.bytes}${op.zero ? ' zero' : ''}`;
        case 'read':
          return `read ${op.array.slice(0, 10)} ${op.http ? 'GET' : 'ReadArray'}`;
        case 'write':
          return `write ${op.array.slice(0, 10)} [${op.offset}, +${op.data.length}) ${op.http ? 'PUT' : 'WriteArray'}`;
        case 'close':
          return `close ${op.lease.slice(0, 8)}`;
        default:
          return `${op.kind} ${op.ws.slice(0, 10)}`;
      }
    };

    const fail = (step: number, message: string): never => {
      throw new Error(`seed ${seed} step ${step}: ${message}\n  last steps:\n  ${history.slice(-14).join('\n  ')}`);
    };

    /** Runs `ops` together; keeps the model states some order of them reaches that answer as the daemon did. */
    async function burst(step: number, ops: Op[]): Promise<void> {
      const real = await Promise.all(ops.map((op) => execute(op)));
      // New workspaces and arrays are named after the ids the daemon gave them.
      const keys = real.map((outcome, i) => outcome.id ?? `failed-${step}-${i}`);
      const answers = real.map((outcome, i) => (ops[i].kind === 'allocate' && outcome.id !== undefined ? { generation: outcome.generation } : outcome));
      history.push(`${step}: ${ops.map((op, i) => `${describeOp(op)} → ${JSON.stringify(answers[i])}`).join(' ‖ ')}`);
      const next: World[] = [];
      const tried: string[] = [];
      for (const world of worlds) {
        for (const order of permutations(ops.map((_, i) => i))) {
          const candidate = deepClone(world);
          const modelAnswers: Outcome[] = [];
          for (const i of order) modelAnswers[i] = applyModel(candidate, ops[i], keys[i]);
          if (modelAnswers.every((answer, i) => JSON.stringify(answer) === JSON.stringify(answers[i]))) next.push(candidate);
          else if (tried.length < 4) tried.push(`order ${order.join(',')}: ${modelAnswers.map((answer) => JSON.stringify(answer)).join(' ‖ ')}`);
        }
      }
      for (const [i, op] of ops.entries()) tally(`${op.kind} → ${answers[i].error ?? 'ok'}`);
      if (ops.length > 1) bursts++;
      if (next.length === 0) fail(step, `no order of the calls answers as the daemon did:\n  ${tried.join('\n  ')}`);
      worlds = next;
    }

    /** What the model says the daemon shows now, and what it shows. */
    async function observed(world: World | undefined): Promise<unknown> {
      if (world === undefined) {
        const memory = await grpcClient.memoryInfo(TOKENS.admin);
        const leases = await grpcClient.listLeases(TOKENS.admin);
        const workspaces: Record<string, Info> = {};
        for (const [id, session] of sessions) {
          if (worlds[0].leases.get(id)!.closed) continue;
          for (const info of await session.listWorkspaces()) workspaces[info.workspace_id] = realInfo(info);
        }
        return {
          mmap_bytes: Number(memory.host!.mmap_bytes),
          host_used_bytes: Number(memory.host!.used_bytes),
          tenants: Object.fromEntries(TENANTS.map((tenant) => [tenant, Number(memory.tenants.find((row) => row.tenant === tenant)?.mmap_used_bytes ?? 0)])),
          leases: Object.fromEntries(leases.filter((lease) => sessions.has(lease.lease_id)).map((lease) => [lease.lease_id, Number(lease.mmap_bytes)])),
          workspaces,
          disk: disk(),
        };
      }
      const workspaces: Record<string, Info> = {};
      const leases: Record<string, number> = {};
      let host = 0;
      for (const [id, lease] of world.leases) {
        if (lease.closed) continue;
        // The files its workspaces map, each once.
        const files = new Set([...lease.workspaces.values()].filter((entry) => !entry.ws.destroyed).map((entry) => entry.file));
        leases[id] = [...files].reduce((sum, key) => sum + world.files.get(key)!.content.length, 0);
        for (const block of lease.backing.live) if (block.location === 'HOST') host += poolBytes(block.bytes);
        for (const [wsId, entry] of lease.workspaces) if (!entry.ws.destroyed) workspaces[wsId] = modelInfo(world, entry);
      }
      const files: Record<string, string> = {};
      for (const file of world.files.values()) if (file.path !== undefined) files[`tenant-${file.tenant}/${file.path}`] = hex(file.content);
      return {
        mmap_bytes: mappedBytes(world),
        host_used_bytes: host,
        tenants: Object.fromEntries(TENANTS.map((tenant) => [tenant, mappedBytes(world, tenant)])),
        leases,
        workspaces,
        disk: { files: Object.fromEntries(Object.entries(files).sort()), folders: foldersOf(Object.keys(files)) },
      };
    }

    /** --mmap-dir as it is: every file (path: length and hash) and every folder; temporary files in the root count as files. */
    function disk(): { files: Record<string, string>; folders: string[] } {
      const files: Record<string, string> = {};
      const folders: string[] = [];
      const walk = (folder: string, prefix: string) => {
        for (const entry of readdirSync(folder, { withFileTypes: true })) {
          const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
          if (entry.isDirectory()) {
            folders.push(path);
            walk(join(folder, entry.name), path);
          } else files[path] = hex(readFileSync(join(folder, entry.name)));
        }
      };
      walk(mmapDir, '');
      return { files: Object.fromEntries(Object.entries(files).sort()), folders: folders.sort() };
    }

    async function settle(step: number): Promise<void> {
      const shown = (await observed(undefined)) as Record<string, unknown>;
      const real = JSON.stringify(shown);
      const kept: World[] = [];
      for (const world of worlds) if (JSON.stringify(await observed(world)) === real) kept.push(world);
      if (kept.length === 0) {
        const model = (await observed(worlds[0])) as Record<string, unknown>;
        const diffs = Object.keys(shown).filter((key) => JSON.stringify(shown[key]) !== JSON.stringify(model[key]));
        fail(step, `the state after it is no model state's (${worlds.length} kept):\n  ${diffs.map((key) => `${key}: daemon ${JSON.stringify(shown[key])}\n    model  ${JSON.stringify(model[key])}`).join('\n  ')}`);
      }
      const seen = new Set<string>();
      worlds = kept
        .filter((world) => {
          const print = JSON.stringify([...world.arrays.entries()].map(([id, array]) => [id, array.own ? hex(array.own) : array.offset]));
          if (seen.has(print)) return false;
          seen.add(print);
          return true;
        })
        .slice(0, 16);
    }

    const liveWorkspaces = (leaseId: string) => [...worlds[0].leases.get(leaseId)!.workspaces.entries()].filter(([, entry]) => !entry.ws.destroyed);

    /** A call of lease `leaseId`: on one of its workspaces or their newest arrays, a new workspace, or (rarely) its close. */
    const makeOp = (leaseId: string): Op => {
      const world = worlds[0];
      const lease = world.leases.get(leaseId)!;
      const workspaces = liveWorkspaces(leaseId);
      const r = random();
      if (r < 0.03) return { kind: 'close', lease: leaseId };
      if (workspaces.length === 0 || r < 0.22) {
        // A name again now and then, with its configuration (the same workspace) or another (ALREADY_EXISTS).
        if (workspaces.length > 0 && random() < 0.15) {
          const [, entry] = pick(workspaces);
          return random() < 0.7 ? { kind: 'create', lease: leaseId, name: entry.name, initialSize: entry.initialSize, path: entry.path } : { kind: 'create', lease: leaseId, name: entry.name, initialSize: pick(INITIAL_SIZES), path: pick(PATHS) };
        }
        return { kind: 'create', lease: leaseId, name: `M${names++}`, initialSize: pick(INITIAL_SIZES), path: pick(PATHS) };
      }
      const [wsId, entry] = pick(workspaces);
      const arrays = [...world.arrays.entries()].filter(([, array]) => array.ws === wsId).slice(-4);
      const s = random();
      if (arrays.length > 0 && s < 0.4) {
        const [arrayId, array] = pick(arrays);
        if (random() < 0.45) return { kind: 'read', array: arrayId, http: random() < 0.5 };
        const offset = Math.floor(random() * array.size);
        return { kind: 'write', array: arrayId, offset, data: randomBytes(1 + Math.floor(random() * (array.size - offset))), http: random() < 0.5 };
      }
      if (s < 0.62) {
        const bytes = pick(ARRAY_SIZES);
        // Not zeroed only where the array lands in the file (the file's bytes show); a spill is pool memory.
        const fits = entry.ws.primaryOffset + align16(bytes) <= entry.ws.currentSize;
        return { kind: 'allocate', lease: leaseId, ws: wsId, bytes, zero: !fits || random() < 0.3 };
      }
      if (s < 0.74) return { kind: 'enter', lease: leaseId, ws: wsId };
      if (s < 0.86) {
        const top = lease.scope.frames[lease.scope.frames.length - 1];
        const topId = top && workspaces.find(([, candidate]) => candidate.ws === top.ws)?.[0];
        return { kind: 'leave', lease: leaseId, ws: topId !== undefined && random() < 0.7 ? topId : wsId };
      }
      if (s < 0.9) return { kind: 'get', lease: leaseId, ws: wsId };
      return { kind: 'destroy', lease: leaseId, ws: wsId };
    };

    for (let step = 0; step < steps; step++) {
      const open = [...worlds[0].leases.entries()].filter(([, lease]) => !lease.closed);
      // A closed lease's tenant gets a new one.
      for (const tenant of TENANTS) if (open.filter(([, lease]) => lease.tenant === tenant).length < 2) await openLease(tenant);
      const leases = [...worlds[0].leases.entries()].filter(([, lease]) => !lease.closed).map(([id]) => id);
      const together = random() < 0.4;
      const ops = Array.from({ length: together ? 2 + Math.floor(random() * 3) : 1 }, () => makeOp(pick(leases)));
      await burst(step, ops);
      if (ops.length > 1) {
        const written = [...new Set(ops.flatMap((op) => (op.kind === 'write' ? [op.array] : [])))];
        for (const array of written) if (!worlds[0].leases.get(worlds[0].arrays.get(array)!.lease)!.closed) await burst(step, [{ kind: 'read', array, http: false }]);
      }
      await settle(step);
    }

    // Every lease closed: nothing mapped, no temporary file, no pool memory; the named files stay.
    for (const [id, lease] of worlds[0].leases) if (!lease.closed) await burst(steps, [{ kind: 'close', lease: id }]);
    await settle(steps);
    const memory = await grpcClient.memoryInfo(TOKENS.admin);
    expect({ mmap: Number(memory.host!.mmap_bytes), host: Number(memory.host!.used_bytes) }).toEqual({ mmap: 0, host: 0 });
    expect(readdirSync(mmapDir).filter((name) => !name.startsWith('tenant-'))).toEqual([]);
    // The next seed starts from an empty --mmap-dir.
    for (const name of readdirSync(mmapDir)) rmSync(join(mmapDir, name), { recursive: true, force: true });
    return { bursts, stats };
  }

  it('answers MMAP workspace calls, alone and in bursts, as some order of them one at a time in the model (seeded)', async () => {
    const seeds = Number(process.env.MMAPMODEL_SEEDS) || 3;
    const all: Record<string, number> = {};
    let bursts = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const result = await run(seed, 150);
      bursts += result.bursts;
      for (const [what, n] of Object.entries(result.stats)) all[what] = (all[what] ?? 0) + n;
    }
    if (process.env.MMAPMODEL_STATS) console.log(JSON.stringify(Object.entries(all).sort(), null, 1));
    expect(bursts).toBeGreaterThan(30 * seeds);
    // The sequences reach the caps and the refusals they are for.
    for (const reached of ['create → RESOURCE_EXHAUSTED/QUOTA_EXCEEDED', 'create → RESOURCE_EXHAUSTED/MMAP_LIMIT', 'create → RESOURCE_EXHAUSTED/MAPPING_LIMIT', 'create → FAILED_PRECONDITION/FAILED_PRECONDITION', 'create → INVALID_ARGUMENT/INVALID_ARGUMENT', 'create → ok', 'close → ok']) {
      expect(all[reached] ?? 0, reached).toBeGreaterThan(0);
    }
  }, 60_000 + 30_000 * (Number(process.env.MMAPMODEL_SEEDS) || 3));
});

/** Folders the model expects under --mmap-dir: those on the way to each named file. */
function foldersOf(files: string[]): string[] {
  const folders = new Set<string>();
  for (const file of files) {
    const parts = file.split('/');
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join('/'));
  }
  return [...folders].sort();
}

describe('MMAP workspaces: bad input changes nothing; a client that dies gives its files back', () => {
  let daemon: DaemonProcess;
  let mmapDir: string;
  let client: TensormemClient;

  beforeAll(async () => {
    const tenants = writeTenantsFile(TENANTS_FILE);
    mmapDir = mkdtempSync(join(tmpdir(), 'tensormem-mmap-bad-'));
    daemon = await startDaemon(['--tenants', tenants, '--maxbytes', '32M', '--host-maxbytes', '32M', '--pool-chunk', '4M', '--mmap-dir', mmapDir, '--max-mapped-regions', String(MAX_REGIONS)]);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
    if (mmapDir) rmSync(mmapDir, { recursive: true, force: true });
  });

  /** What a refusal may not change: the files and folders under --mmap-dir, the mapped bytes, the tenant's use, the lease's workspaces. */
  async function state(lease: LeaseSession) {
    const memory = await client.memoryInfo(TOKENS.admin);
    const walk = (folder: string): string[] => readdirSync(folder, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? [`${entry.name}/`, ...walk(join(folder, entry.name)).map((name) => `${entry.name}/${name}`)] : [`${entry.name}:${hex(readFileSync(join(folder, entry.name)))}`]));
    return {
      disk: walk(mmapDir).sort(),
      mmap: Number(memory.host!.mmap_bytes),
      tenant: Number(memory.tenants.find((row) => row.tenant === 'qa')?.mmap_used_bytes ?? 0),
      workspaces: (await lease.listWorkspaces()).map((ws) => ws.name),
    };
  }

  it('refuses each bad MMAP configuration with the field and the value, and changes nothing', async () => {
    const lease = await client.openLease({ tenantToken: TOKENS.qa });
    try {
      await lease.createWorkspace('kept', configOf(16384, 'kept.bin'));
      const before = await state(lease);
      const cases: Array<{ name: string; config: Record<string, unknown>; code: Status; field?: string; says: string[] }> = [
        { name: 'learning', config: { ...configOf(16384, 'a.bin'), learning_policy: 'LEARNING_POLICY_FIRST_LOOP' }, code: Status.INVALID_ARGUMENT, field: 'config.learning_policy', says: ["can't have LearningPolicy defined", '(config.learning_policy = "LEARNING_POLICY_FIRST_LOOP")', 'Fix: learning_policy LEARNING_POLICY_NONE'] },
        { name: 'no-size-no-path', config: configOf(0), code: Status.INVALID_ARGUMENT, field: 'config.temp_file_path', says: ['MMAP target file path should be non-null'] },
        { name: 'missing-file', config: configOf(0, 'new/dir/none.bin'), code: Status.INVALID_ARGUMENT, field: 'config.temp_file_path', says: ['Memory-mapped file should have positive length', '"new/dir/none.bin"'] },
        { name: 'absolute', config: configOf(16384, '/etc/passwd'), code: Status.INVALID_ARGUMENT, field: 'config.temp_file_path', says: ['"/etc/passwd"'] },
        { name: 'dotdot', config: configOf(16384, 'x/../../y'), code: Status.INVALID_ARGUMENT, field: 'config.temp_file_path', says: ['"x/../../y"'] },
        { name: 'ram-path', config: { initial_size: 16384, learning_policy: 'LEARNING_POLICY_NONE', temp_file_path: 'a.bin' }, code: Status.INVALID_ARGUMENT, field: 'config.temp_file_path', says: ['"a.bin"', 'LOCATION_POLICY_MMAP'] },
        { name: 'huge', config: configOf(2 ** 53 - 1, 'huge.bin'), code: Status.INVALID_ARGUMENT, field: 'config.initial_size', says: ['9007199254740991'] },
        { name: 'over-quota', config: configOf(QUOTA_A, 'deep/over.bin'), code: Status.RESOURCE_EXHAUSTED, says: [`${QUOTA_A} bytes`, 'tenant "qa"', 'used 16384 bytes', `Can't map [MMAP] file: ${QUOTA_A} bytes`] },
        { name: 'folder', config: configOf(16384, 'kept.bin/inner.bin'), code: Status.FAILED_PRECONDITION, field: 'config.temp_file_path', says: ['"kept.bin/inner.bin"'] },
        { name: 'other-config', config: configOf(1000, 'kept.bin'), code: Status.ALREADY_EXISTS, says: ['config.initial_size 16384 (requested 1000)'] },
      ];
      for (const bad of cases) {
        const name = bad.name === 'other-config' ? 'kept' : `bad-${bad.name}`;
        let refusal: TensormemClientError | undefined;
        try {
          await lease.createWorkspace(name, bad.config as never);
        } catch (error) {
          refusal = error as TensormemClientError;
        }
        expect(refusal, bad.name).toBeInstanceOf(TensormemClientError);
        expect([bad.name, Status[refusal!.code]]).toEqual([bad.name, Status[bad.code]]);
        if (bad.field) expect([bad.name, refusal!.errorMetadata.field]).toEqual([bad.name, bad.field]);
        for (const text of bad.says) expect(refusal!.details, bad.name).toContain(text);
        expect(await state(lease), bad.name).toEqual(before);
      }
    } finally {
      await lease.close();
    }
    expect(await state(await client.openLease({ tenantToken: TOKENS.qa }))).toMatchObject({ mmap: 0, tenant: 0 });
  });

  it('a client killed with MMAP workspaces open: its lease ends, the mappings and temporary files go, the named file keeps its bytes', async () => {
    const script = `
      const { TensormemClient } = require(${JSON.stringify(join(__dirname, '..', '..', 'dist', 'src', 'client', 'tensormem-client'))});
      (async () => {
        const client = new TensormemClient(${JSON.stringify(daemon.tcpAddress)});
        const lease = await client.openLease({ tenantToken: ${JSON.stringify(TOKENS.qa)}, ttlSeconds: 3600 });
        lease.startKeepAlive(200, { releaseOnDisconnect: true });
        const mmap = (initial_size, temp_file_path) => ({ initial_size, location_policy: 'LOCATION_POLICY_MMAP', learning_policy: 'LEARNING_POLICY_NONE', temp_file_path });
        const named = await lease.createWorkspace('named', mmap(20000, 'dying/weights.bin'));
        await lease.createWorkspace('again', mmap(0, 'dying/weights.bin'));
        await lease.createWorkspace('temp', mmap(16384));
        await lease.enterWorkspace(named.workspace_id);
        const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
        await lease.write(array.array_id, Buffer.from('weights of dying'));
        await new Promise((resolve) => setTimeout(resolve, 500));
        process.stdout.write('ready ' + lease.leaseId + '\\n');
      })().catch((error) => { console.error(error); process.exit(3); });
    `;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const leaseId = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /ready (\S+)\n/.exec(out);
        if (match) resolve(match[1]);
      });
      child.on('exit', (code) => reject(new Error(`the client exited (${code}) before it was ready`)));
    });
    const mapped = await client.memoryInfo(TOKENS.admin);
    expect(Number(mapped.host!.mmap_bytes)).toBe(32768 + 16384);
    expect((await client.listLeases(TOKENS.admin)).find((lease) => lease.lease_id === leaseId)?.mmap_bytes).toBe(32768 + 16384);
    child.kill('SIGKILL');
    const deadline = Date.now() + 15_000;
    while ((await client.listLeases(TOKENS.admin)).some((lease) => lease.lease_id === leaseId) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const after = await client.memoryInfo(TOKENS.admin);
    expect({ mmap: Number(after.host!.mmap_bytes), tenant: Number(after.tenants.find((row) => row.tenant === 'qa')?.mmap_used_bytes ?? 0), host: Number(after.host!.used_bytes) }).toEqual({ mmap: 0, tenant: 0, host: 0 });
    expect(readdirSync(mmapDir).filter((name) => !name.startsWith('tenant-'))).toEqual([]);
    expect(readFileSync(join(mmapDir, 'tenant-qa', 'dying', 'weights.bin')).subarray(0, 16).toString()).toBe('weights of dying');
    // Every mapped region came back: the cap's worth of workspaces maps again.
    const lease = await client.openLease({ tenantToken: TOKENS.qa });
    try {
      for (let i = 0; i < MAX_REGIONS; i++) await lease.createWorkspace(`again-${i}`, configOf(0, 'dying/weights.bin'));
    } finally {
      await lease.close();
    }
  }, 30_000);
});
