/**
 * spawn(), with the child tied to the test process: where util-linux's setpriv is installed, the child
 * runs under `setpriv --pdeathsig KILL`, so the kernel SIGKILLs it when the process that spawned it dies,
 * however that dies (a vitest fork killed after a timeout, or crashing, runs no 'exit' handler, and the
 * daemons it started went on serving under init). setpriv execs the command: child.pid is the command's
 * own, and the signals a test sends reach it. Without setpriv (not Linux) it is plain spawn().
 */
import { SpawnOptions, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));

/** Called as spawn(command, args, options) is, with spawn's types. */
export const spawnTied = ((command: string, args: readonly string[], options: SpawnOptions) =>
  SETPRIV ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args], options) : spawn(command, args, options)) as typeof spawn;
