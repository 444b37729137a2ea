/** tensormem.v1.LeaseService. */
import type { Server, ServerDuplexStream } from '@grpc/grpc-js';
import { TensormemError, clipped, invalidArgument, quoted } from '../errors';
import type { Lease } from '../leases/lease';
import { LEASE_TOKEN, TENANT_OR_LEASE_TOKEN } from '../leases/lease-registry';
import type { LeaseServiceHandlers } from '../generated/tensormem/v1/LeaseService';
import type { Lease as LeaseMessage } from '../generated/tensormem/v1/Lease';
import type { LeaseSummary } from '../generated/tensormem/v1/LeaseSummary';
import type { ListLeasesRequest__Output } from '../generated/tensormem/v1/ListLeasesRequest';
import type { ListLeasesResponse } from '../generated/tensormem/v1/ListLeasesResponse';
import type { EvictLeaseRequest__Output } from '../generated/tensormem/v1/EvictLeaseRequest';
import type { EvictLeaseResponse } from '../generated/tensormem/v1/EvictLeaseResponse';
import type { KeepAliveRequest__Output } from '../generated/tensormem/v1/KeepAliveRequest';
import type { KeepAliveResponse } from '../generated/tensormem/v1/KeepAliveResponse';
import { toServiceError } from './errors';
import { bearerToken, timestamp, unary } from './handlers';
import { loadTensormemProto } from './proto';
import { Listing, pageStart, pageTokenOf } from './page-tokens';
import { requireWellFormed, tolerantDeserializers } from './malformed';
import { ServiceContext, endWhenDraining, refuseWhileDraining, requireAdmin, shuttingDownError } from './service-context';

const MAX_NAME_LENGTH = 256;
/** Lease labels: every ListLeases reply and status snapshot carries them, so their size is bounded. */
export const MAX_LABELS = 64;
export const MAX_LABEL_KEY_LENGTH = 63;
export const MAX_LABEL_VALUE_LENGTH = 256;
/**
 * How long the daemon waits after a KeepAlive client's half-close before it answers with its status:
 * a cancelled call's reset, which closes a release_on_disconnect lease, follows its half-close within
 * this time (it is sent right after it), a graceful half-close keeps the lease.
 */
export const KEEP_ALIVE_HALF_CLOSE_GRACE_MS = 150;

/**
 * A lease's TTL as the whole seconds a reply reports: rounded, and at least 1, since ttl_seconds 0
 * means "the daemon's default" in requests (a sub-second --lease-ttl such as 400ms reports 1).
 */
export function ttlSecondsOf(ttlMs: number): number {
  return Math.max(1, Math.round(ttlMs / 1000));
}

export function leaseMessage(lease: Lease, token = ''): LeaseMessage {
  return {
    lease_id: lease.leaseId,
    token,
    ttl_seconds: ttlSecondsOf(lease.ttlMs),
    expires_at: timestamp(lease.expiresAtMs),
    tenant: lease.tenant,
    client_name: lease.clientName,
  };
}

export function leaseSummary(lease: Lease): LeaseSummary {
  return {
    lease_id: lease.leaseId,
    tenant: lease.tenant,
    client_name: lease.clientName,
    labels: lease.labels,
    created_at: timestamp(lease.createdAt),
    expires_at: timestamp(lease.expiresAtMs),
    age_seconds: Math.floor((Date.now() - lease.createdAtMs) / 1000),
    device_bytes: lease.deviceBytes(),
    host_bytes: lease.hostBytes(),
    mmap_bytes: lease.mmapBytes(),
    array_count: lease.arrays.size,
    ttl_seconds: ttlSecondsOf(lease.ttlMs),
  };
}

/** The `count` leases (0: all) holding the most device and host bytes, most first; equal ones in the order given (a stable sort). */
export function biggestLeases(leases: Lease[], count: number): Lease[] {
  const sized = leases.map((lease) => ({ lease, bytes: lease.deviceBytes() + lease.hostBytes() }));
  sized.sort((a, b) => b.bytes - a.bytes);
  return (count > 0 ? sized.slice(0, count) : sized).map(({ lease }) => lease);
}

/** The ListLeases listing of `tenant`'s leases (undefined: every tenant's), for its page tokens. */
function leaseListing(tenant: string | undefined): Listing {
  return tenant === undefined
    ? { rpc: 'ListLeases', key: '*', name: "every tenant's leases" }
    : { rpc: 'ListLeases', key: `t:${tenant}`, name: `tenant ${JSON.stringify(tenant)}'s leases` };
}

function checkName(field: string, value: string): void {
  if (value.length > MAX_NAME_LENGTH) throw invalidArgument(field, `at most ${MAX_NAME_LENGTH} characters`, `${value.length} characters`);
}

/** At most MAX_LABELS labels, keys of 1 to MAX_LABEL_KEY_LENGTH characters, values of at most MAX_LABEL_VALUE_LENGTH. */
export function checkLabels(labels: Record<string, string> | undefined): void {
  const entries = Object.entries(labels ?? {});
  if (entries.length > MAX_LABELS) throw invalidArgument('labels', `at most ${MAX_LABELS} labels`, `${entries.length} labels`);
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > MAX_LABEL_KEY_LENGTH) throw invalidArgument('labels', `keys of 1 to ${MAX_LABEL_KEY_LENGTH} characters`, `a key of ${key.length} characters`);
    if (value.length > MAX_LABEL_VALUE_LENGTH) throw invalidArgument(`labels[${JSON.stringify(key)}]`, `at most ${MAX_LABEL_VALUE_LENGTH} characters`, `${value.length} characters`);
  }
}

export class LeaseService {
  constructor(private readonly context: ServiceContext) {}

  /**
   * The leases ListLeases may show `token`, narrowed to `tenant` when given. Lease token: that lease.
   * Tenant token: the tenant's leases. Admin token or open mode: every lease. A tenant or lease token
   * naming another tenant: PERMISSION_DENIED.
   */
  private visibleLeases(token: string | undefined, tenant: string): { tenant?: string } | { lease: Lease } {
    const { registry, tenants } = this.context;
    const asked = tenant === '' ? undefined : tenant;
    const caller = tenants.openMode && !token ? undefined : tenants.match(token);
    if ((tenants.openMode && !token) || caller?.admin || (tenants.openMode && caller)) return { tenant: asked };
    // Open mode has no tenant tokens to name; the calls that reach here there sent a token.
    const wording = tenants.openMode ? LEASE_TOKEN : TENANT_OR_LEASE_TOKEN;
    const own = caller ? caller.name : registry.authenticate(token, wording).tenant;
    if (asked !== undefined && asked !== own) {
      throw new TensormemError('PERMISSION_DENIED', 'PERMISSION_DENIED', `tenant: this token lists only tenant "${own}"'s leases, not "${asked}"'s (an admin token lists any tenant's)`, { tenant: asked });
    }
    return caller ? { tenant: own } : { lease: registry.authenticate(token, wording) };
  }

  private listLeases(token: string | undefined, request: ListLeasesRequest__Output): ListLeasesResponse {
    checkName('tenant', request.tenant);
    if (request.order !== 'LEASE_ORDER_UNSPECIFIED' && request.order !== 'LEASE_ORDER_OPENED' && request.order !== 'LEASE_ORDER_BYTES') {
      throw invalidArgument('order', 'LEASE_ORDER_UNSPECIFIED or LEASE_ORDER_OPENED (the order the leases were opened), or LEASE_ORDER_BYTES', request.order);
    }
    if (request.order === 'LEASE_ORDER_BYTES' && request.page_token !== '') throw invalidArgument('page_token', 'empty with order LEASE_ORDER_BYTES (one page: the page_size biggest)', request.page_token);
    const view = this.visibleLeases(token, request.tenant);
    const listing = leaseListing('lease' in view ? view.lease.tenant : view.tenant);
    const afterSerial = pageStart(request.page_token, listing);
    if ('lease' in view) {
      const shown = view.lease.serial > afterSerial ? [view.lease] : [];
      return { leases: shown.map(leaseSummary), next_page_token: '', total_count: 1 };
    }
    if (request.order === 'LEASE_ORDER_BYTES') {
      const { leases, total } = this.context.registry.page(view.tenant, 0, 0);
      return { leases: biggestLeases(leases, request.page_size).map(leaseSummary), next_page_token: '', total_count: total };
    }
    const page = this.context.registry.page(view.tenant, afterSerial, request.page_size);
    return { leases: page.leases.map(leaseSummary), next_page_token: page.nextAfterSerial === undefined ? '' : pageTokenOf(page.nextAfterSerial, listing), total_count: page.total };
  }

  /** EvictLease: one lease by id, or every open lease of a tenant. */
  private async evict(token: string | undefined, request: EvictLeaseRequest__Output): Promise<EvictLeaseResponse> {
    const { registry, tenants } = this.context;
    requireAdmin(this.context, token);
    if (request.lease_id !== '' && request.tenant !== '') throw invalidArgument('tenant', 'empty when lease_id is set (evict one lease, or every lease of a tenant)', request.tenant);
    if (request.lease_id === '' && request.tenant === '') throw invalidArgument('lease_id', 'a lease id, or a tenant in tenant (exactly one of the two)', request.lease_id);
    // Who evicted, for the log lines (an operator asked why a trainer's lease ended): the admin tenant; none in open mode.
    const by = tenants.openMode ? undefined : tenants.match(token)?.name;
    if (request.tenant === '') return { freed_bytes: registry.close(registry.byLeaseId(request.lease_id), 'evicted', by), evicted_leases: 1 };
    checkName('tenant', request.tenant);
    if (registry.countOf(request.tenant) === 0 && !tenants.get(request.tenant)) {
      throw new TensormemError('NOT_FOUND', 'TENANT_NOT_FOUND', `tenant ${quoted(request.tenant)} not found: it has no open lease${tenants.openMode ? '' : ' and the tenants file does not name it'}`, { tenant: clipped(request.tenant) });
    }
    const { freedBytes, evicted } = await registry.evictTenant(request.tenant, by);
    return { freed_bytes: freedBytes, evicted_leases: evicted };
  }

  addToServer(server: Server): void {
    const { proto } = loadTensormemProto();
    const { registry, tenants, log } = this.context;
    const handlers: LeaseServiceHandlers = {
      OpenLease: unary(log, (call) => {
        refuseWhileDraining(this.context);
        const request = call.request;
        checkName('tenant', request.tenant);
        checkName('client_name', request.client_name);
        checkLabels(request.labels);
        const tenant = tenants.authorizeOpen(bearerToken(call.metadata), request.tenant);
        const { lease, token } = registry.open(
          { tenant: tenant.name, clientName: request.client_name, ttlSeconds: request.ttl_seconds, labels: request.labels },
          tenant.spec?.maxLeases ?? 0,
        );
        return { lease: leaseMessage(lease, token), data_address: this.context.dataAddress ?? '' };
      }),
      RenewLease: unary(log, (call) => {
        const lease = registry.resolve(registry.authenticate(bearerToken(call.metadata)), call.request.lease_id);
        registry.renew(lease, call.request.ttl_seconds);
        return { lease: leaseMessage(lease) };
      }),
      CloseLease: unary(log, (call) => {
        const lease = registry.resolve(registry.authenticate(bearerToken(call.metadata)), call.request.lease_id);
        return { freed_bytes: registry.close(lease, 'closed') };
      }),
      ListLeases: unary(log, (call) => this.listLeases(bearerToken(call.metadata), call.request)),
      EvictLease: unary(log, (call) => this.evict(bearerToken(call.metadata), call.request)),
      KeepAlive: (call: ServerDuplexStream<KeepAliveRequest__Output, KeepAliveResponse>) => {
        let releaseOnDisconnect: Lease | undefined;
        // Whether this side ended the call (an OK status after the client's half-close, or an error):
        // a 'cancelled' after that is the call's normal end, one before it is a drop.
        let endedHere = false;
        let halfCloseTimer: NodeJS.Timeout | undefined;
        call.on('data', (request: KeepAliveRequest__Output) => {
          try {
            requireWellFormed(request);
            const lease = registry.resolve(registry.authenticate(bearerToken(call.metadata)), request.lease_id);
            // no_renew: a clean stop's last message, which travels behind any unary call sent after
            // it, so that renewing here could extend the lease past what a RenewLease just answered.
            if (!request.no_renew) registry.renew(lease, 0);
            // Each message says it anew: a client stopping cleanly sends false first, so that its
            // connection closing right after (a process exiting) cannot read as a drop.
            releaseOnDisconnect = request.release_on_disconnect ? lease : undefined;
            call.write({ lease_id: lease.leaseId, expires_at: timestamp(lease.expiresAtMs), ttl_seconds: ttlSecondsOf(lease.ttlMs) });
          } catch (error) {
            endedHere = true;
            call.emit('error', toServiceError(error, log));
          }
        });
        // A client that cancels its call (grpc-js cancel(), a passed deadline) half-closes the HTTP/2
        // stream and resets it (RST_STREAM) right after, so its reset first reads here as an 'end' just
        // like a graceful half-close (stopKeepAlive), and 'cancelled' follows within about a millisecond.
        // Answering the half-close at once would end the call before that 'cancelled' and so keep a
        // release_on_disconnect lease; it is answered after a grace period instead, unless the call has
        // been cancelled by then. The setImmediate after the timer lets I/O that arrived meanwhile (a reset
        // read late because the event loop was busy) be read first.
        call.on('end', () => {
          halfCloseTimer = setTimeout(
            () =>
              setImmediate(() => {
                if (call.cancelled || endedHere) return;
                endedHere = true;
                call.end();
              }),
            KEEP_ALIVE_HALF_CLOSE_GRACE_MS,
          );
          halfCloseTimer.unref();
        });
        call.on('cancelled', () => {
          if (halfCloseTimer) clearTimeout(halfCloseTimer);
          if (!endedHere && releaseOnDisconnect && !releaseOnDisconnect.closed) registry.close(releaseOnDisconnect, 'disconnected');
        });
        call.on('error', () => {});
        endWhenDraining(this.context, call, () => {
          if (endedHere) return;
          endedHere = true;
          if (halfCloseTimer) clearTimeout(halfCloseTimer);
          call.emit('error', toServiceError(shuttingDownError(), log));
        });
      },
    };
    server.addService(tolerantDeserializers(proto.tensormem.v1.LeaseService.service), handlers);
  }
}
