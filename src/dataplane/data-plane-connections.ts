/**
 * The data plane client's connections: one socket each, read with `onread` into whatever buffer the
 * exchange holding it names (a GET's destination, straight), and a pool of idle ones per endpoint so
 * that the next transfer skips the connect. Without reuse every transfer left a socket in TIME-WAIT
 * (60 s on Linux): about 650 transfers left 956, and a trainer moving thousands of 1 MiB tensors a
 * minute over loopback TCP would run out of ephemeral ports (about 28,000). A connection is used by
 * one exchange at a time; the exchange gives it back only when it ended cleanly with a keep-alive
 * answer (data-plane-client.ts decides), and the pool keeps it for the server's announced idle timeout
 * less a margin.
 */
import { Socket, connect } from 'node:net';
import type { DataPlaneEndpoint } from './data-plane-client';

/** Idle connections kept per endpoint; one given back past this is closed. */
export const DEFAULT_MAX_IDLE_PER_ENDPOINT = 4;
/**
 * An idle connection is reused only this long before the server's announced timeout (`Keep-Alive:
 * timeout=N`) runs out, so that a request does not go out just as the server closes it (Node's
 * http.Agent and undici keep the same margin).
 */
export const KEEP_ALIVE_MARGIN_MS = 1000;
/** The idle timeout assumed when an answer announces none: the daemon's (5 s) before it said so. */
export const DEFAULT_SERVER_KEEP_ALIVE_SECONDS = 5;
/** Where the bytes of a read go when no exchange names a buffer (a head, an idle connection). */
const SCRATCH_BYTES = 64 * 1024;

/** What the exchange holding a connection does with its reads and events. */
export interface ConnectionUser {
  /** Where the next read lands. */
  nextBuffer(scratch: Buffer): Uint8Array;
  /** `bytes` read into `buffer`; false pauses reading. */
  onRead(bytes: number, buffer: Uint8Array): boolean;
  onError(error: Error): void;
  onClose(): void;
}

export function endpointKey(endpoint: DataPlaneEndpoint): string {
  return 'path' in endpoint ? `unix:${endpoint.path}` : `${endpoint.host}:${endpoint.port}`;
}

/** One socket to the data plane, used by one exchange at a time (`user`). */
export class DataPlaneConnection {
  readonly socket: Socket;
  readonly key: string;
  /** Whether an exchange has had it before (then the server may have closed it while it sat idle). */
  used = false;
  private user: ConnectionUser | undefined;
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private idleTimer: NodeJS.Timeout | undefined;
  /** Until when (Date.now()) an idle connection may be taken; set by the pool. */
  private idleUntil = 0;
  /** Called once the socket has closed (the pool forgets it). */
  onGone?: () => void;

  constructor(readonly endpoint: DataPlaneEndpoint) {
    this.key = endpointKey(endpoint);
    const options = 'path' in endpoint ? { path: endpoint.path } : { host: endpoint.host, port: endpoint.port };
    this.socket = connect({
      ...options,
      onread: {
        buffer: () => this.user?.nextBuffer(this.scratch) ?? this.scratch,
        callback: (bytes: number, buffer: Uint8Array) => {
          if (this.user) return this.user.onRead(bytes, buffer);
          // Bytes nobody asked for (between exchanges): the stream is out of step, never reuse it.
          this.socket.destroy();
          return false;
        },
      },
    });
    this.socket.setNoDelay(true);
    this.socket.on('error', (error) => (this.user ? this.user.onError(error) : this.socket.destroy()));
    this.socket.on('close', () => {
      this.clearIdleTimer();
      this.user?.onClose();
      this.onGone?.();
    });
  }

  /** The exchange that now reads and hears this connection (undefined: none). */
  hold(user: ConnectionUser | undefined): void {
    this.user = user;
    if (user) this.used = true;
  }

  get connecting(): boolean {
    return this.socket.connecting;
  }

  /** @internal The pool's: idle from now for `idleMs` at most (then closed); the socket does not hold the process. */
  enterIdle(idleMs: number, expire: () => void): void {
    this.idleUntil = Date.now() + idleMs;
    this.socket.unref();
    this.idleTimer = setTimeout(expire, idleMs);
    this.idleTimer.unref();
  }

  /** @internal The pool's: taken out of idle; whether it may still be used (open, and younger than its idle limit). */
  leaveIdle(): boolean {
    this.clearIdleTimer();
    this.socket.ref();
    return !this.socket.destroyed && this.socket.readyState === 'open' && Date.now() < this.idleUntil;
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

/**
 * Idle data plane connections per endpoint, at most `maxIdlePerEndpoint` each (one TensormemClient
 * holds one pool; close() closes what it holds, and connections given back afterwards).
 */
export class DataPlaneConnections {
  private readonly idle = new Map<string, DataPlaneConnection[]>();
  private closed = false;
  /** Connections this pool's transfers opened, and reuses of idle ones (for tests and benchmarks). */
  readonly stats = { opened: 0, reused: 0 };

  constructor(readonly maxIdlePerEndpoint = DEFAULT_MAX_IDLE_PER_ENDPOINT) {}

  /** The most recently given back idle connection to `endpoint` still usable, taken out of the pool; undefined when none. */
  take(endpoint: DataPlaneEndpoint): DataPlaneConnection | undefined {
    const list = this.idle.get(endpointKey(endpoint));
    while (list && list.length > 0) {
      const connection = list.pop()!;
      if (list.length === 0) this.idle.delete(connection.key);
      connection.onGone = undefined;
      if (connection.leaveIdle()) {
        this.stats.reused++;
        return connection;
      }
      connection.socket.destroy();
    }
    return undefined;
  }

  /** A new connection to `endpoint`, for one exchange. */
  open(endpoint: DataPlaneEndpoint): DataPlaneConnection {
    this.stats.opened++;
    return new DataPlaneConnection(endpoint);
  }

  /**
   * Keeps `connection`, whose exchange ended cleanly with a keep-alive answer, idle for `idleMs` at
   * most; closes it instead once the pool is closed, full for its endpoint, or when idleMs <= 0.
   */
  giveBack(connection: DataPlaneConnection, idleMs: number): void {
    connection.hold(undefined);
    const list = this.idle.get(connection.key) ?? [];
    if (this.closed || idleMs <= 0 || connection.socket.destroyed || list.length >= this.maxIdlePerEndpoint) {
      connection.socket.destroy();
      return;
    }
    list.push(connection);
    this.idle.set(connection.key, list);
    const forget = () => {
      const at = list.indexOf(connection);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0 && this.idle.get(connection.key) === list) this.idle.delete(connection.key);
    };
    connection.onGone = forget;
    connection.enterIdle(idleMs, () => connection.socket.destroy());
  }

  /** Idle connections held now, all endpoints together. */
  get idleCount(): number {
    let count = 0;
    for (const list of this.idle.values()) count += list.length;
    return count;
  }

  /** Closes every idle connection; a connection given back later is closed too. Transfers in flight run to their end. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const connection of list.splice(0)) connection.socket.destroy();
    this.idle.clear();
  }
}
