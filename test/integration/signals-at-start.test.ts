/**
 * Signals that reach tensormemd while it starts: after its handlers are in and it has read the
 * tenants file, before it serves (systemd's `reload` or `stop` right after `start`).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { TENSORMEMD } from '../helpers/daemon-process';
import { tokenSha256 } from '../helpers/tenants-file';
import { failure } from '../helpers/thrown';
import { spawnTied } from '../helpers/tied-spawn';

const TOKENS = { first: randomBytes(24).toString('hex'), second: randomBytes(24).toString('hex') };
const tenantsYaml = (name: string, token: string) => `tenants:\n  - name: ${name}\n    token_sha256: "${tokenSha256(token)}"\n`;

interface StartingDaemon {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line whose event is `event`. */
  logged(event: string): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/**
 * tensormemd spawned with a tenants file, its listen() held 500 ms (slow-listen.cjs) so that the test can act between its log lines and its serving;
 * with slow-require.cjs instead, its modules' loading held 800 ms (after it logged `loading_daemon`).
 */
function spawnDaemon(tenantsPath: string, preload = 'slow-listen.cjs'): StartingDaemon {
  const args = [TENSORMEMD, '--backend', 'host', '--emulated-device', '256M', '--allow-small-device', '--maxbytes', '192M', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--data-listen', 'off', '--tenants', tenantsPath];
  const child = spawnTied(process.execPath, ['--require', join(__dirname, '..', 'helpers', preload), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ event: string; resolve: (entry: Record<string, unknown>) => void }> = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    logs.push(entry);
    for (const waiter of waiters.filter((w) => w.event === entry.event)) waiter.resolve(entry);
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  return {
    child,
    logs,
    exited,
    logged: (event) =>
      new Promise((resolve, reject) => {
        const seen = logs.find((entry) => entry.event === event);
        if (seen) return resolve(seen);
        waiters.push({ event, resolve });
        void exited.then((code) => reject(new Error(`tensormemd exited with ${code} before logging ${event}: ${JSON.stringify(logs.map((l) => l.event))}`)));
      }),
  };
}

describe('signals while tensormemd starts', () => {
  let dir: string | undefined;
  let daemon: StartingDaemon | undefined;
  afterEach(async () => {
    daemon?.child.kill('SIGKILL');
    await daemon?.exited;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Spawns the daemon with a tenants file of one tenant; resolves once it has read it (and not yet served); to the file's path. */
  async function startWithTenant(name: 'first' | 'second'): Promise<string> {
    dir = mkdtempSync(join(tmpdir(), 'tensormem-start-signals-'));
    const tenantsPath = join(dir, 'tenants.yaml');
    writeFileSync(tenantsPath, tenantsYaml(name, TOKENS[name]));
    daemon = spawnDaemon(tenantsPath);
    // The gRPC services log the cuDNN line as they are built: the tenants file was read before.
    await daemon.logged('cudnn');
    return tenantsPath;
  }

  it('reloads the tenants file once it serves when SIGHUP came after it read the file', async () => {
    const tenantsPath = await startWithTenant('first');
    writeFileSync(tenantsPath, tenantsYaml('second', TOKENS.second));
    daemon!.child.kill('SIGHUP');
    const listening = await daemon!.logged('listening');
    const client = new TensormemClient((listening.addresses as string[])[0]);
    try {
      // The reload runs in the tick the daemon starts serving, before any call is answered.
      const lease = await client.openLease({ tenantToken: TOKENS.second });
      await lease.close();
      expect((await failure(client.openLease({ tenantToken: TOKENS.first }))).code).toBe(status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
    const reloaded = await daemon!.logged('tenants_reloaded');
    expect(reloaded.tenants).toEqual(['second']);
    // One tenant is counted in the singular, at start and at reload; the reload says what it changed.
    expect(reloaded.msg).toBe('tenants file reloaded: 1 tenant; added second; removed first');
    expect((await daemon!.logged('tenants_loaded')).msg).toBe(`tenants file ${tenantsPath}: 1 tenant`);
  });

  it('takes a SIGHUP that came while its modules loaded (the default action ended the process, a clean end to systemd: no restart)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tensormem-start-signals-'));
    const tenantsPath = join(dir, 'tenants.yaml');
    writeFileSync(tenantsPath, tenantsYaml('first', TOKENS.first));
    daemon = spawnDaemon(tenantsPath, 'slow-require.cjs');
    await daemon.logged('loading_daemon');
    daemon.child.kill('SIGHUP');
    expect((await daemon.logged('tenants_reloaded')).tenants).toEqual(['first']);
    const listening = await daemon.logged('listening');
    const client = new TensormemClient((listening.addresses as string[])[0]);
    try {
      await (await client.openLease({ tenantToken: TOKENS.first })).close();
    } finally {
      client.close();
    }
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  it('drains and exits 0 when SIGTERM came before it served', async () => {
    await startWithTenant('first');
    daemon!.child.kill('SIGTERM');
    expect(await daemon!.exited).toBe(0);
    expect(daemon!.logs.map((entry) => entry.event).filter((event) => ['listening', 'draining', 'stopped'].includes(event as string))).toEqual(['listening', 'draining', 'stopped']);
    expect(daemon!.logs.find((entry) => entry.event === 'stopped')).toMatchObject({ drained: true });
  });
});
