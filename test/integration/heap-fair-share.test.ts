/**
 * The heap guard's fair share (HeapGuard FAIR_SHARE_LINE) on a shared host, against a real daemon under
 * a small heap (node --max-old-space-size=64, --heap-reserve 80M: a line of 32 MiB, the fair-share
 * line at 80 % of it): a tenant that fills the heap with objects is refused at the fair-share line
 * whatever the objects (workspaces, leases with many labels) and whether or not the other tenants of
 * the tenants file hold anything at that moment; the others can still open leases and allocate.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const FAIR_SHARE_LINE_BYTES = String(Math.floor(32 * 1024 * 1024 * 0.8));

describe('the heap guard fair share', () => {
  const TOKENS = { leaker: randomBytes(24).toString('hex'), other: randomBytes(24).toString('hex') };
  let daemon: DaemonProcess | undefined;
  let client: TensormemClient | undefined;

  async function start(): Promise<TensormemClient> {
    const tenantsPath = writeTenantsFile(`tenants:\n  - name: leaker\n    token_sha256: "${tokenSha256(TOKENS.leaker)}"\n  - name: other\n    token_sha256: "${tokenSha256(TOKENS.other)}"\n`);
    daemon = await startDaemon(['--heap-reserve', '80M', '--tenants', tenantsPath], { NODE_OPTIONS: '--max-old-space-size=64' });
    client = new TensormemClient(daemon.unixAddress);
    return client;
  }

  afterEach(async () => {
    client?.close();
    client = undefined;
    if (daemon) {
      const stderr = daemon.otherStderr.join('\n');
      expect(await daemon.stop()).toBe(0);
      expect(stderr).not.toContain('heap out of memory');
    }
    daemon = undefined;
  });

  /** Runs `make` 64 at a time until one is refused; returns the refusal. */
  async function untilRefused(make: (index: number) => Promise<unknown>, most: number): Promise<TensormemClientError> {
    let made = 0;
    while (made < most) {
      const batch = await Promise.allSettled(Array.from({ length: 64 }, (_, index) => make(made + index)));
      made += batch.length;
      const refused = batch.find((outcome) => outcome.status === 'rejected');
      if (refused) return (refused as PromiseRejectedResult).reason as TensormemClientError;
    }
    throw new Error(`no refusal after ${made}`);
  }

  it('refuses the leaker at the fair-share line while the other tenant of the file holds nothing: that tenant then opens a lease and allocates', async () => {
    const client = await start();
    const leaker = await client.openLease({ tenantToken: TOKENS.leaker });
    const refusal = await untilRefused(() => leaker.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [0] }), 300_000);
    expect(refusal.reason).toBe('HEAP_LIMIT');
    expect(refusal.errorMetadata).toMatchObject({ tenant: 'leaker', heap_threshold_bytes: FAIR_SHARE_LINE_BYTES });
    // "other" had no lease while the leaker filled the heap; it still gets one, and arrays.
    const other = await client.openLease({ tenantToken: TOKENS.other });
    const arrays = await Promise.all(Array.from({ length: 200 }, () => other.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })));
    expect(arrays.length).toBe(200);
    await other.close();
    await leaker.close();
  }, 120_000);

  it("counts a tenant's workspaces in its share: a leaker of workspaces is refused at the fair-share line, not the tenant holding a few arrays", async () => {
    const client = await start();
    const other = await client.openLease({ tenantToken: TOKENS.other });
    await Promise.all(Array.from({ length: 20 }, () => other.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })));
    const leaker = await client.openLease({ tenantToken: TOKENS.leaker });
    // Zero-byte workspaces: no byte quota or max_arrays bounds them, each costs the daemon's heap.
    const refusal = await untilRefused((index) => leaker.createWorkspace(`ws-${index}`, { initial_size: 0 }), 20_000);
    expect(refusal.reason).toBe('HEAP_LIMIT');
    expect(refusal.errorMetadata).toMatchObject({ tenant: 'leaker', heap_threshold_bytes: FAIR_SHARE_LINE_BYTES });
    const arrays = await Promise.all(Array.from({ length: 200 }, () => other.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })));
    expect(arrays.length).toBe(200);
    await other.close();
    await leaker.close();
  }, 120_000);

  it("counts a lease's labels in its tenant's share: a leaker of leases with many labels is refused at the fair-share line, not the tenant holding arrays", async () => {
    const client = await start();
    const other = await client.openLease({ tenantToken: TOKENS.other });
    // 6000 arrays: about 3 MiB of the heap at HEAP_COST's 512 B, less than the leaker's leases hold
    // (each of 64 labels of 319 characters: about 45 KiB a lease, not the 4 KiB of a bare lease).
    for (let i = 0; i < 6000; i += 500) await Promise.all(Array.from({ length: 500 }, () => other.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })));
    const labels = Object.fromEntries(Array.from({ length: 64 }, (_, index) => [`k${String(index).padStart(61, '0')}`, 'v'.repeat(256)]));
    const leases: Array<{ close(): Promise<unknown> }> = [];
    const refusal = await untilRefused(async () => leases.push(await client.openLease({ tenantToken: TOKENS.leaker, labels })), 20_000);
    expect(refusal.reason).toBe('HEAP_LIMIT');
    expect(refusal.errorMetadata).toMatchObject({ tenant: 'leaker', heap_threshold_bytes: FAIR_SHARE_LINE_BYTES });
    const arrays = await Promise.all(Array.from({ length: 200 }, () => other.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] })));
    expect(arrays.length).toBe(200);
    await other.close();
    for (let i = 0; i < leases.length; i += 64) await Promise.all(leases.slice(i, i + 64).map((lease) => lease.close()));
  }, 120_000);
});
