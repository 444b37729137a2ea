/**
 * The options the typed client's constructor and methods take, their defaults, and the check that
 * refuses one a method does not take (plain JS gets no compile error for a misspelled option).
 */
import type { DataType } from '../generated/tensormem/v1/DataType';
import type { Placement } from '../generated/tensormem/v1/Placement';
import type { ExportSide } from '../generated/tensormem/v1/ExportSide';
import { invalidArgument, type TensormemClientError } from './client-errors';
import { nameLike } from '../name-like';
import type { LeaseSession } from './lease-session';
import type { TensormemClient } from './tensormem-client';

export interface ClientOptions {
  /** Largest message either way (default 64 MiB, the daemon's default; -1: no limit). */
  maxMessageBytes?: number;
  /**
   * Chunk size of WriteArray streams (default 1 MiB, or the largest chunk whose message fits a smaller
   * maxMessageBytes); a chunk whose message passes maxMessageBytes is INVALID_ARGUMENT.
   */
  chunkBytes?: number;
  /** Per-call deadline in ms (default none; 0, Infinity or more than 2^31 - 1 ms: none). */
  deadlineMs?: number;
  /** TLS for TCP addresses: the CA that signed the daemon's certificate; cert and key for mTLS (all PEM). */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer; serverName?: string };
  /**
   * The HTTP data plane (when the daemon has one, OpenLease's data_address, or GetArray's for sessionOf): transfers of at least
   * `thresholdBytes` (default 1 MiB) go over HTTP, smaller ones over the gRPC streams. A connection
   * failure (or an error answer that is not the daemon's: a proxy's HTML 502) sends that transfer over
   * gRPC, and the lease's later large transfers too for a while: 1 s after the first failure, doubling
   * with each failure in a row up to 5 minutes (DATA_PLANE_RETRY_FIRST_MS, DATA_PLANE_RETRY_MAX_MS),
   * then the data plane is tried again; a transfer it completes (begun since the last failure) resets the wait. A connection not made within
   * `connectTimeoutMs` (default 5 s; with a deadline, at most half the time left to it, but not under
   * 1 s) is such a failure: a data port that drops SYNs (a firewall, a port the network does not expose) would
   * otherwise hold every large transfer until its deadline (DEADLINE_EXCEEDED, never retried) or for
   * the kernel's connect timeout (about 2 minutes). `false` keeps every transfer on gRPC, as
   * does TLS (the client speaks plain http:// and unix: only), and so does a loopback or unix: data
   * address of a daemon reached on another host (dataPlaneEndpointFor). A transfer whose connection
   * moves no byte either way for `stallTimeoutMs` (default 90 s, past the daemon's own
   * --data-stall-timeout of 60 s; as long as the gRPC side takes with the default `keepalive` to find a
   * dead connection) is given up: before the daemon's answer began, as a connection failure (retried
   * over gRPC, as above); after, UNAVAILABLE. Without it a daemon whose host lost power or whose network
   * path went away (no FIN, no RST) held a transfer without a deadline for good. A read whose answer the
   * data plane closes mid-body while the array still reads reads the rest over gRPC (LeaseSession.read).
   */
  dataPlane?: false | { thresholdBytes?: number; connectTimeoutMs?: number; stallTimeoutMs?: number };
  /**
   * HTTP/2 keepalive pings on the connection while any call is open (a KeepAlive stream, a
   * WatchMemory, a call waiting for memory): one every `timeMs` (default 30 s); no answer within
   * `timeoutMs` (default 60 s) ends every open call with UNAVAILABLE. Without it, a call with no
   * deadline on a connection that died silently (the daemon's host lost power, a network partition,
   * a NAT that dropped the flow) waits for the kernel's TCP timeout, which can be 15 minutes or more.
   * `false`: no pings. The answer's wait is a timer of this process: an event loop blocked for longer
   * than `timeoutMs` right after a ping went out (synchronous work between two awaits) runs that timer
   * before it reads the answer that came meanwhile, and the connection is dropped all the same (open
   * calls UNAVAILABLE; the daemon closes a `releaseOnDisconnect` keep-alive's lease). The default 60 s
   * is twice the daemon's default lease TTL: a process blocked that long has let such a lease expire
   * anyway (its renewals could not go out either). A process with longer stretches (and a longer
   * `ttlSeconds`) sets `timeoutMs` above its longest one, or `false`.
   */
  keepalive?: false | { timeMs?: number; timeoutMs?: number };
}

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** WriteArray chunk size: 1 MiB and 4 MiB uploads ran alike, smaller chunks slower (measured in bench/README.md under Transfer paths of the typed client). */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/**
 * The client's HTTP/2 receive window, per stream and for the connection (grpc-js's
 * grpc-node.flow_control_window). HTTP/2's default of 65,535 bytes made a ReadArray of 1 MiB chunks wait
 * for a WINDOW_UPDATE every 64 KiB: 16 MiB reads took 64–73 ms against 44–62 ms with 1 or 4 MiB, 64 MiB
 * reads 266–282 ms against 213–257 ms (measured in bench/README.md under Transfer paths of the typed
 * client). At most this many bytes of a connection's answers wait unread in the client.
 */
export const DEFAULT_FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;
export const DEFAULT_KEEPALIVE_TIME_MS = 30_000;
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 60_000;
export const DEFAULT_DATA_PLANE_THRESHOLD_BYTES = 1024 * 1024;
export const DEFAULT_DATA_PLANE_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_DATA_PLANE_STALL_TIMEOUT_MS = 90_000;
/**
 * After a data plane connection failure a lease sends its large transfers over gRPC for this long,
 * then tries the data plane again; each failure in a row doubles the wait, up to
 * DATA_PLANE_RETRY_MAX_MS, and a transfer the data plane completes (begun since the last failure) resets it. A try costs a refused
 * connect (well under a millisecond on the daemon's host) or, at a port that drops connection attempts,
 * up to connectTimeoutMs of that transfer: at the longest wait, 5 s in 5 minutes.
 */
export const DATA_PLANE_RETRY_FIRST_MS = 1000;
export const DATA_PLANE_RETRY_MAX_MS = 300_000;
/**
 * The longest wait between two attempts to reconnect to a daemon that is gone (grpc-js's
 * grpc.max_reconnect_backoff_ms; its default is 120 s). grpc-js waits 1 s after the first failed
 * attempt and 1.6 times longer after each next one; calls fail UNAVAILABLE until an attempt succeeds,
 * so with its default a daemon back after a 40 s outage was reached 22 s later, after a few minutes'
 * outage up to 2 minutes later. An attempt to a daemon that is down costs a refused connect.
 */
export const RECONNECT_BACKOFF_MAX_MS = 5000;

/**
 * Leases per ListLeases reply that listLeases asks for: a page of leases with the most labels the daemon
 * takes (64 of 63 + 256 characters) stays near 20 MiB, under the default 64 MiB message limit.
 */
export const LIST_LEASES_PAGE_SIZE = 1000;

/**
 * Arrays per ListArrays reply that list asks for: some 110 bytes an array without a label, at most about
 * 1.3 KiB with the longest label (256 characters) and shape (32 dimensions) the daemon takes, so a page
 * stays under 13 MiB, within the default 64 MiB message limit.
 */
export const LIST_ARRAYS_PAGE_SIZE = 10_000;

export interface AllocateOptions {
  dataType: DataType;
  shape: Array<number | string>;
  placement?: Placement;
  device?: number;
  workspaceId?: string;
  zero?: boolean;
  label?: string;
  requestId?: string;
  /** Wait (up to the call deadline, see ClientOptions.deadlineMs or `deadlineMs` here) for device memory instead of failing fast. */
  waitForMemory?: boolean;
  /** Own memory regions from the start, so that exportArray needs no copy. */
  exportable?: boolean;
  /** This call's deadline in ms; unset or 0: the client's (ClientOptions.deadlineMs); Infinity or more than 2^31 - 1 ms: none. */
  deadlineMs?: number;
  /**
   * Gives the call up when it aborts (a trainer stopping while `waitForMemory` waits): the call is
   * cancelled, the daemon takes it out of its wait queue, and the promise rejects with CANCELLED.
   * One already aborted sends nothing.
   */
  signal?: AbortSignal;
}

export interface OpenLeaseOptions {
  tenant?: string;
  clientName?: string;
  ttlSeconds?: number;
  labels?: Record<string, string>;
  tenantToken?: string;
}

export interface ExportOptions {
  side?: ExportSide;
  writable?: boolean;
  map?: boolean;
}

export interface DuplicateOptions {
  placement?: Placement;
  workspaceId?: string;
  detached?: boolean;
  label?: string;
}

export interface WriteOptions {
  /**
   * Sends the CRC-32C of the data with the write, whichever way it goes: over the data plane in
   * X-Tensormem-Crc32c, over WriteArray (small writes, a fallback from the data plane, writeGrpc) in
   * WriteArrayHeader.crc32c. The daemon refuses it, CHECKSUM_MISMATCH, when the bytes it received have
   * another, so they are checked end to end. Computed by the addon where it is built (some 10 GB/s), else
   * in JavaScript (under 1 GB/s). A daemon older than WriteArrayHeader.crc32c ignores it: such a write over
   * WriteArray goes unchecked.
   */
  checksum?: boolean;
}

export interface KeepAliveOptions {
  releaseOnDisconnect?: boolean;
  onError?: (error: TensormemClientError) => void;
}

/**
 * Every option each typed-client method takes. Plain JS gets no compile error for a misspelled or
 * snake_case option (`placment`, `data_type`), which was ignored and the default taken: such a call
 * is refused before anything is sent (checkOptionNames).
 */
type OptionsOf<M extends keyof LeaseSession | keyof TensormemClient, I extends number> = M extends keyof LeaseSession
  ? NonNullable<Parameters<Extract<LeaseSession[M], (...args: never[]) => unknown>>[I]>
  : M extends keyof TensormemClient
    ? NonNullable<Parameters<Extract<TensormemClient[M], (...args: never[]) => unknown>>[I]>
    : never;

/** The keys of `names`, which must name every option of T and nothing else (a compile error otherwise). */
function optionNames<T>(names: Record<keyof T, 1>): string[] {
  return Object.keys(names);
}

const OPTION_NAMES = {
  client: optionNames<ClientOptions>({ maxMessageBytes: 1, chunkBytes: 1, deadlineMs: 1, tls: 1, dataPlane: 1, keepalive: 1 }),
  'client.dataPlane': optionNames<Exclude<ClientOptions['dataPlane'], false | undefined>>({ thresholdBytes: 1, connectTimeoutMs: 1, stallTimeoutMs: 1 }),
  'client.keepalive': optionNames<Exclude<ClientOptions['keepalive'], false | undefined>>({ timeMs: 1, timeoutMs: 1 }),
  openLease: optionNames<OpenLeaseOptions>({ tenant: 1, clientName: 1, ttlSeconds: 1, labels: 1, tenantToken: 1 }),
  listLeases: optionNames<OptionsOf<'listLeases', 1>>({ tenant: 1, pageSize: 1 }),
  listLeasesPage: optionNames<OptionsOf<'listLeasesPage', 0>>({ tenant: 1, pageSize: 1, pageToken: 1, order: 1 }),
  allocate: optionNames<AllocateOptions>({ dataType: 1, shape: 1, placement: 1, device: 1, workspaceId: 1, zero: 1, label: 1, requestId: 1, waitForMemory: 1, exportable: 1, deadlineMs: 1, signal: 1 }),
  listPage: optionNames<OptionsOf<'listPage', 0>>({ pageSize: 1, pageToken: 1 }),
  exportArray: optionNames<ExportOptions>({ side: 1, writable: 1, map: 1 }),
  duplicate: optionNames<DuplicateOptions>({ placement: 1, workspaceId: 1, detached: 1, label: 1 }),
  write: optionNames<WriteOptions>({ checksum: 1 }),
  startKeepAlive: optionNames<KeepAliveOptions>({ releaseOnDisconnect: 1, onError: 1 }),
};

/** `data_type` → `dataType`. */
function camelCase(name: string): string {
  return name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** Refuses, INVALID_ARGUMENT naming it, an option `method` does not take (see OPTION_NAMES); undefined values are left alone. */
export function checkOptionNames(method: keyof typeof OPTION_NAMES, options: object | undefined | null): void {
  if (options === undefined || options === null) return;
  const names = OPTION_NAMES[method];
  // for-in, not Object.entries: every allocate and free comes through here (B1), and this makes nothing.
  for (const key in options) {
    const value = (options as Record<string, unknown>)[key];
    if (value === undefined || names.includes(key) || !Object.hasOwn(options, key)) continue;
    // The camelCase of a snake_case name, or a name one or two letters off (placment): "did you mean".
    const like = nameLike(key, names);
    const hint = names.includes(camelCase(key)) ? `did you mean ${camelCase(key)}?` : `${like === undefined ? '' : `did you mean ${like}? `}it takes ${names.join(', ')}`;
    // 'client.dataPlane': the client's dataPlane option object.
    const [owner, inner] = method.split('.');
    const field = owner === 'client' ? `TensormemClient option ${inner ? `${inner}.` : ''}${key}` : `${method} option ${key}`;
    const taker = owner === 'client' ? (inner ? `the client's ${inner}` : 'the client') : method;
    throw invalidArgument(field, `an option ${taker} takes (${hint})`, value);
  }
}
