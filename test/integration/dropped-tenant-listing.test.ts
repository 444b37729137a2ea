/**
 * A tenant a tenants file reload (SIGHUP) drops while it has leases open: `tensormemctl tenants`, its
 * JSON, the status page's data (/api/snapshot) and the page itself mark it `dropped` with what it still
 * holds, `evicting` while evict --tenant closes its leases in turns, and list it no more once they are
 * gone. Before, its row read as any other tenant's until it vanished.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import type { LeaseSession } from '../../src/client/tensormem-client';
import { loadConfig } from '../../src/config/config';
import { Daemon, startDaemon as startDaemonInProcess } from '../../src/daemon';
import { memoryInfo } from '../../src/service/memory-service';
import { DaemonProcess, ROOT, startDaemon, waitForLog } from '../helpers/daemon-process';
import { tokenSha256 } from '../helpers/tenants-file';

const TENSORMEMCTL = join(ROOT, 'dist', 'src', 'bin', 'tensormemctl.js');
const CHROMIUM = '/usr/bin/chromium';
const MiB = 1024 * 1024;

function ctl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TENSORMEMCTL, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TENSORMEM_TOKEN: '', TENSORMEM_ADDRESS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const TOKENS = { admin: randomBytes(24).toString('hex'), job: randomBytes(24).toString('hex') };
const OPS = `  - name: ops\n    token_sha256: "${tokenSha256(TOKENS.admin)}"\n    admin: true\n`;
const JOB = `  - name: job\n    token_sha256: "${tokenSha256(TOKENS.job)}"\n    quota: { device: 64M }\n    max_leases: 5\n`;
const HEAD = 'TENANT  STATE    LEASES  MAX  ARRAYS  DEVICE USED  DEVICE QUOTA  OF QUOTA  GUARANTEE  HOST USED  HOST QUOTA  OF QUOTA  MMAP USED  MMAP QUOTA\n';

interface TenantRow {
  tenant: string;
  leases: number;
  device_used_bytes: number;
  dropped: boolean;
  evicting: boolean;
}

describe('a tenant dropped by a reload, with leases open, as tensormemctl and the status page show it', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dir: string;
  let tenantsPath: string;
  let statusBase: string;
  const leases: LeaseSession[] = [];

  /** Writes the tenants file and sends SIGHUP; resolves once the daemon logged the reload. */
  const reload = async (yaml: string) => {
    writeFileSync(tenantsPath, `tenants:\n${yaml}`);
    const seen = daemon.logs.length;
    daemon.child.kill('SIGHUP');
    return waitForLog(daemon, 'tenants_reloaded', seen);
  };
  const tenants = (...args: string[]) => ctl(['--address', daemon.unixAddress, 'tenants', ...args]);
  /** The tenant rows of /api/snapshot, which the page draws from (as /events). */
  const statusRows = async (): Promise<TenantRow[]> => {
    const response = await fetch(`${statusBase}/api/snapshot`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(response.status).toBe(200);
    return ((await response.json()) as { snapshot: { info: { tenants: TenantRow[] } } }).snapshot.info.tenants;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tensormem-dropped-'));
    tenantsPath = join(dir, 'tenants.yaml');
    writeFileSync(tenantsPath, `tenants:\n${OPS}${JOB}`);
    daemon = await startDaemon(['--tenants', tenantsPath]);
    statusBase = `http://${daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string}`;
    client = new TensormemClient(daemon.unixAddress);
    for (let i = 0; i < 2; i++) {
      const lease = await client.openLease({ tenantToken: TOKENS.job, ttlSeconds: 600 });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
      leases.push(lease);
    }
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists it as active, then dropped with its leases and bytes, then not at all once evicted', async () => {
    const before = await tenants('--token', TOKENS.admin);
    expect([before.code, before.stderr]).toEqual([0, '']);
    expect(before.stdout).toBe(
      'TENANT  STATE   LEASES  MAX  ARRAYS  DEVICE USED  DEVICE QUOTA  OF QUOTA  GUARANTEE  HOST USED  HOST QUOTA  OF QUOTA  MMAP USED  MMAP QUOTA\n' +
        'job     active  2       5    2       2.00 MiB     64.00 MiB     3.1%      -          0 B        -           -         0 B        -\n' +
        'ops     active  0       -    0       0 B          -             -         -          0 B        -           -         0 B        -\n',
    );

    expect(await reload(OPS)).toMatchObject({ removed: ['job'], removedWithLeases: [{ tenant: 'job', leases: 2 }] });
    // Right after the reload: still listed, with what it holds under the limits it last had, and marked.
    const dropped = await tenants('--token', TOKENS.admin);
    expect([dropped.code, dropped.stderr]).toEqual([0, '']);
    expect(dropped.stdout).toBe(
      HEAD +
        'job     dropped  2       5    2       2.00 MiB     64.00 MiB     3.1%      -          0 B        -           -         0 B        -\n' +
        'ops     active   0       -    0       0 B          -             -         -          0 B        -           -         0 B        -\n',
    );
    const json = await tenants('--token', TOKENS.admin, '-o', 'json');
    expect((JSON.parse(json.stdout) as TenantRow[]).map(({ tenant, leases, device_used_bytes, dropped, evicting }) => ({ tenant, leases, device_used_bytes, dropped, evicting }))).toEqual([
      { tenant: 'job', leases: 2, device_used_bytes: 2 * MiB, dropped: true, evicting: false },
      { tenant: 'ops', leases: 0, device_used_bytes: 0, dropped: false, evicting: false },
    ]);
    // The holder of one of its leases (a lease token sees its own tenant's row) is told too.
    const own = await tenants('--token', leases[0].token);
    expect(own.stdout).toBe(HEAD + 'job     dropped  2       5    2       2.00 MiB     64.00 MiB     3.1%      -          0 B        -           -         0 B        -\n');
    expect((await statusRows()).map(({ tenant, leases, dropped, evicting }) => ({ tenant, leases, dropped, evicting }))).toEqual([
      { tenant: 'job', leases: 2, dropped: true, evicting: false },
      { tenant: 'ops', leases: 0, dropped: false, evicting: false },
    ]);

    const evicted = await ctl(['--address', daemon.unixAddress, 'evict', '--tenant', 'job', '--token', TOKENS.admin]);
    expect([evicted.code, evicted.stdout, evicted.stderr]).toEqual([0, 'evicted 2 leases of tenant job: freed 2.00 MiB\n', '']);
    // Its leases gone and its memory freed: no longer listed, by tensormemctl or the page.
    const after = await tenants('--token', TOKENS.admin);
    expect(after.stdout).toBe(
      'TENANT  STATE   LEASES  MAX  ARRAYS  DEVICE USED  DEVICE QUOTA  OF QUOTA  GUARANTEE  HOST USED  HOST QUOTA  OF QUOTA  MMAP USED  MMAP QUOTA\n' +
        'ops     active  0       -    0       0 B          -             -         -          0 B        -           -         0 B        -\n',
    );
    expect((await statusRows()).map((row) => row.tenant)).toEqual(['ops']);
  });

  it('a tenant a later reload brings back is active again, its leases kept', async () => {
    await reload(`${OPS}${JOB}`);
    const lease = await client.openLease({ tenantToken: TOKENS.job, ttlSeconds: 600 });
    await reload(OPS);
    expect((JSON.parse((await tenants('--token', TOKENS.admin, '-o', 'json')).stdout) as TenantRow[]).find((row) => row.tenant === 'job')).toMatchObject({ leases: 1, dropped: true });
    await reload(`${OPS}${JOB}`);
    expect((JSON.parse((await tenants('--token', TOKENS.admin, '-o', 'json')).stdout) as TenantRow[]).find((row) => row.tenant === 'job')).toMatchObject({ leases: 1, dropped: false, evicting: false });
    const info = await ctl(['--address', daemon.unixAddress, 'info', '--token', TOKENS.admin]);
    expect(info.stdout).toContain('\nTENANT  STATE   LEASES  DEVICE USED  HOST USED\njob     active  1       0 B          0 B\nops     active  0       0 B          0 B\n');
    await lease.close();
  });

  it.skipIf(!existsSync(CHROMIUM))('the status page tags the dropped tenant’s row, and drops the row once its leases are gone', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    try {
      await reload(`${OPS}${JOB}`);
      const lease = await client.openLease({ tenantToken: TOKENS.job, ttlSeconds: 600 });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
      await reload(OPS);
      const page = await browser.newPage();
      await page.goto(`${statusBase}/?interval_ms=200&token=${TOKENS.admin}`);
      const row = page.locator('[data-tenant-row="job"]');
      await row.waitFor({ timeout: 5000 });
      expect(await row.getAttribute('data-tenant-state')).toBe('dropped');
      expect(await row.locator('.state').textContent()).toBe('dropped');
      expect(await row.textContent()).toContain('1 lease of 5');
      expect(await page.getAttribute('[data-tenant-row="ops"]', 'data-tenant-state')).toBe('active');
      expect(await page.locator('[data-tenant-row="ops"] .state').count()).toBe(0);
      await client.evictTenant('job', TOKENS.admin);
      await row.waitFor({ state: 'detached', timeout: 5000 });
    } finally {
      await browser.close();
    }
  });
});

describe('while evict --tenant closes its leases in turns', () => {
  let daemon: Daemon;
  let dir: string;
  let tenantsPath: string;
  const write = (names: string[]) => writeFileSync(tenantsPath, `tenants:\n${OPS}` + names.map((name) => `  - name: ${name}\n    token_sha256: "${tokenSha256(`token-${name}`)}"\n`).join(''));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tensormem-evicting-'));
    tenantsPath = join(dir, 'tenants.yaml');
    write(['job', 'keeper']);
    const config = loadConfig(['--backend', 'host', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--data-listen', 'off', '--emulated-device', '256M', '--allow-small-device', '--maxbytes', '192M', '--tenants', tenantsPath], {});
    daemon = await startDaemonInProcess(config, pino({ level: 'silent' }));
  });

  afterAll(async () => {
    await daemon?.shutdown('test');
    rmSync(dir, { recursive: true, force: true });
  });

  it('the tenant is listed evicting (dropped or not) with the leases not closed yet, then as it is after', async () => {
    const { context } = daemon;
    const rowOf = (tenant: string) => (memoryInfo(context).tenants ?? []).find((row) => row.tenant === tenant);
    // Enough leases for several turns of the eviction (TURN_WORK).
    for (const tenant of ['job', 'keeper']) for (let i = 0; i < 1000; i++) context.registry.open({ tenant, clientName: '', ttlSeconds: 0, labels: {} });
    write(['keeper']);
    expect(await daemon.reloadTenants()).toBe(true);
    expect(rowOf('job')).toMatchObject({ leases: 1000, dropped: true, evicting: false });

    // evictTenant closes its first turn's leases before it lets other work (this) in.
    const dropped = context.registry.evictTenant('job');
    const during = rowOf('job')!;
    expect(during).toMatchObject({ dropped: true, evicting: true });
    expect(during.leases).toBeGreaterThan(0);
    expect(during.leases).toBeLessThan(1000);
    expect(rowOf('keeper')).toMatchObject({ leases: 1000, dropped: false, evicting: false });
    expect(await dropped).toMatchObject({ evicted: 1000 });
    expect(rowOf('job')).toBeUndefined();

    // A tenant still in the file: evicting, not dropped; listed as before once it is done.
    const kept = context.registry.evictTenant('keeper');
    expect(rowOf('keeper')).toMatchObject({ dropped: false, evicting: true });
    await kept;
    expect(rowOf('keeper')).toMatchObject({ leases: 0, dropped: false, evicting: false });
  });
});
