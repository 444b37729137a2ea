/**
 * Every tensormemd flag, once: its type, default, help text and seed name. --help, the environment
 * names (TENSORMEM_<NAME>), the config file keys and GetConfig are all generated from this table.
 */
import { nameLike } from '../name-like';

export type FlagType = 'size' | 'duration' | 'enum' | 'int' | 'bool' | 'string' | 'list';

export interface FlagSpec {
  /** Long name without dashes; the config file key; TENSORMEM_<NAME with - as _> in the environment. */
  name: string;
  type: FlagType;
  /** Value placeholder in --help. */
  arg?: string;
  /** Default as text; undefined means "derived" (explained in help). */
  default?: string;
  help: string;
  choices?: readonly string[];
  /** The ND4J/JavaCPP name of the same setting, where there is one. */
  seedName?: string;
  /** Size flags: what "%" is a share of. */
  percentOf?: 'RAM' | 'VRAM';
  /** Read from the command line only: no TENSORMEM_ variable, no config file key (--help, --version). */
  commandLineOnly?: boolean;
}

export const FLAGS: readonly FlagSpec[] = [
  { name: 'config', type: 'string', arg: 'FILE', help: 'Config file (YAML, or JSON when the name ends in .json) with flag names as keys. Read at start only: SIGHUP rereads the tenants file, and logs which keys of a changed config file wait for a restart (config_not_reread).' },
  {
    name: 'profile',
    type: 'enum',
    arg: 'NAME',
    choices: ['workstation', 'server', 'gpu-training', 'inference'],
    help: "The seed's recommended configuration, scaled to this machine's RAM and VRAM: sets --device-reserve, --maxbytes, --host-maxbytes and --maxphysicalbytes where no flag, variable or config file does (see README, Profiles).",
  },
  { name: 'backend', type: 'enum', arg: 'NAME', default: 'auto', choices: ['auto', 'cuda', 'host'], help: 'cuda, host (an emulated device in host RAM), or auto: cuda when a CUDA device is visible, else host.' },
  {
    name: 'maxbytes',
    type: 'size',
    arg: 'SIZE',
    percentOf: 'VRAM',
    seedName: 'org.bytedeco.javacpp.maxbytes',
    help: 'Cap of each device pool: used bytes never pass it. Default: device memory minus --device-reserve.',
  },
  { name: 'device-reserve', type: 'size', arg: 'SIZE', percentOf: 'VRAM', help: 'Left to the CUDA runtime, driver and cuDNN when --maxbytes is not set. Default: 2G on devices of 16 GiB or more, else 1G.' },
  { name: 'host-maxbytes', type: 'size', arg: 'SIZE', percentOf: 'RAM', default: '25%', help: 'Cap of host off-heap memory: host mirrors and HOST_ONLY arrays.' },
  {
    name: 'maxphysicalbytes',
    type: 'size',
    arg: 'SIZE',
    percentOf: 'RAM',
    seedName: 'org.bytedeco.javacpp.maxphysicalbytes',
    help: "Cap of the daemon's physical memory, checked before every allocation of host RAM: the larger of its resident set and its resident set at start plus the host-RAM pool chunks it holds (a chunk counts when taken, before it is written). 0 = no cap. Default: --host-maxbytes + 3 x the V8 heap limit (JavaCPP's rule), plus the emulated devices on the host backend, at most the machine's RAM.",
  },
  { name: 'emulated-device', type: 'size', arg: 'SIZE', percentOf: 'RAM', default: '25%', help: "Capacity of each of the host backend's emulated devices (host RAM, touched only when used)." },
  { name: 'emulated-devices', type: 'int', arg: 'N', default: '1', help: 'Number of emulated devices on the host backend.' },
  { name: 'allow-small-device', type: 'bool', default: 'false', help: 'Serve devices under 2 GiB (the seed: "GPUs with less than 2 GB VRAM are not suitable"); refused otherwise.' },
  { name: 'mirror', type: 'enum', arg: 'MODE', default: 'lazy', choices: ['lazy', 'eager'], help: 'Host mirrors of device arrays: allocated on first host access (lazy) or with the array (eager).' },
  {
    name: 'scrub',
    type: 'enum',
    arg: 'MODE',
    default: 'on',
    choices: ['on', 'off'],
    help: "on: the memory of every new array, cuDNN scratch and workspace buffer is zeroed before a lease sees it, so no lease can read bytes another lease (of any tenant) freed: the pools reuse memory. off: new memory holds whatever it held (faster allocation; for one trusted tenant only); AllocateArray's zero still zeroes on request.",
  },
  { name: 'lease-ttl', type: 'duration', arg: 'DURATION', default: '30s', help: 'Lease lifetime unless renewed (RenewLease, KeepAlive). At most 168h (7 days), the longest ttl_seconds a client may ask for.' },
  { name: 'reclaim-interval', type: 'duration', arg: 'DURATION', default: '1s', help: "How often expired leases are swept and their memory freed (the seed's auto-GC window). At most 24.8 days." },
  {
    name: 'listen',
    type: 'list',
    arg: 'ADDR',
    default: '127.0.0.1:7070,unix:/tmp/tensormemd.sock',
    help: 'gRPC address, repeatable: HOST:PORT (port 0 picks one) or unix:PATH. The addresses bound are logged. A connection that has not sent its HTTP/2 preface 10 s after its connect (TLS handshake included) is closed.',
  },
  {
    name: 'data-listen',
    type: 'string',
    arg: 'ADDR',
    default: '127.0.0.1:7071',
    help: 'HTTP/1.1 data plane (PUT/GET /v1/arrays/{id}, lease token as bearer): HOST:PORT (port 0 picks one), unix:PATH, or off. Loopback or unix: only without --tenants. Served as HTTPS on TCP when --tls-cert is set. The address bound is logged and returned by OpenLease and GetArray (data_address).',
  },
  {
    name: 'keepalive-time',
    type: 'duration',
    arg: 'DURATION',
    default: '30s',
    help: "How often the daemon pings each gRPC connection (an HTTP/2 PING), or off. A connection whose ping has no answer within --keepalive-timeout is closed and its calls are cancelled: a client whose host lost power or whose network went away sends no FIN, so without the pings its connection (a file descriptor, its open streams) stays open until the kernel gives up on it, which for an idle connection is never, and its release_on_disconnect lease keeps its memory until the lease's TTL. off: no pings. Under 2147483647 ms (24.8 days; grpc-js takes that value for no pings).",
  },
  {
    name: 'max-connections',
    type: 'int',
    arg: 'N',
    default: '1024',
    help: "Most gRPC connections open at once on each --listen address (TLS: from the TCP connect). One more is closed as soon as it is accepted, before TLS or HTTP/2, and counted (tensormem_grpc_connections_refused_total; a warning at most every 10 s). A connection needs no token, so without a cap anyone reaching a listener could open connections up to the daemon's open-file limit, and then no client could connect on any address and the pools, MMAP workspaces, exports and the data plane could open no file. With it, a flood of one address leaves the connections already open served, the other addresses (the unix socket of local trainers) open and the files working; new clients of the flooded address are refused until it ends. 0 = no cap. Default: 1024, or a quarter of the process's open-file limit (ulimit -n) shared by the --listen addresses when that is lower (the data plane's default takes half, which leaves a quarter to the files).",
  },
  {
    name: 'max-concurrent-streams',
    type: 'int',
    arg: 'N',
    default: '1000',
    help: "Most calls one gRPC connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). A client's further calls on that connection wait in its own HTTP/2 session until one of its calls ends; they are not refused. Without it one connection could hold any number of idle streams (60,000 idle WriteArray streams of one lease: daemon RSS 84 -> 772 MiB). 0 = no limit (HTTP/2's own, 2^32 - 1).",
  },
  {
    name: 'max-tenant-streams',
    type: 'int',
    arg: 'N',
    default: '1000',
    help: "Most streaming calls (WriteArray, ReadArray, KeepAlive, WatchMemory) one tenant may have open at once, all its connections and leases together; the tenant is that of the call's lease or tenant token (the admin token's calls and calls with no token are not counted). One more is refused before it starts: RESOURCE_EXHAUSTED, reason TOO_MANY_STREAMS, with the numbers (a warning at most every 10 s). An idle stream costs the daemon about 13 KB (9 KB of it heap), and --max-concurrent-streams and --max-connections alone would let one tenant hold about a million. 0 = no cap.",
  },
  {
    name: 'keepalive-timeout',
    type: 'duration',
    arg: 'DURATION',
    default: '60s',
    help: "How long the daemon waits for the answer to a --keepalive-time ping before closing the connection. A client whose event loop is blocked longer than this cannot answer and is taken for gone: keep it above the longest pause of any client. At most 24.8 days.",
  },
  {
    name: 'data-stall-timeout',
    type: 'duration',
    arg: 'DURATION',
    default: '60s',
    help: 'A data plane request whose connection moves no byte either way for this long (a PUT body that stops arriving, a GET whose reader stops reading) is cut: its connection is closed, a PUT writes nothing more and answers nothing, and what it wrote so far stays in the array. At most 24.8 days.',
  },
  {
    name: 'data-max-connections',
    type: 'int',
    arg: 'N',
    default: '1024',
    help: "Most data plane connections open at once, all clients together (TLS: from the TCP connect). One more is answered 503 (reason TOO_MANY_CONNECTIONS; the typed client then uses gRPC for that transfer) and closed, so that a client opening connections without end cannot take the file descriptors and memory the daemon's gRPC side needs. 0 = no cap. Default: 1024, or half the process's open-file limit (ulimit -n) when that is lower.",
  },
  {
    name: 'metrics-listen',
    type: 'string',
    arg: 'ADDR',
    default: '127.0.0.1:7072',
    help: 'HTTP address of Prometheus /metrics and the live status page (/, /events, /api/snapshot): HOST:PORT (port 0 picks one; the address bound is logged), or off. Loopback only without --tenants; with one, every path needs an admin token. HTTPS with --tls-cert (client certificates with --tls-client-ca).',
  },
  {
    name: 'health-listen',
    type: 'string',
    arg: 'HOST:PORT',
    help: 'Plaintext HTTP health endpoint for probes (Kubernetes, load balancers): GET /healthz answers 200 while the daemon runs, GET /readyz 200 while it serves and 503 while it drains. It serves no data, so any address is allowed, also in open mode. Off when unset or off.',
  },
  {
    name: 'tenants',
    type: 'string',
    arg: 'FILE',
    help: 'Tenants file (YAML, or JSON when the name ends in .json): tokens (as SHA-256), quotas, guarantees, max leases, admins. Reloaded on SIGHUP. Without one the daemon runs in open mode, on loopback and unix sockets only.',
  },
  {
    name: 'mmap-dir',
    type: 'string',
    arg: 'DIR',
    help: "Folder of MMAP workspace files (default: tensormem-mmap in the OS temp folder). A lease's temp_file_path is a relative path inside its tenant's folder DIR/tenant-<name>/, never elsewhere; temporary files go in DIR. Put it on a disk-backed file system: on tmpfs the mapped pages take RAM that no tensormem cap counts. Made (mode 0700) and checked at start: a given DIR that is a file, a link, another user's folder or writable by group or others stops the start; the default is only warned about.",
  },
  {
    name: 'mmap-maxbytes',
    type: 'size',
    arg: 'SIZE',
    default: '0',
    help: "Cap of the bytes of every MMAP workspace file mapped at once, all tenants together (their pages live in the files, outside --host-maxbytes). A workspace that would pass it is refused (RESOURCE_EXHAUSTED, reason MMAP_LIMIT) before its file is created. 0 = no cap: the file system's free space. Each tenant's own cap is quota.mmap in the tenants file.",
  },
  {
    name: 'max-mapped-regions',
    type: 'int',
    arg: 'N',
    default: '32765',
    help: "Most memory mappings the tenants' memory makes one at a time, held at once, all tenants together: each exportable array's shared-memory region (4 KiB and up, a mapping of its own) and each MMAP workspace's mapping of its file. One more is refused (RESOURCE_EXHAUSTED, reason MAPPING_LIMIT) with nothing changed. The kernel allows a process vm.max_map_count mappings; without a cap one tenant's small exportable arrays took them all and the daemon, which could then map nothing more (a pool chunk, its own heap), died with every tenant's leases. Each tenant's own part is max_mapped_regions in the tenants file (QUOTA_EXCEEDED past it). 0 = no cap; a cap not below vm.max_map_count is refused at start (the kernel would refuse first). Default: half of /proc/sys/vm/max_map_count (65530 by default), leaving the rest to the pools, the V8 heap and the libraries.",
  },
  { name: 'tls-cert', type: 'string', arg: 'FILE', help: 'PEM certificate chain: serve TLS on every TCP --listen address, the TCP data plane and --metrics-listen (unix sockets stay plaintext, guarded by file mode 0660).' },
  { name: 'tls-key', type: 'string', arg: 'FILE', help: 'PEM private key of --tls-cert.' },
  { name: 'tls-client-ca', type: 'string', arg: 'FILE', help: 'PEM CA bundle: require client certificates signed by it (mTLS). Needs --tls-cert.' },
  { name: 'max-wait', type: 'duration', arg: 'DURATION', default: '60s', help: 'Longest an AllocateArray with wait_for_memory waits for device memory (the call deadline, when sooner, wins).' },
  {
    name: 'max-tenant-waits',
    type: 'int',
    arg: 'N',
    default: '1000',
    help: "Most AllocateArray calls with wait_for_memory one tenant may have waiting for device memory at once, all its leases, connections and devices together. One more is refused at once, before it is tried: RESOURCE_EXHAUSTED, reason TOO_MANY_WAITS, with the numbers (ErrorInfo tenant, waiting_allocations, max_tenant_waits); the tenant's other calls, and other tenants' waits, go on. A waiting call is a unary call that holds about 10 KB of the daemon's heap until it is served or --max-wait passes, outside the tenant's heap share, and --max-concurrent-streams and --max-connections alone would let one tenant keep about a million waiting. 0 = no cap.",
  },
  { name: 'max-message-bytes', type: 'size', arg: 'SIZE', default: '64M', help: "Largest gRPC message sent or received (grpc-js's default is 4 MiB); above 1024 bytes, at most 4294967295 (gRPC's 4-byte message length)." },
  {
    name: 'max-partial-message-bytes',
    type: 'size',
    arg: 'SIZE',
    default: '256M',
    help: "Most bytes of gRPC request messages still arriving that the daemon holds at once, every stream of every client together. grpc-js keeps a message's bytes as they come until it is whole, before any token is checked: past this, the stream holding the most is reset (RST_STREAM ENHANCE_YOUR_CALM), so that clients sending messages in part and never finishing them (with a token or without) cannot take the daemon's memory. 0 = no budget. At least --max-message-bytes; unset, 256M or twice --max-message-bytes when that is more.",
  },
  { name: 'chunk-bytes', type: 'size', arg: 'SIZE', default: '1M', help: 'Largest data chunk of a ReadArray stream message. At most --max-message-bytes less 1024 bytes of message framing (refused otherwise); when only --max-message-bytes is given and is smaller, the default shrinks to that.' },
  { name: 'pool-chunk', type: 'size', arg: 'SIZE', default: '64M', help: 'Granularity by which a pool grows: chunks of at least this size are taken from the device or host.' },
  {
    name: 'pool-idle-release',
    type: 'duration',
    arg: 'DURATION',
    default: '60s',
    help: 'A pool chunk that has held no live block for this long goes back to the device or host (cudaFree, munmap), checked every DURATION/2 (at most every 5 s; on the cuda backend cudaFree, which waits for the device, runs on a release thread of the addon), so that what a burst took is not held for good while a steady load, which reuses its chunks, keeps them. "off": free chunks are kept until memory pressure (--maxphysicalbytes) or shutdown. At most 24.8 days.',
  },
  { name: 'async-copy-threshold', type: 'size', arg: 'SIZE', default: '256K', help: 'Copies of at least this many bytes run off the event loop (except those into an array attached to a workspace: on it, 1 MiB at a time).' },
  {
    name: 'heap-growth',
    type: 'int',
    arg: 'PERCENT',
    default: '10',
    help: "How far the daemon's V8 heap may grow past what the last full GC kept before the next one (V8's --heap-growing-percent; V8 adds at least 8 MiB plus the young generation). Bounds the garbage a burst of calls leaves in the resident set, at the price of more full GCs under load (README, Performance). While a WriteArray or ReadArray stream of 8 MiB or more runs, 300 instead (V8's own largest), so that its message buffers do not start a full GC every few MiB. Process-wide; overrides node's own --heap-growing-percent. 0 leaves V8's flags as node was started (V8's own choice, up to 4 x), streams or not.",
  },
  {
    name: 'heap-reserve',
    type: 'size',
    arg: 'SIZE',
    help: "How much of the daemon's V8 heap limit to keep free: while less is left after a full GC, calls that make new objects (AllocateArray, DuplicateArray, CreateWorkspace, OpenLease) are refused with RESOURCE_EXHAUSTED, reason HEAP_LIMIT, instead of the daemon dying of 'JavaScript heap out of memory' with every tenant's leases (an array costs about 250 B of heap whatever its size, and no byte quota bounds how many a tenant makes); a tenant holding more than its fair share of the daemon's objects is refused already at 80 % of the line. Default: what puts the line at 75 % of the old generation (the limit less V8's 48 MiB young generation, which these objects cannot use), at least 64 MiB, leaving at least 32 MiB (or half the limit) under the line (a daemon under a very small heap still starts): V8 kills a process whose old generation stays at 80 % or more while collections take most of its time. 0 = no check. A reserve not below the limit is refused at start. Raise the limit itself with node --max-old-space-size.",
  },
  { name: 'shutdown-timeout', type: 'duration', arg: 'DURATION', default: '10s', help: 'On SIGTERM/SIGINT: how long calls in flight may finish before the daemon frees everything and exits (a second signal cuts them at once; calls cut either way are logged as the warning drain_incomplete, and the exit status stays 0). At most 24.8 days.' },
  {
    name: 'cudnn-library',
    type: 'string',
    arg: 'PATH',
    help: 'cuDNN library opened at run time (dlopen, never linked) to size AcquireCudnnWorkspace: tried first, then libcudnn.so.9 and libcudnn.so.8 as the dynamic loader finds them. "none" disables cuDNN. Used on the cuda backend only; elsewhere the size comes from the request.',
  },
  { name: 'log-level', type: 'enum', arg: 'LEVEL', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], help: 'pino log level (JSON logs on stderr).' },
  { name: 'help', type: 'bool', default: 'false', help: 'Print this help and exit.', commandLineOnly: true },
  { name: 'version', type: 'bool', default: 'false', help: 'Print the version and exit.', commandLineOnly: true },
];

export function envName(flag: FlagSpec): string {
  return `TENSORMEM_${flag.name.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * TENSORMEM_ variables in `env` that no flag reads but that look like one that does (the same name
 * without underscores or in another case, or one or two letters off): a typo that would otherwise be
 * ignored without a word. Environment names are case-sensitive, so TENSORMEM_maxbytes is not read.
 */
export function misspelledEnv(env: NodeJS.ProcessEnv): Array<{ name: string; meant: string }> {
  const known = FLAGS.filter((flag) => !flag.commandLineOnly).map(envName);
  const found: Array<{ name: string; meant: string }> = [];
  for (const name of Object.keys(env)) {
    if (!name.toUpperCase().startsWith('TENSORMEM_') || known.includes(name)) continue;
    const like = nameLike(name.slice(10), known.map((flagEnv) => flagEnv.slice(10)));
    if (like !== undefined) found.push({ name, meant: `TENSORMEM_${like}` });
  }
  return found;
}

/** The flag whose name an unknown one (a config file key, a command-line flag) looks like, if any: for "did you mean". */
export function flagLike(name: string, flags: readonly FlagSpec[] = FLAGS): FlagSpec | undefined {
  const like = nameLike(name, flags.map((flag) => flag.name));
  return like === undefined ? undefined : flags.find((flag) => flag.name === like);
}

export function findFlag(name: string): FlagSpec | undefined {
  return FLAGS.find((flag) => flag.name === name);
}

/** The --help text, generated from FLAGS. */
export function helpText(program = 'tensormemd'): string {
  const lines = [
    `Usage: ${program} [flags]`,
    '',
    'Owns GPU memory on this host and lends it out over gRPC (tensormem.v1).',
    'Precedence: flags > environment (TENSORMEM_<FLAG>) > config file > --profile > defaults.',
    'Sizes: K, M, G, T are powers of 1024 (8G = 8 GiB); KiB/MiB/GiB accepted; % only where a flag says "% of RAM" or "% of VRAM".',
    'Durations: ms, s, m, h (500ms, 30s); a bare number is seconds.',
    '',
    'Flags:',
  ];
  for (const flag of FLAGS) {
    const head = `  --${flag.name}${flag.arg ? ` ${flag.arg}` : ''}`;
    const details: string[] = [];
    if (flag.choices) details.push(`one of ${flag.choices.join(', ')}`);
    // A list's default is written as its items: "a,b" read as one value a --listen flag does not take.
    if (flag.default !== undefined && flag.type !== 'bool') details.push(`default ${flag.type === 'list' ? flag.default.split(',').join(' and ') : flag.default}`);
    if (flag.percentOf) details.push(`% of ${flag.percentOf}`);
    if (flag.seedName) details.push(`seed: ${flag.seedName}`);
    if (!flag.commandLineOnly) details.push(`env ${envName(flag)}`);
    lines.push(head);
    lines.push(`      ${flag.help}`);
    if (details.length > 0) lines.push(`      (${details.join('; ')})`);
  }
  return lines.join('\n');
}
