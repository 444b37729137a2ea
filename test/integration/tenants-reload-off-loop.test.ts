/**
 * A SIGHUP reload of a large tenants file reads, parses and checks it on a worker thread, and applies it
 * in one turn: the daemon answers calls meanwhile (a file of 10,000 tenants held every call for 1.3-5 s
 * on a loaded 2-core VM, all of it on the event loop). SIGHUPs that come while a reload reads make one
 * more reload, of the file as the last one left it; a SIGTERM during a reload abandons it, and drains.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { tokenSha256, writeTenantsFile } from '../helpers/tenants-file';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Tenants enough that their YAML takes the parser 0.5 s or more (about 1 MB). */
const MANY = 5000;

/** A tenants file's YAML: `ops` (admin), MANY tenants team-0… unless `many` is false, and `extra` tenants. */
function tenantsYaml(extra: string[], many = true): string {
  const names = [...(many ? Array.from({ length: MANY }, (_, i) => `team-${i}`) : []), ...extra];
  const entries = names.map((name) => `  - name: ${name}\n    token_sha256: "${tokenSha256(`token-${name}`)}"\n    quota: { device: 8M, host: 4M, mmap: 16M }\n    max_leases: 16\n`);
  return `tenants:\n  - name: ops\n    token_sha256: "${tokenSha256('token-ops')}"\n    admin: true\n${entries.join('')}`;
}

/** The `count`-th log line of `event` (1-based) from the start, within 30 s (a 5,000-tenant reload on a loaded machine takes seconds). */
async function nthLog(daemon: DaemonProcess, event: string, count = 1): Promise<Record<string, unknown>> {
  for (let waited = 0; waited < 30_000; waited += 20) {
    const found = daemon.logs.filter((entry) => entry.event === event);
    if (found.length >= count) return found[count - 1];
    await sleep(20);
  }
  throw new Error(`no log line ${event} #${count}`);
}

describe('tenants file reloads off the event loop', () => {
  let daemon: DaemonProcess | undefined;
  let client: TensormemClient | undefined;
  afterEach(async () => {
    client?.close();
    client = undefined;
    await daemon?.stop();
    daemon = undefined;
  });

  /** A daemon with a small tenants file (ops and `first`); `replace` writes the next file beside it and renames it over it, `reloadWith` then sends SIGHUP. */
  async function start(): Promise<{ replace(yaml: string): void; reloadWith(yaml: string): void }> {
    const path = writeTenantsFile(tenantsYaml(['first'], false));
    daemon = await startDaemon(['--tenants', path]);
    client = new TensormemClient(daemon.tcpAddress);
    const replace = (yaml: string) => {
      const next = join(dirname(path), 'next.yaml');
      writeFileSync(next, yaml);
      renameSync(next, path);
    };
    const reloadWith = (yaml: string) => {
      replace(yaml);
      daemon!.child.kill('SIGHUP');
    };
    return { replace, reloadWith };
  }

  it('answers calls while a reload reads and parses a large file, then puts the whole file in force at once', async () => {
    const { replace } = await start();
    replace(tenantsYaml(['added']));
    // One GetMemoryInfo after another, each answer's time kept, from before the SIGHUP until its line.
    const answeredAt: number[] = [];
    let reloaded = false;
    // Its error is taken at once: the call after the reload fails (below), maybe before the test reads the line.
    const calls = (async () => {
      while (!reloaded) {
        await client!.memoryInfo('token-first');
        answeredAt.push(Date.now());
      }
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    await sleep(100);
    const sentAt = Date.now();
    daemon!.child.kill('SIGHUP');
    const line = await nthLog(daemon!, 'tenants_reloaded');
    reloaded = true;
    // `first` left the file: its token fails from the reload on, so the loop may end with that call.
    const ended = await calls;
    if (ended !== undefined) expect((ended as TensormemClientError).code, String(ended)).toBe(status.UNAUTHENTICATED);
    const during = answeredAt.filter((at) => at > sentAt && at < (line.time as number));
    // On the event loop the reload answered none while it ran (at most one call, in flight at the SIGHUP).
    expect(during.length).toBeGreaterThanOrEqual(5);
    expect(line).toMatchObject({ removed: ['first'] });
    expect((line.added as string[]).length).toBe(MANY + 1);
    const lease = await client!.openLease({ tenantToken: `token-team-${MANY - 1}` });
    await lease.close();
    await client!.openLease({ tenantToken: 'token-added' }).then((opened) => opened.close());
  }, 60_000);

  it('makes one more reload of SIGHUPs that come while one reads, which reads the file as the last SIGHUP left it', async () => {
    const { reloadWith } = await start();
    reloadWith(tenantsYaml(['one']));
    // While the first reload reads (0.5 s and more): a newer file and two SIGHUPs.
    await sleep(50);
    reloadWith(tenantsYaml(['two']));
    // Apart, so that the kernel does not merge them into one pending signal.
    await sleep(30);
    daemon!.child.kill('SIGHUP');
    const second = await nthLog(daemon!, 'tenants_reloaded', 2);
    expect(second.tenants).toContain('two');
    expect(second.tenants).not.toContain('one');
    // Reloads run in turn: had the three SIGHUPs made a third reload, it would have come before this one.
    reloadWith(tenantsYaml(['three'], false));
    const third = await nthLog(daemon!, 'tenants_reloaded', 3);
    expect(third.tenants).toEqual(['ops', 'three']);
    expect(daemon!.logs.filter((entry) => entry.event === 'tenants_reloaded')).toHaveLength(3);
    expect(daemon!.logs.filter((entry) => entry.event === 'tenants_reload_failed')).toEqual([]);
    await client!.openLease({ tenantToken: 'token-three' }).then((opened) => opened.close());
  }, 60_000);

  it('abandons a reload in flight when SIGTERM comes, drains and exits 0', async () => {
    const { reloadWith } = await start();
    reloadWith(tenantsYaml(['late']));
    await sleep(100);
    const running = daemon!;
    daemon = undefined;
    expect(await running.stop('SIGTERM')).toBe(0);
    const events = running.logs.map((entry) => entry.event);
    expect(events).toContain('stopped');
    // The reload was still reading when the drain began: it was not applied, nor refused.
    expect(events).not.toContain('tenants_reloaded');
    expect(events).not.toContain('tenants_reload_failed');
  }, 60_000);
});
