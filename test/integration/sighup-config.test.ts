/**
 * SIGHUP rereads the tenants file only. A --config file is applied at start; when it changed since, the
 * SIGHUP's log says which keys and that a restart applies them (it said nothing: an operator who edited
 * the config file and ran `systemctl reload` saw "tenants file reloaded" and took the edit as applied).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon, waitForLog } from '../helpers/daemon-process';

describe('SIGHUP and the --config file', () => {
  let dir: string;
  let configPath: string;
  let daemon: DaemonProcess;
  const configText = (ttl: string, extra = '') => `lease-ttl: ${ttl}\nreclaim-interval: 1s\n${extra}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tensormem-sighup-'));
    configPath = join(dir, 'tensormemd.yaml');
    writeFileSync(configPath, configText('60s'));
    daemon = await startDaemon(['--config', configPath]);
  });

  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says nothing of an unchanged config file; names the keys of a changed one, which apply after a restart', async () => {
    // Unchanged (the same values, written again): only the open-mode line of the reload.
    writeFileSync(configPath, `# rewritten\n${configText('60s')}`);
    let seen = daemon.logs.length;
    daemon.child.kill('SIGHUP');
    await waitForLog(daemon, 'tenants_reload_skipped', seen);
    expect(daemon.logs.slice(seen).filter((e) => e.event === 'config_not_reread')).toEqual([]);

    // A changed value, an added key and a removed one.
    writeFileSync(configPath, `lease-ttl: 5s\nmax-connections: 7\n`);
    seen = daemon.logs.length;
    daemon.child.kill('SIGHUP');
    const notice = await waitForLog(daemon, 'config_not_reread', seen);
    expect(notice).toMatchObject({ level: 40, config: configPath, changed: ['lease-ttl', 'max-connections', 'reclaim-interval'] });
    expect(notice.msg).toBe(
      `SIGHUP: ${configPath} changed since start (lease-ttl, max-connections, reclaim-interval); SIGHUP rereads only the tenants file: restart the daemon to apply the config file`,
    );
    // Nothing of it applied: GetConfig still shows the start's values.
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const values = new Map((await client.config()).values.map((value) => [value.name, value]));
      expect(values.get('lease-ttl')).toMatchObject({ value: '60s', source: 'file' });
      expect(values.get('max-connections')?.value).not.toBe('7');
    } finally {
      client.close();
    }

    // A file that no longer parses: said, the start's values kept.
    writeFileSync(configPath, `lease-ttl: [1, 2\n`);
    seen = daemon.logs.length;
    daemon.child.kill('SIGHUP');
    const unreadable = await waitForLog(daemon, 'config_not_reread', seen);
    expect(String(unreadable.error)).toContain('Expected valid YAML or JSON for --config');
    expect(unreadable.msg).toContain(`SIGHUP: ${configPath} cannot be read now (`);
    expect(unreadable.msg).toContain('the daemon keeps the values it read at start');
    expect(daemon.child.exitCode).toBe(null);
  }, 30_000);

  it('does not say a restart applies a key that the command line sets: the flag beats the file then too', async () => {
    writeFileSync(configPath, configText('60s'));
    const overridden = await startDaemon(['--config', configPath, '--max-connections', '9']);
    try {
      writeFileSync(configPath, `${configText('60s')}max-connections: 7\n`);
      const seen = overridden.logs.length;
      overridden.child.kill('SIGHUP');
      const notice = await waitForLog(overridden, 'config_not_reread', seen);
      expect(notice).toMatchObject({ changed: [], overridden: ['max-connections'] });
      expect(notice.msg).toBe(
        `SIGHUP: ${configPath} changed since start (max-connections); the command line or the environment sets max-connections, which the config file cannot change, after a restart either`,
      );
      // A changed key of the file's own beside it: that one waits for a restart.
      writeFileSync(configPath, `${configText('5s')}max-connections: 7\n`);
      const later = overridden.logs.length;
      overridden.child.kill('SIGHUP');
      const both = await waitForLog(overridden, 'config_not_reread', later);
      expect(both).toMatchObject({ changed: ['lease-ttl'], overridden: ['max-connections'] });
      expect(both.msg).toBe(
        `SIGHUP: ${configPath} changed since start (lease-ttl, max-connections); SIGHUP rereads only the tenants file: restart the daemon to apply lease-ttl; the command line or the environment sets max-connections, which the config file cannot change, after a restart either`,
      );
    } finally {
      expect(await overridden.stop()).toBe(0);
    }
  }, 30_000);
});
