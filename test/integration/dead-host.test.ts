/**
 * A trainer whose host vanished (power lost, network gone): no FIN or RST ever reaches the daemon, so
 * only the daemon's own HTTP/2 pings (--keepalive-time, --keepalive-timeout) find out. Before, the
 * daemon sent none: the connection stayed open for good (a file descriptor, its ReadArray stream and
 * buffers), and a release_on_disconnect lease kept its memory for its whole TTL.
 * The silent proxy stands in for the vanished host: it forwards nothing either way and keeps its
 * socket to the daemon open, as the daemon's kernel does for a peer that is gone.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { startDaemon } from '../helpers/daemon-process';
import { silentProxy } from '../helpers/silent-proxy';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a trainer whose host vanished', () => {
  it('gets its connection closed by the daemon\'s keepalive pings: its release_on_disconnect lease, memory and file descriptor come back long before its TTL', async () => {
    const daemon = await startDaemon(['--maxbytes', '64M', '--pool-chunk', '4M', '--reclaim-interval', '200ms', '--keepalive-time', '500ms', '--keepalive-timeout', '500ms']);
    const fds = () => readdirSync(`/proc/${daemon.child.pid}/fd`).length;
    const observer = new TensormemClient(daemon.tcpAddress);
    const proxy = await silentProxy(daemon.tcpAddress);
    // The trainer's own pings off: it is the daemon that must notice.
    const trainer = new TensormemClient(proxy.address, { keepalive: false });
    try {
      const baseline = await observer.memoryInfo();
      const fdsBefore = fds();
      const lease = await trainer.openLease({ clientName: 'vanishing', ttlSeconds: 600 });
      lease.startKeepAlive(200, { releaseOnDisconnect: true, onError: () => undefined });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [32 * MiB] });
      // A ReadArray stream that stopped reading, as the host's last act.
      const stream = trainer.arrays.ReadArray({ array_id: array.array_id, offset: 0, length: 0 }, trainer.metadata(lease.token));
      stream.on('error', () => undefined);
      await new Promise<void>((resolve) => stream.once('data', () => (stream.pause(), resolve())));
      await sleep(300);
      expect((await observer.memoryInfo()).devices[0].used_bytes).toBe(baseline.devices[0].used_bytes + 32 * MiB);
      expect(fds()).toBe(fdsBefore + 1);

      proxy.goSilent();
      const silentAt = Date.now();
      await expect.poll(async () => (await observer.listLeases()).some((l) => l.lease_id === lease.leaseId), { timeout: 10_000, interval: 100 }).toBe(false);
      // Ping interval + ping timeout (1 s), with room for a loaded machine; the TTL is 600 s.
      expect(Date.now() - silentAt).toBeLessThan(6_000);
      expect(daemon.logs.find((entry) => entry.leaseId === lease.leaseId && entry.event === 'lease_disconnected')).toBeDefined();
      const after = await observer.memoryInfo();
      expect(after.devices[0].used_bytes).toBe(baseline.devices[0].used_bytes);
      expect(after.host!.used_bytes).toBe(baseline.host!.used_bytes);
      expect(after.tenants.every((tenant) => tenant.used_bytes === 0)).toBe(true);
      await expect.poll(fds, { timeout: 5_000 }).toBe(fdsBefore);
      // A new tenant gets the whole pool: 64 MiB less nothing.
      const fresh = await observer.openLease({ tenant: 'fresh' });
      await fresh.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64 * MiB] });
      await fresh.close();
    } finally {
      trainer.close();
      observer.close();
      await proxy.close();
      expect(await daemon.stop()).toBe(0);
    }
  });

  it('sends no pings with --keepalive-time off, and refuses a bad value naming the flag', async () => {
    const daemon = await startDaemon(['--keepalive-time', 'off']);
    const client = new TensormemClient(daemon.tcpAddress);
    try {
      const values = (await client.config()).values;
      expect(values.find((value) => value.name === 'keepalive-time')).toMatchObject({ value: 'off', source: 'flag' });
      expect(values.find((value) => value.name === 'keepalive-timeout')).toMatchObject({ value: '60s', source: 'default' });
    } finally {
      client.close();
      expect(await daemon.stop()).toBe(0);
    }
    await expect(startDaemon(['--keepalive-timeout', 'soon'])).rejects.toThrow('--keepalive-timeout');
  });
});
