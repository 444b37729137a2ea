/**
 * A vitest fork that is killed (a crash, a kill after a timeout) runs no 'exit' handler: the daemons its
 * tests started must die with it all the same, not serve on under init for the rest of the CI job.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { ROOT } from '../helpers/daemon-process';

/** The argv of a live process, or undefined once it has gone (or is a zombie). */
function argvOf(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return undefined;
  }
}

/** The pids of `parent`'s children that run tensormemd (past any wrapper they were started under). */
function daemonChildren(parent: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== parent) return false;
      } catch {
        return false;
      }
      const argv = argvOf(pid);
      return argv !== undefined && argv[0] === process.execPath && argv.some((arg) => arg.endsWith('tensormemd.js'));
    });
}

it.skipIf(process.platform !== 'linux')("kills the daemons a vitest fork started when the fork is killed", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tensormem-orphans-'));
  const pidsFile = join(dir, 'pids');
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')));
  const vitest = spawn(process.execPath, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', join(ROOT, 'test', 'fixtures', 'vitest.orphan.config.mts')], {
    cwd: ROOT,
    stdio: 'ignore',
    env: { ...env, ORPHAN_PIDS: pidsFile },
  });
  const vitestExited = new Promise((resolve) => vitest.once('close', resolve));
  let daemons: number[] = [];
  try {
    const fork = await vi.waitFor(() => Number(readFileSync(pidsFile, 'utf8')), { timeout: 25_000, interval: 50 });
    daemons = await vi.waitFor(
      () => {
        const found = daemonChildren(fork);
        expect(found, `tensormemd children of the fork ${fork}`).toHaveLength(2);
        return found;
      },
      { timeout: 10_000, interval: 50 },
    );
    process.kill(fork, 'SIGKILL');
    await vi.waitFor(() => expect(daemons.filter((pid) => argvOf(pid) !== undefined), 'daemons alive after their fork was killed').toEqual([]), { timeout: 10_000, interval: 50 });
    await vitestExited;
  } finally {
    for (const pid of daemons) if (argvOf(pid) !== undefined) process.kill(pid, 'SIGKILL');
    if (vitest.exitCode === null && vitest.signalCode === null) vitest.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
