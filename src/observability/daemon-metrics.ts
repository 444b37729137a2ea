/**
 * The daemon's Prometheus metrics (prom-client). Gauges and the pool/lease counters read live state at
 * scrape time from the same source as GetMemoryInfo (memoryInfo(), the lease registry), so nothing is
 * counted twice; only RPC latencies and failure reasons are recorded as they happen (rpc-metrics.ts).
 * Names are tensormem_*, sizes in bytes, durations in seconds, counters end in _total.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MemoryInfo } from '../generated/tensormem/v1/MemoryInfo';
import type { LeaseCloseReason } from '../leases/lease-registry';
import { packageVersion } from '../package-root';
import { memoryInfo } from '../service/memory-service';
import type { ServiceContext } from '../service/service-context';
import type { DataPlaneObserver } from '../dataplane/data-plane-server';

/** ErrorInfo reasons that mean "no memory for this request"; they are counted in tensormem_allocation_failures_total. */
export const ALLOCATION_FAILURE_REASONS: ReadonlySet<string> = new Set(['DEVICE_OUT_OF_MEMORY', 'HOST_OUT_OF_MEMORY', 'PHYSICAL_MEMORY_LIMIT', 'QUOTA_EXCEEDED', 'MMAP_LIMIT', 'MAPPING_LIMIT', 'HEAP_LIMIT', 'WORKSPACE_FULL']);

/** Upper bounds of the RPC latency buckets, in seconds: 100 µs to 60 s (streams and waits for memory run long). */
const RPC_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type Pool = NonNullable<MemoryInfo['devices']>[number] & NonNullable<MemoryInfo['host']>;
type TenantUsage = NonNullable<MemoryInfo['tenants']>[number];
type PoolField = 'max_bytes' | 'reserved_bytes' | 'used_bytes' | 'peak_used_bytes' | 'largest_free_block_bytes' | 'allocation_count' | 'allocations_total' | 'failed_allocations_total';

/** Per-pool series: one row per pool ("device:N" as in GetMemorySnapshot, and "host"). */
const POOL_GAUGES: Array<{ name: string; field: PoolField; help: string }> = [
  { name: 'tensormem_pool_max_bytes', field: 'max_bytes', help: 'Cap of the pool: --maxbytes for a device, --host-maxbytes for the host.' },
  { name: 'tensormem_pool_reserved_bytes', field: 'reserved_bytes', help: 'Bytes in chunks the pool holds from the backend.' },
  { name: 'tensormem_pool_used_bytes', field: 'used_bytes', help: 'Bytes in live blocks (aligned sizes).' },
  { name: 'tensormem_pool_peak_used_bytes', field: 'peak_used_bytes', help: 'Highest used_bytes since start.' },
  { name: 'tensormem_pool_largest_free_block_bytes', field: 'largest_free_block_bytes', help: 'Largest free block inside the reserved chunks.' },
  { name: 'tensormem_pool_live_blocks', field: 'allocation_count', help: 'Live blocks in the pool.' },
];
const POOL_COUNTERS: Array<{ name: string; field: PoolField; help: string }> = [
  { name: 'tensormem_pool_allocations_total', field: 'allocations_total', help: 'Blocks the pool handed out since start.' },
  { name: 'tensormem_pool_failed_allocations_total', field: 'failed_allocations_total', help: 'Requests the pool (or its cap) refused since start; a wait_for_memory request counts once, however often it is retried.' },
];

export class DaemonMetrics {
  readonly registry = new Registry();
  /** MemoryInfo of the scrape in progress, so that every collect callback reads one consistent picture. */
  private current?: MemoryInfo;
  private readonly rpcDuration: Histogram<'service' | 'method' | 'code'>;
  private readonly allocationFailures: Counter<'reason' | 'method'>;
  private readonly dataPlaneDuration: Histogram<'method' | 'status'>;

  constructor(private readonly context: ServiceContext) {
    const registers = [this.registry];
    const info = () => (this.current ??= memoryInfo(this.context));
    const pools = (): Array<{ pool: string; values: Partial<Pool> }> => [
      ...(info().devices ?? []).map((device) => ({ pool: `device:${device.device}`, values: device })),
      { pool: 'host', values: info().host ?? {} },
    ];

    type Series = Array<[Record<string, string>, number]>;
    // Every live series is rebuilt at scrape time from `values`; a counter's value is the running total its source keeps.
    const liveGauge = (name: string, help: string, labelNames: string[], values: () => Series) =>
      new Gauge({ name, help, labelNames, registers, collect() {
        this.reset();
        for (const [labels, value] of values()) this.set(labels, value);
      } });
    const liveCounter = (name: string, help: string, labelNames: string[], values: () => Series) =>
      new Counter({ name, help, labelNames, registers, collect() {
        this.reset();
        for (const [labels, value] of values()) this.inc(labels, value);
      } });
    const poolSeries = (field: PoolField) => (): Series => pools().map(({ pool, values }) => [{ pool }, Number(values[field] ?? 0)]);
    const deviceSeries = (field: 'total_bytes' | 'free_bytes') => (): Series => (info().devices ?? []).map((device) => [{ device: String(device.device), name: device.name ?? '' }, Number(device[field] ?? 0)]);
    const processSeries = (field: 'physical_bytes' | 'max_physical_bytes' | 'counted_physical_bytes' | 'heap_used_bytes' | 'heap_limit_bytes') => (): Series => [[{}, Number(info().process?.[field] ?? 0)]];
    const tenantSeries = (value: (tenant: TenantUsage) => Series) => (): Series =>
      (info().tenants ?? []).flatMap((tenant) => value(tenant).map(([labels, bytes]): [Record<string, string>, number] => [{ tenant: tenant.tenant ?? '', ...labels }, bytes]));
    const byMemory = (device: unknown, host: unknown, mmap: unknown): Series => [
      [{ memory: 'device' }, Number(device ?? 0)],
      [{ memory: 'host' }, Number(host ?? 0)],
      [{ memory: 'mmap' }, Number(mmap ?? 0)],
    ];

    collectDefaultMetrics({ register: this.registry });
    liveGauge('tensormem_info', 'Always 1; the labels say the version and the backend in use.', ['version', 'backend'], () => [[{ version: packageVersion(), backend: info().backend ?? '' }, 1]]);
    for (const spec of POOL_GAUGES) liveGauge(spec.name, spec.help, ['pool'], poolSeries(spec.field));
    for (const spec of POOL_COUNTERS) liveCounter(spec.name, spec.help, ['pool'], poolSeries(spec.field));
    liveGauge(
      'tensormem_pool_waiting_allocations',
      'AllocateArray calls with wait_for_memory queued for a device pool now (they wait for frees).',
      ['pool'],
      () => (info().devices ?? []).map((device): [Record<string, string>, number] => [{ pool: `device:${device.device}` }, Number(device.waiting_allocations ?? 0)]),
    );
    liveGauge('tensormem_device_total_bytes', 'Device memory as the driver (or the emulated device) reports it.', ['device', 'name'], deviceSeries('total_bytes'));
    liveGauge('tensormem_device_free_bytes', 'Free device memory as the driver (or the emulated device) reports it.', ['device', 'name'], deviceSeries('free_bytes'));
    liveGauge('tensormem_host_category_bytes', 'Host memory by use: host mirrors of device arrays, HOST_ONLY arrays, memory-mapped workspace files (mmap is outside --host-maxbytes).', ['category'], () => {
      const host = info().host ?? {};
      return [[{ category: 'mirror' }, Number(host.mirror_bytes ?? 0)], [{ category: 'host_only' }, Number(host.host_only_bytes ?? 0)], [{ category: 'mmap' }, Number(host.mmap_bytes ?? 0)]];
    });
    liveGauge('tensormem_process_physical_bytes', 'Resident set of the daemon (RSS); --maxphysicalbytes is checked against the larger of this and the RSS at start plus the host-RAM pool chunks held.', [], processSeries('physical_bytes'));
    liveGauge('tensormem_process_max_physical_bytes', 'The cap --maxphysicalbytes; 0 = none.', [], processSeries('max_physical_bytes'));
    liveGauge(
      'tensormem_process_counted_physical_bytes',
      'What --maxphysicalbytes is checked against before every allocation of host RAM: the larger of the RSS and the RSS at start plus the host-RAM pool chunks held (a chunk counts before its pages are touched, so this may be far above the RSS). Alert on this against tensormem_process_max_physical_bytes, not on the RSS.',
      [],
      processSeries('counted_physical_bytes'),
    );
    liveGauge('tensormem_process_heap_used_bytes', 'V8 heap in use.', [], processSeries('heap_used_bytes'));
    liveGauge('tensormem_process_heap_limit_bytes', 'V8 heap limit.', [], processSeries('heap_limit_bytes'));
    liveGauge('tensormem_tenant_used_bytes', "Bytes a tenant's leases hold (device: summed over devices; mmap: its MMAP workspace files).", ['tenant', 'memory'], tenantSeries((t) => byMemory(t.device_used_bytes, t.host_used_bytes, t.mmap_used_bytes)));
    liveGauge(
      'tensormem_tenant_device_used_bytes',
      "Device bytes a tenant's leases hold on each device: the figure its device quota (tensormem_tenant_quota_bytes{memory=\"device\"}) limits there.",
      ['tenant', 'device'],
      tenantSeries((t) => (t.device_used_bytes_by_device ?? []).map((bytes, i): [Record<string, string>, number] => [{ device: String(info().devices?.[i]?.device ?? i) }, Number(bytes)])),
    );
    liveGauge('tensormem_tenant_quota_bytes', "A tenant's hard quota from the tenants file (device: per device); 0 = none.", ['tenant', 'memory'], tenantSeries((t) => byMemory(t.quota_bytes, t.host_quota_bytes, t.mmap_quota_bytes)));
    liveGauge('tensormem_tenant_guarantee_bytes', 'Device bytes kept free for a tenant while others borrow; 0 = none.', ['tenant'], tenantSeries((t) => [[{}, Number(t.guarantee_bytes ?? 0)]]));
    liveGauge('tensormem_tenant_leases', 'Open leases of a tenant.', ['tenant'], tenantSeries((t) => [[{}, Number(t.leases ?? 0)]]));
    liveGauge('tensormem_tenant_max_leases', 'Most leases a tenant may hold open; 0 = no limit.', ['tenant'], tenantSeries((t) => [[{}, Number(t.max_leases ?? 0)]]));
    liveGauge('tensormem_tenant_arrays', "Live arrays of a tenant's leases.", ['tenant'], tenantSeries((t) => [[{}, Number(t.arrays ?? 0)]]));
    liveGauge('tensormem_tenant_max_arrays', 'Most live arrays a tenant may hold, all its leases together; 0 = no limit.', ['tenant'], tenantSeries((t) => [[{}, Number(t.max_arrays ?? 0)]]));
    liveGauge('tensormem_tenant_mapped_regions', "Memory mappings a tenant's leases hold (exported arrays' regions of their own, MMAP workspaces' files): its part of --max-mapped-regions.", ['tenant'], tenantSeries((t) => [[{}, Number(t.mapped_regions ?? 0)]]));
    liveGauge('tensormem_tenant_max_mapped_regions', 'Most mapped regions a tenant may hold, all its leases together; 0 = no limit.', ['tenant'], tenantSeries((t) => [[{}, Number(t.max_mapped_regions ?? 0)]]));
    liveGauge('tensormem_tenant_streams', 'Streaming calls (WriteArray, ReadArray, KeepAlive, WatchMemory) a tenant has open now, all its connections together; at most --max-tenant-streams (counted with 0, no cap, too).', ['tenant'], tenantSeries((t) => [[{}, context.tenantStreams?.openOf(t.tenant ?? '') ?? 0]]));

    const { tenants } = context;
    liveCounter(
      'tensormem_tenants_reloads_total',
      'Tenants file reloads (SIGHUP) since start, by result: reloaded (the file taken), refused (a bad or unreadable file; the previous tenants stay in force).',
      ['result'],
      () => [[{ result: 'reloaded' }, tenants.reloads.reloaded], [{ result: 'refused' }, tenants.reloads.refused]],
    );
    liveGauge('tensormem_tenants_last_reload_successful', 'Whether the last tenants file reload took the file: 1, or 1 before any; 0 when it was refused and older tenants are in force.', [], () => [[{}, tenants.lastReloadSucceeded ? 1 : 0]]);
    liveGauge('tensormem_tenants_loaded_timestamp_seconds', 'When the tenants in force were read from the tenants file (Unix time): at start, or by the last reload that took the file.', [], () => [[{}, tenants.loadedAtMs / 1000]]);

    const { registry: leases } = context;
    liveGauge('tensormem_leases', 'Open leases.', [], () => [[{}, leases.size]]);
    liveCounter('tensormem_leases_opened_total', 'Leases opened since start.', [], () => [[{}, leases.openedTotal]]);
    liveCounter(
      'tensormem_leases_closed_total',
      'Leases ended since start, by reason: closed (CloseLease), expired (reclaimed by the sweep), evicted (EvictLease), disconnected (KeepAlive release_on_disconnect), shutdown.',
      ['reason'],
      () => (Object.entries(leases.closedTotal) as Array<[LeaseCloseReason, number]>).map(([reason, count]) => [{ reason }, count]),
    );

    liveGauge('tensormem_data_plane_connections', 'HTTP data plane connections open now (TLS: from the TCP connect); at most --data-max-connections; 0 with the data plane off.', [], () => [[{}, context.dataPlaneConnections?.openConnections ?? 0]]);
    liveGauge('tensormem_grpc_partial_message_bytes', 'Bytes of gRPC request messages still arriving that the daemon holds now, all streams together; at most --max-partial-message-bytes (with 0, no budget, nothing is tracked: 0).', [], () => [[{}, context.partialMessages?.heldBytes ?? 0]]);
    liveCounter('tensormem_grpc_partial_message_resets_total', 'gRPC streams reset since start because the unfinished messages held passed --max-partial-message-bytes (the stream holding the most first).', [], () => [[{}, context.partialMessages?.resetStreams ?? 0]]);
    liveGauge('tensormem_grpc_connections', 'gRPC connections open now, every --listen address together (TLS: from the TCP connect); at most --max-connections on each address.', [], () => [[{}, context.grpcConnections?.openConnections ?? 0]]);
    liveCounter('tensormem_grpc_connections_refused_total', 'gRPC connections closed as soon as accepted since start because their --listen address had --max-connections open.', [], () => [[{}, context.grpcConnections?.refusedTotal ?? 0]]);
    liveCounter('tensormem_data_plane_connections_refused_total', 'HTTP data plane connections refused since start because --data-max-connections were open.', [], () => [[{}, context.dataPlaneConnections?.refusedTotal ?? 0]]);

    this.rpcDuration = new Histogram({
      name: 'tensormem_rpc_duration_seconds',
      help: 'gRPC calls from the first byte in to the status sent, by service, method and status code (streams included: their whole life).',
      labelNames: ['service', 'method', 'code'],
      buckets: RPC_BUCKETS_SECONDS,
      registers,
    });
    liveCounter(
      'tensormem_array_transfer_bytes_total',
      'Bytes moved between clients and arrays since start, by transport (grpc: WriteArray and ReadArray streams; data_plane: HTTP PUT and GET bodies) and direction (write: into arrays, as each piece lands; read: out of arrays, as each piece is handed to the stream or socket). Exports move no byte through the daemon and are not counted.',
      ['transport', 'direction'],
      () => (context.transfers?.totals() ?? []).map(({ transport, direction, bytes }): [Record<string, string>, number] => [{ transport, direction }, bytes]),
    );
    this.dataPlaneDuration = new Histogram({
      name: 'tensormem_data_plane_request_duration_seconds',
      help: 'HTTP data plane requests from their head read to their answer taken by the socket, by method (PUT, GET, HEAD, other) and HTTP status (aborted: the connection went away first). A head that cannot be parsed (400, 414, 431) is no request here, and a connection refused for --data-max-connections is counted in tensormem_data_plane_connections_refused_total.',
      labelNames: ['method', 'status'],
      buckets: RPC_BUCKETS_SECONDS,
      registers,
    });
    this.allocationFailures = new Counter({
      name: 'tensormem_allocation_failures_total',
      help: 'Calls refused for want of memory, by google.rpc.ErrorInfo reason (DEVICE_OUT_OF_MEMORY, HOST_OUT_OF_MEMORY, PHYSICAL_MEMORY_LIMIT, QUOTA_EXCEEDED, MMAP_LIMIT, MAPPING_LIMIT, HEAP_LIMIT, WORKSPACE_FULL; QUOTA_EXCEEDED also counts the tenant\'s max_arrays, max_mapped_regions and, as method OpenLease, max_leases) and method: the gRPC method, or DataPlaneGet / DataPlanePut for the HTTP data plane.',
      labelNames: ['reason', 'method'],
      registers,
    });
  }

  /** gRPC calls finished since start (the idle memory trim's sign of activity). */
  callsFinished = 0;

  /** Records one finished gRPC call. `path` is "/package.Service/Method"; `reason` is its ErrorInfo reason, if it failed with one. */
  observeRpc(path: string, code: string, seconds: number, reason?: string): void {
    this.callsFinished++;
    const slash = path.lastIndexOf('/');
    const service = path.slice(1, slash);
    const method = path.slice(slash + 1);
    this.rpcDuration.observe({ service, method, code }, seconds);
    if (reason !== undefined && ALLOCATION_FAILURE_REASONS.has(reason)) this.allocationFailures.inc({ reason, method });
  }

  /**
   * What the data plane reports: each request's end (tensormem_data_plane_request_duration_seconds) and
   * each failure's ErrorInfo reason (before its answer or mid-body). A GET needs a host mirror as
   * ReadArray does and is refused for the same reasons; without the failures, a refusal the pool counted
   * in tensormem_pool_failed_allocations_total was in no series by reason.
   */
  readonly dataPlaneObserver: DataPlaneObserver = {
    failed: (method, reason) => {
      if (ALLOCATION_FAILURE_REASONS.has(reason)) this.allocationFailures.inc({ reason, method: method === 'PUT' ? 'DataPlanePut' : 'DataPlaneGet' });
    },
    ended: (method, status, seconds) => this.dataPlaneDuration.observe({ method, status }, seconds),
  };

  /** The text exposition format, every live value read now. */
  async scrape(): Promise<string> {
    this.current = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      this.current = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
