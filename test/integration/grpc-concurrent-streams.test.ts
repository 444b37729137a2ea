/**
 * --max-concurrent-streams: one gRPC connection has at most that many calls open in the daemon; the
 * client's further calls wait on its side (HTTP/2), and go on as soon as one of its calls ends. Other
 * connections are not held up.
 */
import { credentials, Metadata, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { WriteArrayRequest } from '../../src/generated/tensormem/v1/WriteArrayRequest';
import { loadTensormemProto } from '../../src/service/proto';
import { daemonForTests } from '../helpers/daemon-for-tests';

const LIMIT = 8;

describe('--max-concurrent-streams', () => {
  const setup = daemonForTests(['--max-concurrent-streams', String(LIMIT)]);

  it('holds a connection to its limit of open calls; its next call waits until one ends, other connections do not', async () => {
    const lease = await setup.client.openLease({ clientName: 'streams', ttlSeconds: 60 });
    const { proto } = loadTensormemProto();
    // Each its own connection (grpc-js shares one between channels of the same target and options otherwise).
    const connection = () => new proto.tensormem.v1.ArrayService(setup.daemon.tcpAddress, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const channel = connection();
    const other = connection();
    const metadata = () => {
      const md = new Metadata();
      md.set('authorization', `Bearer ${lease.token}`);
      return md;
    };
    /** GetArray of an unknown id: answers NOT_FOUND at once, once the daemon sees it. */
    const getArray = (client: typeof channel) =>
      new Promise<number>((resolve) => client.GetArray({ array_id: 'no-such-array' }, metadata(), (error: ServiceError | null) => resolve(error?.code ?? 0)));
    const idle: ClientWritableStream<WriteArrayRequest>[] = [];
    try {
      expect(await getArray(channel)).toBe(5); // NOT_FOUND: the channel is connected
      // LIMIT WriteArray streams that send nothing: each stays open in the daemon.
      for (let i = 0; i < LIMIT; i++) idle.push(channel.WriteArray(metadata(), () => undefined));
      await new Promise((resolve) => setTimeout(resolve, 300));
      let answered = false;
      const waiting = getArray(channel).then((code) => {
        answered = true;
        return code;
      });
      // Another connection is served meanwhile.
      expect(await getArray(other)).toBe(5);
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(answered).toBe(false);
      // One of the connection's calls ends: the waiting call goes in.
      idle.shift()!.cancel();
      expect(await waiting).toBe(5);
    } finally {
      for (const call of idle) call.cancel();
      channel.close();
      other.close();
      await lease.close();
    }
  });
});
