/**
 * The drain's sweep of idle gRPC sessions (idle-sessions.ts): a session is idle from its last stream's
 * close, not from the sweep's look at it. A session whose call had just ended was destroyed at once, while
 * its client could still be reading that call's answer; with bytes from the client unread the kernel then
 * reset the connection, and a plain grpc-js client saw INTERNAL "Received RST_STREAM with code 0" for an
 * answered call.
 */
import { join } from 'node:path';
import { Server, ServerCredentials, credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { HealthImplementation } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import { guardConnectionSetup } from '../../src/service/connection-setup-guard';
import { trackIdleSessions } from '../../src/service/idle-sessions';

const HEALTH_PROTO = join(__dirname, '../../node_modules/grpc-health-check/proto/health/v1/health.proto');
const GRACE_MS = 500;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function trackedServer() {
  const server = new Server();
  new HealthImplementation({ '': 'SERVING' }).addToServer(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  guardConnectionSetup(server);
  const idle = trackIdleSessions(server);
  const proto = loadPackageDefinition(loadSync(HEALTH_PROTO, { enums: String })) as any;
  const client = new proto.grpc.health.v1.Health(`127.0.0.1:${port}`, credentials.createInsecure());
  cleanups.push(() => {
    client.close();
    server.forceShutdown();
  });
  const check = () => new Promise<void>((resolve, reject) => client.Check({ service: '' }, (error: Error | null) => (error ? reject(error) : resolve())));
  return { idle, client, check };
}

describe('trackIdleSessions', () => {
  it('leaves a session whose last call has just ended for graceMs, then destroys it', async () => {
    const { idle, check } = await trackedServer();
    await check();
    const endedBy = Date.now();
    expect(idle.openStreams).toBe(0);
    // Without the grace: destroyed at the first look, its client perhaps still reading the answer.
    expect(idle.closeIdle(GRACE_MS, endedBy)).toBe(0);
    expect(idle.closeIdle(GRACE_MS, endedBy + GRACE_MS - 50)).toBe(0);
    expect(idle.closeIdle(GRACE_MS, endedBy + GRACE_MS + 50)).toBe(1);
  });

  it('counts the grace from the last call: a later call starts it again', async () => {
    const { idle, check } = await trackedServer();
    await check();
    const firstEnded = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await check();
    const secondEnded = Date.now();
    // A grace past the first call's end, 200 ms and more short of the second's.
    expect(idle.closeIdle(GRACE_MS, firstEnded + GRACE_MS + 10)).toBe(0);
    expect(idle.closeIdle(GRACE_MS, secondEnded + GRACE_MS + 10)).toBe(1);
  });

  it('never destroys a session with a call open, however long', async () => {
    const { idle, client } = await trackedServer();
    const watch = client.Watch({ service: '' });
    watch.on('error', () => undefined);
    await new Promise((resolve) => watch.once('data', resolve));
    expect(idle.openStreams).toBe(1);
    expect(idle.closeIdle(GRACE_MS, Date.now() + 60_000)).toBe(0);
    watch.cancel();
    await expect.poll(() => idle.openStreams).toBe(0);
    expect(idle.closeIdle(GRACE_MS, Date.now() + GRACE_MS)).toBe(1);
  });

  it('closeAll: destroys a session with a call open at once, and leaves an idle one graceMs for its client to close', async () => {
    const watching = await trackedServer();
    const watch = watching.client.Watch({ service: '' });
    const watchEnded = new Promise<number>((resolve) => watch.on('error', (error: { code: number }) => resolve(error.code)));
    await new Promise((resolve) => watch.once('data', resolve));
    const started = Date.now();
    await watching.idle.closeAll(GRACE_MS);
    expect(Date.now() - started).toBeLessThan(GRACE_MS / 2);
    expect(await watchEnded).toBe(14); // UNAVAILABLE: the connection dropped

    // An idle session whose client does not close it: destroyed once the grace has passed.
    const idle = await trackedServer();
    await idle.check();
    const idleStarted = Date.now();
    await idle.idle.closeAll(GRACE_MS);
    expect(Date.now() - idleStarted).toBeGreaterThanOrEqual(GRACE_MS - 10);
    expect(idle.idle.closeIdle(0)).toBe(0);
  });

  it('closeAll: an idle session that its client closes ends the wait before the grace', async () => {
    const { idle, client, check } = await trackedServer();
    await check();
    const started = Date.now();
    const closed = idle.closeAll(5_000);
    client.close();
    await closed;
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

