/**
 * A tenants file that rotates tenant names (one per job, say) and is reloaded with SIGHUP for weeks:
 * what the daemon keeps of the tenants it dropped must not grow with the number of reloads.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { loadConfig } from '../../src/config/config';
import { Daemon, startDaemon } from '../../src/daemon';
import { tokenSha256 } from '../helpers/tenants-file';

const MiB = 1024 * 1024;

describe('tenants file reloads that rotate tenant names', () => {
  let daemon: Daemon;
  let client: TensormemClient;
  let dir: string;
  let tenantsPath: string;
  const write = (names: string[]) =>
    writeFileSync(
      tenantsPath,
      `tenants:\n  - name: ops\n    token_sha256: "${tokenSha256('admin')}"\n    admin: true\n` + names.map((name) => `  - name: ${name}\n    token_sha256: "${tokenSha256(`token-${name}`)}"\n    quota: { device: 4M }\n`).join(''),
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tensormem-rotation-'));
    tenantsPath = join(dir, 'tenants.yaml');
    write(['keeper', 'job-0']);
    const config = loadConfig(['--backend', 'host', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--data-listen', 'off', '--emulated-device', '256M', '--allow-small-device', '--maxbytes', '192M', '--tenants', tenantsPath], {});
    daemon = await startDaemon(config, pino({ level: 'silent' }));
    client = new TensormemClient(daemon.running.addresses[0]);
  });

  afterAll(async () => {
    client?.close();
    await daemon?.shutdown('test');
    rmSync(dir, { recursive: true, force: true });
  });

  it('forgets dropped tenants once they have no lease, and keeps the quota of one that has', async () => {
    const { tenants, memory } = daemon.context;
    // keeper opens a lease and is then dropped: its open lease stays bound by its quota.
    const kept = await client.openLease({ tenantToken: 'token-keeper' });
    for (let i = 1; i <= 60; i++) {
      // Each job's tenant opens and closes a lease, then the next reload drops it.
      const lease = await client.openLease({ tenantToken: `token-job-${i - 1}` });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
      await lease.close();
      write([`job-${i}`]);
      expect(await daemon.reloadTenants()).toBe(true);
    }
    // What is kept is what is in use (keeper's lease) and the file's tenants, not the 60 jobs ever dropped.
    expect(tenants.droppedCount).toBe(1);
    expect(memory.tenants.names().sort()).toEqual(['job-60', 'keeper', 'ops']);
    await expect(kept.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [8 * MiB] })).rejects.toMatchObject({ reason: 'QUOTA_EXCEEDED' });
    await kept.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
    await kept.close();
    write(['job-61']);
    expect(await daemon.reloadTenants()).toBe(true);
    expect(tenants.droppedCount).toBe(0);
    expect(memory.tenants.names().sort()).toEqual(['job-61', 'ops']);
  });
});
