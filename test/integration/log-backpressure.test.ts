/**
 * The daemon's log never holds its event loop: with its stderr a pipe that nobody reads (`tensormemd 2>&1 |
 * sleep 1000`, a log shipper that hangs), the daemon keeps serving, holds at most a bounded backlog of
 * lines, drops the rest and says how many once the reader is back (`log_lines_dropped`). Before, every
 * line was written synchronously and a full pipe stopped the whole daemon (every tenant's calls, its
 * lease sweep and SIGTERM) until the reader read again.
 */
import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon, waitForLog } from '../helpers/daemon-process';

/** One GET with a bad token and a long path: a 401, and a data_plane_refused debug line of about that length. */
function refusedGet(agent: Agent, dataAddress: string, pathBytes: number): Promise<number> {
  const { hostname, port } = new URL(dataAddress);
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: hostname, port, path: `/v1/arrays/${'x'.repeat(pathBytes)}`, headers: { authorization: 'Bearer not-a-token' }, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('log backpressure', () => {
  let daemon: DaemonProcess | undefined;
  afterEach(async () => {
    await daemon?.stop('SIGKILL');
    daemon = undefined;
  });

  it('keeps serving while nobody reads its stderr, drops what it cannot hold and says how many', async () => {
    daemon = await startDaemon(['--data-listen', '127.0.0.1:0', '--log-level', 'debug']);
    const dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    // From here the test reads nothing more: the pipe (and this process's buffer) fills and stays full.
    daemon.child.stderr!.pause();
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const started = performance.now();
    // 200 lines of about 12 KiB: 2.4 MB, well past a pipe's buffer and the daemon's backlog.
    for (let i = 0; i < 200; i++) expect(await refusedGet(agent, dataAddress, 12 * 1024)).toBe(401);
    agent.destroy();
    const client = new TensormemClient(daemon.tcpAddress, { deadlineMs: 5_000 });
    try {
      expect((await client.memoryInfo()).devices.length).toBeGreaterThan(0);
    } finally {
      client.close();
    }
    expect(performance.now() - started).toBeLessThan(15_000);

    const seen = daemon.logs.length;
    daemon.child.stderr!.resume();
    const dropped = await waitForLog(daemon, 'log_lines_dropped', seen);
    expect(dropped.level).toBe(40);
    expect(dropped.dropped).toBeGreaterThan(0);
    expect(dropped.dropped).toBeLessThan(200);
    // Still one JSON object a line: no line was cut in two by a partial write.
    expect(daemon.otherStderr).toEqual([]);
    const lines = daemon.logs.slice(seen).filter((entry) => entry.event === 'data_plane_refused');
    expect(lines.length + (dropped.dropped as number)).toBeGreaterThanOrEqual(150);

    // And it stops at SIGTERM as usual, its last line the "stopped" one.
    expect(await daemon.stop('SIGTERM')).toBe(0);
    expect(daemon.logs.at(-1)!.event).toBe('stopped');
  }, 60_000);

  it('stops at SIGTERM with its stderr pipe full and never read again', async () => {
    daemon = await startDaemon(['--data-listen', '127.0.0.1:0', '--log-level', 'debug']);
    const dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    daemon.child.stderr!.pause();
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    for (let i = 0; i < 200; i++) expect(await refusedGet(agent, dataAddress, 12 * 1024)).toBe(401);
    agent.destroy();
    const started = performance.now();
    daemon.child.kill('SIGTERM');
    const code = await Promise.race([new Promise<string>((resolve) => daemon!.child.once('exit', (exitCode) => resolve(`exit ${exitCode}`))), new Promise<string>((resolve) => setTimeout(() => resolve('still running 10 s after SIGTERM'), 10_000))]);
    expect(code).toBe('exit 0');
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 60_000);
});
