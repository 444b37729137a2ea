/**
 * A daemon that dies under a gRPC write stream: the typed client's call ends UNAVAILABLE naming the
 * daemon, as any lost connection does, not INTERNAL. grpc-js reports a stream whose socket failed while
 * it wrote (write EPIPE, or ECONNRESET) as INTERNAL "Received RST_STREAM with code 2 triggered by
 * internal client error: write EPIPE", the status of a bug in the daemon, which trainers do not retry.
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { startDaemon } from '../helpers/daemon-process';

const MiB = 1024 * 1024;

describe('a daemon that goes under a write stream', () => {
  it.each([
    ['killed (SIGKILL)', 'SIGKILL'],
    ['draining past --shutdown-timeout (SIGTERM)', 'SIGTERM'],
  ] as const)('%s: the typed client\'s writes end UNAVAILABLE naming the daemon, whatever the socket said (never INTERNAL)', async (_, signal) => {
    const codes: Array<[number, string]> = [];
    for (let round = 0; round < 3; round++) {
      const daemon = await startDaemon(['--maxbytes', '1G', '--host-maxbytes', '1G', '--shutdown-timeout', '100ms']);
      const client = new TensormemClient(daemon.tcpAddress, { dataPlane: false });
      try {
        const lease = await client.openLease({ clientName: 'dying' });
        const arrays = await Promise.all(Array.from({ length: 4 }, () => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [128 * MiB] })));
        const data = Buffer.alloc(128 * MiB, 7);
        const writes = arrays.map((array) => lease.writeGrpc(array.array_id, data, 0, 4 * MiB).then(() => undefined, (error: unknown) => error));
        // Kill it once the streams are moving.
        await new Promise((resolve) => setTimeout(resolve, 150 + 100 * round));
        daemon.child.kill(signal);
        for (const error of await Promise.all(writes)) {
          if (error === undefined) continue;
          expect(error).toBeInstanceOf(TensormemClientError);
          codes.push([(error as TensormemClientError).code, (error as TensormemClientError).details]);
        }
      } finally {
        client.close();
        await daemon.stop().catch(() => undefined);
      }
    }
    expect(codes.length).toBeGreaterThan(0);
    for (const [code, details] of codes) {
      // grpc-js's own UNAVAILABLE names the daemon (the client's interceptor); the drain's says SHUTTING_DOWN.
      expect([code, details]).toEqual([status.UNAVAILABLE, expect.stringMatching(/tensormemd at 127\.0\.0\.1:|tensormemd is shutting down/)]);
    }
  }, 60_000);
});
