/**
 * Every child process the benchmark starts goes through spawnTracked, so that it is stopped on every
 * way out: the normal path stops it (stopChild), and an exit, an uncaught error, SIGINT or SIGTERM of
 * the runner kills whatever is still alive. On Linux, when util-linux's `setpriv` is installed, children
 * are also started with PR_SET_PDEATHSIG=KILL, so they die even when the runner itself is SIGKILLed.
 */
import { ChildProcess, SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let handlersInstalled = false;
let setprivPath: string | null | undefined;

function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  if (process.platform !== 'linux') return setprivPath;
  for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv']) {
    const probe = spawnSync(candidate, ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore' });
    if (probe.status === 0) {
      setprivPath = candidate;
      break;
    }
  }
  return setprivPath;
}

function killAll(signal: NodeJS.Signals): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    killAll('SIGKILL');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping ${live.size} child process(es)\n`);
      killAll('SIGKILL');
      process.exit(130);
    });
  }
  process.on('uncaughtException', (error) => {
    process.stderr.write(`bench: uncaught ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    killAll('SIGKILL');
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    process.stderr.write(`bench: unhandled rejection ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    killAll('SIGKILL');
    process.exit(1);
  });
}

/** Spawns `node script args` (or another command) and tracks it until it exits. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  installHandlers();
  const setpriv = findSetpriv();
  const child = setpriv ? spawn(setpriv, ['--pdeathsig', 'KILL', command, ...args], options) : spawn(command, args, options);
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/** Resolves with the exit code (or signal name) once the child has exited. */
export function exitOf(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
}

/** Sends `signal`, waits up to graceMs, then SIGKILL. Resolves once the child is gone. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<number | string | null> {
  const exited = exitOf(child);
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const first = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (first !== 'timeout') return first;
  child.kill('SIGKILL');
  return exited;
}

/** A temp folder (a child's socket) removed when the child exits, or when the runner exits at the latest. */
export function removeWithChild(dir: string, child: ChildProcess): void {
  tempDirs.add(dir);
  const remove = () => {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  };
  if (child.exitCode !== null || child.signalCode !== null) remove();
  else child.once('exit', remove);
}

export function liveChildren(): number {
  return live.size;
}

/**
 * CPU seconds (user + system, all threads) a process has used so far, from /proc/PID/stat; undefined
 * where /proc is not there. Less sensitive than wall time to other load on the machine.
 */
export function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined || process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    return ticks / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/** Runs `node [nodeFlags] script args` and returns the JSON on the last line of its stdout; throws with its stderr when it fails. */
export async function runJsonChild<T>(name: string, nodeFlags: string[], script: string, args: string[]): Promise<T> {
  const child = spawnTracked(process.execPath, [...nodeFlags, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const code = await exitOf(child);
  if (code !== 0) throw new Error(`${name} child exited with ${code}: ${stderr.trim()}`);
  return JSON.parse(stdout.trim().split('\n').pop()!) as T;
}
