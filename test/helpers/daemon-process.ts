/**
 * Starts the compiled tensormemd (dist/, built by `npm test` before vitest runs) as a child process on
 * an ephemeral TCP port and a unix socket in a temp folder, and reads the bound addresses from its
 * "listening" log line. The metrics listener takes an ephemeral port and the data plane is off (its
 * default, 127.0.0.1:7071, would clash between daemons), so transfers use the gRPC streams; a test
 * passes `--data-listen ADDR` (later flags win) for a data plane.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { spawnTied } from './tied-spawn';

export const ROOT = join(__dirname, '..', '..');
export const TENSORMEMD = join(ROOT, 'dist', 'src', 'bin', 'tensormemd.js');

export interface DaemonProcess {
  tcpAddress: string;
  unixAddress: string;
  child: ChildProcess;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  /** Every stderr line so far that is not a JSON log line (a Node warning, a startup error). */
  otherStderr: string[];
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Daemons still running when the test process exits are killed, so a failed test leaves none behind; if
 * the test process is killed instead, the kernel kills them (spawnTied).
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** `prefix`: a command the daemon runs under (e.g. ['prlimit', '--nofile=600:600']). */
export async function startDaemon(flags: string[] = [], env: NodeJS.ProcessEnv = {}, prefix: string[] = []): Promise<DaemonProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'tensormemd-test-'));
  const unixAddress = `unix:${join(dir, 'tensormemd.sock')}`;
  const args = [TENSORMEMD, '--backend', 'host', '--emulated-device', '2G', '--listen', '127.0.0.1:0', '--listen', unixAddress, '--metrics-listen', '127.0.0.1:0', '--data-listen', 'off', '--log-level', 'debug', ...flags];
  const command = prefix.length > 0 ? [...prefix, process.execPath, ...args] : [process.execPath, ...args];
  const child = spawnTied(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const logs: Array<Record<string, unknown>> = [];
  const stderrText: string[] = [];
  const otherStderr: string[] = [];
  running.add(child);
  // 'close', not 'exit': 'exit' may come before the last stderr lines are read (the "stopped" line a
  // test looks for right after), 'close' comes once the child's pipes have ended too.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  void exited.then(() => running.delete(child));
  void exited.then(() => rmSync(dir, { recursive: true, force: true }));
  const listening = new Promise<string[]>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrText.push(line);
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.event === 'listening') resolve(entry.addresses as string[]);
      } catch {
        // not a log line (a startup error, a Node warning): kept in stderrText and otherStderr
        otherStderr.push(line);
      }
    });
    void exited.then((code) => reject(new Error(`tensormemd exited with ${code} before listening:\n${stderrText.join('\n')}`)));
  });
  let startTimer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    startTimer = setTimeout(() => {
      // Not left running: a daemon that never said "listening" (a flag that hides the line, a hang) is no one's to stop.
      child.kill('SIGKILL');
      reject(new Error(`tensormemd did not start in 20 s:\n${stderrText.join('\n')}`));
    }, 20_000);
    startTimer.unref();
  });
  let addresses: string[];
  try {
    addresses = await Promise.race([listening, timeout]);
  } finally {
    // Cleared once it started (or exited): otherwise it would SIGKILL every daemon that runs past 20 s.
    clearTimeout(startTimer);
  }
  return {
    tcpAddress: addresses.find((a) => !a.startsWith('unix:'))!,
    unixAddress,
    child,
    logs,
    otherStderr,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Runs tensormemd to completion with `args` (for --help and bad flags). A daemon that starts serving
 * instead (the refusal a test expects did not come) is killed when the test process exits, as
 * startDaemon's are: one was left running for an hour after such a test timed out.
 */
export function runTensormemd(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawnTied(process.execPath, [TENSORMEMD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('close', (code) => {
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The first log line of `event` after the first `seen` lines (by default, from now on), within 5 s. */
export async function waitForLog(daemon: DaemonProcess, event: string, seen = daemon.logs.length): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const entry = daemon.logs.slice(seen).find((e) => e.event === event);
    if (entry) return entry;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${event} log line`);
}
