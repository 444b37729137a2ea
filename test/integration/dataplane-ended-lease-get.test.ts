/**
 * A data plane GET whose reader stops, then whose lease ends: the pieces on its socket are views of the
 * array, whose free waits for them, so the ended lease's memory stayed charged (device and host, to the
 * daemon and to the tenant) until --data-stall-timeout cut the connection (60 s, up to twice that).
 * As a ReadArray stream is reset ENDED_READ_GRACE_MS after its lease ends, the GET's connection is cut
 * then, and every byte comes back.
 */
import { createConnection, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { ENDED_READ_GRACE_MS } from '../../src/service/array-service';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a stopped data plane GET of a lease that ends', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;
  let dataAddress: string;

  beforeAll(async () => {
    // The default --data-stall-timeout (60 s): the test ends long before it could cut anything.
    daemon = await startDaemon(['--maxbytes', '256M', '--host-maxbytes', '256M', '--pool-chunk', '16M', '--data-listen', '127.0.0.1:0']);
    client = new TensormemClient(daemon.tcpAddress);
    dataAddress = daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it(`gives the lease's memory back ENDED_READ_GRACE_MS after the lease ends, cutting the GET`, async () => {
    const used = async () => {
      const info = await client.memoryInfo();
      return { device: info.devices[0].used_bytes, host: info.host!.used_bytes };
    };
    const before = await used();
    const lease = await client.openLease({ clientName: 'stopped-reader' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [128 * MiB], zero: true });
    const url = new URL(dataAddress);
    // Asks for the whole array and reads nothing of it.
    const socket: Socket = createConnection({ host: url.hostname, port: Number(url.port) }, () =>
      socket.write(`GET /v1/arrays/${array.array_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${lease.token}\r\n\r\n`),
    );
    socket.pause();
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await sleep(500);
    expect((await used()).host).toBeGreaterThan(before.host);

    await lease.close();
    const ended = performance.now();
    let back = false;
    while (!back && performance.now() - ended < ENDED_READ_GRACE_MS + 5000) {
      const now = await used();
      back = now.device === before.device && now.host === before.host;
      if (!back) await sleep(100);
    }
    expect(back, `memory still held ${Math.round(performance.now() - ended)} ms after the lease ended`).toBe(true);
    // Not at once: a reader that reads gets the rest of what was on its socket first.
    expect(performance.now() - ended).toBeGreaterThan(ENDED_READ_GRACE_MS - 1000);
    // The connection was cut: reading again, the client finds its end.
    socket.resume();
    await closed;
  }, 30_000);
});
