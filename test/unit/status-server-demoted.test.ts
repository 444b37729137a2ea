/**
 * /events: a stream whose token a reload demoted is ended at the next tick and leaves the shared
 * timer then and there. A stalled reader's response is not 'close'd until its socket takes the end, so
 * a stream left in its group was ticked again: should a second reload restore the token before that, a
 * snapshot was written after end(), an 'error' event with no listener, and the daemon died.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type ClientRequest, request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';

// The first snapshots are big, to fill the socket's buffers quickly; the later ones, under
// EVENTS_MAX_PENDING_BYTES, are what stays in the daemon's own buffer once the kernel takes no more.
const snapshot = vi.hoisted(() => ({ builds: 0 }));
vi.mock('../../src/service/memory-service', () => ({
  memoryInfo: () => ({}),
  blockInfo: () => ({}),
}));

import { EVENTS_INTERVAL_MS, MAX_EVENT_STREAMS, StatusServer, startStatusServer } from '../../src/observability/status-server';
import type { DaemonMetrics } from '../../src/observability/daemon-metrics';
import type { ServiceContext } from '../../src/service/service-context';
import { TenantRegistry } from '../../src/leases/tenant-registry';

/** Connects with a 4 KiB receive buffer, sends the request and never reads (Node cannot set SO_RCVBUF on TCP). */
const STALLED_READER = `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(('GET %s HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n' % sys.argv[3]).encode())
time.sleep(60)
`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('/events after a reload demoted its token', () => {
  let server: StatusServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('ends a stalled stream, writes nothing after its end, and frees its slot at once', async () => {
    const admin = { now: true };
    const context = {
      // The real admin rule (TenantRegistry.requireAdmin) over these stand-in facts.
      tenants: { openMode: false, isAdmin: () => admin.now, match: () => ({ name: 'ops' }), requireAdmin: TenantRegistry.prototype.requireAdmin },
      log: { error: () => undefined },
      registry: { list: () => [], leaseOfToken: () => undefined },
      config: {},
      // What each message is built from: one pool whose name pads the message to the size wanted.
      memory: { snapshot: () => [{ pool: 'x'.repeat(snapshot.builds++ < 3 ? 500_000 : 40_000), segments: [] }] },
    } as unknown as ServiceContext;
    const errors: unknown[] = [];
    const pages: ClientRequest[] = [];
    let reader: ChildProcess | undefined;
    const onError = (error: unknown) => errors.push(error);
    process.on('uncaughtException', onError);
    try {
      server = await startStatusServer('127.0.0.1:0', context, {} as DaemonMetrics);
      const [host, port] = [server.address.slice(0, server.address.lastIndexOf(':')), Number(server.address.slice(server.address.lastIndexOf(':') + 1))];
      // A reader that never reads: the kernel's buffers fill, then the last snapshot stays in the
      // daemon's own buffer, under EVENTS_MAX_PENDING_BYTES.
      reader = spawn('python3', ['-c', STALLED_READER, host, String(port), `/events?interval_ms=${EVENTS_INTERVAL_MS.min}&token=t`], { stdio: 'ignore' });
      await sleep(5000);
      // Demoted: ended at the next tick; its slot is free for another admin page.
      admin.now = false;
      await sleep(3 * EVENTS_INTERVAL_MS.min);
      // Restored before the stalled socket took the end.
      admin.now = true;
      const statuses = await Promise.all(
        Array.from({ length: MAX_EVENT_STREAMS }, () =>
          new Promise<number>((resolve, reject) => {
            const req = request(`http://localhost:${port}/events?interval_ms=${EVENTS_INTERVAL_MS.max}&token=t`, (response) => {
              resolve(response.statusCode!);
              response.resume();
            });
            req.on('error', reject);
            req.end();
            pages.push(req);
          }),
        ),
      );
      expect(statuses).toEqual(Array(MAX_EVENT_STREAMS).fill(200));
      await sleep(5 * EVENTS_INTERVAL_MS.min);
      reader.kill();
      reader = undefined;
      await sleep(100);
      expect(errors).toEqual([]);
      // Messages were built and sent all along (the stalled stream's buffers filled with them).
      expect(snapshot.builds).toBeGreaterThan(3);
    } finally {
      for (const page of pages) page.destroy();
      reader?.kill();
      process.off('uncaughtException', onError);
    }
  }, 20_000);
});
