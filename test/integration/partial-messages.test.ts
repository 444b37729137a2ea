/**
 * --max-partial-message-bytes against a daemon process: a raw HTTP/2 client with no token opens many
 * gRPC streams and sends most of a big message on each without ever finishing one. grpc-js holds
 * those bytes before any token check; the budget resets the streams holding the most, so the daemon's
 * memory stays bounded while a trainer's writes and reads go on.
 */
import { readFileSync } from 'node:fs';
import { connect, type ClientHttp2Stream } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { daemonForTests } from '../helpers/daemon-for-tests';

const MiB = 1024 * 1024;
const rssOf = (pid: number) => Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;

describe('--max-partial-message-bytes', () => {
  const setup = daemonForTests(['--maxbytes', '64M', '--max-message-bytes', '16M', '--max-partial-message-bytes', '32M', '--log-level', 'info']);

  it('resets the streams that hold the most unfinished bytes; the daemon stays small and serves a trainer', async () => {
    const lease = await setup.client.openLease({ clientName: 'trainer' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4 * MiB] });
    const pid = setup.daemon.child.pid!;
    const before = rssOf(pid);

    // 30 streams, no token, each announcing a 15 MiB message and sending 14 MiB of it: 420 MiB unbounded.
    const session = connect(`http://${setup.daemon.tcpAddress}`);
    session.on('error', () => undefined);
    const resets: number[] = [];
    const streams: ClientHttp2Stream[] = [];
    const piece = Buffer.alloc(MiB, 7);
    for (let i = 0; i < 30; i++) {
      const stream = session.request({ ':method': 'POST', ':path': '/tensormem.v1.ArrayService/GetArray', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => undefined);
      stream.on('close', () => resets.push(stream.rstCode ?? -1));
      stream.resume();
      const header = Buffer.alloc(5);
      header.writeUInt32BE(15 * MiB, 1);
      stream.write(header);
      for (let k = 0; k < 14; k++) stream.write(piece);
      streams.push(stream);
    }
    // Every stream has sent its 14 MiB or been reset.
    await expect.poll(() => streams.every((stream) => stream.closed || stream.bufferSize === 0), { timeout: 30_000, interval: 200 }).toBe(true);
    const grown = rssOf(pid) - before;

    // A trainer's write and read of 4 MiB (gRPC streams, 1 MiB messages) go through meanwhile.
    const data = Buffer.alloc(4 * MiB, 0x5a);
    expect(await lease.write(array.array_id, data)).toBe(4 * MiB);
    expect((await lease.read(array.array_id)).equals(data)).toBe(true);
    session.destroy();

    expect(resets.filter((code) => code === 11 /* ENHANCE_YOUR_CALM */).length).toBeGreaterThanOrEqual(25);
    expect(grown).toBeLessThan(200 * MiB);
    await expect.poll(() => setup.daemon.logs.some((entry) => entry.event === 'partial_message_streams_reset' && entry.maxPartialMessageBytes === 32 * MiB)).toBe(true);
    expect(JSON.stringify(await setup.client.config())).toContain('"max-partial-message-bytes"');
    const metrics = await (await fetch(`${setup.statusBase}/metrics`)).text();
    expect(Number(/^tensormem_grpc_partial_message_resets_total (\d+)$/m.exec(metrics)?.[1])).toBe(resets.filter((code) => code === 11).length);
    expect(metrics).toMatch(/^tensormem_grpc_partial_message_bytes \d+$/m);
    await lease.close();
  }, 60_000);
});
