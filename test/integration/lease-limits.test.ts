/**
 * A tenant's max_leases and quota under several trainers at once: bursts of OpenLease and of
 * allocations from many leases never pass the limits, usage comes back to 0, and a lease past its TTL
 * that the sweep (--reclaim-interval) has not reached yet does not keep its tenant at max_leases.
 */
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const TOKENS = { a: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };

describe('max_leases and quotas under concurrent trainers', () => {
  let daemon: DaemonProcess;
  let clients: TensormemClient[];

  beforeAll(async () => {
    const tenantsPath = writeTenantsFile(`tenants:
  - name: team-a
    token_sha256: "${tokenSha256(TOKENS.a)}"
    quota: { device: 40M, host: 20M }
    max_leases: 4
  - name: ops
    token_sha256: "${tokenSha256(TOKENS.admin)}"
    admin: true
`);
    // A sweep far away: expired leases stay until something else closes them.
    daemon = await startDaemon(['--tenants', tenantsPath, '--maxbytes', '256M', '--pool-chunk', '4M', '--async-copy-threshold', '64K', '--reclaim-interval', '60s']);
    clients = Array.from({ length: 4 }, () => new TensormemClient(daemon.tcpAddress));
  });

  afterAll(async () => {
    for (const client of clients ?? []) client.close();
    expect(await daemon?.stop()).toBe(0);
  });

  async function teamA(): Promise<{ device: number; host: number; leases: number }> {
    const row = (await clients[0].memoryInfo(TOKENS.admin)).tenants.find((tenant) => tenant.tenant === 'team-a')!;
    return { device: Number(row.device_used_bytes), host: Number(row.host_used_bytes), leases: row.leases };
  }

  it('opens at most max_leases from a burst, and keeps every tenant within its quota under concurrent allocations', async () => {
    const opened = await Promise.allSettled(Array.from({ length: 24 }, (_, index) => clients[index % clients.length].openLease({ tenantToken: TOKENS.a, ttlSeconds: 60 })));
    const leases = opened.filter((result): result is PromiseFulfilledResult<LeaseSession> => result.status === 'fulfilled').map((result) => result.value);
    expect(leases).toHaveLength(4);
    for (const result of opened) {
      if (result.status === 'rejected') expect((result.reason as TensormemClientError).reason).toBe('QUOTA_EXCEEDED');
    }
    let peak = { device: 0, host: 0 };
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const usage = await teamA();
        peak = { device: Math.max(peak.device, usage.device), host: Math.max(peak.host, usage.host) };
      }
    })();
    const allocations = await Promise.allSettled(
      leases.flatMap((lease) =>
        Array.from({ length: 8 }, (_, index) => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [3 * MiB], zero: true, placement: index % 3 === 0 ? 'PLACEMENT_HOST_ONLY' : 'PLACEMENT_DEVICE' })),
      ),
    );
    watching = false;
    await watcher;
    const usage = await teamA();
    expect(usage.device).toBeLessThanOrEqual(40 * MiB);
    expect(usage.host).toBeLessThanOrEqual(20 * MiB);
    expect(peak.device).toBeLessThanOrEqual(40 * MiB);
    expect(peak.host).toBeLessThanOrEqual(20 * MiB);
    // 13 device arrays of 3 MiB fit 40 MiB, 6 host arrays fit 20 MiB: the rest are refused by the quota.
    expect(allocations.filter((result) => result.status === 'fulfilled')).toHaveLength(13 + 6);
    for (const result of allocations) {
      if (result.status === 'rejected') expect((result.reason as TensormemClientError).reason).toBe('QUOTA_EXCEEDED');
    }
    await Promise.all(leases.map((lease) => lease.close()));
    expect(await teamA()).toEqual({ device: 0, host: 0, leases: 0 });
  });

  it('does not count a lease past its TTL against max_leases while the sweep has not reached it', async () => {
    const leases = await Promise.all(Array.from({ length: 4 }, (_, index) => clients[index].openLease({ tenantToken: TOKENS.a, ttlSeconds: index === 0 ? 1 : 60 })));
    await leases[0].allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB] });
    const full = await clients[0].openLease({ tenantToken: TOKENS.a }).then(
      () => undefined,
      (error: TensormemClientError) => error,
    );
    expect(full?.reason).toBe('QUOTA_EXCEEDED');
    expect(full?.details).toBe('tenant "team-a" has 4 leases open, its max_leases is 4: close or let one expire first');
    // The count beside the cap, as max_arrays' refusal gives arrays beside max_arrays (and GetMemoryInfo's tenant row, leases).
    expect(full?.errorMetadata).toEqual({ tenant: 'team-a', leases: '4', max_leases: '4' });
    await sleep(1200);
    // Its token says it has expired...
    const expired = await leases[0].renew().then(
      () => undefined,
      (error: TensormemClientError) => error,
    );
    expect(expired?.code).toBe(status.UNAUTHENTICATED);
    expect(expired?.reason).toBe('LEASE_EXPIRED');
    // ...so it no longer holds the tenant at max_leases: it is closed (and its memory given back) now.
    const next = await clients[0].openLease({ tenantToken: TOKENS.a });
    expect(await teamA()).toEqual({ device: 0, host: 0, leases: 4 });
    expect(daemon.logs.some((entry) => entry.event === 'lease_expired' && entry.leaseId === leases[0].leaseId)).toBe(true);
    await Promise.all([next, ...leases.slice(1)].map((lease) => lease.close()));
    expect(await teamA()).toEqual({ device: 0, host: 0, leases: 0 });
  });
});
