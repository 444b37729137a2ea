/**
 * A drain with a client that is stopped (SIGSTOP: a `tensormemctl top` suspended with Ctrl-Z, a trainer
 * paused in a debugger) or gone without a FIN. Its connections carry no call once the drain has ended
 * its WatchMemory stream, but node closes an HTTP/2 session gracefully, waiting for the client to answer
 * a PING, which it never does: every SIGTERM waited out the whole --shutdown-timeout and "stopped" said
 * drained: false, against the README ("none of them holds the drain"). Idle sessions are closed now.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../helpers/daemon-process';

describe('SIGTERM with a stopped client', () => {
  it('does not wait for the idle connections of a client that cannot answer: drained, well within --shutdown-timeout', async () => {
    const daemon = await startDaemon(['--shutdown-timeout', '8s']);
    // One over TCP and one over the unix socket, each with a WatchMemory stream (a message a minute:
    // nothing queued for the stopped client), the drain's to end.
    const watchers = [daemon.tcpAddress, daemon.unixAddress].map((address) =>
      spawn(process.execPath, [join(__dirname, '..', 'helpers', 'stalled-watcher.js'), address, '', '1', '60000'], { stdio: ['ignore', 'pipe', 'inherit'] }),
    );
    try {
      await Promise.all(watchers.map((watcher) => new Promise<void>((resolve) => createInterface({ input: watcher.stdout! }).once('line', () => resolve()))));
      for (const watcher of watchers) watcher.kill('SIGSTOP');
      const started = Date.now();
      expect(await daemon.stop('SIGTERM')).toBe(0);
      const tookMs = Date.now() - started;
      const stopped = daemon.logs.find((entry) => entry.event === 'stopped');
      expect(stopped, JSON.stringify(daemon.logs.slice(-5))).toMatchObject({ drained: true });
      // Without the fix: the whole 8 s. The idle sessions are closed half a second into the drain.
      expect(tookMs).toBeLessThan(5_000);
    } finally {
      for (const watcher of watchers) watcher.kill('SIGKILL');
    }
  }, 30_000);
});
