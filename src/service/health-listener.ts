/**
 * --health-listen: a plaintext HTTP endpoint for probes that speak neither gRPC nor TLS and cannot reach
 * the unix socket (Kubernetes httpGet probes, load balancers, `curl`).
 *
 *   GET|HEAD /healthz  200 "ok" while the daemon runs (liveness)
 *   GET|HEAD /readyz   200 "SERVING" while it serves; 503 "NOT_SERVING" while it drains (readiness),
 *                      the same status grpc.health.v1 reports
 *   anything else      404 (other paths), 405 (other methods)
 *
 * It serves no data and reads no token, so it may listen on any address, also in open mode.
 */
import { createServer, Server } from 'node:http';
import { parseHealthAddress } from '../config/config';
import { listenFailure } from '../config/listen-address';

export interface HealthListener {
  /** The address bound, HOST:PORT (port 0 resolved). */
  address: string;
  close(): Promise<void>;
}

export async function startHealthListener(address: string, isServing: () => boolean): Promise<HealthListener> {
  const { host, port } = parseHealthAddress(address);
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    const reply = (status: number, body: string) => {
      response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    if (path !== '/healthz' && path !== '/readyz') return reply(404, `not found: ${path} (GET /healthz or /readyz)\n`);
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, `method ${request.method} not allowed (GET or HEAD)\n`);
    if (path === '/healthz') return reply(200, 'ok\n');
    return isServing() ? reply(200, 'SERVING\n') : reply(503, 'NOT_SERVING\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(listenFailure('--health-listen', address, error.message)));
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  const boundPort = bound !== null && typeof bound === 'object' ? bound.port : port;
  return {
    address: address.replace(/:\d+$/, `:${boundPort}`),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
