/**
 * Bounds how long a gRPC connection may take to become an HTTP/2 session: from its TCP (or unix socket)
 * connect until the client's preface (its first SETTINGS frame) has arrived, TLS handshake included.
 *
 * grpc-js turns off node's HTTP/2 server timeout and sets no handshake timeout, so a connection that
 * never sends the preface (a TCP health check that connects and waits, a port scan, a client stuck
 * or gone after its TLS handshake, anything on the unix socket that connects and sends nothing) was
 * held for good, a file descriptor each, until accept failed for every client; a TLS connection that
 * sends no ClientHello was held for node's 120 s. And the drain waits for them: server.close() waits
 * for every socket and grpc-js's tryShutdown for every session, so one such connection made each
 * SIGTERM wait out the whole --shutdown-timeout and report drained: false with no call in flight.
 *
 * Here each accepted socket gets a timer that is cleared when its session receives the client's
 * SETTINGS ('remoteSettings'); past the timeout the socket is destroyed (with TLS, the TCP socket: that
 * ends the TLS socket and any session on it). closePending() destroys every connection still being set
 * up, for the drain. Sessions that have sent their preface are left to grpc-js (idle clients may keep
 * their channels open; tryShutdown closes them with a GOAWAY).
 *
 * grpc-js does not expose its HTTP/2 servers (grpc-http2-servers.ts reads its private map). A session is matched to its TCP socket through its socket (node's
 * proxy reads the underlying socket's properties) and, for TLS, the TLS socket's `_parent`. Should a
 * session ever not match (another node), the guard stops timing connections out rather than risk
 * cutting a served one.
 */
import type { Server } from '@grpc/grpc-js';
import type { Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { grpcHttp2Servers } from './grpc-http2-servers';

/** How long a connection may take from its connect to its HTTP/2 preface (TLS handshake included). */
export const CONNECTION_SETUP_TIMEOUT_MS = 10_000;

const kSetup = Symbol('tensormem.connectionSetup');

interface Setup {
  raw: Socket;
  timer: NodeJS.Timeout;
}

export interface ConnectionSetupGuard {
  /** How many HTTP/2 servers were hooked (0: grpc-js keeps them elsewhere; nothing is guarded). */
  hooked: number;
  /** Connections still being set up now. */
  readonly pending: number;
  /** Destroys every connection still being set up (TLS handshake or preface pending): for the drain. */
  closePending(): void;
}

/** `onUnmatched` is told once if a session cannot be matched to its socket (the guard is then off). */
export function guardConnectionSetup(server: Server, timeoutMs = CONNECTION_SETUP_TIMEOUT_MS, onUnmatched?: () => void): ConnectionSetupGuard {
  const pending = new Set<Setup>();
  let unmatched = false;
  const settle = (setup: Setup) => {
    clearTimeout(setup.timer);
    pending.delete(setup);
  };
  const onConnection = (raw: Socket) => {
    const setup: Setup = {
      raw,
      timer: setTimeout(() => {
        if (!unmatched) raw.destroy();
      }, timeoutMs),
    };
    setup.timer.unref();
    (raw as unknown as Record<symbol, Setup>)[kSetup] = setup;
    pending.add(setup);
    raw.once('close', () => settle(setup));
  };
  const onSession = (session: Http2Session) => {
    const setup = setupOf(session);
    if (setup === undefined) {
      if (!unmatched) onUnmatched?.();
      unmatched = true;
      return;
    }
    session.once('remoteSettings', () => settle(setup));
  };

  const http2Servers = grpcHttp2Servers(server);
  for (const http2Server of http2Servers) {
    // Prepended: node's plaintext HTTP/2 server makes the session in its own 'connection' listener,
    // registered first, and emits 'session' from there; the record must be on the socket by then.
    http2Server.prependListener('connection', onConnection);
    http2Server.on('session', onSession);
  }
  return {
    hooked: http2Servers.length,
    get pending() {
      return pending.size;
    },
    closePending() {
      if (unmatched) return;
      for (const setup of [...pending]) setup.raw.destroy();
    },
  };
}

/** The TCP (or unix) socket under a session guardConnectionSetup saw accepted, TLS or not; undefined for one it did not. */
export function rawSocketOf(session: Http2Session): Socket | undefined {
  return setupOf(session)?.raw;
}

/** The setup record on the session's TCP socket: the socket itself (plaintext) or the TLS socket's parent. */
function setupOf(session: Http2Session): Setup | undefined {
  try {
    const socket = session.socket as unknown as Record<symbol | string, unknown> | undefined;
    if (socket === undefined) return undefined;
    const own = socket[kSetup] as Setup | undefined;
    if (own !== undefined) return own;
    const parent = socket._parent as Record<symbol, unknown> | undefined;
    return parent?.[kSetup] as Setup | undefined;
  } catch {
    return undefined;
  }
}
