/**
 * A daemon that dies or is restarted, and a second daemon started on the first's addresses: what the
 * dead one left is taken over, what a live one holds is not.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { Socket, connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { TENSORMEMD, startDaemon } from '../helpers/daemon-process';

/** Runs tensormemd with `args` until it exits, or kills it after `timeoutMs` (code null: it was still running). */
function runUntilExit(args: string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TENSORMEMD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (data) => (stderr += data));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** Opens connections to a unix socket until one is not accepted into the backlog (EAGAIN); returns the open ones. */
async function fillBacklog(path: string): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let batch = 0; batch < 40; batch++) {
    const results = await Promise.all(
      Array.from({ length: 128 }, () => {
        const socket = connect(path);
        sockets.push(socket);
        return new Promise<string>((resolve) => {
          socket.once('connect', () => resolve('connected'));
          socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
        });
      }),
    );
    if (results.includes('EAGAIN')) return sockets;
  }
  throw new Error(`the backlog of ${path} took ${sockets.length} connections without EAGAIN`);
}

describe('daemon restart', () => {
  it('refuses a unix socket whose daemon is alive but does not accept (full backlog), and leaves that daemon its socket file', async () => {
    const first = await startDaemon();
    const socketPath = first.unixAddress.slice('unix:'.length);
    const inode = statSync(socketPath).ino;
    let sockets: Socket[] = [];
    const client = new TensormemClient(first.unixAddress);
    try {
      try {
        // A stopped (or flooded) daemon's socket answers EAGAIN, not ECONNREFUSED, once its backlog is full.
        first.child.kill('SIGSTOP');
        sockets = await fillBacklog(socketPath);
        const second = await runUntilExit(['--backend', 'host', '--emulated-device', '2G', '--listen', first.unixAddress, '--data-listen', 'off', '--metrics-listen', 'off'], 15_000);
        expect(second.code).toBe(1);
        expect(second.stderr).toContain(`cannot listen on ${first.unixAddress}: a connection to the socket there failed with EAGAIN, not refused`);
        expect(statSync(socketPath).ino).toBe(inode);
      } finally {
        for (const socket of sockets) socket.destroy();
        first.child.kill('SIGCONT');
      }
      // Its socket serves again once it has accepted (and dropped) the backlog the test left.
      await expect.poll(() => client.memoryInfo().then((info) => info.devices.length, () => 0), { timeout: 10_000 }).toBe(1);
    } finally {
      client.close();
      await first.stop();
    }
  }, 60_000);
});
