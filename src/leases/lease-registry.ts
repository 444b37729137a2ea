/**
 * Every open lease: opening, token authentication, renewal, closing, and the reclamation sweep that
 * frees expired leases every --reclaim-interval. Tokens are 256-bit random strings; only their
 * SHA-256 is kept, and they are never logged.
 */
import { hash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { counted } from '../counted';
import { TENSORMEMCTL_TOKEN, TensormemError, invalidArgument, notFound, unauthenticated } from '../errors';
import { MAX_TTL_SECONDS } from '../config/config';
import type { MemoryManager } from '../memory/memory-manager';
import { HEAP_COST } from '../memory/heap-guard';
import { Lease, leaseClosedError } from './lease';
import type { LeaseCloseReason } from './lease';
import { SerialOrder } from './serial-order';
import { randomIds } from './random-ids';

export type { LeaseCloseReason } from './lease';

export interface OpenLeaseParams {
  tenant: string;
  clientName: string;
  ttlSeconds: number;
  labels: Record<string, string>;
}

/** The labels of every lease opened without any. */
const NO_LABELS: Record<string, string> = Object.freeze({});

/** How many recently closed leases are remembered, so that their tokens get LEASE_EXPIRED saying why rather than an unknown-token error. */
const CLOSED_MEMORY = 10_000;
/**
 * Work the periodic sweep and a tenant's eviction do between two turns of the event loop, in units of
 * about one array freed (0.3-1 µs): a lease looked at counts 1, a lease closed CLOSE_WORK more, 1 per
 * array it holds, WORKSPACE_WORK per workspace and REGION_WORK per mapped region its close gave back. A count of leases alone let one turn close 256 leases whatever they held (300 expired
 * leases of 1,000 arrays each: one turn of 263-490 ms), and the sweep looked at every open lease in one
 * turn (100,000 leases: 5-14 ms every --reclaim-interval, none expired).
 */
export const TURN_WORK = 8192;
/**
 * A workspace's destruction in a lease's close (its buffers back to the pools, an MMAP workspace's file
 * unmapped and removed): 1.4-5.5 µs a workspace of a 1 KiB buffer against 0.2-3.3 µs an array, measured
 * on the 2-core VM at load 10 (closes of 10,000 of each, CPU time).
 */
export const WORKSPACE_WORK = 4;
/**
 * A mapped region a lease's close gives back (an exportable array's region of its own: unmapped, its
 * shared-memory name unlinked; an MMAP workspace's mapping), beside the array's or workspace's own work:
 * 14-19 µs of CPU an exportable array against 0.3 µs a pool array (closes of 4,000 each, 2-core VM at load 10).
 */
export const REGION_WORK = 32;
/** A lease's close beside its arrays' (closing 20,000 expired leases of one array each in one go held the loop about 240 ms: 12 µs a lease). */
const CLOSE_WORK = 32;

/** What closing `lease` costs in TURN_WORK's units, its mapped regions aside: its arrays and its workspaces beside the lease itself. */
function closeWork(lease: Lease): number {
  return 1 + CLOSE_WORK + lease.arrays.size + WORKSPACE_WORK * lease.workspaceCount;
}

/**
 * Calls `each` on what `items` yields, letting other work in between once the work `each` said it did
 * (TURN_WORK's units) reaches TURN_WORK. `items` may be a live Map iterator: it goes on past entries
 * deleted or added meanwhile.
 */
async function inTurns<T>(items: Iterable<T>, each: (item: T) => number): Promise<void> {
  let work = 0;
  for (const item of items) {
    if (work >= TURN_WORK) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      work = 0;
    }
    work += each(item);
  }
}

/** What LeaseRegistry.authenticate answers for a missing or an unknown token. */
export interface TokenWording {
  missing: string;
  unknown: string;
}

/** For calls that take only a lease token (array, workspace and lease calls, the data plane). */
export const LEASE_TOKEN: TokenWording = {
  missing: `missing lease token: send "authorization: Bearer <token>" (the token OpenLease returned; ${TENSORMEMCTL_TOKEN})`,
  unknown: 'unknown lease token',
};

/**
 * For calls that a daemon with a tenants file answers for a tenant token as well as a lease token
 * (GetMemoryInfo, WatchMemory, GetConfig, ListLeases): naming only the lease token sent an operator
 * with a mistyped admin token, or none, looking for a lease.
 */
export const TENANT_OR_LEASE_TOKEN: TokenWording = {
  missing: `missing token: this daemon has a tenants file; send "authorization: Bearer <token>" with a tenant token (an admin's sees every tenant) or a lease token (${TENSORMEMCTL_TOKEN})`,
  unknown: 'unknown token: neither a tenant token of the tenants file nor the token of a lease',
};

/** A new lease id, `lease-` and 96 random bits in hex (random-ids.ts). */
const newLeaseId = randomIds('lease-');

export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

export class LeaseRegistry {
  private readonly byId = new Map<string, Lease>();
  private readonly byTokenHash = new Map<string, Lease>();
  /** Recently closed leases (oldest first) by token hash: the lease id and why it closed. */
  private readonly closedTokenHashes = new Map<string, { leaseId: string; reason: LeaseCloseReason }>();
  /** Open leases by tenant, each in the order they were opened (a tenant's count and list without a scan of every lease). */
  private readonly byTenant = new Map<string, Set<Lease>>();
  /** Whether a lease is still open here (what ListLeases pages show). */
  private readonly isOpen = (lease: Lease): boolean => this.byId.get(lease.leaseId) === lease;
  /** Open leases in serial order, all of them and by tenant: a ListLeases page is found by its first serial (SerialOrder). */
  private readonly inOrder = new SerialOrder<Lease>((lease) => lease.serial, this.isOpen);
  private readonly inOrderByTenant = new Map<string, SerialOrder<Lease>>();
  /** The serial of the last lease opened (Lease.serial: the order ListLeases pages follow). */
  private lastSerial = 0;
  /** When this daemon started taking leases: an unknown token's answer names it (a restart forgets every lease). */
  private readonly startedAt = new Date().toISOString();
  private sweepTimer?: NodeJS.Timeout;
  /** Tenants an evictTenant is closing the leases of, with how many such evictions run (GetMemoryInfo's TenantUsage.evicting). */
  private readonly evictions = new Map<string, number>();
  /** Whether the periodic sweep is still closing what it found (it then skips its next turn). */
  private sweeping = false;
  /** Whether a token is a tenant's (the tenants file): set by the daemon, asked only of a token that opens no lease. */
  isTenantToken: (token: string) => boolean = () => false;
  reclaimedTotal = 0;
  /** Leases opened since start, and closed since start by reason (for /metrics). */
  openedTotal = 0;
  readonly closedTotal: Record<LeaseCloseReason, number> = { closed: 0, expired: 0, shutdown: 0, evicted: 0, disconnected: 0 };

  constructor(
    private readonly memory: MemoryManager,
    private readonly defaultTtlMs: number,
    private readonly eagerMirror: boolean,
    private readonly log: Logger,
  ) {}

  /** Opens a lease; `maxLeases` (0 = none) caps the tenant's open leases. */
  open(params: OpenLeaseParams, maxLeases = 0): { lease: Lease; token: string } {
    const ttlMs = this.ttlMs(params.ttlSeconds, 'ttl_seconds');
    if (maxLeases > 0) {
      let open = this.countOf(params.tenant);
      // Leases past their TTL that the sweep has not reached yet no longer count (their tokens already
      // answer "has expired"): they are closed now, as the sweep would, so that "let one expire" holds.
      if (open >= maxLeases) open -= this.sweepTenant(params.tenant);
      if (open >= maxLeases) {
        throw new TensormemError('RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', `tenant "${params.tenant}" has ${open} leases open, its max_leases is ${maxLeases}: close or let one expire first`, {
          tenant: params.tenant,
          // The count beside the cap, as max_arrays' refusal says arrays beside max_arrays.
          leases: String(open),
          max_leases: String(maxLeases),
        });
      }
    }
    let labelCost = 0;
    for (const [key, value] of Object.entries(params.labels ?? {})) labelCost += HEAP_COST.label + 2 * (key.length + value.length);
    const tenant = params.tenant || 'default';
    const heapBytes = HEAP_COST.lease + 2 * params.clientName.length + labelCost;
    this.memory.checkHeap(heapBytes, tenant);
    const token = randomBytes(32).toString('base64url');
    const leaseId = newLeaseId();
    // A lease without labels shares one frozen empty object rather than keeping its request's (56 B).
    const labels = labelCost > 0 ? params.labels : NO_LABELS;
    const lease = new Lease(leaseId, hashToken(token), tenant, params.clientName, labels, ttlMs, this.memory, this.eagerMirror, ++this.lastSerial, heapBytes);
    this.byId.set(leaseId, lease);
    this.byTokenHash.set(lease.tokenHash, lease);
    let ofTenant = this.byTenant.get(lease.tenant);
    if (!ofTenant) this.byTenant.set(lease.tenant, (ofTenant = new Set()));
    ofTenant.add(lease);
    this.inOrder.add(lease);
    let inTenantOrder = this.inOrderByTenant.get(lease.tenant);
    if (!inTenantOrder) this.inOrderByTenant.set(lease.tenant, (inTenantOrder = new SerialOrder<Lease>((open) => open.serial, this.isOpen)));
    inTenantOrder.add(lease);
    this.memory.tenants.countLeases(tenant, 1, heapBytes);
    this.openedTotal++;
    this.log.info({ event: 'lease_opened', leaseId, tenant: lease.tenant, client: params.clientName, ttlMs }, 'lease opened');
    return { lease, token };
  }

  private ttlMs(ttlSeconds: number, field: string): number {
    if (ttlSeconds === 0) return this.defaultTtlMs;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds > MAX_TTL_SECONDS) {
      throw invalidArgument(field, `an integer from 0 to ${MAX_TTL_SECONDS}`, ttlSeconds);
    }
    return ttlSeconds * 1000;
  }

  /**
   * The lease a bearer token opens; otherwise UNAUTHENTICATED, with reason LEASE_EXPIRED and why for
   * the token of a lease that expired or was closed, evicted or released (the last CLOSED_MEMORY).
   */
  authenticate(token: string | undefined, wording: TokenWording = LEASE_TOKEN): Lease {
    if (!token) throw unauthenticated(wording.missing);
    const hash = hashToken(token);
    const lease = this.byTokenHash.get(hash);
    if (lease && !lease.isExpired()) return lease;
    // Past its TTL but not swept yet: expired all the same.
    if (lease) throw leaseClosedError(lease.leaseId, 'expired');
    const closed = this.closedTokenHashes.get(hash);
    if (closed) throw leaseClosedError(closed.leaseId, closed.reason);
    // A tenant token where only a lease token will do: say so, rather than "unknown".
    if (wording === LEASE_TOKEN && this.isTenantToken(token)) {
      throw unauthenticated('this is a tenant token, and this call takes a lease token: open a lease with it (OpenLease, tenant token in its authorization header) and send the token OpenLease returns');
    }
    // The usual way to hold a token no lease has: the daemon that granted it restarted.
    throw unauthenticated(`${wording.unknown} (this daemon has run since ${this.startedAt}, and a lease ends with the daemon that granted it: after a restart, open a new one)`);
  }

  /** The open, unexpired lease a bearer token opens, if any; never throws (authenticate says why not). */
  leaseOfToken(token: string | undefined): Lease | undefined {
    if (!token) return undefined;
    const lease = this.byTokenHash.get(hashToken(token));
    return lease && !lease.isExpired() ? lease : undefined;
  }

  /** A lease by id as seen from `caller`: another lease's id is NOT_FOUND, like one that never existed. */
  resolve(caller: Lease, leaseId: unknown): Lease {
    if (leaseId === '' || leaseId === undefined) return caller;
    if (typeof leaseId !== 'string') throw invalidArgument('lease_id', 'a lease id', leaseId);
    if (leaseId !== caller.leaseId) throw notFound('lease', leaseId);
    return caller;
  }

  renew(lease: Lease, ttlSeconds: number): void {
    lease.renew(ttlSeconds === 0 ? lease.ttlMs : this.ttlMs(ttlSeconds, 'ttl_seconds'));
  }

  /** Closes `lease` for `reason`; `by`: the admin tenant that evicted it, for its log line. */
  close(lease: Lease, reason: LeaseCloseReason, by?: string): number {
    if (!this.byId.has(lease.leaseId)) return 0;
    // A lease past its TTL has ended already (its token answers "has expired" from then on): an eviction
    // or a KeepAlive drop that reaches it before the sweep frees it as the sweep would, and its token
    // goes on saying it expired rather than changing its answer to "was evicted".
    if ((reason === 'evicted' || reason === 'disconnected') && lease.isExpired()) reason = 'expired';
    this.byId.delete(lease.leaseId);
    this.closedTotal[reason]++;
    this.byTokenHash.delete(lease.tokenHash);
    if (reason !== 'shutdown') {
      this.closedTokenHashes.set(lease.tokenHash, { leaseId: lease.leaseId, reason });
      if (this.closedTokenHashes.size > CLOSED_MEMORY) this.closedTokenHashes.delete(this.closedTokenHashes.keys().next().value!);
    }
    const ofTenant = this.byTenant.get(lease.tenant);
    ofTenant?.delete(lease);
    const open = ofTenant?.size ?? 0;
    this.inOrder.removed();
    if (open === 0) {
      this.byTenant.delete(lease.tenant);
      this.inOrderByTenant.delete(lease.tenant);
    } else this.inOrderByTenant.get(lease.tenant)?.removed();
    this.memory.tenants.countLeases(lease.tenant, -1, lease.heapBytes);
    const arrays = lease.arrays.size;
    const freedBytes = lease.close(reason);
    // Its last lease: a tenant outside the tenants file (open mode's client-chosen names) leaves no account behind.
    if (open === 0) this.memory.tenants.releaseIdle(lease.tenant);
    const evictedBy = reason === 'evicted' ? by : undefined;
    this.log.info({ event: `lease_${reason}`, leaseId: lease.leaseId, tenant: lease.tenant, arrays, freedBytes, ...(evictedBy !== undefined && { by: evictedBy }) }, `lease ${reason}${evictedBy !== undefined ? ` by ${evictedBy}` : ''}`);
    return freedBytes;
  }

  /** close() for inTurns: the bytes freed, and the work done in TURN_WORK's units, the mapped regions given back counted as they went. */
  private closeInTurn(lease: Lease, reason: LeaseCloseReason, by?: string): { freedBytes: number; work: number } {
    const work = closeWork(lease);
    const regionsBefore = this.memory.mappedRegionsHeld;
    const freedBytes = this.close(lease, reason, by);
    return { freedBytes, work: work + REGION_WORK * Math.max(0, regionsBefore - this.memory.mappedRegionsHeld) };
  }

  /** Closes every expired lease; returns how many. */
  sweep(now = Date.now()): number {
    return this.closeExpired([...this.byId.values()], now);
  }

  /** Closes `tenant`'s expired leases now (as the sweep will); returns how many. */
  private sweepTenant(tenant: string): number {
    return this.closeExpired(this.leasesOf(tenant), Date.now());
  }

  /** Closes those of `leases` past their TTL at `now` (reason expired); returns how many. */
  private closeExpired(leases: Lease[], now: number): number {
    let count = 0;
    for (const lease of leases) {
      if (lease.isExpired(now)) {
        this.close(lease, 'expired');
        count++;
      }
    }
    this.reclaimedTotal += count;
    return count;
  }

  /**
   * The periodic sweep: the leases past their TTL at one instant, looked at and closed TURN_WORK at a
   * time (inTurns), so that neither many open leases nor a mass expiry (a job of many leases gone at
   * once) stalls every other tenant's calls. Their tokens answer "has expired" meanwhile; a lease closed
   * meanwhile is no longer in byId, whose live iterator skips it, and one opened meanwhile is looked at.
   */
  private async sweepInTurns(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      await inTurns(this.byId.values(), (lease) => {
        if (!lease.isExpired(now)) return 1;
        this.reclaimedTotal++;
        return this.closeInTurn(lease, 'expired').work;
      });
    } finally {
      this.sweeping = false;
    }
  }

  startSweeping(intervalMs: number): void {
    this.sweepTimer = setInterval(() => {
      this.sweepInTurns().catch((error: Error) => this.log.error({ event: 'sweep_failed', err: error }, `lease sweep failed: ${error.message}`));
    }, intervalMs);
    this.sweepTimer.unref();
  }

  stopSweeping(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** Every open lease, in the order they were opened. */
  list(): Lease[] {
    return [...this.byId.values()];
  }

  /** `tenant`'s open leases, in the order they were opened. */
  leasesOf(tenant: string): Lease[] {
    return [...(this.byTenant.get(tenant) ?? [])];
  }

  /** How many leases `tenant` has open. */
  countOf(tenant: string): number {
    return this.byTenant.get(tenant)?.size ?? 0;
  }

  /** The tenants that have a lease open. */
  tenantsWithLeases(): IterableIterator<string> {
    return this.byTenant.keys();
  }

  /** Open leases by tenant (only tenants that have one). */
  countsByTenant(): Map<string, number> {
    return new Map([...this.byTenant].map(([tenant, leases]) => [tenant, leases.size]));
  }

  /**
   * A page of open leases in the order they were opened: those of `tenant` (every tenant's when
   * undefined) with a serial above `afterSerial`, at most `pageSize` (0: all). `nextAfterSerial` is
   * the last one's serial when more follow, else undefined. Leases opened later come in later pages;
   * one closed meanwhile is simply absent; none is listed twice.
   */
  page(tenant: string | undefined, afterSerial: number, pageSize: number): { leases: Lease[]; nextAfterSerial?: number; total: number } {
    const order = tenant === undefined ? this.inOrder : this.inOrderByTenant.get(tenant);
    const total = tenant === undefined ? this.byId.size : this.countOf(tenant);
    // One more than the page, to tell whether more follow.
    const leases = order?.after(afterSerial, pageSize > 0 ? pageSize + 1 : Infinity) ?? [];
    if (pageSize <= 0 || leases.length <= pageSize) return { leases, total };
    leases.length = pageSize;
    return { leases, nextAfterSerial: leases[pageSize - 1].serial, total };
  }

  /** Any lease by id (admin eviction); NOT_FOUND when there is none. */
  byLeaseId(leaseId: unknown): Lease {
    if (typeof leaseId !== 'string' || leaseId === '') throw invalidArgument('lease_id', 'a lease id', leaseId);
    const lease = this.byId.get(leaseId);
    if (!lease) throw notFound('lease', leaseId);
    return lease;
  }

  /**
   * Closes every lease `tenant` has open now (reason evicted), TURN_WORK at a time with other work let
   * in between (inTurns), so that evicting a tenant of a hundred thousand leases, or of leases of many
   * arrays, does not stall every other tenant's calls. A lease the tenant opens meanwhile stays open.
   */
  async evictTenant(tenant: string, by?: string): Promise<{ freedBytes: number; evicted: number }> {
    let freedBytes = 0;
    let evicted = 0;
    this.evictions.set(tenant, (this.evictions.get(tenant) ?? 0) + 1);
    try {
      await inTurns(this.leasesOf(tenant), (lease) => {
        if (!this.byId.has(lease.leaseId)) return 1;
        const closed = this.closeInTurn(lease, 'evicted', by);
        freedBytes += closed.freedBytes;
        evicted++;
        return closed.work;
      });
    } finally {
      const running = this.evictions.get(tenant)! - 1;
      if (running === 0) this.evictions.delete(tenant);
      else this.evictions.set(tenant, running);
    }
    this.log.info({ event: 'tenant_evicted', tenant, evicted, freedBytes, ...(by !== undefined && { by }) }, `tenant ${tenant}: ${counted(evicted, 'lease')} evicted${by !== undefined ? ` by ${by}` : ''}`);
    return { freedBytes, evicted };
  }

  /** Whether an evictTenant of `tenant` is under way (closing its leases in turns). */
  isEvicting(tenant: string): boolean {
    return this.evictions.has(tenant);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Closes every lease (shutdown); returns the bytes freed. */
  closeAll(): number {
    let freed = 0;
    for (const lease of [...this.byId.values()]) freed += this.close(lease, 'shutdown');
    return freed;
  }
}
