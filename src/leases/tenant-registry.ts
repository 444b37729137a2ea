/**
 * Who may open leases. With a tenants file, a tenant token (sent as `authorization: Bearer <token>`)
 * is hashed, looked up by its SHA-256 (as lease tokens are) and compared in constant time with the
 * token_sha256 found; without one the daemon is in open mode and any name is a tenant with no quota. Reloaded on SIGHUP: a bad file is refused
 * and the old tenants stay in force; leases already open are kept. A tenant the new file drops can
 * open no lease, and its open leases keep the quotas it last had (not its guarantee, which the new
 * file's guarantees no longer leave room for): dropping a tenant never lifts its limits.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { clipped, quoted, TENSORMEMCTL_TOKEN, TensormemError, unauthenticated } from '../errors';
import type { TenantLimits } from '../memory/tenant-accounts';
import type { TenantSpec } from './tenants-file';

export const DEFAULT_TENANT = 'default';

export class TenantRegistry {
  private tenants: TenantSpec[];
  /**
   * The tenants by the hex SHA-256 of their token (lower case), each with its hash's bytes: match
   * compared the token's hash with every tenant's, 0.55 µs a tenant (10,000 tenants: 546 µs per
   * OpenLease, GetMemoryInfo, ListLeases or admin call). A lookup keyed by the SHA-256 tells nothing
   * of the token by its timing, as LeaseRegistry's by token hash.
   */
  private byHash: Map<string, { spec: TenantSpec; hash: Buffer }>;
  /**
   * The tenants by name: get and limitsOf were a scan of `tenants`, and GetMemoryInfo (every scrape of
   * /metrics, every status page tick) asks each tenant's max_leases, a reload each tenant's limits: with
   * 10,000 tenants one GetMemoryInfo took 246 ms and a reload 184 ms.
   */
  private byName: Map<string, TenantSpec>;
  /**
   * Tenants a reload dropped, by name: their last quotas still bind their open leases. Only while they
   * have any (forgetUnusedDropped): a tenants file that rotates tenant names must not grow it for ever.
   */
  private readonly dropped = new Map<string, TenantLimits & { maxLeases: number }>();

  /** `tenants` undefined: open mode. */
  constructor(tenants: TenantSpec[] | undefined) {
    this.tenants = tenants ?? [];
    this.byHash = byHashOf(this.tenants);
    this.byName = byNameOf(this.tenants);
    this.openMode = tenants === undefined;
  }

  readonly openMode: boolean;

  /** Reloads (SIGHUP) since start: the file taken, or refused with the previous tenants kept. */
  readonly reloads = { reloaded: 0, refused: 0 };
  /** Whether the last reload took the file (true before any). */
  lastReloadSucceeded = true;
  /** When the tenants in force were read (ms since the epoch): at start, or by the last reload that took the file. */
  loadedAtMs = Date.now();

  /** A reload (SIGHUP) that took the file: its tenants replace these, counted. */
  reloaded(tenants: TenantSpec[]): void {
    this.replace(tenants);
    this.reloads.reloaded++;
    this.lastReloadSucceeded = true;
    this.loadedAtMs = Date.now();
  }

  /** A reload that refused the file: these tenants stay in force, counted. */
  reloadRefused(): void {
    this.reloads.refused++;
    this.lastReloadSucceeded = false;
  }

  replace(tenants: TenantSpec[]): void {
    const kept = new Set(tenants.map((tenant) => tenant.name));
    for (const tenant of this.tenants) {
      if (!kept.has(tenant.name)) this.dropped.set(tenant.name, { ...this.limitsOf(tenant.name), deviceGuaranteeBytes: 0, maxLeases: tenant.maxLeases });
    }
    for (const name of kept) this.dropped.delete(name);
    this.tenants = tenants;
    this.byHash = byHashOf(tenants);
    this.byName = byNameOf(tenants);
  }

  /**
   * Forgets the limits of dropped tenants that `inUse` (open leases, or memory still held) says no
   * longer need them: they can open no lease unless a later file brings them back, with its limits.
   */
  forgetUnusedDropped(inUse: (name: string) => boolean): void {
    for (const name of [...this.dropped.keys()]) {
      if (!inUse(name)) this.dropped.delete(name);
    }
  }

  /** How many dropped tenants' limits are kept. */
  get droppedCount(): number {
    return this.dropped.size;
  }

  /**
   * Whether `name`, a tenant with leases or memory, is one the tenants file no longer names (a reload
   * dropped it: only the file's tenants open leases). False in open mode.
   */
  isDropped(name: string): boolean {
    return !this.openMode && !this.byName.has(name);
  }

  list(): readonly TenantSpec[] {
    return this.tenants;
  }

  get(name: string): TenantSpec | undefined {
    return this.byName.get(name);
  }

  /** The tenant whose token this is, or undefined: found by the token's SHA-256, compared in constant time. */
  match(token: string | undefined): TenantSpec | undefined {
    if (!token) return undefined;
    const hash = createHash('sha256').update(token).digest();
    const found = this.byHash.get(hash.toString('hex'));
    return found && timingSafeEqual(hash, found.hash) ? found.spec : undefined;
  }

  /**
   * The tenant a lease is opened for. Open mode: the requested name (or "default"). Otherwise the
   * token's tenant; a `tenant` field naming another tenant is refused like a wrong token.
   */
  authorizeOpen(token: string | undefined, requestedTenant: string): { name: string; spec?: TenantSpec } {
    if (this.openMode) return { name: requestedTenant || DEFAULT_TENANT };
    const spec = this.match(token);
    if (!spec) throw unauthenticated(token ? 'unknown tenant token' : `missing tenant token: send "authorization: Bearer <tenant token>", or openLease({ tenantToken }) from the typed client (${TENSORMEMCTL_TOKEN})`);
    if (requestedTenant !== '' && requestedTenant !== spec.name) {
      // Whose the token is tells its holder nothing new: OpenLease without a tenant answers it.
      throw new TensormemError(
        'UNAUTHENTICATED',
        'UNAUTHENTICATED',
        `tenant: this token is tenant ${quoted(spec.name)}'s, not ${quoted(requestedTenant)}'s: leave tenant empty, or send the token of tenant ${quoted(requestedTenant)}`,
        { field: 'tenant', tenant: clipped(requestedTenant) },
      );
    }
    return { name: spec.name, spec };
  }

  /** Admin check for eviction and whole-daemon views: open mode, or an admin tenant's token. */
  isAdmin(token: string | undefined): boolean {
    return this.openMode || this.match(token)?.admin === true;
  }

  /**
   * Admin calls: an admin tenant token passes; a tenant token that is not an admin's, or the token of a
   * live lease (`leaseOfToken`: it authenticates its tenant, as ListLeases and GetMemoryInfo take it),
   * is PERMISSION_DENIED; anything else UNAUTHENTICATED.
   */
  requireAdmin(token: string | undefined, leaseOfToken?: (token: string | undefined) => { leaseId: string; tenant: string } | undefined): void {
    if (this.isAdmin(token)) return;
    if (this.match(token)) throw new TensormemError('PERMISSION_DENIED', 'PERMISSION_DENIED', 'this call needs an admin tenant token');
    const lease = leaseOfToken?.(token);
    if (!lease) throw unauthenticated(token ? 'an admin tenant token is required' : `missing token: this call needs an admin tenant token; send "authorization: Bearer <token>" (${TENSORMEMCTL_TOKEN})`);
    throw new TensormemError(
      'PERMISSION_DENIED',
      'PERMISSION_DENIED',
      `this call needs an admin tenant token, and this is the token of lease ${lease.leaseId} of tenant ${quoted(lease.tenant)} (a lease token acts for its own lease only)`,
      { lease_id: lease.leaseId, tenant: lease.tenant },
    );
  }

  /** The tenant's max_leases (0 = no limit): a dropped tenant's last one, as its other limits. */
  maxLeasesOf(name: string): number {
    return this.get(name)?.maxLeases ?? this.dropped.get(name)?.maxLeases ?? 0;
  }

  limitsOf(name: string): TenantLimits {
    const spec = this.get(name);
    if (!spec) {
      const dropped = this.dropped.get(name);
      if (dropped) {
        const { maxLeases: _maxLeases, ...limits } = dropped;
        return limits;
      }
    }
    return { deviceQuotaBytes: spec?.deviceQuotaBytes ?? 0, hostQuotaBytes: spec?.hostQuotaBytes ?? 0, mmapQuotaBytes: spec?.mmapQuotaBytes ?? 0, deviceGuaranteeBytes: spec?.deviceGuaranteeBytes ?? 0, maxArrays: spec?.maxArrays ?? 0, maxMappedRegions: spec?.maxMappedRegions ?? 0 };
  }
}

/** Tenants by token hash; of two with one hash (the tenants file refuses that), the first, as a scan finds it. */
function byHashOf(tenants: readonly TenantSpec[]): Map<string, { spec: TenantSpec; hash: Buffer }> {
  const byHash = new Map<string, { spec: TenantSpec; hash: Buffer }>();
  for (const spec of tenants) {
    const hash = Buffer.from(spec.tokenSha256, 'hex');
    const key = hash.toString('hex');
    if (!byHash.has(key)) byHash.set(key, { spec, hash });
  }
  return byHash;
}

/** Tenants by name; of two with one name (the tenants file refuses that), the first, as a scan finds it. */
function byNameOf(tenants: readonly TenantSpec[]): Map<string, TenantSpec> {
  const byName = new Map<string, TenantSpec>();
  for (const tenant of tenants) if (!byName.has(tenant.name)) byName.set(tenant.name, tenant);
  return byName;
}
