/**
 * Starts the compiled tensormemd (dist/src/bin/tensormemd.js) as a child process on an ephemeral
 * loopback port and a unix socket in a temp folder, and reads the bound addresses from its
 * "listening" log line (the same way test/helpers/daemon-process.ts does). The data plane is off (its
 * default port would clash, and rows other than B2 measure the gRPC streams); B2 passes its own
 * --data-listen, which wins as the later flag.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/package-root';
import { removeWithChild, spawnTracked, stopChild } from './processes';

export const TENSORMEMD = join(packageRoot(), 'dist', 'src', 'bin', 'tensormemd.js');

export interface BenchDaemon {
  tcpAddress: string;
  unixAddress: string;
  child: ChildProcess;
  backend: string;
  /** The last log lines (stderr), for error messages. */
  recentLogs(): string[];
  stop(): Promise<number | string | null>;
}

export async function startDaemon(flags: string[]): Promise<BenchDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'tensormemd-bench-'));
  const unixAddress = `unix:${join(dir, 'tensormemd.sock')}`;
  const args = [TENSORMEMD, '--listen', '127.0.0.1:0', '--listen', unixAddress, '--metrics-listen', '127.0.0.1:0', '--data-listen', 'off', ...flags];
  // Node options for the daemons only, e.g. BENCH_DAEMON_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' (bench/README.md).
  const nodeArgs = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
  const child = spawnTracked(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const recent: string[] = [];
  let backend = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  removeWithChild(dir, child);
  let timer: NodeJS.Timeout | undefined;
  try {
    const addresses = await new Promise<string[]>((resolve, reject) => {
      // Keep reading stderr for the daemon's whole life, or a full pipe would block it.
      createInterface({ input: child.stderr! }).on('line', (line) => {
        recent.push(line);
        if (recent.length > 50) recent.shift();
        if (!line.includes('"listening"')) return;
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (entry.event === 'listening') {
            backend = String(entry.backend ?? '');
            resolve(entry.addresses as string[]);
          }
        } catch {
          // not a log line
        }
      });
      void exited.then((code) => reject(new Error(`tensormemd exited with ${code} before listening:\n${recent.join('\n')}`)));
      timer = setTimeout(() => reject(new Error(`tensormemd did not start in 30 s:\n${recent.join('\n')}`)), 30_000);
    });
    return {
      tcpAddress: addresses.find((a) => !a.startsWith('unix:'))!,
      unixAddress,
      child,
      backend,
      recentLogs: () => [...recent],
      stop: () => stopChild(child, 'SIGTERM'),
    };
  } catch (error) {
    await stopChild(child, 'SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
