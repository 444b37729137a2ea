/**
 * The typed TypeScript client of tensormem.v1, used by tensormemctl and the tests. Calls reject with a
 * TensormemClientError carrying the gRPC `code` and the ErrorInfo `reason` (e.g. DEVICE_OUT_OF_MEMORY).
 */
import { constants as bufferConstants } from 'node:buffer';
import { constants as osConstants } from 'node:os';
import { ChannelOptions, ClientDuplexStream, ClientUnaryCall, InterceptingCall, Interceptor, Metadata, ServiceError, credentials, status as Status } from '@grpc/grpc-js';
import { loadTensormemProto } from '../service/proto';
import { errorInfoOf } from '../rpc-status';
import type { LeaseServiceClient } from '../generated/tensormem/v1/LeaseService';
import type { ArrayServiceClient } from '../generated/tensormem/v1/ArrayService';
import type { MemoryServiceClient } from '../generated/tensormem/v1/MemoryService';
import type { Lease__Output } from '../generated/tensormem/v1/Lease';
import type { KeepAliveRequest } from '../generated/tensormem/v1/KeepAliveRequest';
import type { KeepAliveResponse__Output } from '../generated/tensormem/v1/KeepAliveResponse';
import type { LeaseSummary__Output } from '../generated/tensormem/v1/LeaseSummary';
import type { ArrayInfo__Output } from '../generated/tensormem/v1/ArrayInfo';
import type { MemoryInfo__Output } from '../generated/tensormem/v1/MemoryInfo';
import type { MemorySnapshot__Output } from '../generated/tensormem/v1/MemorySnapshot';
import type { GetConfigResponse__Output } from '../generated/tensormem/v1/GetConfigResponse';
import type { DataType } from '../generated/tensormem/v1/DataType';
import type { WorkspaceServiceClient } from '../generated/tensormem/v1/WorkspaceService';
import type { WorkspaceInfo__Output } from '../generated/tensormem/v1/WorkspaceInfo';
import type { WorkspaceConfig } from '../generated/tensormem/v1/WorkspaceConfig';
import type { Placement } from '../generated/tensormem/v1/Placement';
import {
  DataPlaneConnectionError,
  DataPlaneDeadlineError,
  DataPlaneEndpoint,
  DataPlaneHttpError,
  DataPlaneTransferError,
  dataPlaneEndpointFor,
  getArray as httpGetArray,
  putArray as httpPutArray,
} from '../dataplane/data-plane-client';
import { DataPlaneConnections } from '../dataplane/data-plane-connections';
import type { ExportSide } from '../generated/tensormem/v1/ExportSide';
import type { ExportArrayResponse__Output } from '../generated/tensormem/v1/ExportArrayResponse';
import { SharedMemoryMappings } from './shm-mappings';
import { isNativeError } from '../native/backend';
import { describe } from '../errors';
import type { ErrorReason } from '../errors';
import { checkRequestsBeforeSending, RequestChecks, shortened, type RequestProblem } from './request-checks';
import { MAX_TIMER_MS } from '../long-timeout';
import type { AcquireCudnnWorkspaceRequest } from '../generated/tensormem/v1/AcquireCudnnWorkspaceRequest';
import type { AcquireCudnnWorkspaceResponse__Output } from '../generated/tensormem/v1/AcquireCudnnWorkspaceResponse';

export type { WorkspaceInfo__Output as WorkspaceInfo, WorkspaceConfig };
export type { AcquireCudnnWorkspaceResponse__Output as CudnnWorkspace };
/** AcquireCudnnWorkspace's request without lease_id (the session's lease); unset fields take the proto defaults. */
export type CudnnWorkspaceRequest = Omit<AcquireCudnnWorkspaceRequest, 'lease_id'>;
export type { ArrayInfo__Output as ArrayInfo, MemoryInfo__Output as MemoryInfo, LeaseSummary__Output as LeaseSummary, Lease__Output as Lease };

/**
 * The daemon's google.rpc.ErrorInfo reasons, stable names a trainer branches on. `reason` is typed as
 * one of them or any string: an editor offers these, and a reason added by a newer daemon still fits.
 */
export type { ErrorReason };

export class TensormemClientError extends Error {
  constructor(
    readonly code: Status,
    readonly reason: ErrorReason | (string & {}) | undefined,
    readonly details: string,
    readonly errorMetadata: Record<string, string>,
  ) {
    // The reason only where it says more than the code ("FAILED_PRECONDITION (FAILED_PRECONDITION): …" did not).
    super(`${Status[code]}${reason && reason !== Status[code] ? ` (${reason})` : ''}: ${details}`);
    this.name = 'TensormemClientError';
  }
}

function clientError(error: ServiceError): TensormemClientError {
  const info = errorInfoOf(error.metadata);
  return new TensormemClientError(error.code, info?.reason, error.details, info?.metadata ?? {});
}

/** A data plane error as the gRPC client would have seen it (same code name and ErrorInfo reason). */
function clientErrorOfHttp(error: DataPlaneHttpError): TensormemClientError {
  const code = (Status as unknown as Record<string, Status>)[error.body.status] ?? Status.UNKNOWN;
  return new TensormemClientError(code, error.body.reason || undefined, error.body.message, error.body.metadata);
}

/**
 * Makes an UNAVAILABLE that grpc-js raised itself (no ErrorInfo: the daemon did not send it) name the
 * daemon's address. A call in flight when the daemon died failed with only "Connection dropped" or "read
 * ECONNRESET", so a trainer holding clients of several daemons could not tell which one was gone.
 * grpc-js's connect errors name the address already, and are left as they are.
 */
function namingAddressOnUnavailable(address: string): Interceptor {
  const shown = address.replace(/^unix:(\/\/)?/, '');
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            if (status.code !== Status.UNAVAILABLE || errorInfoOf(status.metadata) !== undefined) return nextStatus(status);
            // grpc-js ends a connect error with an empty "Resolution note: " for an IP address or a unix socket.
            const details = status.details.replace(/\.? Resolution note:\s*$/, '');
            nextStatus({ ...status, details: details.includes(shown) ? details : `${details} (tensormemd at ${address})` });
          },
        });
      },
    });
}

let sharedRequestChecks: RequestChecks | undefined;

/** One RequestChecks for every client of the process (it keeps a check per message type). */
function requestChecks(): RequestChecks {
  return (sharedRequestChecks ??= new RequestChecks(loadTensormemProto().definition));
}

/** INVALID_ARGUMENT in the daemon's words (errors.ts invalidArgument), raised here before any call. */
function invalidArgument(field: string, expected: string, received: unknown): TensormemClientError {
  return new TensormemClientError(Status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', `Expected ${expected} for ${field} but received ${describe(received)}`, { field });
}

/** Offsets and lengths: a safe non-negative integer (grpc-js would turn anything else into 0 or wrap it). */
function requireByteCount(field: string, value: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalidArgument(field, 'a non-negative safe integer', value);
}

/** OUT_OF_RANGE in the daemon's words (errors.ts outOfRange), raised here before any call. */
function outOfRange(field: string, message: string): TensormemClientError {
  return new TensormemClientError(Status.OUT_OF_RANGE, 'OUT_OF_RANGE', `${field}: ${message}`, { field });
}

/** A timer length for grpc-js: a positive integer of ms that fits its 32-bit timers. */
function positiveMs(field: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0 || value > 2 ** 31 - 1) throw invalidArgument(field, 'a whole number of milliseconds from 1 to 2147483647', value);
  return value;
}

type Callback<T> = (error: ServiceError | null, value?: T) => void;

/** Promisifies one unary call and maps its error. */
function call<T>(invoke: (callback: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    invoke((error, value) => (error ? reject(clientError(error)) : resolve(value as T)));
  });
}

/**
 * A unary call that `signal` can give up: on abort the call is cancelled (the daemon sees it, and a
 * call waiting for memory leaves the queue) and the promise rejects with CANCELLED naming `method` and
 * the signal's reason. A signal already aborted sends nothing.
 */
function abortable<T>(method: string, signal: AbortSignal | undefined, invoke: (callback: Callback<T>) => ClientUnaryCall): Promise<T> {
  if (signal === undefined) return call(invoke);
  if (!(signal instanceof AbortSignal)) throw invalidArgument(`${method} option signal`, 'an AbortSignal', signal);
  const aborted = () => new TensormemClientError(Status.CANCELLED, undefined, `${method} was aborted by its signal (${signal.reason instanceof Error ? signal.reason.message : describe(signal.reason)})`, {});
  if (signal.aborted) return Promise.reject(aborted());
  return new Promise((resolve, reject) => {
    const pending = invoke((error, value) => {
      unwatch();
      if (error) reject(clientError(error));
      else resolve(value as T);
    });
    const unwatch = watchAbort(signal, () => {
      reject(aborted());
      pending.cancel();
    });
  });
}

/** The calls each AbortSignal gives up when it aborts, and the one listener that runs them. */
const abortWatchers = new WeakMap<AbortSignal, { calls: Set<() => void>; listener: () => void }>();

/**
 * Runs `giveUp` when `signal` aborts; returns what stops watching. One 'abort' listener per signal,
 * however many calls wait on it: a trainer passes its one stop signal to every allocate, and a
 * listener per call put 11 on it with 11 calls in flight, which Node reports as a leak
 * (MaxListenersExceededWarning) though each listener went with its call.
 */
function watchAbort(signal: AbortSignal, giveUp: () => void): () => void {
  let watched = abortWatchers.get(signal);
  if (!watched) {
    const calls = new Set<() => void>();
    const listener = () => {
      abortWatchers.delete(signal);
      for (const giveUpCall of calls) giveUpCall();
    };
    watched = { calls, listener };
    abortWatchers.set(signal, watched);
    signal.addEventListener('abort', listener, { once: true });
  }
  const { calls, listener } = watched;
  calls.add(giveUp);
  return () => {
    if (!calls.delete(giveUp) || calls.size > 0 || abortWatchers.get(signal)?.calls !== calls) return;
    abortWatchers.delete(signal);
    signal.removeEventListener('abort', listener);
  };
}

export interface ClientOptions {
  /** Largest message either way (default 64 MiB, the daemon's default; -1: no limit). */
  maxMessageBytes?: number;
  /** Chunk size of WriteArray streams (default 1 MiB). */
  chunkBytes?: number;
  /** Per-call deadline in ms (default none; 0, Infinity or more than 2^31 - 1 ms: none). */
  deadlineMs?: number;
  /** TLS for TCP addresses: the CA that signed the daemon's certificate; cert and key for mTLS (all PEM). */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer; serverName?: string };
  /**
   * The HTTP data plane (when the daemon has one, OpenLease's data_address): transfers of at least
   * `thresholdBytes` (default 1 MiB) go over HTTP, smaller ones over the gRPC streams; a connection
   * failure falls back to gRPC for that lease from then on. A connection not made within
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
   * path went away (no FIN, no RST) held a transfer without a deadline for good.
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

export const DEFAULT_KEEPALIVE_TIME_MS = 30_000;
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 60_000;

export const DEFAULT_DATA_PLANE_THRESHOLD_BYTES = 1024 * 1024;
export const DEFAULT_DATA_PLANE_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_DATA_PLANE_STALL_TIMEOUT_MS = 90_000;
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
  openLease: optionNames<OpenLeaseOptions>({ tenant: 1, clientName: 1, ttlSeconds: 1, labels: 1, tenantToken: 1 }),
  listLeases: optionNames<OptionsOf<'listLeases', 1>>({ tenant: 1, pageSize: 1 }),
  listLeasesPage: optionNames<OptionsOf<'listLeasesPage', 0>>({ tenant: 1, pageSize: 1, pageToken: 1, order: 1 }),
  allocate: optionNames<AllocateOptions>({ dataType: 1, shape: 1, placement: 1, device: 1, workspaceId: 1, zero: 1, label: 1, requestId: 1, waitForMemory: 1, exportable: 1, deadlineMs: 1, signal: 1 }),
  listPage: optionNames<OptionsOf<'listPage', 0>>({ pageSize: 1, pageToken: 1 }),
  exportArray: optionNames<ExportOptions>({ side: 1, writable: 1, map: 1 }),
  duplicate: optionNames<DuplicateOptions>({ placement: 1, workspaceId: 1, detached: 1, label: 1 }),
  startKeepAlive: optionNames<KeepAliveOptions>({ releaseOnDisconnect: 1, onError: 1 }),
};

/** `data_type` → `dataType`. */
function camelCase(name: string): string {
  return name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** Refuses, INVALID_ARGUMENT naming it, an option `method` does not take (see OPTION_NAMES); undefined values are left alone. */
function checkOptionNames(method: keyof typeof OPTION_NAMES, options: object | undefined | null): void {
  if (options === undefined || options === null) return;
  const names = OPTION_NAMES[method];
  // for-in, not Object.entries: every allocate and free comes through here (B1), and this makes nothing.
  for (const key in options) {
    const value = (options as Record<string, unknown>)[key];
    if (value === undefined || names.includes(key) || !Object.hasOwn(options, key)) continue;
    const hint = names.includes(camelCase(key)) ? `did you mean ${camelCase(key)}?` : `it takes ${names.join(', ')}`;
    throw invalidArgument(`${method === 'client' ? 'TensormemClient' : method} option ${key}`, `an option ${method === 'client' ? 'the client' : method} takes (${hint})`, value);
  }
}

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export class TensormemClient {
  readonly leases: LeaseServiceClient;
  readonly arrays: ArrayServiceClient;
  readonly memory: MemoryServiceClient;
  readonly workspaces: WorkspaceServiceClient;
  readonly chunkBytes: number;
  /** Shared-memory mappings of exported arrays, each mapped once and reused (LeaseSession.exportArray). */
  readonly mappings = new SharedMemoryMappings();

  /** `address` as grpc-js takes it: "127.0.0.1:7070" or "unix:/tmp/tensormemd.sock". */
  constructor(
    readonly address: string,
    private readonly options: ClientOptions = {},
  ) {
    checkOptionNames('client', options);
    checkDeadlineMs(options.deadlineMs);
    const { maxMessageBytes: maxMessage, chunkBytes } = options;
    // -1: no limit (grpc-js's own value; tensormemctl snapshot takes a reply of any size).
    if (maxMessage !== undefined && !(Number.isSafeInteger(maxMessage) && (maxMessage > 0 || maxMessage === -1))) throw invalidArgument('maxMessageBytes', 'a whole number of bytes above 0, or -1 for no limit', maxMessage);
    if (chunkBytes !== undefined) requireChunkBytes(chunkBytes);
    const { proto } = loadTensormemProto();
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const channelOptions: ChannelOptions = { 'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': maxMessageBytes };
    const tls = options.tls;
    const creds = tls ? credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null) : credentials.createInsecure();
    if (tls?.serverName) channelOptions['grpc.ssl_target_name_override'] = tls.serverName;
    if (options.keepalive !== false) {
      // Only while calls are open (grpc.keepalive_permit_without_calls stays off): an idle client sends nothing.
      channelOptions['grpc.keepalive_time_ms'] = positiveMs('keepalive.timeMs', options.keepalive?.timeMs ?? DEFAULT_KEEPALIVE_TIME_MS);
      channelOptions['grpc.keepalive_timeout_ms'] = positiveMs('keepalive.timeoutMs', options.keepalive?.timeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS);
    }
    const interceptors = [namingAddressOnUnavailable(address)];
    this.leases = new proto.tensormem.v1.LeaseService(address, creds, { ...channelOptions, interceptors });
    // The three stubs share the one channel (one connection).
    const shared = { ...channelOptions, interceptors, channelOverride: this.leases.getChannel() };
    this.arrays = new proto.tensormem.v1.ArrayService(address, creds, shared);
    this.memory = new proto.tensormem.v1.MemoryService(address, creds, shared);
    this.workspaces = new proto.tensormem.v1.WorkspaceService(address, creds, shared);
    const checks = requestChecks();
    const refuse = (problem: RequestProblem) => invalidArgument(problem.field, problem.expected, problem.received);
    checkRequestsBeforeSending(this.leases, proto.tensormem.v1.LeaseService.service, checks, refuse);
    checkRequestsBeforeSending(this.arrays, proto.tensormem.v1.ArrayService.service, checks, refuse);
    checkRequestsBeforeSending(this.memory, proto.tensormem.v1.MemoryService.service, checks, refuse);
    checkRequestsBeforeSending(this.workspaces, proto.tensormem.v1.WorkspaceService.service, checks, refuse);
    this.chunkBytes = options.chunkBytes ?? 1024 * 1024;
  }

  callOptions(): { deadline?: number } {
    return deadlineIn(this.options.deadlineMs);
  }

  /** Whether close() has been called: every later call rejects with CANCELLED (requireOpen). */
  get closed(): boolean {
    return this.isClosed;
  }

  private isClosed = false;

  /**
   * @internal Throws CANCELLED once close() has been called. grpc-js would throw a plain Error
   * ("Channel has been shut down"), without a code, and the data plane would still be used.
   */
  requireOpen(): void {
    if (this.isClosed) throw new TensormemClientError(Status.CANCELLED, undefined, `the client of ${this.address} is closed (TensormemClient.close())`, {});
  }

  /** Every RPC's metadata is made here, so a call after close() rejects (requireOpen) before it is sent. */
  metadata(token?: string): Metadata {
    this.requireOpen();
    const metadata = new Metadata();
    if (token) metadata.set('authorization', `Bearer ${token}`);
    return metadata;
  }

  async openLease(options: OpenLeaseOptions = {}): Promise<LeaseSession> {
    checkOptionNames('openLease', options);
    const response = await call<{ lease: Lease__Output | null; data_address?: string }>((cb) =>
      this.leases.OpenLease(
        { tenant: options.tenant ?? '', client_name: options.clientName ?? '', ttl_seconds: options.ttlSeconds ?? 0, labels: options.labels ?? {} },
        this.metadata(options.tenantToken),
        this.callOptions(),
        cb,
      ),
    );
    return new LeaseSession(this, response.lease!, this.dataPlaneEndpoint(response.data_address ?? ''));
  }

  /** Where this client reaches the data plane at `dataAddress`; undefined when it must use gRPC. */
  private dataPlaneEndpoint(dataAddress: string): DataPlaneEndpoint | undefined {
    if (this.options.dataPlane === false || this.options.tls || dataAddress === '') return undefined;
    return dataPlaneEndpointFor(this.address, dataAddress);
  }

  /** Transfers of at least this many bytes use the data plane when there is one. */
  get dataPlaneThresholdBytes(): number {
    return (this.options.dataPlane || undefined)?.thresholdBytes ?? DEFAULT_DATA_PLANE_THRESHOLD_BYTES;
  }

  /**
   * @internal The data plane options of a transfer with `callOptions`: its deadline, this client's
   * pool of data plane connections, and how long to
   * try connecting: ClientOptions.dataPlane.connectTimeoutMs, and at most half the time left to the
   * deadline (so that gRPC has the other half) but not under 1 s (a connect timeout turns the data plane
   * off for the lease, which a slow connect under a tight deadline must not do: that one ends in
   * DEADLINE_EXCEEDED instead); and ClientOptions.dataPlane.stallTimeoutMs.
   */
  dataPlaneTransferOptions(callOptions: { deadline?: number }): { deadline?: number; connectTimeoutMs: number; stallTimeoutMs: number; connections: DataPlaneConnections } {
    const dataPlane = this.options.dataPlane || undefined;
    const configured = dataPlane?.connectTimeoutMs ?? DEFAULT_DATA_PLANE_CONNECT_TIMEOUT_MS;
    const halfLeft = callOptions.deadline !== undefined ? Math.floor((callOptions.deadline - Date.now()) / 2) : Infinity;
    const stallTimeoutMs = dataPlane?.stallTimeoutMs ?? DEFAULT_DATA_PLANE_STALL_TIMEOUT_MS;
    return { ...callOptions, connectTimeoutMs: Math.min(configured, Math.max(halfLeft, Math.min(configured, 1000))), stallTimeoutMs, connections: this.dataPlaneConnections };
  }

  /**
   * @internal The data plane connections this client's transfers reuse (at most 4 idle per endpoint,
   * each for the daemon's announced idle timeout less 1 s); close() closes them.
   */
  readonly dataPlaneConnections = new DataPlaneConnections();

  /**
   * Every lease `token` may see (open mode or admin: all; a tenant token: its tenant's; a lease token:
   * that lease), or only `options.tenant`'s, in the order they were opened. Fetched in pages of
   * `options.pageSize` (default LIST_LEASES_PAGE_SIZE), so that no reply nears the message size limit.
   */
  async listLeases(token?: string, options: { tenant?: string; pageSize?: number } = {}): Promise<LeaseSummary__Output[]> {
    checkOptionNames('listLeases', options);
    const leases: LeaseSummary__Output[] = [];
    let pageToken = '';
    do {
      const page = await this.listLeasesPage({ tenant: options.tenant, pageSize: options.pageSize ?? LIST_LEASES_PAGE_SIZE, pageToken }, token);
      leases.push(...page.leases);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return leases;
  }

  /**
   * One ListLeases reply: pageSize 0 (the default) for every lease at once; pageToken a previous page's
   * nextPageToken. order LEASE_ORDER_BYTES: the pageSize leases holding the most bytes, one page.
   */
  async listLeasesPage(
    request: { tenant?: string; pageSize?: number; pageToken?: string; order?: 'LEASE_ORDER_OPENED' | 'LEASE_ORDER_BYTES' },
    token?: string,
  ): Promise<{ leases: LeaseSummary__Output[]; nextPageToken: string; totalCount: number }> {
    checkOptionNames('listLeasesPage', request);
    const response = await call<{ leases: LeaseSummary__Output[]; next_page_token: string; total_count: number }>((cb) =>
      this.leases.ListLeases(
        { tenant: request.tenant ?? '', page_size: request.pageSize ?? 0, page_token: request.pageToken ?? '', order: request.order ?? 'LEASE_ORDER_OPENED' },
        this.metadata(token),
        this.callOptions(),
        cb,
      ),
    );
    return { leases: response.leases, nextPageToken: response.next_page_token, totalCount: response.total_count };
  }

  /** Closes any lease (admin token, or open mode); resolves to the bytes freed. */
  async evictLease(leaseId: string, adminToken?: string): Promise<number> {
    return (await call<{ freed_bytes: number }>((cb) => this.leases.EvictLease({ lease_id: leaseId }, this.metadata(adminToken), this.callOptions(), cb))).freed_bytes;
  }

  /** Closes every lease `tenant` has open (admin token, or open mode): how many, and the bytes freed. */
  async evictTenant(tenant: string, adminToken?: string): Promise<{ evictedLeases: number; freedBytes: number }> {
    const response = await call<{ freed_bytes: number; evicted_leases: number }>((cb) => this.leases.EvictLease({ tenant }, this.metadata(adminToken), this.callOptions(), cb));
    return { evictedLeases: response.evicted_leases, freedBytes: response.freed_bytes };
  }

  async memoryInfo(token?: string): Promise<MemoryInfo__Output> {
    const response = await call<{ info: MemoryInfo__Output | null }>((cb) => this.memory.GetMemoryInfo({}, this.metadata(token), this.callOptions(), cb));
    return response.info!;
  }

  async memorySnapshot(token?: string): Promise<MemorySnapshot__Output> {
    const response = await call<{ snapshot: MemorySnapshot__Output | null }>((cb) => this.memory.GetMemorySnapshot({}, this.metadata(token), this.callOptions(), cb));
    return response.snapshot!;
  }

  config(token?: string): Promise<GetConfigResponse__Output> {
    return call<GetConfigResponse__Output>((cb) => this.memory.GetConfig({}, this.metadata(token), this.callOptions(), cb));
  }

  /** Calls `onInfo` with a MemoryInfo every intervalMs until the returned function is called. */
  watchMemory(intervalMs: number, onInfo: (info: MemoryInfo__Output) => void, onError?: (error: TensormemClientError) => void, token?: string): () => void {
    const stream = this.memory.WatchMemory({ interval_ms: intervalMs }, this.metadata(token));
    const unregister = this.onClose(() => stream.cancel());
    stream.on('data', (message: { info: MemoryInfo__Output | null }) => onInfo(message.info!));
    stream.on('error', (error: ServiceError) => {
      unregister();
      if (error.code !== Status.CANCELLED) onError?.(clientError(error));
    });
    stream.on('end', unregister);
    return () => {
      unregister();
      stream.cancel();
    };
  }

  /** What close() stops: running watchMemory streams and keep-alives. */
  private readonly closers = new Set<() => void>();

  /** @internal Registers `stop` to run on close(); returns the function that unregisters it. */
  onClose(stop: () => void): () => void {
    this.closers.add(stop);
    return () => this.closers.delete(stop);
  }

  /**
   * Closes the channels, cancels every watchMemory stream, stops every session's keep-alive (its stream
   * is ended cleanly, so the leases stay open until their TTL, releaseOnDisconnect or not), closes the
   * idle data plane connections and unmaps every exported array this
   * client mapped. Calls in flight run to their end (a data plane transfer's connection then closes); any call made afterwards (over gRPC or the data
   * plane) rejects with CANCELLED.
   */
  close(): void {
    this.isClosed = true;
    this.dataPlaneConnections.close();
    for (const stop of [...this.closers]) stop();
    this.closers.clear();
    this.mappings.releaseAll();
    this.leases.close();
  }
}

/** What exportArray gives: the daemon's handle and, for shared memory, the array's bytes mapped here. */
export interface ArrayExport {
  array: ArrayInfo__Output;
  /** Whether this export moved the array into its own region (a copy, made once). */
  moved: boolean;
  shm?: { name: string; offset: number; length: number; regionBytes: number };
  /** shm: the array's bytes, a view of this process's mapping (no copy); writable when asked. */
  bytes?: Buffer;
  /** Device side on the cuda backend: pass to cudaIpcOpenMemHandle in a CUDA program. */
  cudaIpc?: { handle: Buffer; device: number; offset: number; length: number; regionBytes: number };
}

/** A lease and the calls made with its token. */
export class LeaseSession {
  readonly leaseId: string;
  readonly token: string;
  private keepAliveTimer?: NodeJS.Timeout;
  /** Array transfers (write/read calls) done over each transport. */
  readonly transfers = { http: 0, grpc: 0 };
  /**
   * Byte sizes of the arrays this session has seen, to choose a transport for reads to the end and to
   * check read ranges. Arrays in a workspace are not kept (the daemon retires them without a FreeArray
   * from here), and the map holds at most MAX_REMEMBERED_ARRAYS (the oldest go first).
   */
  private readonly arraySizes = new Map<string, number>();
  static readonly MAX_REMEMBERED_ARRAYS = 4096;
  /**
   * The most bytes one read() or readGrpc() returns: the largest Buffer this Node.js makes
   * (buffer.constants.MAX_LENGTH, 4 GiB on Node.js 20). A larger read is RESOURCE_EXHAUSTED; read such an
   * array in ranges.
   */
  static maxReadBytes: number = bufferConstants.MAX_LENGTH;

  constructor(
    readonly client: TensormemClient,
    public lease: Lease__Output,
    /** The HTTP data plane, when the daemon has one this client can use; cleared after a connection failure. */
    public dataPlane?: DataPlaneEndpoint,
  ) {
    this.leaseId = lease.lease_id;
    this.token = lease.token;
  }

  private remember(array: ArrayInfo__Output): ArrayInfo__Output {
    if (array.workspace_id) return array;
    this.arraySizes.delete(array.array_id);
    this.arraySizes.set(array.array_id, Number(array.byte_size));
    if (this.arraySizes.size > LeaseSession.MAX_REMEMBERED_ARRAYS) this.arraySizes.delete(this.arraySizes.keys().next().value!);
    return array;
  }

  /** The data plane for a transfer of `bytes`, or undefined for gRPC (0-byte transfers always use gRPC). */
  private httpFor(bytes: number | undefined): DataPlaneEndpoint | undefined {
    return this.dataPlane && bytes !== undefined && bytes > 0 && bytes >= this.client.dataPlaneThresholdBytes ? this.dataPlane : undefined;
  }

  /**
   * Runs `transfer` over the data plane; HTTP errors become TensormemClientErrors; a failed connection
   * gives undefined (use gRPC) and turns the data plane off for this session; a connection refused for
   * the daemon's --data-max-connections (503 TOO_MANY_CONNECTIONS, sent before the request was read)
   * gives undefined for this transfer only. A passed deadline is
   * DEADLINE_EXCEEDED and a failure after the answer began (reset, truncated) UNAVAILABLE, neither retried.
   */
  private async overHttp<T>(transfer: () => Promise<T>): Promise<T | undefined> {
    try {
      return await transfer();
    } catch (error) {
      if (error instanceof DataPlaneHttpError) {
        if (error.body.reason === 'TOO_MANY_CONNECTIONS') return undefined;
        throw clientErrorOfHttp(error);
      }
      if (error instanceof DataPlaneDeadlineError) throw new TensormemClientError(Status.DEADLINE_EXCEEDED, undefined, error.message, {});
      if (error instanceof DataPlaneTransferError) throw new TensormemClientError(Status.UNAVAILABLE, undefined, error.message, {});
      if (error instanceof DataPlaneConnectionError) {
        this.dataPlane = undefined;
        return undefined;
      }
      throw error;
    }
  }

  private get md(): Metadata {
    return this.client.metadata(this.token);
  }

  async allocate(options: AllocateOptions): Promise<ArrayInfo__Output> {
    checkOptionNames('allocate', options);
    checkDeadlineMs(options.deadlineMs);
    const response = await abortable<{ array: ArrayInfo__Output | null }>('allocate', options.signal, (cb) =>
      this.client.arrays.AllocateArray(
        {
          lease_id: this.leaseId,
          data_type: options.dataType,
          shape: options.shape,
          placement: options.placement ?? 'PLACEMENT_DEVICE',
          device: options.device ?? 0,
          workspace_id: options.workspaceId ?? '',
          zero: options.zero ?? false,
          label: options.label ?? '',
          request_id: options.requestId ?? '',
          wait_for_memory: options.waitForMemory ?? false,
          exportable: options.exportable ?? false,
        },
        this.md,
        options.deadlineMs ? deadlineIn(options.deadlineMs) : this.client.callOptions(),
        cb,
      ),
    );
    return this.remember(response.array!);
  }

  /**
   * Writes `data` at `offset`; resolves to bytes_written. Large writes go over the HTTP data plane
   * when there is one (see ClientOptions.dataPlane), the others over one WriteArray stream in chunks.
   */
  async write(arrayId: string, view: ArrayBufferView, offset = 0, chunkBytes = this.client.chunkBytes): Promise<number> {
    requireArrayId(arrayId);
    const data = bytesOf(view);
    checkWrite(offset, chunkBytes);
    this.client.requireOpen();
    this.checkWriteRange(arrayId, offset, data.byteLength);
    // One deadline for the whole transfer, the fallback to gRPC included.
    const callOptions = this.client.callOptions();
    return this.sendingFrom(data, async () => {
      const http = this.httpFor(data.byteLength);
      if (http) {
        const written = await this.overHttp(() => httpPutArray(http, this.token, arrayId, data, offset, this.client.dataPlaneTransferOptions(callOptions)));
        if (written !== undefined) {
          this.transfers.http++;
          return written;
        }
      }
      this.transfers.grpc++;
      return this.writeOverGrpc(arrayId, data, offset, chunkBytes, callOptions);
    });
  }

  /** Writes `data` at `offset` over one WriteArray stream in chunks, whatever its size. */
  async writeGrpc(arrayId: string, view: ArrayBufferView, offset = 0, chunkBytes = this.client.chunkBytes): Promise<number> {
    requireArrayId(arrayId);
    const data = bytesOf(view);
    checkWrite(offset, chunkBytes);
    this.checkWriteRange(arrayId, offset, data.byteLength);
    return this.sendingFrom(data, () => this.writeOverGrpc(arrayId, data, offset, chunkBytes, this.client.callOptions()));
  }

  /**
   * Runs `send`, a write that sends `data`; when `data` lies in an exported array's mapping, the mapping
   * stays mapped until the write ends, whatever is freed or closed meanwhile.
   */
  private async sendingFrom<T>(data: Uint8Array, send: () => Promise<T>): Promise<T> {
    const release = this.client.mappings.hold(data.buffer);
    try {
      return await send();
    } finally {
      release?.();
    }
  }

  /**
   * Refuses a write that passes the end of an array whose size this session knows, before anything is
   * sent. A WriteArray stream is refused only at the chunk that passes the end, after the chunks before
   * it were written: 2 MiB at offset 2 MiB of a 3 MiB array changed its last MiB and then failed
   * OUT_OF_RANGE (the data plane checks Content-Range first and changed nothing).
   */
  private checkWriteRange(arrayId: string, offset: number, bytes: number): void {
    const size = this.arraySizes.get(arrayId);
    if (size === undefined || bytes === 0 || offset + bytes <= size) return;
    if (offset >= size) throw outOfRange('offset', `offset ${offset} is at or past the end of array ${arrayId} (${size} bytes): no byte of the ${bytes} bytes of data fits`);
    throw outOfRange('data', `${bytes} bytes at offset ${offset} pass the end of array ${arrayId} (${size} bytes)`);
  }

  private async writeOverGrpc(arrayId: string, data: Uint8Array, offset: number, chunkBytes: number, callOptions: { deadline?: number }): Promise<number> {
    const response = await new Promise<{ bytes_written: number }>((resolve, reject) => {
      const stream = this.client.arrays.WriteArray(this.md, callOptions, (error, value) => (error ? reject(clientError(error)) : resolve(value as { bytes_written: number })));
      const pump = async () => {
        stream.write({ header: { array_id: arrayId, offset } });
        for (let position = 0; position < data.byteLength; position += chunkBytes) {
          const chunk = data.subarray(position, Math.min(position + chunkBytes, data.byteLength));
          if (!stream.write({ chunk })) await new Promise((drained) => stream.once('drain', drained));
        }
        stream.end();
      };
      pump().catch(reject);
    });
    return response.bytes_written;
  }

  /**
   * Reads [offset, offset + length) (length 0: to the end) into one Buffer: over the HTTP data plane
   * when it is large (a read to the end counts as large when this session knows the array's size), else
   * over a ReadArray stream.
   */
  async read(arrayId: string, offset = 0, length = 0): Promise<Buffer> {
    requireArrayId(arrayId);
    requireByteCount('offset', offset);
    requireByteCount('length', length);
    this.client.requireOpen();
    const size = this.arraySizes.get(arrayId);
    if (size !== undefined) {
      // What ReadArray would answer, without the round trip.
      if (offset > size) throw outOfRange('offset', `offset ${offset} is past the end of array ${arrayId} (${size} bytes)`);
      if (offset + length > size) throw outOfRange('length', `${length} bytes at offset ${offset} pass the end of array ${arrayId} (${size} bytes)`);
    }
    const expected = length !== 0 ? length : size !== undefined ? size - offset : undefined;
    if (expected !== undefined) checkReadSize(arrayId, expected);
    // One deadline for the whole transfer, the fallback to gRPC included.
    const callOptions = this.client.callOptions();
    const http = this.httpFor(expected);
    if (http) {
      const data = await this.overHttp(() => httpGetArray(http, this.token, arrayId, offset, length, undefined, this.client.dataPlaneTransferOptions(callOptions)));
      if (data !== undefined) {
        this.transfers.http++;
        return data;
      }
    }
    this.transfers.grpc++;
    return this.readOverGrpc(arrayId, offset, length, callOptions);
  }

  /** Reads over a ReadArray server stream, whatever the size. */
  async readGrpc(arrayId: string, offset = 0, length = 0): Promise<Buffer> {
    requireArrayId(arrayId);
    requireByteCount('offset', offset);
    requireByteCount('length', length);
    checkReadSize(arrayId, length);
    return this.readOverGrpc(arrayId, offset, length, this.client.callOptions());
  }

  private readOverGrpc(arrayId: string, offset: number, length: number, callOptions: { deadline?: number }): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const stream = this.client.arrays.ReadArray({ array_id: arrayId, offset, length }, this.md, callOptions);
      const chunks: Buffer[] = [];
      let received = 0;
      let tooLarge = false;
      stream.on('data', (message: { data: Buffer }) => {
        if (tooLarge) return;
        received += message.data.byteLength;
        if (received > LeaseSession.maxReadBytes) {
          // A read to the end of an array this session did not know the size of: stop it here rather
          // than hold every byte and then fail to join them (Buffer.concat would throw in 'end').
          tooLarge = true;
          chunks.length = 0;
          stream.cancel();
          reject(readTooLarge(arrayId, `more than ${LeaseSession.maxReadBytes}`));
          return;
        }
        chunks.push(message.data);
      });
      stream.on('error', (error: ServiceError) => reject(clientError(error)));
      stream.on('end', () => {
        try {
          resolve(Buffer.concat(chunks, received));
        } catch (error) {
          reject(error); // never thrown out of the stream's event (an uncaught exception)
        }
      });
    });
  }

  async get(arrayId: string): Promise<ArrayInfo__Output> {
    return this.remember((await call<{ array: ArrayInfo__Output | null }>((cb) => this.client.arrays.GetArray({ array_id: arrayId }, this.md, this.client.callOptions(), cb))).array!);
  }

  /** Every array of the lease (ListArrays, LIST_ARRAYS_PAGE_SIZE a reply). */
  async list(): Promise<ArrayInfo__Output[]> {
    const arrays: ArrayInfo__Output[] = [];
    let pageToken = '';
    do {
      const page = await this.listPage({ pageSize: LIST_ARRAYS_PAGE_SIZE, pageToken });
      arrays.push(...page.arrays);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return arrays;
  }

  /** One ListArrays reply: pageSize 0 (the default) for every array at once; pageToken a previous page's nextPageToken. */
  async listPage(request: { pageSize?: number; pageToken?: string } = {}): Promise<{ arrays: ArrayInfo__Output[]; nextPageToken: string; totalCount: number }> {
    checkOptionNames('listPage', request);
    const response = await call<{ arrays: ArrayInfo__Output[]; next_page_token: string; total_count: number }>((cb) =>
      this.client.arrays.ListArrays({ lease_id: this.leaseId, page_size: request.pageSize ?? 0, page_token: request.pageToken ?? '' }, this.md, this.client.callOptions(), cb),
    );
    return { arrays: response.arrays, nextPageToken: response.next_page_token, totalCount: response.total_count };
  }

  /** FreeArray; also unmaps this client's mapping of the array, if it exported it. */
  async free(arrayId: string): Promise<number> {
    try {
      return (await call<{ freed_bytes: number }>((cb) => this.client.arrays.FreeArray({ array_id: arrayId }, this.md, this.client.callOptions(), cb))).freed_bytes;
    } finally {
      // Also when FreeArray fails (the lease expired or was evicted: the array is gone anyway).
      this.arraySizes.delete(arrayId);
      this.releaseMapping(arrayId);
    }
  }

  /** Shared-memory names this session mapped, by array id (unmapped on free and close). */
  private readonly mappedNames = new Map<string, string>();

  private releaseMapping(arrayId: string): void {
    const name = this.mappedNames.get(arrayId);
    if (name === undefined) return;
    this.mappedNames.delete(arrayId);
    this.client.mappings.release(name);
  }

  /**
   * ExportArray, then (shared memory) the array's bytes through a mapping of the region, made once per
   * region and mode and reused: read it directly; after writing through it (writable: true), call
   * sync(id, 'SYNC_DIRECTION_TO_DEVICE') for a device array's mirror. Before reading a device array's
   * mirror after device-side changes other than WriteArray, sync(id, 'SYNC_DIRECTION_TO_HOST').
   * `map: false` returns the handle only (to pass to another process). Without `writable: true` the
   * mapping is private: a store into it stays in this process (that page becomes its own copy) and
   * never reaches the array.
   */
  async exportArray(arrayId: string, options: ExportOptions = {}): Promise<ArrayExport> {
    checkOptionNames('exportArray', options);
    const response = await call<ExportArrayResponse__Output>((cb) =>
      this.client.arrays.ExportArray({ array_id: arrayId, side: options.side ?? 'EXPORT_SIDE_UNSPECIFIED' }, this.md, this.client.callOptions(), cb),
    );
    const result: ArrayExport = { array: response.array!, moved: response.moved };
    if (response.cuda_ipc) {
      const region = response.cuda_ipc;
      result.cudaIpc = { handle: region.handle, device: region.device, offset: region.offset, length: region.length, regionBytes: region.region_bytes };
    }
    if (response.shm) {
      const region = response.shm;
      result.shm = { name: region.name, offset: region.offset, length: region.length, regionBytes: region.region_bytes };
      if (options.map ?? true) {
        let mapping: ArrayBuffer;
        try {
          mapping = this.client.mappings.map(region.name, options.writable ?? false);
        } catch (error) {
          throw mappingFailed(arrayId, region.name, error);
        }
        this.mappedNames.set(arrayId, region.name);
        result.bytes = Buffer.from(mapping, region.offset, region.length);
      }
    }
    return result;
  }

  async duplicate(arrayId: string, options: DuplicateOptions = {}): Promise<ArrayInfo__Output> {
    checkOptionNames('duplicate', options);
    const request = { array_id: arrayId, placement: options.placement ?? 'PLACEMENT_UNSPECIFIED', workspace_id: options.workspaceId ?? '', detached: options.detached ?? false, label: options.label ?? '' };
    return this.remember((await call<{ array: ArrayInfo__Output | null }>((cb) => this.client.arrays.DuplicateArray(request, this.md, this.client.callOptions(), cb))).array!);
  }

  async sync(arrayId: string, direction: 'SYNC_DIRECTION_TO_HOST' | 'SYNC_DIRECTION_TO_DEVICE'): Promise<ArrayInfo__Output> {
    return (await call<{ array: ArrayInfo__Output | null }>((cb) => this.client.arrays.SyncArray({ array_id: arrayId, direction }, this.md, this.client.callOptions(), cb))).array!;
  }

  /** CreateWorkspace: the lease's workspace `name`, created with `config` when there is none. */
  async createWorkspace(name: string, config?: WorkspaceConfig): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('CreateWorkspace', { lease_id: this.leaseId, name, config: config ?? null });
  }

  enterWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('EnterWorkspace', { workspace_id: workspaceId });
  }

  leaveWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('LeaveWorkspace', { workspace_id: workspaceId });
  }

  borrowWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('BorrowWorkspace', { workspace_id: workspaceId });
  }

  initializeWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('InitializeWorkspace', { workspace_id: workspaceId });
  }

  destroyWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('DestroyWorkspace', { workspace_id: workspaceId });
  }

  getWorkspace(workspaceId: string): Promise<WorkspaceInfo__Output> {
    return this.workspaceCall('GetWorkspace', { workspace_id: workspaceId });
  }

  /**
   * ScopeOut: allocations are detached until LeaveWorkspace of the workspace it left; resolves to that
   * workspace (null when none was current). That LeaveWorkspace closes this block only: the cycle takes
   * a second one.
   */
  async scopeOut(): Promise<WorkspaceInfo__Output | null> {
    const response = await call<{ workspace: WorkspaceInfo__Output | null }>((cb) => this.client.workspaces.ScopeOut({ lease_id: this.leaseId }, this.md, this.client.callOptions(), cb));
    return response.workspace;
  }

  async listWorkspaces(): Promise<WorkspaceInfo__Output[]> {
    return (await call<{ workspaces: WorkspaceInfo__Output[] }>((cb) => this.client.workspaces.ListWorkspaces({ lease_id: this.leaseId }, this.md, this.client.callOptions(), cb))).workspaces;
  }

  /** AcquireCudnnWorkspace: the lease's grow-only cuDNN scratch on a device, sized by `mode` (cuDNN, or requested_bytes). */
  async acquireCudnnWorkspace(request: CudnnWorkspaceRequest): Promise<AcquireCudnnWorkspaceResponse__Output> {
    return call<AcquireCudnnWorkspaceResponse__Output>((cb) => this.client.workspaces.AcquireCudnnWorkspace({ ...request, lease_id: this.leaseId }, this.md, this.client.callOptions(), cb));
  }

  private async workspaceCall(method: 'CreateWorkspace' | 'EnterWorkspace' | 'LeaveWorkspace' | 'BorrowWorkspace' | 'InitializeWorkspace' | 'DestroyWorkspace' | 'GetWorkspace', request: object): Promise<WorkspaceInfo__Output> {
    const stub = this.client.workspaces[method].bind(this.client.workspaces) as unknown as (r: object, m: Metadata, o: object, cb: Callback<{ workspace: WorkspaceInfo__Output | null }>) => void;
    return (await call<{ workspace: WorkspaceInfo__Output | null }>((cb) => stub(request, this.md, this.client.callOptions(), cb))).workspace!;
  }

  async renew(ttlSeconds = 0): Promise<Lease__Output> {
    const response = await call<{ lease: Lease__Output | null }>((cb) => this.client.leases.RenewLease({ lease_id: this.leaseId, ttl_seconds: ttlSeconds }, this.md, this.client.callOptions(), cb));
    return response.lease!;
  }

  /**
   * Renews the lease over a KeepAlive stream every intervalMs until close(), stopKeepAlive() or the
   * client's close(). A stream that drops (network blip, daemon restart) is reopened after a backoff
   * (100 ms doubling up to intervalMs), for as long as the keep-alive runs; each failure goes to
   * `onError`. The keep-alive stops by itself when the daemon no longer knows the lease (NOT_FOUND,
   * UNAUTHENTICATED, PERMISSION_DENIED) and when it drains (UNAVAILABLE, reason SHUTTING_DOWN: every
   * lease is freed when its drain ends, so there is nothing left to renew). A stream that stays open but stops answering (the daemon
   * hung, a network path that drops packets without a reset) goes to `onError` too, once per stall:
   * DEADLINE_EXCEEDED at the first renewal sent while two earlier ones wait for their answer, the
   * oldest for 1.5 intervals (one late renewal is no stall: a process whose event loop was blocked runs
   * its timer before it reads the answer that came meanwhile; the connection's own pings do not wait
   * like this, see ClientOptions.keepalive); the stream is kept (cancelling it would close a releaseOnDisconnect lease the moment the
   * path heals), and a later answer re-arms the check. Its timer does not keep the process alive.
   * A KeepAlive stream is one of the tenant's streams that --max-tenant-streams counts: while the daemon
   * refuses it (RESOURCE_EXHAUSTED, TOO_MANY_STREAMS: the tenant's other streams fill the cap), the lease
   * is renewed with RenewLease (a unary call, not counted) at each retry, so that it does not expire;
   * releaseOnDisconnect is not armed until a stream is open again.
   * With releaseOnDisconnect the daemon closes the lease as soon as this process's stream drops.
   * Throws CANCELLED after the client's close().
   * `intervalMs` unset: a third of the lease's TTL (ttl_seconds as granted). Anything but a whole
   * number of ms from 1 to 2^31 - 1 is INVALID_ARGUMENT: Node's setInterval took `'10s'`, 0 or none as
   * 1 ms, and the keep-alive sent hundreds of renewals a second.
   */
  startKeepAlive(intervalMs?: number, options: KeepAliveOptions = {}): void {
    checkOptionNames('startKeepAlive', options);
    intervalMs = intervalMs === undefined ? defaultKeepAliveMs(this.lease.ttl_seconds) : positiveMs('intervalMs', intervalMs);
    this.client.requireOpen();
    this.stopKeepAlive();
    let stream: ClientDuplexStream<KeepAliveRequest, KeepAliveResponse__Output> | undefined;
    let stopped = false;
    let retryTimer: NodeJS.Timeout | undefined;
    let backoffMs = 100;
    /** Renewals sent on the current stream since its last answer, and when the oldest of them went. */
    let unanswered = 0;
    let unansweredSince = 0;
    let stallReported = false;
    const request = { lease_id: this.leaseId, release_on_disconnect: options.releaseOnDisconnect ?? false };
    const ping = () => {
      const current = stream;
      if (!current || current.destroyed || !current.writable) return;
      if (unanswered === 0) unansweredSince = Date.now();
      // Two renewals unanswered, not one: after the event loop was blocked, this timer runs before the
      // answer that arrived meanwhile is read (poll phase), however long the block was.
      else if (!stallReported && unanswered >= 2 && Date.now() - unansweredSince >= 1.5 * intervalMs) {
        stallReported = true;
        options.onError?.(new TensormemClientError(Status.DEADLINE_EXCEEDED, undefined, `the KeepAlive stream has not answered for ${Date.now() - unansweredSince} ms (${unanswered} renewals): lease ${this.leaseId} is not being renewed`, {}));
        // onError may have stopped this keep-alive (stopKeepAlive, lease.close(), client.close()) or
        // started another: then there is nothing to renew here.
        if (stopped || stream !== current) return;
      }
      unanswered++;
      current.write(request);
    };
    const dropped = (error: TensormemClientError, current: typeof stream) => {
      if (stopped || current !== stream) return;
      stream = undefined;
      options.onError?.(error);
      if (stopped) return; // onError stopped it
      if (endsKeepAlive(error)) {
        stop();
        return;
      }
      // The tenant's streams fill --max-tenant-streams: a stream may not open for a while, and the
      // lease would expire meanwhile. RenewLease is unary, which the cap does not count.
      if (error.reason === 'TOO_MANY_STREAMS') renewInstead();
      retryTimer = setTimeout(open, backoffMs);
      retryTimer.unref();
      backoffMs = Math.min(backoffMs * 2, Math.max(intervalMs, 100));
    };
    const renewInstead = () => {
      this.renew().catch((error: TensormemClientError) => {
        if (stopped) return;
        // The lease is gone: the stream, once it opens, would be told so too.
        if (endsKeepAlive(error)) {
          options.onError?.(error);
          stop();
        }
      });
    };
    const open = () => {
      retryTimer = undefined;
      if (stopped || this.client.closed) return;
      const current = this.client.leases.KeepAlive(this.md);
      stream = current;
      unanswered = 0;
      stallReported = false;
      current.on('data', () => {
        backoffMs = 100;
        if (current !== stream) return;
        unanswered = 0;
        stallReported = false;
      });
      current.on('error', (error: ServiceError) => dropped(clientError(error), current));
      current.on('end', () => dropped(new TensormemClientError(Status.UNAVAILABLE, undefined, 'the KeepAlive stream ended', {}), current));
      ping();
    };
    const timer = setInterval(ping, intervalMs);
    timer.unref();
    const unregister = this.client.onClose(() => stop());
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      if (retryTimer) clearTimeout(retryTimer);
      unregister();
      const current = stream;
      stream = undefined;
      if (current) {
        // Disarm release_on_disconnect first: a process that exits right after stopping must keep its lease.
        current.write({ lease_id: this.leaseId, release_on_disconnect: false });
        current.end();
        // The daemon answers the half-close with its status; cancel should it not (the channel closing).
        const cancelTimer = setTimeout(() => current.cancel(), 1000);
        cancelTimer.unref();
        current.once('close', () => clearTimeout(cancelTimer));
        current.on('error', () => {});
      }
      if (this.stopKeepAlive === stop) this.stopKeepAlive = noKeepAlive;
    };
    this.stopKeepAlive = stop;
    open();
  }

  stopKeepAlive(): void {}

  /** CloseLease; also unmaps the arrays this session mapped. */
  async close(): Promise<number> {
    this.stopKeepAlive();
    for (const arrayId of [...this.mappedNames.keys()]) this.releaseMapping(arrayId);
    return (await call<{ freed_bytes: number }>((cb) => this.client.leases.CloseLease({ lease_id: this.leaseId }, this.md, this.client.callOptions(), cb))).freed_bytes;
  }
}

function noKeepAlive(): void {}

/** startKeepAlive's interval when none is given: a third of the lease's TTL (at least 1 s for a TTL the reply did not give). */
function defaultKeepAliveMs(ttlSeconds: number): number {
  const ttlMs = Number(ttlSeconds) * 1000;
  return Number.isFinite(ttlMs) && ttlMs > 0 ? Math.min(Math.max(Math.floor(ttlMs / 3), 1), MAX_TIMER_MS) : 1000;
}

/**
 * A deadlineMs option: unset, or a number of ms from 0 (Infinity: none). A string ('5000') or NaN went
 * to grpc-js as a deadline it could not use, which failed the call with no gRPC code.
 */
function checkDeadlineMs(value: unknown): void {
  if (value !== undefined && !(typeof value === 'number' && value >= 0)) throw invalidArgument('deadlineMs', 'a number of milliseconds from 0 (0 or Infinity: no deadline of its own)', value);
}

/**
 * Call options for a deadline `ms` from now; none for an unset or 0 one, and none for one past
 * MAX_TIMER_MS (about 24.8 days) or infinite: grpc-js arms a setTimeout for the deadline, which past
 * MAX_TIMER_MS would fire at once (DEADLINE_EXCEEDED before the call is sent).
 */
function deadlineIn(ms: number | undefined): { deadline?: number } {
  return ms && !(ms > MAX_TIMER_MS) ? { deadline: Date.now() + ms } : {};
}

/**
 * exportArray's mapping of the region it was answered failed (the addon's SYSTEM_ERROR, a plain Error
 * with the call's errno): as a TensormemClientError, so that a trainer branching on code sees it like any other refusal. ENOENT
 * is NOT_FOUND: the array was freed, or its lease ended, between the answer and the mapping (a free()
 * in flight beside the export), or another process unlinked the name.
 */
function mappingFailed(arrayId: string, name: string, error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const errno = isNativeError(error) ? error.errno : undefined;
  const { ENOENT, EACCES, EPERM, ENOMEM, EMFILE, ENFILE } = osConstants.errno;
  const code =
    errno === ENOENT ? Status.NOT_FOUND : errno === EACCES || errno === EPERM ? Status.PERMISSION_DENIED : errno === ENOMEM || errno === EMFILE || errno === ENFILE ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL;
  const gone = code === Status.NOT_FOUND ? ' (the array was freed or its lease ended meanwhile, or another process unlinked the name)' : '';
  return new TensormemClientError(code, undefined, `exportArray of array ${arrayId}: ${error.message}${gone}; map: false returns the handle without mapping it`, { array_id: arrayId, shm_name: name });
}

/** RESOURCE_EXHAUSTED: `bytes` of `arrayId` do not fit in the one Buffer a read returns. */
function readTooLarge(arrayId: string, bytes: string): TensormemClientError {
  const message = `a read of ${bytes} bytes of array ${arrayId} does not fit in one Buffer (at most ${LeaseSession.maxReadBytes} bytes): read it in ranges`;
  return new TensormemClientError(Status.RESOURCE_EXHAUSTED, undefined, message, { field: 'length' });
}

/** A read of `bytes` (0: to the end, size unknown here), checked before anything is sent. */
function checkReadSize(arrayId: string, bytes: number): void {
  if (bytes > LeaseSession.maxReadBytes) throw readTooLarge(arrayId, String(bytes));
}

/** write/writeGrpc arguments, checked before anything is sent. */
/** A keep-alive's error that no retry can mend: the lease is gone (or the token refused), or the daemon drains. */
function endsKeepAlive(error: TensormemClientError): boolean {
  return error.code === Status.NOT_FOUND || error.code === Status.UNAUTHENTICATED || error.code === Status.PERMISSION_DENIED || error.reason === 'SHUTTING_DOWN';
}

/**
 * The bytes of what write() is given: any typed array or DataView (a Float32Array of weights), as the
 * bytes it spans. Chunks are cut by byte; cutting a Float32Array with subarray() counted elements, and
 * the protobuf writer took each element as one byte: 4 floats arrived as 4 garbled bytes, "written 4".
 */
function bytesOf(data: ArrayBufferView): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (!ArrayBuffer.isView(data)) {
    const value = data as unknown;
    const received = Array.isArray(value) ? `an Array of ${value.length}` : value === null ? 'null' : typeof value === 'object' ? `a ${value.constructor?.name ?? 'plain object'}` : typeof value;
    throw new TensormemClientError(Status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', `Expected a Uint8Array, Buffer, other typed array or DataView for data but received ${received}`, { field: 'data' });
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** An array id given to write/read (streams and the data plane, which RequestChecks does not see): a string. */
function requireArrayId(arrayId: unknown): void {
  if (typeof arrayId !== 'string') throw invalidArgument('array_id', 'a string (the array_id of an ArrayInfo)', shortened(arrayId));
}

function checkWrite(offset: number, chunkBytes: number): void {
  requireByteCount('offset', offset);
  requireChunkBytes(chunkBytes);
}

/** A WriteArray chunk size (the client's option, or a write's argument): a positive safe integer. */
function requireChunkBytes(chunkBytes: number): void {
  if (typeof chunkBytes !== 'number' || !Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw invalidArgument('chunkBytes', 'a positive safe integer', chunkBytes);
}
