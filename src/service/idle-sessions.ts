/**
 * The drain's end for idle gRPC connections. tryShutdown sends each HTTP/2 session a GOAWAY and waits for
 * it to close; node 20 closes one gracefully: it half-closes the socket (a FIN after its data) and waits
 * for the client to close its side, which a client that is stopped (SIGSTOP, a debugger), hung or gone
 * without a FIN never does. So one idle connection
 * of such a client held every SIGTERM for the whole --shutdown-timeout, then "stopped" said drained:
 * false with no call in flight (a suspended `tensormemctl top`, a trainer paused in a debugger).
 *
 * Here each session's open streams are counted (the HTTP/2 servers' 'stream' events); closeIdle()
 * destroys the sessions that have had none for `graceMs`, which carry no call to wait for. Sessions with
 * a call still open are left to finish it within --shutdown-timeout.
 *
 * Not the moment a session's last stream closes: that is when node has handed the stream's last frames
 * (its status) to the socket, not when the client has them. A client that lags behind what it is sent
 * (a loaded machine, a large read with a wide flow-control window) still reads them, and one that sent
 * anything meanwhile (a WINDOW_UPDATE, its own GOAWAY, a call past the GOAWAY, which nghttp2 ignores
 * without counting a stream) has bytes unread here: the socket's destroy then makes the kernel send a
 * TCP reset, which drops what the socket had not sent yet. Node's HTTP/2 client ignores that ECONNRESET
 * once it has the GOAWAY and closes its open streams with code 0, which grpc-js reports as INTERNAL
 * "Received RST_STREAM with code 0 (Call ended without gRPC status)" for a call that was answered.
 * Meanwhile node closes a session that is done gracefully by itself (its socket half-closed once what
 * it wrote has gone out, then read until the client closes too): `graceMs` is that close's time.
 */
import type { Server } from '@grpc/grpc-js';
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { rawSocketOf } from './connection-setup-guard';
import { grpcHttp2Servers } from './grpc-http2-servers';

export interface IdleSessions {
  /**
   * Destroys every session that has had no open stream for `graceMs` or more (since it began, or since
   * its last stream closed) as of `now` (a Date.now() value); returns how many.
   */
  closeIdle(graceMs: number, now?: number): number;
  /** Streams open now, all sessions together. */
  readonly openStreams: number;
  /**
   * The end of a drain cut short, once its calls have been given their statuses: destroys the socket of
   * every session with a call still open (a client that stopped reading, whose status waits behind what
   * it has not taken: it sees the connection drop, UNAVAILABLE, where a session's destroy(NGHTTP2_CANCEL),
   * grpc-js's forceShutdown, told it CANCELLED, as if it had cancelled the call itself). The others, whose
   * calls' statuses have just been handed to their sockets, are left `graceMs` for their clients to read
   * them and close (a reset would drop the statuses not sent yet); then every socket still open is
   * destroyed. Resolves once that last destroy has been asked for (the sockets close just after).
   */
  closeAll(graceMs: number): Promise<void>;
}

interface Tracked {
  /** Its TCP (or unix) socket, under TLS too (connection-setup-guard matched it). */
  raw: Socket;
  open: number;
  /** When its last stream closed, or it began (a Date.now() value): meaningful while `open` is 0. */
  idleSince: number;
}

/** Needs guardConnectionSetup on the same server first: a session is closed through the socket that guard found for it. */
export function trackIdleSessions(server: Server): IdleSessions {
  const sessions = new Map<Http2Session, Tracked>();
  for (const http2Server of grpcHttp2Servers(server)) {
    http2Server.on('session', (session: Http2Session) => {
      const raw = rawSocketOf(session);
      if (raw === undefined) return;
      sessions.set(session, { raw, open: 0, idleSince: Date.now() });
      session.once('close', () => sessions.delete(session));
    });
    http2Server.on('stream', (stream: ServerHttp2Stream) => {
      const tracked = stream.session ? sessions.get(stream.session) : undefined;
      if (tracked === undefined) return;
      tracked.open++;
      stream.once('close', () => {
        if (--tracked.open === 0) tracked.idleSince = Date.now();
      });
    });
  }
  return {
    closeIdle(graceMs, now = Date.now()) {
      let closed = 0;
      for (const { raw, open, idleSince } of sessions.values()) {
        if (open > 0 || raw.destroyed || now - idleSince < graceMs) continue;
        // The socket, not the session: a session's destroy() waits for what its graceful close waits
        // for (the stopped client's close of its side); the socket's close ends the session with it.
        raw.destroy();
        closed++;
      }
      return closed;
    },
    get openStreams() {
      let open = 0;
      for (const tracked of sessions.values()) open += tracked.open;
      return open;
    },
    async closeAll(graceMs) {
      const closing: Array<Promise<unknown>> = [];
      for (const { raw, open } of sessions.values()) {
        if (raw.destroyed) continue;
        if (open > 0) raw.destroy();
        else closing.push(new Promise((resolve) => raw.once('close', resolve)));
      }
      if (closing.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(closing), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
        clearTimeout(timer);
      }
      for (const { raw } of sessions.values()) raw.destroy();
    },
  };
}
