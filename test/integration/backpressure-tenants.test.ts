/**
 * wait_for_memory on a daemon with a tenants file: quota refusals never wait, also for a request
 * queued behind its tenant's earlier waiting one; a request the cap less others' guarantees refuses
 * waits, and a SIGHUP that lowers the guarantee serves it.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { LeaseSession } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { waitForLog } from '../helpers/daemon-process';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';
import { failure } from '../helpers/thrown';

const MiB = 1024 * 1024;
const TOKENS = { a: randomBytes(24).toString('hex'), b: randomBytes(24).toString('hex'), c: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };

/** a: a 12 MiB device quota; b: a guarantee of `bGuarantee`; c: neither; ops: the admin. The pool: 32 MiB. */
function tenantsYaml(bGuarantee: string): string {
  const tenant = (name: string, token: string, limits: string) => `  - name: ${name}\n    token_sha256: "${tokenSha256(token)}"\n${limits ? `    ${limits}\n` : ''}`;
  return `tenants:\n${tenant('a', TOKENS.a, 'quota: { device: 12M }')}${tenant('b', TOKENS.b, `guarantee: { device: ${bGuarantee} }`)}${tenant('c', TOKENS.c, '')}${tenant('ops', TOKENS.admin, 'admin: true')}`;
}

/** A 13 MiB wait_for_memory request of tenant a (over its 12 MiB quota) is QUOTA_EXCEEDED with the numbers, within 3 s (not after a wait). */
async function expectOverQuotaAtOnce(lease: LeaseSession): Promise<void> {
  const started = Date.now();
  const over = await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [13 * MiB], waitForMemory: true, deadlineMs: 10_000 }));
  expect([over.code, over.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'QUOTA_EXCEEDED']);
  expect(over.errorMetadata).toMatchObject({ tenant: 'a', requested_bytes: String(13 * MiB), quota_bytes: String(12 * MiB) });
  expect(Date.now() - started).toBeLessThan(3_000);
}

describe('wait_for_memory with quotas and guarantees', () => {
  const tenantsPath = writeTenantsFile(tenantsYaml('8M'));
  const running = daemonForTests(['--tenants', tenantsPath, '--maxbytes', '32M', '--pool-chunk', '4M']);
  const client = () => running.client;

  const device = async () => (await client().memoryInfo(TOKENS.admin)).devices[0];

  it("refuses a request over the tenant's quota at once, also behind the tenant's own waiting request", async () => {
    // c holds 20 MiB; with b's unused 8 MiB guarantee, 4 MiB is left for a.
    const holder = await client().openLease({ tenantToken: TOKENS.c });
    const held = await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [20 * MiB] });
    const lease = await client().openLease({ tenantToken: TOKENS.a });
    try {
      // Within a's quota, over what is left: it waits.
      const head = lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 10_000 });
      head.catch(() => undefined); // awaited below; the lease's close ends it when a check fails first
      await expect.poll(async () => (await device()).waiting_allocations, { timeout: 5_000 }).toBe(1);
      // Over a's quota (13 > 12 MiB), under the pool's cap: refused at once, with the numbers, rather
      // than after the request ahead of it is served or gives up.
      await expectOverQuotaAtOnce(lease);
      expect((await device()).waiting_allocations).toBe(1);
      // The request ahead of it still waits, and is served when c frees.
      await holder.free(held.array_id);
      expect((await head).byte_size).toBe(8 * MiB);
    } finally {
      await Promise.all([lease.close(), holder.close()]);
    }
    expect((await device()).used_bytes).toBe(0);
  });

  it("refuses a workspace spill over the tenant's quota at once, also behind the tenant's own waiting request", async () => {
    const holder = await client().openLease({ tenantToken: TOKENS.c });
    await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [20 * MiB] });
    const lease = await client().openLease({ tenantToken: TOKENS.a });
    try {
      const ws = await lease.createWorkspace('LOOP', { initial_size: 0, learning_policy: 'LEARNING_POLICY_FIRST_LOOP' });
      const head = lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 10_000 });
      head.catch(() => undefined); // the lease's close ends it
      await expect.poll(async () => (await device()).waiting_allocations, { timeout: 5_000 }).toBe(1);
      await lease.enterWorkspace(ws.workspace_id);
      // The first cycle spills: 13 MiB of device memory, over a's 12 MiB quota.
      await expectOverQuotaAtOnce(lease);
      expect(await lease.getWorkspace(ws.workspace_id)).toMatchObject({ this_cycle_allocations: 0, spilled_size: 0 });
      expect((await device()).waiting_allocations).toBe(1);
    } finally {
      await Promise.all([lease.close(), holder.close()]);
    }
    expect((await device()).used_bytes).toBe(0);
  });

  it("waits when the cap less others' unused guarantees refuses, and is served when a SIGHUP lowers the guarantee", async () => {
    const holder = await client().openLease({ tenantToken: TOKENS.c });
    await holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [20 * MiB] });
    try {
      // 20 + 8 + b's unused 8 MiB > 32: refused by the guarantee, which a reload may lower, so it waits.
      const pending = holder.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB], waitForMemory: true, deadlineMs: 15_000 });
      pending.catch(() => undefined); // awaited below; the lease's close ends it when a check fails first
      await expect.poll(async () => (await device()).waiting_allocations, { timeout: 5_000 }).toBe(1);
      const reloads = running.daemon.logs.length;
      writeFileSync(tenantsPath, tenantsYaml('4M'));
      running.daemon.child.kill('SIGHUP');
      await waitForLog(running.daemon, 'tenants_reloaded', reloads);
      expect((await pending).byte_size).toBe(8 * MiB);
      expect((await device()).waiting_allocations).toBe(0);
    } finally {
      await holder.close();
    }
    expect((await device()).used_bytes).toBe(0);
  });
});
