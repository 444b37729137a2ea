/**
 * A baseline server as a child process: `node SCRIPT ARGS` with stdin a pipe (the child exits when it
 * closes, so it cannot outlive the runner), which prints {"event":"listening","addresses":[…]} on stdout.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { removeWithChild, spawnTracked, stopChild } from './processes';

export interface ServerChild {
  addresses: string[];
  child: ChildProcess;
  stop(): Promise<number | string | null>;
}

/** Starts the child and waits (20 s at most) for its listening line; `dir` is removed when it exits. */
export async function startServerChild(name: string, script: string, args: string[], dir: string): Promise<ServerChild> {
  const child = spawnTracked(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  removeWithChild(dir, child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let timer: NodeJS.Timeout | undefined;
  try {
    const addresses = await new Promise<string[]>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as { event?: string; addresses?: string[] };
          if (entry.event === 'listening' && entry.addresses) resolve(entry.addresses);
        } catch {
          // not the listening line
        }
      });
      void exited.then((code) => reject(new Error(`${name} exited with ${code}: ${stderr}`)));
      timer = setTimeout(() => reject(new Error(`${name} did not start in 20 s: ${stderr}`)), 20_000);
    });
    return {
      addresses,
      child,
      stop: () => {
        child.stdin!.end();
        return stopChild(child, 'SIGTERM', 5_000);
      },
    };
  } catch (error) {
    await stopChild(child, 'SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
