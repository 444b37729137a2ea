/**
 * ListLeases in pages and by tenant, and EvictLease of a whole tenant: what an operator needs when one
 * tenant has opened more leases than one reply can carry, against a daemon process with a tenants file.
 */
import { randomBytes } from 'node:crypto';
import { ServiceError, credentials, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import type { LeaseOrder } from '../../src/generated/tensormem/v1/LeaseOrder';
import { loadTensormemProto } from '../../src/service/proto';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { failure } from '../helpers/thrown';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const TOKENS = { a: randomBytes(24).toString('hex'), b: randomBytes(24).toString('hex'), idle: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };

describe('ListLeases pages and tenant eviction', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    const tenantsPath = writeTenantsFile(`tenants:
  - name: team-a
    token_sha256: "${tokenSha256(TOKENS.a)}"
    max_leases: 5000
  - name: team-b
    token_sha256: "${tokenSha256(TOKENS.b)}"
  - name: team-idle
    token_sha256: "${tokenSha256(TOKENS.idle)}"
  - name: ops
    token_sha256: "${tokenSha256(TOKENS.admin)}"
    admin: true
`);
    daemon = await startDaemon(['--tenants', tenantsPath, '--maxbytes', '64M', '--pool-chunk', '4M', '--lease-ttl', '120s']);
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  /** `count` leases opened one after the other (so their order is known), or `inFlight` at a time. */
  const open = async (token: string, count: number, inFlight = 1) => {
    const leases: LeaseSession[] = [];
    for (let i = 0; i < count; i += inFlight) leases.push(...(await Promise.all(Array.from({ length: Math.min(inFlight, count - i) }, (_, j) => client.openLease({ tenantToken: token, clientName: `c${i + j}` })))));
    return leases;
  };
  const closeAll = (leases: LeaseSession[]) => Promise.all(leases.map((lease) => lease.close().catch(() => undefined)));

  it('pages every lease in the order they were opened, none twice, with the total; by tenant too', async () => {
    const a = await open(TOKENS.a, 23);
    const b = await open(TOKENS.b, 4);
    try {
      const opened = [...a, ...b].map((lease) => lease.leaseId);
      const seen: string[] = [];
      let pageToken = '';
      let pages = 0;
      do {
        const page = await client.listLeasesPage({ pageSize: 7, pageToken }, TOKENS.admin);
        expect(page.totalCount).toBe(27);
        expect(page.leases.length).toBeLessThanOrEqual(7);
        seen.push(...page.leases.map((lease) => lease.lease_id));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken !== '' && pages < 10);
      expect(pages).toBe(4); // 7 + 7 + 7 + 6: no empty page at the end
      expect(seen).toEqual(opened);

      // The typed client pages for its caller; an admin may ask for one tenant.
      expect((await client.listLeases(TOKENS.admin, { pageSize: 5 })).length).toBe(27);
      const onlyB = await client.listLeasesPage({ tenant: 'team-b', pageSize: 3 }, TOKENS.admin);
      expect(onlyB.totalCount).toBe(4);
      expect(onlyB.leases.map((lease) => lease.lease_id)).toEqual(b.slice(0, 3).map((lease) => lease.leaseId));
      expect((await client.listLeases(TOKENS.admin, { tenant: 'team-b', pageSize: 3 })).map((lease) => lease.lease_id)).toEqual(b.map((lease) => lease.leaseId));
      // A tenant's own view: its token, its leases, with or without naming itself.
      expect((await client.listLeases(TOKENS.b, { tenant: 'team-b' })).length).toBe(4);
      expect((await client.listLeasesPage({}, TOKENS.b)).totalCount).toBe(4);
      // A name with no open lease lists none.
      expect(await client.listLeasesPage({ tenant: 'nobody' }, TOKENS.admin)).toEqual({ leases: [], nextPageToken: '', totalCount: 0 });
    } finally {
      await closeAll([...a, ...b]);
    }
  });

  it('keeps its place while leases open and close between pages', async () => {
    const a = await open(TOKENS.a, 12);
    const late: LeaseSession[] = [];
    try {
      const first = await client.listLeasesPage({ tenant: 'team-a', pageSize: 6 }, TOKENS.admin);
      const firstIds = first.leases.map((lease) => lease.lease_id);
      // One listed already and one not listed yet close; one opens.
      const closedListed = a.find((lease) => lease.leaseId === firstIds[0])!;
      const closedUnlisted = a.find((lease) => !firstIds.includes(lease.leaseId))!;
      await closedListed.close();
      await closedUnlisted.close();
      late.push(await client.openLease({ tenantToken: TOKENS.a }));
      const rest: string[] = [];
      let pageToken = first.nextPageToken;
      while (pageToken !== '') {
        const page = await client.listLeasesPage({ tenant: 'team-a', pageSize: 6, pageToken }, TOKENS.admin);
        rest.push(...page.leases.map((lease) => lease.lease_id));
        pageToken = page.nextPageToken;
      }
      expect(rest.filter((id) => firstIds.includes(id))).toEqual([]);
      expect(rest).not.toContain(closedUnlisted.leaseId);
      expect(rest[rest.length - 1]).toBe(late[0].leaseId);
      expect(rest.length).toBe(12 - 6 - 1 + 1);
    } finally {
      await closeAll([...a, ...late]);
    }
  });

  it('refuses a page token it did not give, and a tenant token naming another tenant, naming the field', async () => {
    const b = await client.openLease({ tenantToken: TOKENS.b });
    try {
      const badToken = await failure(client.listLeasesPage({ pageToken: 'p-1' }, TOKENS.admin));
      expect(badToken.code).toBe(status.INVALID_ARGUMENT);
      expect(badToken.details).toContain('page_token');
      expect(badToken.details).toContain('p-1');
      for (const token of [TOKENS.a, b.token]) {
        const other = await failure(client.listLeasesPage({ tenant: token === TOKENS.a ? 'team-b' : 'team-a' }, token));
        expect(other.code).toBe(status.PERMISSION_DENIED);
        expect(other.details).toContain('tenant');
      }
      // A lease token: its own lease, named by its tenant or not.
      expect((await client.listLeasesPage({ tenant: 'team-b' }, b.token)).leases.map((lease) => lease.lease_id)).toEqual([b.leaseId]);
      expect((await client.listLeasesPage({ pageSize: 1 }, b.token)).totalCount).toBe(1);
    } finally {
      await b.close();
    }
  });

  it("refuses a page token of one tenant's listing passed with another tenant (it silently skipped that tenant's older leases)", async () => {
    const b = await open(TOKENS.b, 3);
    const a = await open(TOKENS.a, 3);
    try {
      const ofA = await client.listLeasesPage({ tenant: 'team-a', pageSize: 1 }, TOKENS.admin);
      const ofAll = await client.listLeasesPage({ pageSize: 4 }, TOKENS.admin);
      for (const [pageToken, tenant] of [
        [ofA.nextPageToken, 'team-b'],
        [ofAll.nextPageToken, 'team-b'],
        [ofA.nextPageToken, ''],
      ]) {
        const refused = await failure(client.listLeasesPage({ tenant, pageSize: 10, pageToken }, TOKENS.admin));
        expect(refused.code).toBe(status.INVALID_ARGUMENT);
        expect(refused.details).toContain('page_token');
      }
      // A tenant token's own listing, its tenant named or not, is one listing.
      const own = await client.listLeasesPage({ pageSize: 1 }, TOKENS.b);
      const rest = await client.listLeasesPage({ tenant: 'team-b', pageSize: 10, pageToken: own.nextPageToken }, TOKENS.b);
      expect(rest.leases.map((lease) => lease.lease_id)).toEqual(b.slice(1).map((lease) => lease.leaseId));
      // Each token goes on with its own listing.
      const restOfA = await client.listLeasesPage({ tenant: 'team-a', pageSize: 10, pageToken: ofA.nextPageToken }, TOKENS.admin);
      expect(restOfA.leases.map((lease) => lease.lease_id)).toEqual(a.slice(1).map((lease) => lease.leaseId));
    } finally {
      await closeAll([...a, ...b]);
    }
  });

  it("gives a tenant page tokens that tell nothing of other tenants' leases (they held the daemon-wide serial in clear)", async () => {
    const before = await open(TOKENS.b, 2);
    const others = await open(TOKENS.a, 300, 50);
    const after = await open(TOKENS.b, 2);
    try {
      const tokens: string[] = [];
      const seen: string[] = [];
      let pageToken = '';
      do {
        const page = await client.listLeasesPage({ pageSize: 1, pageToken }, TOKENS.b);
        seen.push(...page.leases.map((lease) => lease.lease_id));
        if (page.nextPageToken !== '') tokens.push(page.nextPageToken);
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      expect(seen).toEqual([...before, ...after].map((lease) => lease.leaseId));
      // team-b's tokens after its 2nd and 3rd lease showed the 300 leases team-a opened between them
      // (p2.… then p303.…): no part of a token may be a plain number.
      expect(tokens).toHaveLength(3);
      const numbers = tokens.flatMap((token) => token.split(/[^0-9a-f]+/).filter((part) => /^\d+$/.test(part)));
      expect(numbers).toEqual([]);
    } finally {
      await closeAll([...before, ...others, ...after]);
    }
  });

  it('lists the biggest leases first in one page (tensormemctl top), equal ones in the order they were opened', async () => {
    const leases = await open(TOKENS.b, 5);
    const raw = new (loadTensormemProto().proto.tensormem.v1.LeaseService)(daemon.tcpAddress, credentials.createInsecure());
    try {
      // Bytes: 0, 3, 1, 3 and 2 times 64 KiB (two equal: the one opened first comes first).
      const sizes = [0, 3, 1, 3, 2];
      await Promise.all(leases.map((lease, i) => (sizes[i] > 0 ? lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [sizes[i] * 65536] }) : undefined)));
      const top = await client.listLeasesPage({ order: 'LEASE_ORDER_BYTES', pageSize: 3 }, TOKENS.admin);
      expect(top.leases.map((lease) => lease.lease_id)).toEqual([leases[1], leases[3], leases[4]].map((lease) => lease.leaseId));
      expect(top.leases.map((lease) => Number(lease.device_bytes))).toEqual([3 * 65536, 3 * 65536, 2 * 65536]);
      expect([top.nextPageToken, top.totalCount]).toEqual(['', 5]);
      expect((await client.listLeasesPage({ order: 'LEASE_ORDER_BYTES' }, TOKENS.b)).leases.length).toBe(5);
      const paged = await failure(client.listLeasesPage({ order: 'LEASE_ORDER_BYTES', pageSize: 3, pageToken: 'p1' }, TOKENS.admin));
      expect(paged.code).toBe(status.INVALID_ARGUMENT);
      expect(paged.details).toContain('page_token');
      const badOrder = await new Promise<ServiceError>((resolve, reject) =>
        raw.ListLeases({ order: 7 as number as LeaseOrder }, client.metadata(TOKENS.admin), (error: ServiceError | null) => (error ? resolve(error) : reject(new Error('ListLeases with order 7 answered OK')))),
      );
      expect(badOrder.code).toBe(status.INVALID_ARGUMENT);
      expect(badOrder.details).toContain('order');
      expect(badOrder.details).toContain('7');
    } finally {
      raw.close();
      await closeAll(leases);
    }
  });

  it('lists in the order the leases were opened for LEASE_ORDER_UNSPECIFIED (0, the default), LEASE_ORDER_OPENED, and the 0 a client of the older proto sends for OPENED', async () => {
    const leases = await open(TOKENS.b, 3);
    const raw = new (loadTensormemProto().proto.tensormem.v1.LeaseService)(daemon.tcpAddress, credentials.createInsecure());
    try {
      await leases[1].allocate({ dataType: 'DATA_TYPE_UINT8', shape: [65536] });
      const opened = leases.map((lease) => lease.leaseId);
      const ids = (page: { leases: Array<{ lease_id: string }> }) => page.leases.map((lease) => lease.lease_id);
      expect(ids(await client.listLeasesPage({}, TOKENS.b))).toEqual(opened);
      expect(ids(await client.listLeasesPage({ order: 'LEASE_ORDER_UNSPECIFIED' }, TOKENS.b))).toEqual(opened);
      expect(ids(await client.listLeasesPage({ order: 'LEASE_ORDER_OPENED' }, TOKENS.b))).toEqual(opened);
      // The wire values: 0 (the zero value, LEASE_ORDER_OPENED's number in the older proto) and 2.
      for (const order of [0, 2] as const) {
        const reply = await new Promise<{ leases: Array<{ lease_id: string }> }>((resolve, reject) =>
          raw.ListLeases({ tenant: 'team-b', order }, client.metadata(TOKENS.b), (error: ServiceError | null, value?: { leases: Array<{ lease_id: string }> }) => (error ? reject(error) : resolve(value!))),
        );
        expect(ids(reply), `order ${order}`).toEqual(opened);
      }
    } finally {
      raw.close();
      await closeAll(leases);
    }
  });

  it("evicts every lease of one tenant and frees all it held; the other tenants' leases stay", async () => {
    const a = await open(TOKENS.a, 600, 50);
    const b = await client.openLease({ tenantToken: TOKENS.b });
    try {
      const arraysOfA = await Promise.all(a.slice(0, 8).map((lease) => lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [262_144] })));
      await b.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024] });
      const before = (await client.memoryInfo(TOKENS.admin)).tenants.find((t) => t.tenant === 'team-a')!;
      expect(Number(before.device_used_bytes)).toBe(8 * 1024 * 1024);

      // Only an admin may, and a refused call changes nothing.
      expect((await failure(client.evictTenant('team-a', TOKENS.b))).code).toBe(status.PERMISSION_DENIED);
      expect((await client.listLeasesPage({ tenant: 'team-a', pageSize: 1 }, TOKENS.admin)).totalCount).toBe(600);

      const result = await client.evictTenant('team-a', TOKENS.admin);
      expect(result.evictedLeases).toBe(600);
      expect(result.freedBytes).toBe(8 * 1024 * 1024);
      const after = await client.memoryInfo(TOKENS.admin);
      const teamA = after.tenants.find((t) => t.tenant === 'team-a')!;
      expect([teamA.leases, Number(teamA.device_used_bytes), teamA.arrays]).toEqual([0, 0, 0]);
      expect((await client.listLeases(TOKENS.admin)).map((lease) => lease.lease_id)).toEqual([b.leaseId]);
      // An evicted lease's token says so.
      const evicted = await failure(a[0].get(arraysOfA[0].array_id));
      expect(evicted.code).toBe(status.UNAUTHENTICATED);
      expect(evicted.reason).toBe('LEASE_EXPIRED');
      expect(evicted.details).toContain('evicted');
      // team-b's lease and array are untouched.
      expect((await b.list()).length).toBe(1);
      // The tenant may open leases again (dropping it from the tenants file is what keeps it out).
      const again = await client.openLease({ tenantToken: TOKENS.a });
      await again.close();
    } finally {
      await b.close();
    }
  });

  it('answers a tenant without leases with 0, and names a tenant it does not know or a request that names both', async () => {
    expect(await client.evictTenant('team-idle', TOKENS.admin)).toEqual({ evictedLeases: 0, freedBytes: 0 });
    const unknown = await failure(client.evictTenant('team-z', TOKENS.admin));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.reason).toBe('TENANT_NOT_FOUND');
    expect(unknown.details).toContain('"team-z"');
    const lease = await client.openLease({ tenantToken: TOKENS.b });
    try {
      // The typed client never sends both; a raw request can.
      const raw = new (loadTensormemProto().proto.tensormem.v1.LeaseService)(daemon.tcpAddress, credentials.createInsecure());
      const both = await new Promise<ServiceError>((resolve, reject) =>
        raw.EvictLease({ lease_id: lease.leaseId, tenant: 'team-b' }, client.metadata(TOKENS.admin), (error: ServiceError | null) => (error ? resolve(error) : reject(new Error('EvictLease with both fields answered OK')))),
      );
      raw.close();
      expect(both.code).toBe(status.INVALID_ARGUMENT);
      expect(both.details).toContain('tenant');
      expect((await client.listLeases(TOKENS.admin)).map((l) => l.lease_id)).toContain(lease.leaseId);
    } finally {
      await lease.close();
    }
  });
});

describe('ListLeases page tokens across a restart', () => {
  it("refuses a page token the daemon's earlier run gave (its serials began again: the first leases were silently skipped)", async () => {
    const flags = ['--maxbytes', '16M', '--pool-chunk', '4M'];
    const first = await startDaemon(flags);
    let pageToken: string;
    try {
      const client = new TensormemClient(first.tcpAddress);
      const leases = [await client.openLease({ clientName: 'old-0' }), await client.openLease({ clientName: 'old-1' })];
      pageToken = (await client.listLeasesPage({ pageSize: 1 })).nextPageToken;
      expect(pageToken).not.toBe('');
      await Promise.all(leases.map((lease) => lease.close()));
      client.close();
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const second = await startDaemon(flags);
    try {
      const client = new TensormemClient(second.tcpAddress);
      const leases = [await client.openLease({ clientName: 'new-0' }), await client.openLease({ clientName: 'new-1' }), await client.openLease({ clientName: 'new-2' })];
      const refused = await failure(client.listLeasesPage({ pageSize: 10, pageToken }));
      expect(refused.code).toBe(status.INVALID_ARGUMENT);
      expect(refused.details).toContain('page_token');
      expect(refused.details).toContain('earlier run');
      // From the first page, every lease of this run.
      expect((await client.listLeasesPage({ pageSize: 10 })).leases.map((lease) => lease.client_name)).toEqual(['new-0', 'new-1', 'new-2']);
      await Promise.all(leases.map((lease) => lease.close()));
      client.close();
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });
});
