/**
 * What the typed client says about a daemon that has drained. grpc-js answered "No connection
 * established. Last error: null" (a second client of the process reuses the failed connection attempt
 * of the first, whose cause it does not keep), and nothing said that the daemon had said it was
 * shutting down.
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { startDaemon } from '../helpers/daemon-process';
import { failure } from '../helpers/thrown';

describe('the typed client after a drain', () => {
  it('says the daemon said it was shutting down, and never "Last error: null"', async () => {
    const daemon = await startDaemon(['--shutdown-timeout', '5s']);
    const client = new TensormemClient(daemon.tcpAddress, { deadlineMs: 5_000 });
    try {
      const lease = await client.openLease();
      const keepAliveErrors: TensormemClientError[] = [];
      lease.startKeepAlive(200, { onError: (error) => keepAliveErrors.push(error) });
      await expect.poll(async () => (await client.memoryInfo()).tenants.length, { timeout: 5_000 }).toBe(1);
      expect(await daemon.stop('SIGTERM')).toBe(0);
      expect(keepAliveErrors.map((error) => error.reason)).toEqual(['SHUTTING_DOWN']);
      const refused = await failure(lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4] }));
      expect([refused.code, refused.reason]).toEqual([status.UNAVAILABLE, undefined]);
      expect(refused.details).toMatch(
        new RegExp(`^No connection established\\. Last error: Error: connect ECONNREFUSED ${daemon.tcpAddress}; tensormemd at ${daemon.tcpAddress} said it was shutting down \\(SHUTTING_DOWN\\) \\d+(\\.\\d)? s ago: it has stopped, or takes no new connections while it drains$`),
      );
      // Other clients of the process: the cause of the attempt they share, not "null".
      for (let i = 0; i < 3; i++) {
        const other = new TensormemClient(daemon.tcpAddress, { deadlineMs: 5_000 });
        const otherRefused = await failure(other.memoryInfo());
        other.close();
        expect(otherRefused.details).not.toContain('null');
        expect(otherRefused.details).toMatch(new RegExp(`^No connection established\\. Last error: Error: connect ECONNREFUSED ${daemon.tcpAddress}`));
      }
    } finally {
      client.close();
    }
  });
});
