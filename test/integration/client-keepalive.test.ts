/**
 * The typed client's HTTP/2 keepalive: a connection that dies silently (no FIN, no RST: the daemon's
 * host lost power, a partition, a NAT that forgot the flow) ends the calls open on it with
 * UNAVAILABLE, instead of leaving a call without a deadline waiting for the kernel's TCP timeout.
 * A proxy between client and daemon stops forwarding bytes either way, keeping both sockets open.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientOptions, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from '../helpers/daemon-process';
import { silentProxy } from '../helpers/silent-proxy';

/** Opens a lease through a fresh proxy, starts a WatchMemory stream, silences the proxy; resolves with the stream's error, or undefined when none came within `waitMs`. */
async function watchThroughSilencedProxy(daemon: DaemonProcess, options: ClientOptions, waitMs: number): Promise<{ error: TensormemClientError | undefined; afterMs: number }> {
  const proxy = await silentProxy(daemon.tcpAddress);
  const client = new TensormemClient(proxy.address, options);
  try {
    const lease = await client.openLease();
    let firstInfo!: () => void;
    const seen = new Promise<void>((resolve) => (firstInfo = resolve));
    let failed!: (error: TensormemClientError) => void;
    const error = new Promise<TensormemClientError>((resolve) => (failed = resolve));
    client.watchMemory(100, () => firstInfo(), failed, lease.token);
    await seen;
    proxy.goSilent();
    const start = Date.now();
    const outcome = await Promise.race([error, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), waitMs))]);
    return { error: outcome, afterMs: Date.now() - start };
  } finally {
    client.close();
    await proxy.close();
  }
}

describe('typed client keepalive', () => {
  let daemon: DaemonProcess;

  beforeAll(async () => {
    daemon = await startDaemon(['--lease-ttl', '60s']);
  });

  afterAll(async () => {
    expect(await daemon?.stop()).toBe(0);
  });

  it('ends a stream on a connection gone silent with UNAVAILABLE once a ping goes unanswered', async () => {
    const { error, afterMs } = await watchThroughSilencedProxy(daemon, { keepalive: { timeMs: 300, timeoutMs: 300 } }, 10_000);
    expect(error).toBeInstanceOf(TensormemClientError);
    expect(error!.code).toBe(status.UNAVAILABLE);
    // One ping interval plus its timeout, with room for a slow machine; the kernel would take minutes.
    expect(afterMs).toBeLessThan(5_000);
  });

  it('without pings (keepalive: false) the same stream just stops hearing anything', async () => {
    const { error } = await watchThroughSilencedProxy(daemon, { keepalive: false }, 3_000);
    expect(error).toBeUndefined();
  });

  // What README and ClientOptions.keepalive say of a blocked event loop: the ping's answer is read after
  // the timer that waits for it, so a block longer than timeoutMs drops the connection (and with it a
  // releaseOnDisconnect lease); a timeoutMs above the longest block keeps both.
  async function renewsAfterBlocking(keepalive: ClientOptions['keepalive'], blockMs: number): Promise<boolean> {
    const client = new TensormemClient(daemon.tcpAddress, { keepalive });
    try {
      const lease = await client.openLease({ ttlSeconds: 60 });
      lease.startKeepAlive(10_000, { releaseOnDisconnect: true, onError: () => undefined });
      for (let i = 0; i < 4; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        const end = Date.now() + blockMs;
        while (Date.now() < end);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      return await lease.renew().then(
        () => true,
        () => false,
      );
    } finally {
      client.close();
    }
  }

  it('a blocked event loop: a block longer than timeoutMs drops the connection, a longer timeoutMs keeps it', async () => {
    expect(await renewsAfterBlocking({ timeMs: 300, timeoutMs: 300 }, 700)).toBe(false);
    expect(await renewsAfterBlocking({ timeMs: 300, timeoutMs: 2_000 }, 700)).toBe(true);
  });

  it('refuses keepalive times grpc-js cannot arm, naming the field', () => {
    expect(() => new TensormemClient(daemon.tcpAddress, { keepalive: { timeMs: 0 } })).toThrow('Expected a whole number of milliseconds from 1 to 2147483647 for keepalive.timeMs but received 0');
    expect(() => new TensormemClient(daemon.tcpAddress, { keepalive: { timeoutMs: 2 ** 31 } })).toThrow('for keepalive.timeoutMs but received 2147483648');
  });
});
