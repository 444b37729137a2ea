/**
 * The typed TypeScript client of tensormem.v1, used by tensormemctl and the tests. Calls reject with a
 * TensormemClientError carrying the gRPC `code` and the ErrorInfo `reason` (e.g. DEVICE_OUT_OF_MEMORY).
 * TensormemClient is the connection and the calls made without a lease; openLease gives a LeaseSession
 * (lease-session.ts) for the rest. This module is the client's public face: it re-exports what a
 * caller names (options, errors, the session).
 */
import { ChannelOptions, Metadata, ServiceError, credentials, status as Status } from '@grpc/grpc-js';
import { loadTensormemProto } from '../service/proto';
import type { LeaseServiceClient } from '../generated/tensormem/v1/LeaseService';
import type { ArrayServiceClient } from '../generated/tensormem/v1/ArrayService';
import type { MemoryServiceClient } from '../generated/tensormem/v1/MemoryService';
import type { Lease__Output } from '../generated/tensormem/v1/Lease';
import type { LeaseSummary__Output } from '../generated/tensormem/v1/LeaseSummary';
import type { ArrayInfo__Output } from '../generated/tensormem/v1/ArrayInfo';
import type { MemoryInfo__Output } from '../generated/tensormem/v1/MemoryInfo';
import type { MemorySnapshot__Output } from '../generated/tensormem/v1/MemorySnapshot';
import type { GetConfigResponse__Output } from '../generated/tensormem/v1/GetConfigResponse';
import type { WorkspaceServiceClient } from '../generated/tensormem/v1/WorkspaceService';
import type { WorkspaceInfo__Output } from '../generated/tensormem/v1/WorkspaceInfo';
import type { WorkspaceConfig } from '../generated/tensormem/v1/WorkspaceConfig';
import type { AcquireCudnnWorkspaceResponse__Output } from '../generated/tensormem/v1/AcquireCudnnWorkspaceResponse';
import { DataPlaneEndpoint, dataPlaneEndpointFor } from '../dataplane/data-plane-client';
import { DataPlaneConnections } from '../dataplane/data-plane-connections';
import { SharedMemoryMappings } from './shm-mappings';
import { unavailableDetailsInterceptor } from './unavailable-details';
import { checkRequestsBeforeSending, RequestChecks, shortened, type RequestProblem } from './request-checks';
import { clientError, invalidArgument, TensormemClientError } from './client-errors';
import { checkClientAddress, checkDeadlineMs, largestChunkBytes, positiveMs, requireByteCount, requireCallback, requireChunkBytes, requireTimeoutMs } from './argument-checks';
import { call, deadlineIn } from './unary-call';
import {
  checkOptionNames,
  ClientOptions,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_DATA_PLANE_CONNECT_TIMEOUT_MS,
  DEFAULT_DATA_PLANE_STALL_TIMEOUT_MS,
  DEFAULT_DATA_PLANE_THRESHOLD_BYTES,
  DEFAULT_FLOW_CONTROL_WINDOW_BYTES,
  DEFAULT_KEEPALIVE_TIME_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  LIST_LEASES_PAGE_SIZE,
  OpenLeaseOptions,
  RECONNECT_BACKOFF_MAX_MS,
} from './client-options';
import { LeaseSession } from './lease-session';

export { TensormemClientError, type ErrorReason } from './client-errors';
export {
  type AllocateOptions,
  type ClientOptions,
  type DuplicateOptions,
  type ExportOptions,
  type KeepAliveOptions,
  type WriteOptions,
  type OpenLeaseOptions,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_DATA_PLANE_CONNECT_TIMEOUT_MS,
  DEFAULT_DATA_PLANE_STALL_TIMEOUT_MS,
  DEFAULT_DATA_PLANE_THRESHOLD_BYTES,
  DATA_PLANE_RETRY_FIRST_MS,
  DATA_PLANE_RETRY_MAX_MS,
  DEFAULT_FLOW_CONTROL_WINDOW_BYTES,
  DEFAULT_KEEPALIVE_TIME_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  LIST_ARRAYS_PAGE_SIZE,
  LIST_LEASES_PAGE_SIZE,
  RECONNECT_BACKOFF_MAX_MS,
} from './client-options';
export { LeaseSession, type ArrayExport, type CudnnWorkspaceRequest } from './lease-session';
export type { WorkspaceInfo__Output as WorkspaceInfo, WorkspaceConfig };
export type { AcquireCudnnWorkspaceResponse__Output as CudnnWorkspace };
export type { ArrayInfo__Output as ArrayInfo, MemoryInfo__Output as MemoryInfo, LeaseSummary__Output as LeaseSummary, Lease__Output as Lease };

/**
 * Refuses what the client's options object holds that it does not take, naming it. The dataPlane and
 * keepalive objects were read without a check: `dataPlane: 'off'` left the data plane on, a misspelled
 * `connectTimeoutMS` kept the default, and `stallTimeoutMs: '90s'` (NaN ms) gave every large transfer
 * up at once, which moved the lease to gRPC for good.
 */
function checkClientOptions(options: ClientOptions): void {
  checkOptionNames('client', options);
  checkDeadlineMs(options.deadlineMs);
  const { dataPlane, keepalive } = options as { dataPlane?: unknown; keepalive?: unknown };
  const plane = optionObject('dataPlane', dataPlane, 'thresholdBytes, connectTimeoutMs, stallTimeoutMs');
  if (plane) {
    const { thresholdBytes, connectTimeoutMs, stallTimeoutMs } = plane;
    if (thresholdBytes !== undefined) requireByteCount('dataPlane.thresholdBytes', thresholdBytes as number);
    if (connectTimeoutMs !== undefined) requireTimeoutMs('dataPlane.connectTimeoutMs', connectTimeoutMs);
    if (stallTimeoutMs !== undefined) requireTimeoutMs('dataPlane.stallTimeoutMs', stallTimeoutMs);
  }
  // The keepalive values are checked where the channel options are made.
  optionObject('keepalive', keepalive, 'timeMs, timeoutMs');
}

/** A client option that is true, false or an object of options of its own (`takes`): the object, its option names checked; undefined otherwise. */
function optionObject(name: 'dataPlane' | 'keepalive', value: unknown, takes: string): Record<string, unknown> | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  if (typeof value !== 'object' || value === null) throw invalidArgument(name, `false, or an object of the ${name} options (${takes})`, value);
  checkOptionNames(`client.${name}`, value);
  return value as Record<string, unknown>;
}

let sharedRequestChecks: RequestChecks | undefined;

/** One RequestChecks for every client of the process (it keeps a check per message type). */
function requestChecks(): RequestChecks {
  return (sharedRequestChecks ??= new RequestChecks(loadTensormemProto().definition));
}

export class TensormemClient {
  readonly leases: LeaseServiceClient;
  readonly arrays: ArrayServiceClient;
  readonly memory: MemoryServiceClient;
  readonly workspaces: WorkspaceServiceClient;
  /** WriteArray chunk size: ClientOptions.chunkBytes, or DEFAULT_CHUNK_BYTES cut to fit maxMessageBytes. */
  readonly chunkBytes: number;
  /** The largest message either way (ClientOptions.maxMessageBytes; -1: no limit). */
  readonly maxMessageBytes: number;
  /** Shared-memory mappings of exported arrays, each mapped once and reused (LeaseSession.exportArray). */
  readonly mappings = new SharedMemoryMappings();

  /** `address` as grpc-js takes it: "127.0.0.1:7070" or "unix:/tmp/tensormemd.sock". */
  constructor(
    readonly address: string,
    private readonly options: ClientOptions = {},
  ) {
    checkClientAddress(address);
    checkClientOptions(options);
    const { maxMessageBytes: maxMessage, chunkBytes } = options;
    // -1: no limit (grpc-js's own value; tensormemctl snapshot takes a reply of any size).
    if (maxMessage !== undefined && !(Number.isSafeInteger(maxMessage) && (maxMessage > 0 || maxMessage === -1))) throw invalidArgument('maxMessageBytes', 'a whole number of bytes above 0, or -1 for no limit', maxMessage);
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (chunkBytes !== undefined) requireChunkBytes(chunkBytes, maxMessageBytes);
    this.maxMessageBytes = maxMessageBytes;
    const { proto } = loadTensormemProto();
    const channelOptions: ChannelOptions = {
      'grpc.max_receive_message_length': maxMessageBytes,
      'grpc.max_send_message_length': maxMessageBytes,
      'grpc-node.flow_control_window': DEFAULT_FLOW_CONTROL_WINDOW_BYTES,
      // A daemon that restarts is reached again within seconds of its return, however long it was gone.
      'grpc.max_reconnect_backoff_ms': RECONNECT_BACKOFF_MAX_MS,
    };
    const tls = options.tls;
    const creds = tls ? credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null) : credentials.createInsecure();
    if (tls?.serverName) channelOptions['grpc.ssl_target_name_override'] = tls.serverName;
    if (options.keepalive !== false) {
      // Only while calls are open (grpc.keepalive_permit_without_calls stays off): an idle client sends nothing.
      channelOptions['grpc.keepalive_time_ms'] = positiveMs('keepalive.timeMs', options.keepalive?.timeMs ?? DEFAULT_KEEPALIVE_TIME_MS);
      channelOptions['grpc.keepalive_timeout_ms'] = positiveMs('keepalive.timeoutMs', options.keepalive?.timeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS);
    }
    const interceptors = [unavailableDetailsInterceptor(address)];
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
    // The default shrinks to fit a smaller maxMessageBytes, as the daemon's --chunk-bytes does.
    this.chunkBytes = options.chunkBytes ?? (maxMessageBytes === -1 ? DEFAULT_CHUNK_BYTES : Math.min(DEFAULT_CHUNK_BYTES, largestChunkBytes(maxMessageBytes)));
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

  /**
   * A LeaseSession for a lease token this client was given rather than opened (a trainer's lease, as
   * `tensormemctl put --array` and `get` use it): no call is made, leaseId is empty (the daemon reads an
   * empty lease id as the token's lease) and `lease` holds only the token. No OpenLease answer named
   * the data plane to it: it takes the one its first get() answer names (GetArray's data_address,
   * under openLease's rules: not with `dataPlane: false` or TLS), so get() an array before a large
   * write or read of it; until then every transfer goes over gRPC.
   */
  sessionOf(leaseToken: string): LeaseSession {
    if (typeof leaseToken !== 'string' || leaseToken === '') throw invalidArgument('leaseToken', 'a lease token', shortened(leaseToken));
    const session = new LeaseSession(this, { lease_id: '', token: leaseToken, ttl_seconds: 0, expires_at: null, tenant: '', client_name: '' });
    session.learnsDataPlane = true;
    return session;
  }

  /** @internal Where this client reaches the data plane at `dataAddress` (an OpenLease or GetArray answer's); undefined when it must use gRPC. */
  dataPlaneEndpoint(dataAddress: string): DataPlaneEndpoint | undefined {
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
    request: { tenant?: string; pageSize?: number; pageToken?: string; order?: 'LEASE_ORDER_UNSPECIFIED' | 'LEASE_ORDER_OPENED' | 'LEASE_ORDER_BYTES' },
    token?: string,
  ): Promise<{ leases: LeaseSummary__Output[]; nextPageToken: string; totalCount: number }> {
    checkOptionNames('listLeasesPage', request);
    const response = await call<{ leases: LeaseSummary__Output[]; next_page_token: string; total_count: number }>((cb) =>
      this.leases.ListLeases(
        { tenant: request.tenant ?? '', page_size: request.pageSize ?? 0, page_token: request.pageToken ?? '', order: request.order ?? 'LEASE_ORDER_UNSPECIFIED' },
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
    // An empty EvictLeaseRequest is refused naming lease_id, which this method does not take.
    if (typeof tenant !== 'string' || tenant === '') throw invalidArgument('tenant', 'a tenant name', shortened(tenant));
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
    requireCallback('watchMemory onInfo', onInfo, false);
    requireCallback('watchMemory onError', onError);
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
