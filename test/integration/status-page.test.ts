/**
 * The status page in a real browser (Debian's chromium driven by playwright-core) against a daemon
 * process: the memory map shows each tenant's and lease's blocks and the largest free block, updates
 * live over server-sent events, and shows user-supplied names as text, never as HTML.
 * TENSORMEM_UPDATE_SCREENSHOT=1 rewrites docs/status-page.png from this run.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, ROOT, startDaemon } from '../helpers/daemon-process';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`status-page.test.ts: skipped, ${CHROMIUM} is absent (apt-get install -y chromium; .ci/run installs it)`);
const MiB = 1024 * 1024;
/** Names a client may choose; the page must show them as text. */
const HOSTILE = {
  tenant: 'team-<i>b</i>',
  label: '<img src=x onerror="window.__xss=1">',
  client: '<script>window.__xss=2</script>',
};

describe.skipIf(!haveChromium)(haveChromium ? 'the status page in Chromium' : `the status page in Chromium (skipped: ${CHROMIUM} is absent; apt-get install -y chromium)`, () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let browser: Browser;
  let page: Page;
  let base: string;
  let trainer: LeaseSession;
  let other: LeaseSession;

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    [daemon, browser] = await Promise.all([startDaemon(['--maxbytes', '64M', '--pool-chunk', '16M', '--lease-ttl', '120s']), chromium.launch({ executablePath: CHROMIUM, headless: true })]);
    base = `http://${daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string}`;
    client = new TensormemClient(daemon.tcpAddress);
    trainer = await client.openLease({ tenant: 'team-a', clientName: 'resnet-trainer', labels: { job: HOSTILE.label } });
    other = await client.openLease({ tenant: HOSTILE.tenant, clientName: HOSTILE.client });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  const block = (arrayId: string) => page.locator(`[data-pool="device:0"] .block[data-array="${arrayId}"]`);

  it('draws each lease’s blocks, the free space and the largest free block, and updates live', async () => {
    const weights = await trainer.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024, 1024], label: '<b>weights</b>' });
    const gradients = await trainer.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [512, 1024], label: 'gradients' });
    const activations = await other.allocate({ dataType: 'DATA_TYPE_FLOAT16', shape: [1024, 1024], label: 'activations' });
    await trainer.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY', label: 'batch' });

    await page.goto(`${base}/?interval_ms=200`);
    await block(weights.array_id).waitFor({ timeout: 5000 });
    expect(await page.getAttribute('#connection', 'data-state')).toBe('live');

    const attributes = (arrayId: string) =>
      block(arrayId).evaluate((node) => Object.fromEntries(['data-tenant', 'data-lease', 'data-bytes', 'data-label', 'data-free'].map((name) => [name, node.getAttribute(name)])));
    expect(await attributes(weights.array_id)).toEqual({ 'data-tenant': 'team-a', 'data-lease': trainer.leaseId, 'data-bytes': String(4 * MiB), 'data-label': '<b>weights</b>', 'data-free': 'false' });
    expect(await attributes(gradients.array_id)).toMatchObject({ 'data-lease': trainer.leaseId, 'data-bytes': String(2 * MiB) });
    expect(await attributes(activations.array_id)).toMatchObject({ 'data-tenant': HOSTILE.tenant, 'data-lease': other.leaseId, 'data-bytes': String(2 * MiB) });
    // Two leases of two tenants: two colours.
    // Read in one evaluation: the page may redraw between two calls.
    const colours = await page.evaluate(
      (ids) => ids.map((id) => getComputedStyle(document.querySelector(`[data-pool="device:0"] .block[data-array="${id}"]`)!).backgroundColor),
      [weights.array_id, activations.array_id],
    );
    expect(colours[0]).toMatch(/^rgb\(/);
    expect(colours[0]).not.toBe(colours[1]);
    expect(await block(weights.array_id).getAttribute('title')).toContain(`lease: ${trainer.leaseId}`);

    // One 16 MiB chunk holding 8 MiB of arrays: the rest is the largest free block, labelled.
    const devicePool = page.locator('[data-pool="device:0"]');
    const largest = devicePool.locator('.block[data-largest="true"]');
    expect(await largest.getAttribute('data-bytes')).toBe(String(8 * MiB));
    expect(await devicePool.getAttribute('data-largest-free-bytes')).toBe(String(8 * MiB));
    expect(await largest.textContent()).toBe('largest free block · 8.00 MiB');
    expect(await devicePool.getAttribute('data-used-bytes')).toBe(String(8 * MiB));
    expect(await page.locator('[data-pool="host"] .block[data-free="false"]').count()).toBe(1);

    // Tenants against quotas, host and process against their caps.
    expect(await page.getAttribute('[data-tenant-row="team-a"]', 'data-used-bytes')).toBe(String(6 * MiB));
    expect(await page.locator(`[data-tenant-row="${HOSTILE.tenant.replace(/"/g, '\\"')}"]`).count()).toBe(1);
    expect(await page.textContent('#host-bars')).toContain('HOST_ONLY 1.00 MiB');
    for (const name of ['host', 'physical', 'heap']) expect(await page.locator(`[data-bar="${name}"]`).count()).toBe(1);

    // Live: a new array appears and a freed one goes, with no reload.
    const updates = Number(await page.getAttribute('body', 'data-updates'));
    const late = await other.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256, 1024], label: 'late' });
    expect(await trainer.free(gradients.array_id)).toBe(2 * MiB);
    await block(late.array_id).waitFor({ timeout: 3000 });
    await block(gradients.array_id).waitFor({ state: 'detached', timeout: 3000 });
    expect(Number(await page.getAttribute('body', 'data-updates'))).toBeGreaterThan(updates);
    expect(await page.evaluate(() => performance.getEntriesByType('navigation').length)).toBe(1);
    expect(await devicePool.getAttribute('data-used-bytes')).toBe(String(7 * MiB));
  });

  it('shows tenant, client and label names as text, never as markup', async () => {
    const leaseRows = await page.textContent('#lease-table');
    expect(leaseRows).toContain(`job=${HOSTILE.label}`);
    expect(leaseRows).toContain(HOSTILE.client);
    expect(leaseRows).toContain(HOSTILE.tenant);
    expect(await page.textContent('#legend')).toContain(HOSTILE.tenant);
    expect(await page.evaluate(() => ({ xss: (window as unknown as { __xss?: number }).__xss, img: document.querySelectorAll('img').length, markup: document.querySelectorAll('main b, main i, main script').length }))).toEqual({ xss: undefined, img: 0, markup: 0 });
  });

  it('renders a screenshot of the page', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tensormem-status-')), 'status-page.png');
    await page.screenshot({ path, fullPage: true });
    const png = readFileSync(path);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.readUInt32BE(16)).toBe(1280); // IHDR width
    if (process.env.TENSORMEM_UPDATE_SCREENSHOT === '1') copyFileSync(path, join(ROOT, 'docs', 'status-page.png'));
  });
});

describe.skipIf(!haveChromium)('the status page: tenants against their per-device quota', () => {
  it('says "no cap" for the resident set under --maxphysicalbytes 0, not "of 0 B (0%)"', async () => {
    const { chromium } = await import('playwright-core');
    const [daemon, browser] = await Promise.all([startDaemon(['--maxphysicalbytes', '0']), chromium.launch({ executablePath: CHROMIUM, headless: true })]);
    try {
      const page = await browser.newPage();
      await page.goto(`http://${daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string}/?interval_ms=200`);
      const bar = page.locator('[data-bar="physical"]');
      await bar.waitFor({ timeout: 5000 });
      const text = await bar.locator('..').textContent();
      expect(text).toMatch(/resident set \(--maxphysicalbytes\).*\d+(\.\d+)? MiB \(no cap: --maxphysicalbytes 0\)/);
      expect(text).not.toContain(' of 0 B');
      expect(await bar.getAttribute('class')).toBe('bar');
    } finally {
      await browser.close();
      expect(await daemon.stop()).toBe(0);
    }
  });

  it("draws a tenant's fullest device against its device quota, not the sum over devices", async () => {
    const { chromium } = await import('playwright-core');
    const tokens = { a: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };
    const tenantsPath = writeTenantsFile(`tenants:\n  - name: team-a\n    token_sha256: "${tokenSha256(tokens.a)}"\n    quota: { device: 8M }\n  - name: ops\n    token_sha256: "${tokenSha256(tokens.admin)}"\n    admin: true\n`);
    const [daemon, browser] = await Promise.all([
      startDaemon(['--tenants', tenantsPath, '--emulated-devices', '2', '--maxbytes', '64M', '--pool-chunk', '16M']),
      chromium.launch({ executablePath: CHROMIUM, headless: true }),
    ]);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const lease = await client.openLease({ tenantToken: tokens.a });
      // 75 % of the quota on device 0 and 50 % on device 1: within it on both (10 MiB in all).
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [6 * MiB], device: 0 });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB], device: 1 });
      const page = await browser.newPage();
      await page.goto(`http://${daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string}/?interval_ms=200&token=${tokens.admin}`);
      const row = page.locator('[data-tenant-row="team-a"]');
      await row.waitFor({ timeout: 5000 });
      // Not marked over the quota (the sum, 125 % of it, was); the bar is filled to 75 %.
      const tenantBar = row.locator('[data-bar="tenant"]');
      expect(await tenantBar.getAttribute('class')).toBe('bar');
      expect(await tenantBar.locator('span').evaluate((node) => (node as HTMLElement).style.width)).toBe('75%');
      expect(await row.getAttribute('data-used-bytes')).toBe(String(10 * MiB));
      expect(await row.getAttribute('data-fullest-device-bytes')).toBe(String(6 * MiB));
      expect(await row.textContent()).toContain('device 10.00 MiB (quota 8.00 MiB per device; fullest device 0 6.00 MiB, 75.0% of quota)');
      await lease.close();
    } finally {
      client.close();
      await browser.close();
      expect(await daemon.stop()).toBe(0);
    }
  });
});
