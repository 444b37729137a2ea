/**
 * tensormemd's life: configuration → backend → limits → pools → leases → gRPC server, and the drain on
 * SIGTERM/SIGINT that refuses new work, lets calls in flight finish (up to --shutdown-timeout), then
 * frees every lease and every chunk.
 */
import { DESCRIPTORS_FOR_THE_REST, openFileLimit } from './config/open-file-limit';
import { setMaxListeners } from 'node:events';
import { format } from 'node:util';
import { setLogger as setGrpcLogger } from '@grpc/grpc-js';
import type { StatusObject } from '@grpc/grpc-js';
import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import pino, { Logger } from 'pino';
import { DEFAULT_MAX_QUEUED_BYTES, LogWriter } from './observability/log-writer';
import { applyProfile } from './config/profiles';
import { ConfigFileRead, ConfigSource, DaemonConfig, configFileChanges } from './config/config';
import { isLocalAddress } from './config/listen-address';
import { warnWhenKeyReadable } from './config/tls-server-options';
import { LeaseRegistry } from './leases/lease-registry';
import { resolveLimits, sourcedFlag } from './memory/limits';
import { HeapGuard, fullCollection } from './memory/heap-guard';
import { MemoryManager } from './memory/memory-manager';
import { type MmapFiles, unsafeAncestor } from './memory/mmap-files';
import { PhysicalMemoryGuard } from './memory/physical-memory-guard';
import { removeStaleShmNames } from './memory/shm-names';
import { selectBackend } from './native/select-backend';
import { watchDeviceFaults } from './native/device-faults';
import type { NativeError } from './native/backend';
import { loadAddon } from './native/addon';
import { HealthListener, startHealthListener } from './service/health-listener';
import { RunningServer, SERVICE_NAMES, startServer } from './service/server';
import { drainCutError, shuttingDownError, type ServiceContext } from './service/service-context';
import { toServiceError } from './service/errors';
import { TransferCounters } from './service/transfer-counters';
import { formatBytes, formatIec } from './units';
import { counted } from './counted';
import { TensormemError, invalidArgument } from './errors';
import { TenantRegistry } from './leases/tenant-registry';
import { TenantSpec, readTenantsFile } from './leases/tenants-file';
import { startIdleChunkRelease } from './memory/idle-chunk-release';
import { startIdleMemoryTrim } from './memory/idle-memory-trim';
import { RunningDataPlane, startDataPlane } from './dataplane/data-plane-server';
import { readTenantsFileForReload } from './leases/tenants-file-worker';
import { TenantsReloadQueue } from './leases/tenants-reload-queue';
import { summarizeTenantsReload } from './leases/tenants-reload-summary';
import { DaemonMetrics } from './observability/daemon-metrics';
import { rpcMetricsInterceptor } from './observability/rpc-metrics';
import { StatusServer, startStatusServer } from './observability/status-server';
import { HeapGrowth, applyHeapGrowth } from './heap-growth';

/**
 * How long the drain lets a session with no call open close itself, after the GOAWAY and after its last
 * call ended (its client may still be reading that call's answer), and how often it then closes those
 * that did not (idle-sessions.ts): within twice this of its last call, or of the signal.
 */
const IDLE_SESSION_GRACE_MS = 500;
/** How many of the names a start-up sweep removed go into its stale_shm_removed (or stale_mmap_removed) line. */
export const STALE_SHM_NAMES_LOGGED = 20;

export interface Daemon {
  context: ServiceContext;
  running: RunningServer;
  /** The HTTP data plane; undefined with --data-listen off. */
  dataPlane?: RunningDataPlane;
  metrics: DaemonMetrics;
  /** The --metrics-listen server (Prometheus and the status page); undefined when off. */
  status?: StatusServer;
  shutdown(reason: string): Promise<void>;
  /**
   * Ends a drain under way now (a second SIGTERM/SIGINT): calls still in flight are cut, then every lease
   * is freed as at the end of any drain, and the "stopped" line says drained: false. Nothing outside that wait.
   */
  cutDrain(reason: string): void;
  /**
   * Rereads --tenants (SIGHUP): read, parsed and checked on a worker thread, then applied in one turn;
   * whether it took the file. A bad file is refused and logged; the old tenants stay in force. One
   * reload at a time: a call while one reads queues one more, which reads the file again after it (the
   * calls made meanwhile share it). During the drain it does nothing (false), and a reload in flight is
   * abandoned unapplied.
   */
  reloadTenants(): Promise<boolean>;
  /**
   * Settles with a reason when the daemon cannot go on and must be restarted: 'device_lost' (a sticky
   * CUDA error, native/device-faults.ts). tensormemd then drains and exits with status 1.
   */
  fatal: Promise<string>;
}

/** Guarantees must fit the smallest device pool together, or they could not all be honoured. */
export function checkGuaranteesFit(tenants: TenantSpec[], maxBytes: number[], path: string): void {
  const total = tenants.reduce((sum, tenant) => sum + tenant.deviceGuaranteeBytes, 0);
  const smallest = Math.min(...maxBytes);
  if (total > smallest) {
    throw invalidArgument('--tenants', `guarantees that add up to at most the smallest pool cap (maxbytes) ${formatBytes(smallest)}`, `${path}: ${formatBytes(total)} of guarantees`);
  }
}

/**
 * --heap-reserve must leave part of the heap limit to use: one at or above it would refuse every
 * OpenLease, AllocateArray, DuplicateArray and CreateWorkspace with HEAP_LIMIT ("the heap is nearly
 * full" with the heap all but empty), a daemon that starts and serves nothing.
 */
export function checkHeapReserve(config: Pick<DaemonConfig, 'heapReserveBytes' | 'sources' | 'rawValues'>, limitBytes: number): void {
  // The default (defaultHeapReserve) always leaves room under the limit: only a given reserve can be refused.
  const reserve = config.heapReserveBytes;
  if (reserve !== undefined && reserve > 0 && reserve >= limitBytes) {
    throw invalidArgument(
      sourcedFlag(config, 'heap-reserve'),
      `a size below the daemon's V8 heap limit, ${formatBytes(limitBytes)} (every new lease, array and workspace would be refused; raise the limit with node --max-old-space-size=MiB)`,
      config.rawValues?.['heap-reserve'] ?? formatBytes(reserve),
    );
  }
}

/**
 * Connection caps that together may take more than the open-file limit less DESCRIPTORS_FOR_THE_REST
 * (--data-max-connections when the data plane is on, plus --max-connections on each --listen address)
 * do not protect the descriptors the pools, MMAP workspaces and exports need: said once at start. A cap
 * of 0 (none) was asked for as such and is left out.
 */
export function warnWhenConnectionsPassOpenFiles(caps: { dataMaxConnections: number; maxConnections: number; listeners: number }, limit: number | undefined, log: Logger): void {
  if (limit === undefined) return;
  const total = caps.dataMaxConnections + caps.maxConnections * caps.listeners;
  if (total <= limit - DESCRIPTORS_FOR_THE_REST) return;
  const parts = [
    ...(caps.dataMaxConnections > 0 ? [`--data-max-connections ${caps.dataMaxConnections}`] : []),
    ...(caps.maxConnections > 0 ? [`--max-connections ${caps.maxConnections} on each of ${caps.listeners} --listen address(es)`] : []),
  ];
  log.warn(
    { event: 'max_connections_above_open_files', data_max_connections: caps.dataMaxConnections, max_connections: caps.maxConnections, listeners: caps.listeners, open_file_limit: limit },
    `${parts.join(' and ')} can take ${total} connections, which leaves less than ${DESCRIPTORS_FOR_THE_REST} of the daemon's ${limit} open files to the pools, MMAP workspaces and exports: clients opening connections can take them all; lower the caps or raise the limit (ulimit -n, systemd LimitNOFILE)`,
  );
}

/**
 * Open mode (no --tenants file) serves loopback and unix: addresses only: refuses any other --listen,
 * --metrics-listen or --data-listen address, naming the flag and its source. Also run by
 * `tensormemctl doctor` offline, so that it judges such a command line as the daemon does.
 */
export function checkOpenModeAddresses(config: Pick<DaemonConfig, 'listen' | 'metricsListen' | 'dataListen' | 'sources' | 'rawValues'>): void {
  const exposed = config.listen.filter((address) => !isLocalAddress(address));
  if (exposed.length > 0) {
    throw invalidArgument(sourcedFlag(config, 'listen'), 'loopback or unix: addresses only when no --tenants file is given (open mode)', exposed.join(', '));
  }
  if (config.metricsListen !== undefined && !isLocalAddress(config.metricsListen)) {
    throw invalidArgument(sourcedFlag(config, 'metrics-listen'), 'a loopback address when no --tenants file is given (open mode)', config.metricsListen);
  }
  if (config.dataListen !== undefined && !isLocalAddress(config.dataListen)) {
    throw invalidArgument(sourcedFlag(config, 'data-listen'), 'a loopback or unix: address when no --tenants file is given (open mode)', config.dataListen);
  }
}

/**
 * Said once at start: with a tenants file and no --tls-cert, the TCP addresses that are not loopback
 * carry every tenant token, lease token (gRPC metadata, the data plane's bearer header), admin token
 * (the status page) and array byte in plaintext, for anyone on the network path to read and replay.
 * Not refused: a daemon behind a TLS-terminating proxy or on a private link may mean it.
 */
export function warnWhenPlaintextExposed(config: Pick<DaemonConfig, 'listen' | 'metricsListen' | 'dataListen' | 'tls'>, log: Logger): void {
  if (config.tls) return;
  const tcp = (flag: string, address: string | undefined) => (address !== undefined && !isLocalAddress(address) ? [`${flag} ${address}`] : []);
  const exposed = [...config.listen.flatMap((address) => tcp('--listen', address)), ...tcp('--data-listen', config.dataListen), ...tcp('--metrics-listen', config.metricsListen)];
  if (exposed.length === 0) return;
  log.warn(
    { event: 'plaintext_exposed', addresses: exposed },
    `without --tls-cert: tenant, lease and admin tokens and array bytes cross the network in plaintext on ${exposed.join(', ')}; anyone on the path can read and reuse them (serve TLS with --tls-cert and --tls-key, or keep these addresses on loopback)`,
  );
}

/**
 * The daemon's log: JSON lines on stderr, written at once while stderr takes them (so none is lost at
 * process.exit) and never waited on (LogWriter): a pipe whose reader stopped holds a bounded backlog,
 * the rest is dropped and counted (`log_lines_dropped`), and a closed pipe (EPIPE) turns the log off.
 * pino's synchronous destination retried a full pipe in a loop that held the whole daemon, SIGTERM
 * included, until the reader read again; its asynchronous one retried an EPIPE at exit for ever.
 */
export function stderrLog(level: string): Logger {
  const writer = stderrWriter();
  const log = pino({ level }, writer);
  writer.onDropped = (dropped) =>
    log.warn({ event: 'log_lines_dropped', dropped }, `${dropped} log line(s) dropped: stderr took nothing while more than ${DEFAULT_MAX_QUEUED_BYTES} bytes of lines waited (a log reader that stopped reading)`);
  return log;
}

let sharedStderrWriter: LogWriter | undefined;

/** The one LogWriter of fd 2 (each daemon started in this process logs through it), flushed at exit. */
function stderrWriter(): LogWriter {
  if (sharedStderrWriter) return sharedStderrWriter;
  // Node opens a pipe or socket stderr in non-blocking mode (libuv's uv_pipe_open) once process.stderr
  // is first used: a write to a full pipe then answers EAGAIN instead of sleeping in the kernel.
  void process.stderr;
  const writer = new LogWriter(2);
  process.on('exit', () => writer.flushSync());
  return (sharedStderrWriter = writer);
}

/**
 * Sends grpc-js's own messages (its console.error lines: "E No address added out of total 1 resolved"
 * when a --listen port is taken, GRPC_TRACE output) into the daemon's log as JSON lines, event
 * "grpc_js": written bare to stderr they broke the one-JSON-object-a-line log that shippers parse.
 * grpc-js passes on only what GRPC_VERBOSITY asks for (errors, unless it is set), so its info and debug
 * lines (GRPC_TRACE's) are wanted wherever they arrive: --log-level does not drop them again (at the
 * default "info" every GRPC_TRACE line was lost), except "silent", which drops everything.
 */
export function logGrpcThrough(log: Logger): void {
  const grpcLog = log.level === 'silent' ? log : log.child({}, { level: 'debug' });
  const line = (level: 'error' | 'info' | 'debug') => (message: unknown, ...rest: unknown[]) => grpcLog[level]({ event: 'grpc_js' }, format(message, ...rest));
  setGrpcLogger({ error: line('error'), info: line('info'), debug: line('debug') });
}

/**
 * SIGHUP rereads the tenants file only: when the --config file changed since start, say which keys,
 * and that they apply after a restart (or that the file cannot be read now; the start's values stay).
 * A key the command line or the environment sets (`sources`) is no file key's to change, after a restart
 * either: it is named apart, not told to wait for a restart that would not apply it.
 */
export function noticeConfigFileChanges(file: ConfigFileRead | undefined, sources: Readonly<Record<string, ConfigSource>>, log: Logger): void {
  if (!file) return;
  const changes = configFileChanges(file);
  if ('error' in changes) {
    log.warn({ event: 'config_not_reread', config: file.path, error: changes.error }, `SIGHUP: ${file.path} cannot be read now (${changes.error}); the daemon keeps the values it read at start`);
    return;
  }
  if (changes.changed.length === 0) return;
  const isOverridden = (key: string) => sources[key] === 'flag' || sources[key] === 'env';
  const changed = changes.changed.filter((key) => !isOverridden(key));
  const overridden = changes.changed.filter(isOverridden);
  const said = [`SIGHUP: ${file.path} changed since start (${changes.changed.join(', ')})`];
  if (changed.length > 0) said.push(`SIGHUP rereads only the tenants file: restart the daemon to apply ${overridden.length > 0 ? changed.join(', ') : 'the config file'}`);
  if (overridden.length > 0) said.push(`the command line or the environment sets ${overridden.join(', ')}, which the config file cannot change, after a restart either`);
  log.warn({ event: 'config_not_reread', config: file.path, changed, ...(overridden.length > 0 ? { overridden } : {}) }, said.join('; '));
}

/**
 * --mmap-dir made (if missing) and checked at start. A --mmap-dir that was given and cannot hold MMAP
 * workspace files (a regular file, a symbolic link, another user's folder, one group or others may
 * write) is refused before anything listens: until now the daemon started, and every MMAP workspace
 * was refused later. The default, in the shared temporary folder where another user may have made it
 * first, is warned about instead (only MMAP workspaces are refused), so that nobody can keep the
 * daemon from starting by making that folder. The temporary workspace files that daemons killed
 * mid-create left in it are removed (MmapFiles.removeStaleTemporaryFiles), and a folder above it in
 * which another user could swap it for their own is warned about (unsafeAncestor).
 */
function prepareMmapDir(files: MmapFiles, given: boolean, log: Logger): void {
  try {
    files.ensureRoot();
  } catch (error) {
    if (given || !(error instanceof Error)) throw error;
    log.warn({ event: 'mmap_dir_unusable', path: files.root }, `${error.message}; until then every MMAP workspace is refused`);
    return;
  }
  const stale = files.removeStaleTemporaryFiles();
  if (stale.paths.length > 0) {
    log.warn(
      { event: 'stale_mmap_removed', count: stale.paths.length, bytes: stale.bytes, names: stale.paths.slice(0, STALE_SHM_NAMES_LOGGED) },
      `removed ${stale.paths.length} temporary MMAP workspace files (${formatIec(stale.bytes)}) from --mmap-dir ${files.root} left by daemons that died`,
    );
  }
  const swappable = unsafeAncestor(files.root);
  if (swappable !== undefined) {
    log.warn(
      { event: 'mmap_dir_swappable', path: files.root, folder: swappable },
      `--mmap-dir ${files.root} lies in ${swappable}: another user could put a folder of their own in its place, and read or change the MMAP workspace files the daemon then maps (harmless where the daemon's user is the only one, as in a container)`,
    );
  }
}

/** How long a drain cut short gives the statuses of the calls it ends to go out before it closes their connections. */
const CUT_STATUS_GRACE_MS = 500;

/**
 * The gRPC side of a drain cut short (calls-in-flight.ts): each call still in flight gets UNAVAILABLE /
 * SHUTTING_DOWN saying `why`, then, once their streams have closed or CUT_STATUS_GRACE_MS has passed
 * (a client that stopped reading), the connections with a call still open are closed: their clients see
 * them drop (UNAVAILABLE). The others get up to CUT_STATUS_GRACE_MS more for their clients to read the
 * statuses and close them, before they are closed too (idle-sessions.ts closeAll).
 */
async function endCutCalls(running: RunningServer, why: string): Promise<number> {
  const ended = running.callsInFlight.endAll(toServiceError(drainCutError(why)) as StatusObject);
  const deadline = Date.now() + CUT_STATUS_GRACE_MS;
  while (ended > 0 && running.idleSessions.openStreams > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  await running.idleSessions.closeAll(CUT_STATUS_GRACE_MS);
  return ended;
}

/** How often the end of a drain looks again for chunks that copies still pin. */
const PINNED_CHUNK_POLL_MS = 10;

/**
 * Waits until liveChunks() counts no chunk (those freed while an async copy pinned them go once the copy
 * ends, on the event loop) or `deadline` (a Date.now() value) passes.
 */
export async function waitForPinnedChunks(liveChunks: () => { device: number; host: number }, deadline: number): Promise<void> {
  for (;;) {
    const left = liveChunks();
    if (left.device + left.host === 0 || Date.now() >= deadline) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(PINNED_CHUNK_POLL_MS, Math.max(1, deadline - Date.now()))));
  }
}

/**
 * The --tenants file as the daemon starts with it; a refusal says which flag, variable or config file
 * key named the file ("/etc/tensormem/tenants.yaml: cannot read" alone did not).
 */
function readTenantsFileAtStart(config: DaemonConfig): TenantSpec[] {
  try {
    return readTenantsFile(config.tenantsFile!);
  } catch (error) {
    if (error instanceof TensormemError) error.message = `${sourcedFlag(config, 'tenants')} ${error.message}`;
    throw error;
  }
}

export async function startDaemon(config: DaemonConfig, log: Logger = stderrLog(config.logLevel)): Promise<Daemon> {
  logGrpcThrough(log);
  for (const { name, meant } of config.misspelledEnv ?? []) {
    log.warn({ event: 'env_misspelled', name, meant }, `${name} is not a tensormemd variable and is ignored; did you mean ${meant}?`);
  }
  const tenantSpecs = config.tenantsFile ? readTenantsFileAtStart(config) : undefined;
  if (!tenantSpecs) checkOpenModeAddresses(config);
  checkHeapReserve(config, getHeapStatistics().heap_size_limit);
  const heapGrowth = new HeapGrowth(config.heapGrowthPercent, (percent) => {
    applyHeapGrowth(percent);
    log.debug({ event: 'heap_growth', percent }, `V8 heap growth ${percent} % from the next full GC on (${percent === config.heapGrowthPercent ? '--heap-growth' : 'bulk streams in flight'})`);
  });
  const tenants = new TenantRegistry(tenantSpecs);
  // A sticky CUDA error (a lost context) ends the daemon: onDeviceLost, set once it can drain.
  let onDeviceLost: (cause: NativeError) => void = () => {};
  const backend = watchDeviceFaults(selectBackend(config, log), (cause) => onDeviceLost(cause));
  const staleShm = await removeStaleShmNames();
  if (staleShm.names.length > 0) {
    // The count and bytes, and a few names as examples: every name (some 70 bytes each) made one line of
    // 130 KB for 2,000 objects and megabytes for a dead daemon's tens of thousands of exports, past
    // what journald keeps as one line (LineMax, 48K), which split the JSON.
    log.warn(
      { event: 'stale_shm_removed', count: staleShm.names.length, bytes: staleShm.bytes, names: staleShm.names.slice(0, STALE_SHM_NAMES_LOGGED) },
      `removed ${staleShm.names.length} shared-memory objects (${formatIec(staleShm.bytes)}) left by daemons that died`,
    );
  }
  const devices = Array.from({ length: backend.deviceCount() }, (_, index) => backend.deviceInfo(index));
  config = applyProfile(config, { ramBytes: totalmem(), deviceTotalBytes: devices.map((device) => device.totalBytes), backend: backend.name, heapLimitBytes: getHeapStatistics().heap_size_limit });
  const limits = resolveLimits(config, backend.name, devices);
  let registry: LeaseRegistry | undefined;
  let memory: MemoryManager | undefined;
  const physical = new PhysicalMemoryGuard(limits.maxPhysicalBytes, () => {
    registry?.sweep();
    memory?.trim();
    // Freed buffers of bulk transfers stay resident in malloc's arenas (on glibc) until trimmed.
    loadAddon().trimMallocHeap();
  });
  memory = new MemoryManager(backend, limits, { poolChunkBytes: config.poolChunkBytes, asyncCopyThresholdBytes: config.asyncCopyThresholdBytes, mmapDir: config.mmapDir, mmapMaxBytes: config.mmapMaxBytes, maxMappedRegions: config.maxMappedRegions, maxTenantWaits: config.maxTenantWaits, scrub: config.scrub, heapGuard: new HeapGuard({ reserveBytes: config.heapReserveBytes }) }, physical);
  prepareMmapDir(memory.mmapFiles, config.mmapDir !== undefined, log);
  if (tenantSpecs) checkGuaranteesFit(tenantSpecs, limits.maxBytes, config.tenantsFile!);
  memory.setTenantLimits((name) => tenants.limitsOf(name));
  memory.tenants.declare(tenants.list().map((tenant) => tenant.name));
  registry = new LeaseRegistry(memory, config.leaseTtlMs, config.mirror === 'eager', log);
  registry.isTenantToken = (token) => tenants.match(token) !== undefined;
  const drainStarted = new AbortController();
  const transfers = new TransferCounters();
  // Every open WatchMemory, KeepAlive and health Watch stream listens on it (endWhenDraining): no limit,
  // or Node prints "MaxListenersExceededWarning: Possible EventTarget memory leak" from the 11th on.
  setMaxListeners(0, drainStarted.signal);
  const context: ServiceContext = { registry, tenants, memory, config, log, stopping: drainStarted.signal, heapGrowth, transfers };
  const metrics = new DaemonMetrics(context);
  let running: RunningServer;
  let dataPlane: RunningDataPlane | undefined;
  let healthListener: HealthListener | undefined;
  try {
    running = await startServer(context, [rpcMetricsInterceptor(metrics)]);
  } catch (error) {
    memory.release();
    throw error;
  }
  let status: StatusServer | undefined;
  try {
    dataPlane = await startDataPlane(context, metrics.dataPlaneObserver);
    warnWhenConnectionsPassOpenFiles({ dataMaxConnections: dataPlane ? config.dataMaxConnections : 0, maxConnections: config.maxConnections, listeners: config.listen.length }, openFileLimit(), log);
    context.dataAddress = dataPlane?.address;
    context.dataPlaneConnections = dataPlane?.server;
    if (config.metricsListen !== undefined) status = await startStatusServer(config.metricsListen, context, metrics);
    if (config.healthListen) healthListener = await startHealthListener(config.healthListen, () => !context.stopping.aborted);
  } catch (error) {
    await status?.close();
    await dataPlane?.close(0);
    running.server.forceShutdown();
    memory.release();
    throw error;
  }
  registry.startSweeping(config.reclaimIntervalMs);
  const stopIdleRelease = startIdleChunkRelease(memory, config.poolIdleReleaseMs, log);
  const stopIdleTrim = startIdleMemoryTrim(
    {
      activity: () => metrics.callsFinished + transfers.totals().reduce((sum, row) => sum + row.bytes, 0),
      unexplainedBytes: () => physical.physicalBytes() - physical.committedBytes(),
      // Two: after a closed lease of 100k arrays the second freed another 14 MB of old space (measured).
      collect: () => {
        fullCollection();
        fullCollection();
      },
      trimHeap: () => loadAddon().trimMallocHeap(),
    },
    log,
  );
  log.info(
    {
      event: 'listening',
      addresses: running.addresses,
      dataAddress: dataPlane?.address,
      dataCrc32c: dataPlane?.crc32c,
      metricsAddress: status?.address,
      healthAddress: healthListener?.address,
      backend: backend.name,
      devices: devices.map((device, index) => ({ index, name: device.name, totalBytes: device.totalBytes, maxBytes: limits.maxBytes[index] })),
      hostMaxBytes: limits.hostMaxBytes,
      maxPhysicalBytes: limits.maxPhysicalBytes,
    },
    `tensormemd serving on ${running.addresses.join(', ')}${dataPlane ? `, data plane on ${dataPlane.address}` : ''}${status ? `, metrics and status page on ${config.tls ? 'https' : 'http'}://${status.address}/` : ''} (backend ${backend.name}; ` +
      `maxbytes ${limits.maxBytes.map(formatIec).join(', ')}; host-maxbytes ${formatIec(limits.hostMaxBytes)}; maxphysicalbytes ${formatIec(limits.maxPhysicalBytes)})`,
  );
  if (tenants.openMode) log.warn({ event: 'open_mode' }, 'no tenants file: OPEN MODE, any local client may open leases (loopback and unix sockets only)');
  else log.info({ event: 'tenants_loaded', tenants: tenants.list().map((tenant) => tenant.name) }, `tenants file ${config.tenantsFile}: ${counted(tenants.list().length, 'tenant')}`);
  if (!tenants.openMode) warnWhenPlaintextExposed(config, log);
  warnWhenKeyReadable(config.tls, log);

  // The file is read, parsed and checked on a worker thread (the YAML parser took 1-3 s of the event loop
  // for 10,000 tenants; a file of a few KiB is read here); what it read is applied here, in one turn,
  // one reload at a time.
  const reloads = new TenantsReloadQueue<TenantSpec[]>({
    read: (signal) => readTenantsFileForReload(config.tenantsFile!, signal),
    apply: (next) => {
      checkGuaranteesFit(next, limits.maxBytes, config.tenantsFile!);
      const previous = tenants.list();
      tenants.reloaded(next);
      memory!.setTenantLimits((name) => tenants.limitsOf(name));
      memory!.tenants.declare(next.map((tenant) => tenant.name));
      // Tenants dropped now or earlier that have no lease left: their idle accounts and kept limits go
      // (the accounts would otherwise wait for a lease to close or a GetMemoryInfo; the limits for ever).
      const withLeases = registry!.countsByTenant();
      memory!.tenants.releaseAllIdle((name) => withLeases.has(name));
      const accounts = new Set(memory!.tenants.names());
      tenants.forgetUnusedDropped((name) => withLeases.has(name) || accounts.has(name));
      // usage() makes a fresh object: leases go on it. A spread of its twelve fields made the summary of
      // 10,000 tenants take 26 ms instead of 11 (7 without asking any use), in the turn every call waits for.
      const { text, ...summary } = summarizeTenantsReload(previous, next, (name) => Object.assign(memory!.tenants.usage(name), { leases: withLeases.get(name) ?? 0 }));
      log.info({ event: 'tenants_reloaded', tenants: next.map((tenant) => tenant.name), ...summary }, `tenants file reloaded: ${counted(next.length, 'tenant')}${text ? `; ${text}` : ''}`);
    },
    refused: (error) => {
      tenants.reloadRefused();
      log.error({ event: 'tenants_reload_failed', error: error.message }, `tenants file refused, the previous one stays in force: ${error.message}`);
    },
  });
  const reloadTenants = (): Promise<boolean> => {
    noticeConfigFileChanges(config.configFile, config.sources, log);
    if (!config.tenantsFile) {
      log.warn({ event: 'tenants_reload_skipped', reason: 'open_mode' }, 'SIGHUP: no --tenants file to reload (open mode)');
      return Promise.resolve(false);
    }
    if (reloads.closed) {
      log.warn({ event: 'tenants_reload_skipped', reason: 'draining' }, 'SIGHUP during the drain: the tenants file is not reread');
      return Promise.resolve(false);
    }
    return reloads.request();
  };

  let stopping: Promise<void> | undefined;
  // Set once the drain waits for calls in flight: cuts that wait short (cutDrain).
  let cutWait: (() => void) | undefined;
  // The signal that cut the drain short, once one has.
  let cutBy: string | undefined;
  const cutDrain = (reason: string): void => {
    // Only while calls may still be in flight: later, nothing is left to cut and the drain ends anyway.
    if (!cutWait || cutBy !== undefined) return;
    cutBy = reason;
    log.warn({ event: 'drain_cut', reason }, `${reason} during the drain: calls still in flight are cut now`);
    cutWait?.();
  };
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      // The whole server and each service: a client watching a service's health sees the drain too,
      // then its Watch ends (as WatchMemory streams do), and allocations waiting for memory fail now.
      for (const name of ['', ...SERVICE_NAMES]) running.health.setStatus(name, 'NOT_SERVING');
      drainStarted.abort();
      // A reload still reading is abandoned (its worker ended), and none starts: the drain waits for none.
      reloads.close();
      memory!.failWaiting(shuttingDownError());
      // KeepAlive streams have just ended, so no lease is renewed from here on: leases that expired
      // before the drain are closed now, and none expires during it (every lease is freed when it
      // ends), so that calls in flight may finish for --shutdown-timeout whatever the leases' TTLs.
      registry!.sweep();
      registry!.stopSweeping();
      stopIdleRelease();
      stopIdleTrim();
      log.info({ event: 'draining', reason, timeoutMs: config.shutdownTimeoutMs }, 'draining');
      // The longest the whole drain may take: calls in flight, then what they left running (below).
      const drainDeadline = Date.now() + 2 * config.shutdownTimeoutMs;
      const grpcDrained = new Promise<boolean>((resolve) => {
        // Sessions with no call open: a responsive client closes its side once it has the GOAWAY; one
        // that is stopped or gone never does, so after a moment they are closed here (idle-sessions.ts).
        const idleSweep = setInterval(() => running.idleSessions.closeIdle(IDLE_SESSION_GRACE_MS), IDLE_SESSION_GRACE_MS);
        const finish = (drained: boolean) => {
          clearTimeout(timer);
          clearInterval(idleSweep);
          resolve(drained);
        };
        const timer = setTimeout(() => finish(false), config.shutdownTimeoutMs);
        cutWait = () => {
          finish(false);
          // Data plane exchanges in flight end with their connections (its close() then stops waiting).
          dataPlane?.cut();
        };
        running.server.tryShutdown(() => finish(true));
        // Connections that never became sessions (a TLS handshake or an HTTP/2 preface still to come)
        // carry no call, and server.close() would wait for them until the timeout.
        running.connectionSetup.closePending();
      });
      const [grpcDone, dataDone] = await Promise.all([grpcDrained, dataPlane?.close(config.shutdownTimeoutMs) ?? true]);
      cutWait = undefined;
      const drained = grpcDone && dataDone && cutBy === undefined;
      if (!drained) {
        const why = cutBy !== undefined ? `${cutBy} cut the drain` : `--shutdown-timeout (${config.shutdownTimeoutMs} ms) passed`;
        const grpcCallsCut = await endCutCalls(running, why);
        running.server.forceShutdown();
        // A second signal cuts the data plane's requests too, after which its close() finds none left and
        // resolves true: the requests it counted as cut say whether it drained.
        const dataPlaneCut = dataPlane?.cutRequests ?? 0;
        const dataPlaneDrained = dataDone && dataPlaneCut === 0;
        // The exit status stays 0: under systemd a non-zero one marks a requested stop that ran out of time
        // "failed", and 1 is kept for "restart me" (Daemon.fatal). A warning says what was cut, for alerts.
        log.warn(
          { event: 'drain_incomplete', why, grpcCallsCut, dataPlaneCut, dataPlaneDrained },
          `the drain ended with calls in flight (${why}): ${grpcCallsCut} gRPC call${grpcCallsCut === 1 ? '' : 's'} cut with UNAVAILABLE / SHUTTING_DOWN` +
            `${dataPlaneCut > 0 ? `, ${dataPlaneCut} data plane request${dataPlaneCut === 1 ? '' : 's'} cut` : dataPlaneDrained ? '' : ', data plane memory still lent (data_plane_not_closed)'}; every lease is still freed and the exit status is 0`,
        );
      }
      await status?.close();
      registry!.stopSweeping();
      const freedBytes = registry!.closeAll();
      memory!.release();
      // A chunk that an async copy still pins (a DuplicateArray, write, read, sync or zero fill that the
      // cut or the timeout ended while the addon's threads copied) is freed when that copy ends. Without
      // this wait the process exited with those copies still running and "stopped" counted their chunks
      // (512 MiB of device chunks after a cut during two DuplicateArray calls).
      const pinned = backend.liveChunks();
      if (pinned.device + pinned.host > 0) {
        log.info({ event: 'drain_waiting_for_copies', liveChunks: pinned }, `waiting for the copies still running on ${pinned.device + pinned.host} chunks`);
        await waitForPinnedChunks(() => backend.liveChunks(), drainDeadline);
        backend.settleReleases();
      }
      await healthListener?.close();
      log.info({ event: 'stopped', drained, freedBytes, liveChunks: backend.liveChunks() }, 'tensormemd stopped');
    })();
    return stopping;
  };
  const fatal = new Promise<string>((resolve) => {
    onDeviceLost = (cause) => {
      log.fatal(
        { event: 'device_lost', cudaError: cause.cudaError, error: cause.message },
        `the GPU's CUDA context is lost (${cause.message}): every CUDA call of this process fails from now on; draining, then exiting with status 1 for a restart`,
      );
      resolve('device_lost');
    };
  });
  return { context, running, dataPlane, metrics, status, shutdown, cutDrain, reloadTenants, fatal };
}
