import { once } from 'node:events';
import { join } from 'node:path';
import type { ServerHttp2Stream } from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { Server, ServerCredentials, credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { HealthImplementation } from 'grpc-health-check';
import { releaseFinishedStreams } from '../../src/service/finished-stream-release';

const HEALTH_PROTO = join(__dirname, '../../node_modules/grpc-health-check/proto/health/v1/health.proto');

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.forceShutdown();
});

async function healthServer(): Promise<{ server: Server; port: number }> {
  const server = new Server();
  servers.push(server);
  new HealthImplementation({ '': 'SERVING' }).addToServer(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  return { server, port };
}

/** One grpc.health.v1 Check call; resolves with its status text. */
async function check(port: number): Promise<string> {
  const proto = loadPackageDefinition(loadSync(HEALTH_PROTO, { enums: String })) as any;
  const client = new proto.grpc.health.v1.Health(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) => client.Check({ service: '' }, (error: Error | null, reply: { status: string }) => (error ? reject(error) : resolve(reply.status))));
  } finally {
    client.close();
  }
}

/** The listeners left on a closed stream, by event. */
function listenersLeft(stream: ServerHttp2Stream): Record<string, number> {
  return Object.fromEntries(stream.eventNames().map((name) => [String(name), stream.listenerCount(name)]));
}

describe('releaseFinishedStreams', () => {
  it('leaves a finished call stream with only a no-op error listener, and the call still answers', async () => {
    const { server, port } = await healthServer();
    const streams: ServerHttp2Stream[] = [];
    const closes: Array<Promise<unknown>> = [];
    // Registered after the release's own 'close' listener, so it resolves once the release has run.
    expect(releaseFinishedStreams(server, (stream) => (streams.push(stream), closes.push(once(stream, 'close'))))).toBe(1);
    expect(await check(port)).toBe('SERVING');
    await Promise.all(closes);
    expect(streams).toHaveLength(1);
    expect(listenersLeft(streams[0])).toEqual({ error: 1 });
    // A late error on the released stream goes to the no-op listener instead of crashing the daemon.
    expect(() => streams[0].emit('error', new Error('late'))).not.toThrow();
  });

  it('is needed: without it grpc-js leaves its call listeners on the closed stream', async () => {
    const { server, port } = await healthServer();
    const streams: ServerHttp2Stream[] = [];
    // Observe the streams the same way, without releasing them.
    for (const http2Server of (server as any).http2Servers.keys()) http2Server.on('stream', (stream: ServerHttp2Stream) => streams.push(stream));
    expect(await check(port)).toBe('SERVING');
    while (streams.length === 0 || !streams[0].closed) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setImmediate(resolve));
    const left = listenersLeft(streams[0]);
    expect(Object.keys(left).length).toBeGreaterThan(1);
  });

  it('hooks nothing and returns 0 for a server without grpc-js internals it knows', () => {
    expect(releaseFinishedStreams({} as Server)).toBe(0);
    expect(releaseFinishedStreams({ http2Servers: [] } as unknown as Server)).toBe(0);
  });
});
