/** The gRPC server: tensormem.v1 services, grpc.health.v1 and server reflection, bound to every --listen address. */
import { existsSync, chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ServerInterceptor } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SummarizedLog } from '../summarized-log';
import type { HealthImplementation } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { listenFailure, parseHostPort, unixSocketPath } from '../config/listen-address';
import { logTlsRefusals, tlsFilesOf } from '../config/tls-server-options';
import { grpcHttp2Servers } from './grpc-http2-servers';
import { withOthersMasked } from './socket-umask';
import { invalidArgument } from '../errors';
import { ArrayService } from './array-service';
import { LeaseService } from './lease-service';
import { MemoryService } from './memory-service';
import { WorkspaceService } from './workspace-service';
import { addHealthService } from './health-service';
import { reflectionDefinition } from './reflection-descriptors';
import { releaseFinishedStreams } from './finished-stream-release';
import { capTenantStreams } from './tenant-stream-cap';
import { capConnections } from './connection-cap';
import { ConnectionSetupGuard, guardConnectionSetup } from './connection-setup-guard';
import { IdleSessions, trackIdleSessions } from './idle-sessions';
import { CallsInFlight, trackCallsInFlight } from './calls-in-flight';
import { limitPartialMessages } from './partial-message-budget';
import type { ServiceContext } from './service-context';

export const SERVICE_NAMES = ['tensormem.v1.LeaseService', 'tensormem.v1.ArrayService', 'tensormem.v1.MemoryService', 'tensormem.v1.WorkspaceService'];

export interface RunningServer {
  server: Server;
  health: HealthImplementation;
  /** The addresses actually bound (port 0 resolved). */
  addresses: string[];
  /** Closes connections that take too long to send their HTTP/2 preface; closePending() for the drain. */
  connectionSetup: ConnectionSetupGuard;
  /** The drain closes sessions with no call open (see idle-sessions.ts). */
  idleSessions: IdleSessions;
  /** A drain cut short ends these with UNAVAILABLE / SHUTTING_DOWN (see calls-in-flight.ts). */
  callsInFlight: CallsInFlight;
}

/** `interceptors` see every call (the RPC metrics hook in src/observability). */
export async function startServer(context: ServiceContext, interceptors: ServerInterceptor[] = []): Promise<RunningServer> {
  const { config } = context;
  const tenantStreams = capTenantStreams(
    context,
    config.maxTenantStreams,
    rateLimitedWarning(context, (refused, tenant: string, open: number) => ({
      fields: { event: 'tenant_streams_refused', refused, lastTenant: tenant, open, maxTenantStreams: config.maxTenantStreams },
      message: `${refused} stream(s) refused: tenant "${tenant}" had --max-tenant-streams (${config.maxTenantStreams}) streams open`,
    })),
  );
  context.tenantStreams = tenantStreams;
  // The streams that end themselves when the drain begins (endWhenDraining) are never cut.
  const callsInFlight = trackCallsInFlight(new Set(['/tensormem.v1.LeaseService/KeepAlive', '/tensormem.v1.MemoryService/WatchMemory', '/grpc.health.v1.Health/Watch']));
  const server = new Server({
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.max_send_message_length': config.maxMessageBytes,
    // Pings each connection (grpc-js sends none by default): a client whose host or network vanished
    // sends no FIN, so without them its connection, streams and release_on_disconnect lease stayed open.
    ...(config.keepaliveTimeMs > 0 ? { 'grpc.keepalive_time_ms': config.keepaliveTimeMs, 'grpc.keepalive_timeout_ms': config.keepaliveTimeoutMs } : {}),
    // One connection's calls open at once (HTTP/2 SETTINGS): a client's further calls wait on its side.
    ...(config.maxConcurrentStreams > 0 ? { 'grpc.max_concurrent_streams': config.maxConcurrentStreams } : {}),
    // Outermost, so that the RPC metrics see the stream cap's refusals, and the cap and the metrics the
    // statuses of calls that a drain cut short (callsInFlight).
    interceptors: [...interceptors, tenantStreams.interceptor, callsInFlight.interceptor],
  });
  new LeaseService(context).addToServer(server);
  new ArrayService(context).addToServer(server);
  new MemoryService(context).addToServer(server);
  new WorkspaceService(context).addToServer(server);
  const health = addHealthService(server, context, SERVICE_NAMES);
  new ReflectionService(reflectionDefinition()).addToServer(server);

  const tcpCredentials = serverCredentials(context);
  const addresses: string[] = [];
  try {
    for (const address of config.listen) addresses.push(await bind(server, address, tcpCredentials, context.log));
  } catch (error) {
    server.forceShutdown();
    throw error;
  }
  if (config.tls) for (const http2Server of grpcHttp2Servers(server)) logTlsRefusals(http2Server, '--listen', context.log);
  const connectionSetup = guardConnectionSetup(server, undefined, () =>
    context.log.warn({ event: 'connection_setup_unguarded' }, 'a gRPC session could not be matched to its socket: connections that never send the HTTP/2 preface are no longer closed'),
  );
  if (connectionSetup.hooked === 0) {
    context.log.warn({ event: 'connection_setup_unguarded' }, 'this grpc-js keeps its HTTP/2 servers elsewhere: connections that never send the HTTP/2 preface stay open');
  }
  const connectionCap = capConnections(
    server,
    config.maxConnections,
    rateLimitedWarning(context, (refused, remoteAddress: string | undefined) => ({
      fields: { event: 'grpc_connections_refused', refused, lastRemoteAddress: remoteAddress, maxConnections: config.maxConnections },
      message: `${refused} gRPC connection(s) closed at once: a listener had --max-connections (${config.maxConnections}) open${remoteAddress ? `; the last from ${remoteAddress}` : ''}`,
    })),
  );
  if (connectionCap.hooked === 0 && config.maxConnections > 0) context.log.warn({ event: 'grpc_connections_uncapped' }, 'this grpc-js keeps its HTTP/2 servers elsewhere: --max-connections is not enforced');
  else context.grpcConnections = connectionCap;
  if (config.maxPartialMessageBytes > 0) {
    const budget = limitPartialMessages(server, config.maxPartialMessageBytes, partialMessageResetLog(context));
    if (budget.hooked === 0) context.log.warn({ event: 'partial_messages_unbounded' }, 'this grpc-js keeps its HTTP/2 servers elsewhere: --max-partial-message-bytes is not enforced');
    else context.partialMessages = budget;
  }
  if (releaseFinishedStreams(server) === 0) {
    context.log.warn({ event: 'finished_streams_not_released' }, 'this grpc-js keeps its HTTP/2 servers elsewhere: finished calls stay on the heap until a full GC');
  }
  const idleSessions = trackIdleSessions(server);
  return { server, health, addresses, connectionSetup, idleSessions, callsInFlight };
}

/**
 * A warning for events that may come in floods: the first at once, then at most a line every 10 s
 * saying how many came since (`line` gets that count and the latest event's arguments); those held
 * back are said when the 10 s are up, not only with a next event that may never come (SummarizedLog).
 */
function rateLimitedWarning<A extends unknown[]>(context: ServiceContext, line: (count: number, ...latest: A) => { fields: object; message: string }): (...latest: A) => void {
  const summary = new SummarizedLog<A>((count, latest) => {
    const { fields, message } = line(count, ...latest);
    context.log.warn(fields, message);
  });
  return (...latest) => summary.note(latest);
}

/** Logs the streams --max-partial-message-bytes resets (rate-limited). */
function partialMessageResetLog(context: ServiceContext): (streamHeld: number, totalHeld: number) => void {
  return rateLimitedWarning(context, (reset, streamHeld: number, totalHeld: number) => ({
    fields: { event: 'partial_message_streams_reset', reset, streamHeldBytes: streamHeld, heldBytes: totalHeld, maxPartialMessageBytes: context.config.maxPartialMessageBytes },
    message: `${reset} gRPC stream(s) reset: the unfinished messages the daemon held (${totalHeld} bytes) passed --max-partial-message-bytes (${context.config.maxPartialMessageBytes}); the one holding the most (${streamHeld} bytes) went first`,
  }));
}

/** TLS (or mTLS with --tls-client-ca) for TCP addresses when configured; plaintext otherwise. */
function serverCredentials(context: ServiceContext): ServerCredentials {
  const files = tlsFilesOf(context);
  if (!files) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(files.ca ?? null, [{ private_key: files.key, cert_chain: files.cert }], files.ca !== undefined);
}

async function bind(server: Server, address: string, tcpCredentials: ServerCredentials, log: Logger): Promise<string> {
  const socketPath = unixSocketPath(address);
  if (socketPath === undefined && !parseHostPort(address)) {
    throw invalidArgument('--listen', 'HOST:PORT or unix:PATH', address);
  }
  if (socketPath !== undefined) await removeStaleSocket(socketPath, '--listen', log);
  const port = await withOthersMasked(
    () =>
      new Promise<number>((resolve, reject) =>
        server.bindAsync(address, socketPath === undefined ? tcpCredentials : ServerCredentials.createInsecure(), (error, boundPort) => (error ? reject(listenFailure('--listen', address, error.message)) : resolve(boundPort))),
      ),
  );
  if (socketPath !== undefined) {
    chmodSync(socketPath, 0o660);
    return address;
  }
  return address.replace(/:\d+$/, `:${port}`);
}

/**
 * A socket file left by a daemon that died is removed; one a live daemon answers on is not. Only a
 * refused connection (ECONNREFUSED: no process listens on the file) proves the file stale: a daemon
 * whose accept backlog is full (a connection flood, a stopped or busy process) answers EAGAIN, and
 * removing its file took its unix socket from it for good (its clients found the newcomer, and once
 * that one exited, no file at all). A file removed is logged (stale_socket_removed), as the start-up
 * sweeps of /dev/shm and --mmap-dir log theirs.
 */
export async function removeStaleSocket(path: string, flag: string, log: Logger): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw invalidArgument(flag, 'a path that is free or a socket', `unix:${path} (an existing file)`);
  const outcome = await new Promise<'live' | 'stale' | 'gone' | NodeJS.ErrnoException>((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve('live');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? 'stale' : error.code === 'ENOENT' ? 'gone' : error));
  });
  if (outcome === 'live') throw listenFailure(flag, `unix:${path}`, 'another process is serving there');
  if (outcome === 'gone') return;
  if (outcome !== 'stale') {
    throw listenFailure(flag, `unix:${path}`, `a connection to the socket there failed with ${outcome.code ?? outcome.message}, not refused, so a process may still be listening on it (one whose backlog is full, stopped or busy); it was left in place: stop that process, or remove the file if none is`);
  }
  unlinkSync(path);
  log.warn({ event: 'stale_socket_removed', path, flag }, `removed the unix socket ${path} (${flag}) left by a process that has exited (it refused connections)`);
}
