/**
 * The --metrics-listen HTTP server: Prometheus `/metrics`, the live status page `/`, its data as JSON
 * (`/api/snapshot`, the same pools and blocks as GetMemorySnapshot plus the leases) and as server-sent
 * events (`/events`, one bounded snapshot (status-snapshot.ts, pageSnapshot) every `interval_ms`, or
 * less often where building it takes more than EVENTS_MAX_LOOP_SHARE of the time; built once per tick
 * for all the streams of that interval, and shared with the other intervals' streams while the next
 * may not be built yet, skipped while the client has not taken the last one; at most
 * MAX_EVENT_STREAMS at once; at most MAX_SNAPSHOT_WRITES `/api/snapshot` answers written at once, each
 * cut off once its client takes nothing for SNAPSHOT_STALL_MS). In open mode (loopback only, checked by the
 * daemon) every path is open; with a tenants file every path needs an admin tenant's token, as
 * GetMemorySnapshot does (Bearer header, or `?token=` for a browser). With --tls-cert it serves HTTPS
 * (and asks for client certificates with --tls-client-ca), as the data plane does: served as plain HTTP,
 * every scrape and page view sent an admin token in clear text on a daemon set up for TLS.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { isLocalAddress, listenFailure, parseHostPort } from '../config/listen-address';
import { logTlsRefusals, tlsFilesOf, tlsServerOptions } from '../config/tls-server-options';
import type { Server as TlsServer } from 'node:tls';
import { packageRoot } from '../package-root';
import { requireAdmin, type ServiceContext } from '../service/service-context';
import { TENSORMEMCTL_TOKEN, TensormemError } from '../errors';
import type { DaemonMetrics } from './daemon-metrics';
import { pageSnapshot, writeStatusSnapshot } from './status-snapshot';

/** Shortest, longest and default interval between two /events messages. */
export const EVENTS_INTERVAL_MS = { min: 100, max: 60_000, default: 1000 };

/**
 * The most of the event loop's time /events messages take: after a message that took T ms to build,
 * the next is built no sooner than T / EVENTS_MAX_LOOP_SHARE ms later (ticks before then send the
 * last message built to the streams that have not had it, and nothing to the others), so a page left
 * open on a daemon of a million blocks slows the trainers' calls by at most this share, whatever
 * interval_ms it asked for.
 */
export const EVENTS_MAX_LOOP_SHARE = 0.05;

/** Most /events streams open at once; more are refused with 503. */
export const MAX_EVENT_STREAMS = 16;

/**
 * A tick is skipped while an /events response holds more than this many bytes not yet taken by the
 * socket (or waits for 'drain'): a client that reads slowly, or not at all, gets fewer snapshots
 * instead of the daemon buffering every one of them.
 */
export const EVENTS_MAX_PENDING_BYTES = 64 * 1024;

interface EventStream {
  request: IncomingMessage;
  response: ServerResponse;
  url: URL;
  /** Takes the stream out of its group and out of the MAX_EVENT_STREAMS count. */
  stop: () => void;
  /** The serial of the last message written to it (0: none yet). */
  sent: number;
}

export interface StatusServer {
  /** HOST:PORT actually bound (port 0 resolved). */
  address: string;
  /** Ends every event stream and stops listening. */
  close(): Promise<void>;
}

/**
 * Most /api/snapshot responses written at once; more are refused with 503. Each holds its capture of
 * every pool's blocks (and the leases) until its client has taken the whole text.
 */
export const MAX_SNAPSHOT_WRITES = 4;

/**
 * An /api/snapshot client that has not taken the last slice written (JSON_SLICE blocks or leases) this
 * long after it was written is cut off (its connection closed), and its capture let go: a reader that
 * stopped (SIGSTOP, a full pipe, a vanished peer) held it for ever.
 */
export const SNAPSHOT_STALL_MS = 30_000;

/**
 * Writes `text`, then waits for 'drain' if the socket asked to; false once the client has gone, or
 * when it took nothing for `stallMs` (the response is then destroyed).
 */
async function writeOrGone(response: ServerResponse, text: string, stallMs: number, onStall: () => void): Promise<boolean> {
  if (response.destroyed || response.writableEnded) return false;
  if (response.write(text)) return true;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      onStall();
      response.destroy();
      done();
    }, stallMs);
    response.once('drain', done);
    response.once('close', done);
  });
  return !response.destroyed;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The page, with a Content-Security-Policy that allows exactly its own inline script and style (by hash) and nothing from elsewhere. */
function loadPage(): { html: string; csp: string } {
  const html = readFileSync(join(packageRoot(), 'src', 'observability', 'status-page.html'), 'utf8');
  const hashes = (tag: string) =>
    [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((match) => `'sha256-${createHash('sha256').update(match[1]).digest('base64')}'`).join(' ');
  const csp = `default-src 'none'; script-src ${hashes('script')}; style-src ${hashes('style')}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  return { html, csp };
}

/** The request target as a URL; one that does not parse (`GET http://[ HTTP/1.1`) is the client's error, 400, not an internal one. */
function requestUrl(request: IncomingMessage): URL {
  try {
    return new URL(request.url ?? '/', 'http://localhost');
  } catch {
    throw new HttpError(400, `Expected a path such as /metrics for the request target but received ${JSON.stringify(request.url)}`);
  }
}

function bearerOrQueryToken(request: IncomingMessage, url: URL): string | undefined {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] ?? (url.searchParams.get('token') || undefined);
}

function eventsIntervalMs(url: URL): number {
  const text = url.searchParams.get('interval_ms');
  if (text === null || text === '') return EVENTS_INTERVAL_MS.default;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < EVENTS_INTERVAL_MS.min || value > EVENTS_INTERVAL_MS.max) {
    throw new HttpError(400, `Expected an integer from ${EVENTS_INTERVAL_MS.min} to ${EVENTS_INTERVAL_MS.max} for interval_ms but received ${JSON.stringify(text)}`);
  }
  return value;
}

export async function startStatusServer(address: string, context: ServiceContext, metrics: DaemonMetrics, snapshotStallMs = SNAPSHOT_STALL_MS): Promise<StatusServer> {
  const { tenants, log } = context;
  const page = loadPage();
  const streams = new Set<ServerResponse>();
  let snapshotWrites = 0;

  const authorize = (request: IncomingMessage, url: URL) => {
    if (tenants.openMode) {
      // No token in open mode, so a page elsewhere must not reach this one through DNS rebinding: loopback names only.
      if (!isLocalAddress(request.headers.host ?? '') || request.headers.host?.startsWith('unix:')) throw new HttpError(403, `Host ${JSON.stringify(request.headers.host ?? '')} is not a loopback name: open mode serves localhost, 127.0.0.1 and [::1] only`);
      return;
    }
    // The admin gRPC calls' rule: PERMISSION_DENIED (a tenant's token, or a live lease's) is 403, UNAUTHENTICATED 401.
    try {
      requireAdmin(context, bearerOrQueryToken(request, url));
    } catch (error) {
      if (!(error instanceof TensormemError)) throw error;
      if (error.kind === 'PERMISSION_DENIED') throw new HttpError(403, 'this page needs an admin tenant token');
      throw new HttpError(401, `an admin tenant token is required: send "Authorization: Bearer <token>" or ?token=<token> (${TENSORMEMCTL_TOKEN})`);
    }
  };

  /**
   * Streams of one interval_ms share one timer, and at each tick one snapshot is built and serialized
   * for all of them: a snapshot of many blocks takes the event loop a while to build, so several
   * pages open at once must not each build their own.
   */
  const eventGroups = new Map<number, { timer: NodeJS.Timeout; members: Set<EventStream> }>();
  /** The last message built, its serial, and when (performance.now()) the next may be built: see EVENTS_MAX_LOOP_SHARE. */
  let last: { message: string; serial: number; nextBuildAt: number } | undefined;
  const pageMessage = (): NonNullable<typeof last> => {
    const start = performance.now();
    const message = `event: snapshot\ndata: ${JSON.stringify(pageSnapshot(context))}\n\n`;
    const end = performance.now();
    last = { message, serial: (last?.serial ?? 0) + 1, nextBuildAt: end + (end - start) / EVENTS_MAX_LOOP_SHARE };
    return last;
  };
  /**
   * Sends a message to `members` (a group at its tick, or a new stream). Too soon after the last build,
   * the streams that have not had the last message get it and the others nothing: the streams of
   * every interval share the builds, so a group whose ticks all came soon after another group's builds
   * (a page at the default 1 s beside one at 100 ms) got nothing at all after its first message.
   */
  const tick = (members: EventStream[]) => {
    let built = last !== undefined && performance.now() < last.nextBuildAt ? last : undefined;
    for (const stream of members) {
      const { request, response, url, stop } = stream;
      // Ended, but a stalled reader has not taken the end yet ('close' comes once it has): nothing more
      // may be written, even should a later reload make its token admin again (a write after end is an
      // 'error' event with no listener, which would take the daemon down).
      if (response.writableEnded) continue;
      // The token is checked anew for every message, as a request made now would be: a token that a
      // reload dropped or made no longer admin ends the stream (reconnecting then gets 401 or 403).
      try {
        authorize(request, url);
      } catch {
        // Out of the group and the count now, not at 'close', which a stalled reader delays.
        stop();
        response.end();
        continue;
      }
      // Already has the last message, and the next may not be built yet.
      if (built !== undefined && stream.sent === built.serial) continue;
      // Still sending an earlier snapshot: skip this one (nothing is built, nothing queued).
      if (response.writableNeedDrain || response.writableLength > EVENTS_MAX_PENDING_BYTES) continue;
      built ??= pageMessage();
      response.write(built.message);
      stream.sent = built.serial;
    }
  };

  const events = (request: IncomingMessage, response: ServerResponse, url: URL, intervalMs: number) => {
    if (request.method !== 'HEAD' && streams.size >= MAX_EVENT_STREAMS) {
      response.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Retry-After': '5' });
      response.end(`${JSON.stringify({ error: `${MAX_EVENT_STREAMS} /events streams are open, the most served at once: close one, or poll /api/snapshot`, max_event_streams: MAX_EVENT_STREAMS })}\n`);
      return;
    }
    response.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    const stop = () => {
      streams.delete(response);
      const current = eventGroups.get(intervalMs);
      if (!current?.members.delete(stream) || current.members.size > 0) return;
      clearInterval(current.timer);
      eventGroups.delete(intervalMs);
    };
    const stream: EventStream = { request, response, url, stop, sent: 0 };
    response.write(`retry: ${Math.max(intervalMs, 1000)}\n\n`);
    tick([stream]);
    if (response.writableEnded) return;
    let group = eventGroups.get(intervalMs);
    if (!group) {
      const members = new Set<EventStream>();
      group = { members, timer: setInterval(() => tick([...members]), intervalMs) };
      eventGroups.set(intervalMs, group);
    }
    group.members.add(stream);
    streams.add(response);
    request.once('close', stop);
    response.once('close', stop);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    // Every answer, errors included: none is HTML but the page, and no browser may take one for it.
    response.setHeader('X-Content-Type-Options', 'nosniff');
    const url = requestUrl(request);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      throw new HttpError(405, `method ${request.method} not allowed: GET or HEAD`);
    }
    const route = url.pathname;
    if (route !== '/' && route !== '/metrics' && route !== '/api/snapshot' && route !== '/events') {
      throw new HttpError(404, `no such path ${JSON.stringify(route)}: try /, /metrics, /api/snapshot or /events`);
    }
    authorize(request, url);
    if (route === '/metrics') {
      const text = await metrics.scrape();
      response.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : text);
    } else if (route === '/api/snapshot') {
      if (request.method !== 'HEAD' && snapshotWrites >= MAX_SNAPSHOT_WRITES) {
        response.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Retry-After': '5' });
        response.end(`${JSON.stringify({ error: `${MAX_SNAPSHOT_WRITES} /api/snapshot responses are being written, the most at once: retry when one is done`, max_snapshot_writes: MAX_SNAPSHOT_WRITES })}\n`);
        return;
      }
      response.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
      if (request.method === 'HEAD') response.end();
      else {
        // Written a slice at a time (status-snapshot.ts), as the client takes it.
        snapshotWrites++;
        const onStall = () => log.warn({ event: 'status_snapshot_stalled', remote: request.socket.remoteAddress, stall_ms: snapshotStallMs }, 'an /api/snapshot client took nothing for too long: cut off');
        try {
          await writeStatusSnapshot(context, (text) => writeOrGone(response, text, snapshotStallMs, onStall));
        } finally {
          snapshotWrites--;
        }
        response.end();
      }
    } else if (route === '/events') {
      events(request, response, url, eventsIntervalMs(url));
    } else {
      response.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'Content-Security-Policy': page.csp,
        'Referrer-Policy': 'no-referrer',
      });
      response.end(request.method === 'HEAD' ? undefined : page.html);
    }
  };

  const tls = context.config.tls;
  const serve = (request: IncomingMessage, response: ServerResponse) => {
    handle(request, response).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      if (status === 500) log.error({ err: error, event: 'status_server_error' }, 'status page error');
      if (response.headersSent) {
        response.destroy();
        return;
      }
      response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...(status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {}) });
      response.end(`${error instanceof Error ? error.message : String(error)}\n`);
    });
  };
  const server: Server = tls
    ? (createHttpsServer(tlsServerOptions(tlsFilesOf(context)!), serve) as unknown as Server)
    : createServer(serve);
  if (tls) logTlsRefusals(server as unknown as TlsServer, '--metrics-listen', log);
  const { host, port } = parseHostPort(address)!; // checked with the configuration
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(listenFailure('--metrics-listen', address, error.message)));
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const boundAddress = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;

  return {
    address: boundAddress,
    close: () =>
      new Promise<void>((resolve) => {
        for (const { timer } of eventGroups.values()) clearInterval(timer);
        eventGroups.clear();
        for (const response of streams) response.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
