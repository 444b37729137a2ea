/**
 * The daemon's configuration: flags > environment (TENSORMEM_*) > config file > --profile > defaults,
 * with the source of every value kept for GetConfig. The profile layer needs the machine's RAM and
 * VRAM, so it is applied once the backend is up (applyProfile in ./profiles). Values whose meaning depends on the machine ("%", the
 * VRAM-derived --maxbytes) stay as SizeSpec here and are resolved by src/memory/limits.ts once the
 * backend is up.
 */
import { DATA_PLANE_SHARE, GRPC_SHARE, connectionCapFor, openFileLimit } from './open-file-limit';
import { mappedRegionsCapFor, maxMapCount } from './map-count-limit';
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { MAX_FLOW_DEPTH, parseDocumentGuarded } from './yaml-nesting';
import { Document, LineCounter, isMap, isScalar } from 'yaml';
import { invalidArgument } from '../errors';
import { FLAGS, FlagSpec, envName, findFlag, flagLike, misspelledEnv } from './flags';
import { parseHostPort, unixSocketPath } from './listen-address';
import { SizeSpec, parseDurationMs, parseSize } from './sizes';
import { JsonSyntaxError, parseJson } from './json-syntax';
import { MAX_TIMER_MS } from '../long-timeout';

/** `profile:NAME` marks a value set by --profile NAME (applyProfile). */
export type ConfigSource = 'flag' | 'env' | 'file' | 'default' | `profile:${string}`;

export interface DaemonConfig {
  backend: 'auto' | 'cuda' | 'host';
  /** --profile: applied by applyProfile (./profiles) once RAM and VRAM are known. */
  profile?: 'workstation' | 'server' | 'gpu-training' | 'inference';
  maxBytes?: SizeSpec;
  deviceReserve?: SizeSpec;
  /** --profile on devices of different sizes: each device's reserve in bytes (by index), in place of one --device-reserve. */
  deviceReserveByDevice?: number[];
  hostMaxBytes: SizeSpec;
  maxPhysicalBytes?: SizeSpec;
  emulatedDevice: SizeSpec;
  emulatedDevices: number;
  allowSmallDevice: boolean;
  mirror: 'lazy' | 'eager';
  /** --scrub: zero new arrays' and workspace buffers' memory before a lease sees it. */
  scrub: boolean;
  leaseTtlMs: number;
  reclaimIntervalMs: number;
  listen: string[];
  /** HTTP data plane address (HOST:PORT or unix:PATH); undefined = off (`--data-listen off`). */
  dataListen?: string;
  /** --health-listen: HOST:PORT of the plaintext HTTP health endpoint; undefined = off. */
  healthListen?: string;
  maxMessageBytes: number;
  /** --max-partial-message-bytes: bytes of unfinished gRPC request messages held at once (0: no budget). */
  maxPartialMessageBytes: number;
  chunkBytes: number;
  poolChunkBytes: number;
  /** --pool-idle-release: how long a chunk with no live block is kept before it goes back; 0 = off (kept). */
  poolIdleReleaseMs: number;
  asyncCopyThresholdBytes: number;
  /** --keepalive-time: how often each gRPC connection is pinged; 0 = off. */
  keepaliveTimeMs: number;
  /** --keepalive-timeout: a ping unanswered this long closes its connection. */
  keepaliveTimeoutMs: number;
  /** --max-connections: gRPC connections open at once on each --listen address; 0 = no cap. */
  maxConnections: number;
  /** --max-concurrent-streams: calls one gRPC connection may have open at once; 0 = HTTP/2's own limit. */
  maxConcurrentStreams: number;
  /** --max-tenant-streams: streaming calls one tenant may have open at once, all connections together; 0 = no cap. */
  maxTenantStreams: number;
  /** --max-tenant-waits: AllocateArray calls with wait_for_memory one tenant may have waiting at once, all devices together; 0 = no cap. */
  maxTenantWaits: number;
  /** --data-stall-timeout: a data plane request idle this long either way is cut. */
  dataStallTimeoutMs: number;
  /** --data-max-connections: data plane connections open at once; 0 = no cap. */
  dataMaxConnections: number;
  /** --heap-growth: V8's heap growing percent; 0 = V8's default. */
  heapGrowthPercent: number;
  /** --heap-reserve in bytes; undefined = the default (memory/heap-guard.ts); 0 = no check. */
  heapReserveBytes?: number;
  shutdownTimeoutMs: number;
  maxWaitMs: number;
  logLevel: string;
  /** Path of the tenants file; undefined = open mode. */
  tenantsFile?: string;
  /** TENSORMEM_ variables no flag reads that look like one that does (logged as a warning at start). */
  misspelledEnv?: Array<{ name: string; meant: string }>;
  /** --mmap-dir: root of MMAP workspace files; undefined = the default (memory/mmap-files.ts). */
  mmapDir?: string;
  /** --mmap-maxbytes: cap of the bytes of all mapped MMAP workspace files; 0 = none. */
  mmapMaxBytes: number;
  /** --max-mapped-regions: dedicated (exportable) chunks and MMAP workspace mappings held at once; 0 = none. */
  maxMappedRegions: number;
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
  /** HOST:PORT of the metrics and status page listener; undefined = off. */
  metricsListen?: string;
  help: boolean;
  version: boolean;
  /** Where each flag's value came from, by flag name. */
  sources: Record<string, ConfigSource>;
  /** Each flag's value as given (text), for GetConfig. */
  rawValues: Record<string, string>;
  /** The --config file and what it said when it was read (at start): SIGHUP says which of its keys changed since. */
  configFile?: ConfigFileRead;
}

/** A --config file's path and its values (by flag name) as read once. */
export interface ConfigFileRead {
  path: string;
  values: ReadonlyMap<string, string | string[]>;
}

/**
 * Room --chunk-bytes leaves below --max-message-bytes: a ReadArray message is one chunk plus its
 * protobuf framing (offset and length fields, about 11 bytes), and a message over --max-message-bytes
 * fails the read.
 */
export const MESSAGE_FRAMING_HEADROOM_BYTES = 1024;

/**
 * The largest --max-message-bytes: gRPC frames each message with a 4-byte length, so no message is
 * larger. It also keeps --chunk-bytes below 4 GiB, the most one Node Buffer holds: a ReadArray chunk
 * buffer and a data plane GET piece (a view of --chunk-bytes) are each one Buffer, and at 4 GiB or
 * more every ReadArray and every GET of more than 4 GiB failed with INTERNAL.
 */
export const MAX_MESSAGE_BYTES = 2 ** 32 - 1;

/** Longest TTL a client may ask for (OpenLease, RenewLease ttl_seconds), and so the longest --lease-ttl. */
export const MAX_TTL_SECONDS = 7 * 24 * 3600;

/** `origin`: where an env or file value was read (TENSORMEM_MAXBYTES; /etc/tensormemd.yaml: maxbytes), for error messages. */
type RawValues = Map<string, { value: string | string[]; source: ConfigSource; origin?: string }>;

/** A list flag's value as text (an environment variable, a config file's string): comma-separated items. */
function splitList(text: string): string[] {
  return text.split(',');
}

/** Reads argv (without node and script), env and the config file into a DaemonConfig; throws TensormemError naming the flag on bad input. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const fromFlags = parseArgv(argv);
  const raw: RawValues = new Map();
  for (const flag of FLAGS) {
    if (flag.default !== undefined) raw.set(flag.name, { value: flag.type === 'list' ? splitList(flag.default) : flag.default, source: 'default' });
  }
  const configPath = fromFlags.get('config')?.value ?? env[envName(findFlag('config')!)];
  let configFile: ConfigFileRead | undefined;
  if (typeof configPath === 'string' && configPath !== '') {
    const configField = fromFlags.has('config') ? '--config' : `--config (from ${envName(findFlag('config')!)})`;
    configFile = { path: configPath, values: readConfigFile(configPath, configField) };
    for (const [name, value] of configFile.values) raw.set(name, { value, source: 'file', origin: `${configPath}: ${name}` });
    raw.set('config', { value: configPath, source: fromFlags.has('config') ? 'flag' : 'env' });
  }
  for (const flag of FLAGS) {
    if (flag.commandLineOnly) continue;
    const text = env[envName(flag)];
    if (text !== undefined && text !== '') raw.set(flag.name, { value: flag.type === 'list' ? splitList(text) : text, source: 'env', origin: envName(flag) });
  }
  for (const [name, entry] of fromFlags) raw.set(name, entry);
  return { ...build(raw), misspelledEnv: misspelledEnv(env), configFile };
}

/**
 * The --config file read again (SIGHUP), against what it said at start: the keys added, removed or
 * changed since (sorted), or why it cannot be read now. The daemon applies a config file at start only.
 */
export function configFileChanges(read: ConfigFileRead): { changed: string[] } | { error: string } {
  let now: Map<string, string | string[]>;
  try {
    now = readConfigFile(read.path, '--config');
  } catch (error) {
    return { error: (error as Error).message };
  }
  const keys = new Set([...read.values.keys(), ...now.keys()]);
  const changed = [...keys].filter((key) => JSON.stringify(read.values.get(key)) !== JSON.stringify(now.get(key)));
  return { changed: changed.sort() };
}

/**
 * `--help` or `--version` on a command line that parses: answered from the command line alone, before
 * the environment and the config file are read, so that a bad TENSORMEM_ variable or config file (whose
 * refusal says "Run tensormemd --help") does not refuse the help too. Undefined otherwise (loadConfig
 * then reports what is wrong with the command line).
 */
export function commandLineOnlyRequest(argv: readonly string[]): 'help' | 'version' | undefined {
  let flags: RawValues;
  try {
    flags = parseArgv(argv);
  } catch {
    return undefined;
  }
  if (flags.get('help')?.value === 'true') return 'help';
  if (flags.get('version')?.value === 'true') return 'version';
  return undefined;
}

function parseArgv(argv: readonly string[]): RawValues {
  const values: RawValues = new Map();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      // `--allow-small-device yes`: a switch takes no value after it (only --NAME=false).
      const before = i > 0 && !argv[i - 1].includes('=') ? findFlag(argv[i - 1].slice(2)) : undefined;
      if (before?.type === 'bool') throw invalidArgument(`--${before.name}`, `no value (a switch: --${before.name} alone, or --${before.name}=false)`, arg);
      throw invalidArgument('arguments', 'a flag starting with -- (see --help)', arg);
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const flag = findFlag(name);
    if (!flag) throw invalidArgument('arguments', 'a known flag (see --help)', withGuess(arg, flagLike(name), '--'));
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (flag.type === 'bool') value = 'true';
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    // A flag whose value is missing would otherwise take the next flag as its value (`--mmap-dir
    // --allow-small-device`: MMAP files under ./--allow-small-device, and no small device allowed).
    else if (i + 1 < argv.length) throw invalidArgument(`--${name}`, `a value (${flag.arg ?? 'value'}; --${name}=VALUE for one that starts with --)`, argv[i + 1]);
    else throw invalidArgument(`--${name}`, `a value (${flag.arg ?? 'value'})`, '(nothing)');
    if (flag.type === 'list') {
      const previous = values.get(name);
      const list = previous && Array.isArray(previous.value) ? previous.value : [];
      values.set(name, { value: [...list, value], source: 'flag' });
    } else {
      values.set(name, { value, source: 'flag' });
    }
  }
  return values;
}

/** An unknown flag name as received, with the known flag it looks like: `"max_bytes" (did you mean maxbytes?)`. */
function withGuess(received: string, like: FlagSpec | undefined, prefix: string): string | { toString(): string } {
  return like === undefined ? received : { toString: () => `${JSON.stringify(received)} (did you mean ${prefix}${like.name}?)` };
}

function readConfigFile(path: string, field: string): Map<string, string | string[]> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalidArgument(field, 'a readable file', `${path} (${(error as Error).message})`);
  }
  // One document serves the repeated-key check and, for YAML, the values: parse(text) would make the same
  // one again (parseDocument's defaults; uniqueKeys only adds DUPLICATE_KEY errors, which the check
  // does not read).
  const { deep, document: yaml, lines } = parseDocumentGuarded(text);
  const nesting = deep?.kind === 'block' ? 'block lists and mappings (- , ? or an indented key:)' : 'lists and mappings ([ ] and { })';
  if (deep) throw invalidArgument(field, `${nesting} nested at most ${MAX_FLOW_DEPTH} deep`, { toString: () => `${path}:${deep.line}:${deep.column}: one nested deeper` });
  const repeated = repeatedKey(yaml, lines);
  if (repeated) {
    const [first, second] = repeated.values;
    throw invalidArgument(
      `${path}: ${repeated.key}`,
      'each flag name once (a second would replace the first without a word)',
      { toString: () => `it twice: ${JSON.stringify(first.value)} at line ${first.line} and ${JSON.stringify(second.value)} at line ${second.line}` },
    );
  }
  let document: unknown;
  try {
    document = path.endsWith('.json') ? parseJson(text) : valuesOf(yaml);
  } catch (error) {
    throw invalidArgument(field, 'valid YAML or JSON', error instanceof JsonSyntaxError ? `${path}:${error.line}:${error.column}: ${error.detail}` : `${path}: ${(error as Error).message}`);
  }
  const values = new Map<string, string | string[]>();
  if (document === null || document === undefined) return values;
  if (typeof document !== 'object' || Array.isArray(document)) throw invalidArgument(field, 'a mapping of flag names to values', path);
  for (const [key, value] of Object.entries(document as Record<string, unknown>)) {
    const flag = findFlag(key);
    if (key === 'config') throw invalidArgument(`${path}: ${key}`, 'a flag name other than config (a config file cannot name another: give it with --config or TENSORMEM_CONFIG)', key);
    if (!flag || flag.commandLineOnly) throw invalidArgument(`${path}: ${key}`, 'a known flag name (see --help; help and version are command-line flags only)', withGuess(key, flagLike(key, FLAGS.filter((known) => !known.commandLineOnly)), ''));
    // A list flag takes a YAML/JSON list, or a string of comma-separated items as its environment variable does.
    // Every value (and list item) is a string, number or boolean: a key left empty (YAML null), a mapping,
    // or a list for a flag that takes one value would otherwise be read as the text "null",
    // "[object Object]" or the items joined with commas (--mmap-dir "null", a folder ./null).
    const scalar = (item: unknown): item is string | number | boolean => typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean';
    const received = { toString: () => (value === null ? 'an empty value (leave the key out for the default)' : (JSON.stringify(value) ?? String(value))) };
    const refuse = (expected: string) => invalidArgument(`--${key} (from ${path}: ${key})`, expected, received);
    const what = flag.arg ?? (flag.type === 'bool' ? 'true or false' : 'a string, number or boolean');
    if (Array.isArray(value)) {
      if (flag.type !== 'list') throw refuse(`one value (${what}), not a list`);
      if (!value.every(scalar)) throw refuse('a list of addresses (strings)');
      values.set(key, value.map(String));
    } else {
      if (!scalar(value)) throw refuse(flag.type === 'list' ? 'an address or a list of addresses' : `a value (${what})`);
      values.set(key, flag.type === 'list' ? splitList(String(value)) : String(value));
    }
  }
  return values;
}

/**
 * A flag name the config file's top-level mapping gives twice, with both values and their lines. JSON.parse
 * keeps the last of two equal keys without a word, so a .json file whose later "maxbytes" undid an earlier
 * one started the daemon with a cap nobody saw; YAML refused the same file only as a parse error quoting
 * the text. Undefined when no key repeats, or the text is not a mapping (the parse below reports that).
 */
function repeatedKey(document: Document.Parsed, lines: LineCounter): { key: string; values: Array<{ value: unknown; line: number }> } | undefined {
  if (!isMap(document.contents)) return undefined;
  const seen = new Map<string, { value: unknown; line: number }>();
  for (const pair of document.contents.items) {
    if (!isScalar(pair.key) || pair.key.range == null) continue;
    const key = String(pair.key.value);
    const entry = { value: isScalar(pair.value) ? pair.value.value : (pair.value as { toJSON?: () => unknown } | null)?.toJSON?.() ?? null, line: lines.linePos(pair.key.range[0]).line };
    const previous = seen.get(key);
    if (previous) return { key, values: [previous, entry] };
    seen.set(key, entry);
  }
  return undefined;
}

/**
 * What the yaml package's parse(text) returns for the text of `document` (its public-api.js parse, with
 * no reviver or options): each warning emitted as a process warning, the first error thrown (its message
 * prettified: line, column and the line quoted), else the document as plain values.
 */
function valuesOf(document: Document.Parsed): unknown {
  if (document.options.logLevel === 'debug' || document.options.logLevel === 'warn') for (const warning of document.warnings) process.emitWarning(warning);
  if (document.errors.length > 0) throw document.errors[0];
  return document.toJS({ reviver: undefined });
}

function build(raw: RawValues): DaemonConfig {
  const text = (name: string): string | undefined => {
    const entry = raw.get(name);
    if (entry === undefined) return undefined;
    return Array.isArray(entry.value) ? entry.value.join(',') : entry.value;
  };
  /** The flag an error names, with the variable or config file key its value came from when not a flag. */
  const field = (name: string) => {
    const origin = raw.get(name)?.origin;
    return origin === undefined ? `--${name}` : `--${name} (from ${origin})`;
  };
  const size = (name: string): SizeSpec | undefined => {
    const value = text(name);
    return value === undefined ? undefined : parseSize(value, field(name), findFlag(name)!.percentOf !== undefined);
  };
  const bytes = (name: string): number => {
    const spec = size(name)!;
    if (spec.kind !== 'bytes') throw invalidArgument(field(name), 'a size in bytes (not %)', text(name));
    return spec.bytes;
  };
  const positiveBytes = (name: string): number => {
    const value = bytes(name);
    if (value <= 0) throw invalidArgument(field(name), 'a size above 0', text(name));
    return value;
  };
  const duration = (name: string): number => {
    const value = parseDurationMs(text(name)!, field(name));
    if (value <= 0) throw invalidArgument(field(name), 'a duration above 0', text(name));
    return value;
  };
  /** A duration that arms one timer: setTimeout fires at once past 2^31 - 1 ms, so longer ones are refused. */
  const timerDuration = (name: string): number => {
    const value = duration(name);
    if (value > MAX_TIMER_MS) throw invalidArgument(field(name), `a duration of at most ${MAX_TIMER_MS} ms (about 24.8 days)`, text(name));
    return value;
  };
  /** --lease-ttl: at most the longest TTL a client may ask for (ttl_seconds, a uint32 in every reply, wrapped past it). */
  const leaseTtl = (): number => {
    const value = duration('lease-ttl');
    if (value > MAX_TTL_SECONDS * 1000) throw invalidArgument(field('lease-ttl'), `a duration of at most ${MAX_TTL_SECONDS / 3600}h (7 days, the longest TTL OpenLease takes)`, text('lease-ttl'));
    return value;
  };
  const choice = <T extends string>(name: string): T => {
    const flag = findFlag(name)!;
    const value = text(name)!;
    if (!flag.choices!.includes(value)) throw invalidArgument(field(name), `one of ${flag.choices!.join(', ')}`, value);
    return value as T;
  };
  const bool = (name: string): boolean => {
    const value = text(name)!;
    if (value !== 'true' && value !== 'false') throw invalidArgument(field(name), 'true or false', value);
    return value === 'true';
  };
  const int = (name: string, min: number, max: number): number => {
    const value = text(name)!;
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw invalidArgument(field(name), `an integer from ${min} to ${max}`, value);
    return n;
  };
  /**
   * A file that security rests on (--tenants, the TLS files): given empty (a config file's "", a flag
   * whose variable was unset), it would read as "none" and serve open mode, plaintext or TLS without
   * client certificates with no word, so it is refused. An empty variable is unset, as for every flag.
   */
  const securityFile = (name: string): string | undefined => {
    const value = text(name);
    if (value !== undefined && value.trim() === '') throw invalidArgument(field(name), `a file path (leave --${name} out for none)`, value);
    return value;
  };
  const listValue = raw.get('listen')!.value;
  const listen = (Array.isArray(listValue) ? listValue : [listValue]).map((s) => s.trim()).filter((s) => s !== '');
  if (listen.length === 0) throw invalidArgument(field('listen'), 'at least one address (HOST:PORT or unix:PATH)', '(none)');
  for (const address of listen) listenAddress(address, field('listen'));

  const sources: Record<string, ConfigSource> = {};
  const rawValues: Record<string, string> = {};
  for (const [name, entry] of raw) {
    sources[name] = entry.source;
    rawValues[name] = Array.isArray(entry.value) ? entry.value.join(',') : entry.value;
  }
  const maxMessageBytes = positiveBytes('max-message-bytes');
  if (maxMessageBytes <= MESSAGE_FRAMING_HEADROOM_BYTES) {
    throw invalidArgument(field('max-message-bytes'), `a size above ${MESSAGE_FRAMING_HEADROOM_BYTES} bytes (room for a ReadArray chunk and its framing)`, text('max-message-bytes'));
  }
  if (maxMessageBytes > MAX_MESSAGE_BYTES) {
    throw invalidArgument(
      field('max-message-bytes'),
      `a size of at most ${MAX_MESSAGE_BYTES} bytes (gRPC frames a message with a 4-byte length)`,
      `${text('max-message-bytes')} (${maxMessageBytes} bytes)`,
    );
  }
  let chunkBytes = positiveBytes('chunk-bytes');
  if (chunkBytes + MESSAGE_FRAMING_HEADROOM_BYTES > maxMessageBytes && raw.get('chunk-bytes')?.source === 'default') {
    // Only --max-message-bytes was given: the default chunk shrinks to fit it.
    chunkBytes = maxMessageBytes - MESSAGE_FRAMING_HEADROOM_BYTES;
    rawValues['chunk-bytes'] = String(chunkBytes);
  } else if (chunkBytes + MESSAGE_FRAMING_HEADROOM_BYTES > maxMessageBytes) {
    throw invalidArgument(
      field('chunk-bytes'),
      `a size of at most ${maxMessageBytes - MESSAGE_FRAMING_HEADROOM_BYTES} bytes (--max-message-bytes ${maxMessageBytes} less ${MESSAGE_FRAMING_HEADROOM_BYTES} bytes of ReadArray message framing: chunk-bytes + ${MESSAGE_FRAMING_HEADROOM_BYTES} <= max-message-bytes)`,
      `${text('chunk-bytes')} (${chunkBytes} bytes)`,
    );
  }
  // grpc-js sends no pings at its own "no keepalive" value, 2^31 - 1 ms (the longest timer): one less at most.
  function keepaliveTime(): number {
    if (text('keepalive-time') === 'off') return 0;
    const value = timerDuration('keepalive-time');
    if (value >= MAX_TIMER_MS) throw invalidArgument(field('keepalive-time'), `off or a duration under ${MAX_TIMER_MS} ms (grpc-js takes ${MAX_TIMER_MS} ms for no pings at all)`, text('keepalive-time'));
    return value;
  }
  // A flag left at its default whose value follows from the machine or another flag: `derive(default)`
  // takes its place, and GetConfig shows that value. Undefined when the flag was given.
  function derivedDefault(name: string, given: number, derive: (given: number) => number): number | undefined {
    if (raw.get(name)?.source !== 'default') return undefined;
    const derived = derive(given);
    if (derived !== given) rawValues[name] = String(derived);
    return derived;
  }
  // Unset, at least twice --max-message-bytes; given, 0 or at least one whole message.
  function maxPartialMessageBytes(): number {
    const given = bytes('max-partial-message-bytes');
    const derived = derivedDefault('max-partial-message-bytes', given, (value) => Math.max(value, 2 * maxMessageBytes));
    if (derived !== undefined) return derived;
    if (given !== 0 && given < maxMessageBytes) {
      throw invalidArgument(
        field('max-partial-message-bytes'),
        `0 (no budget) or a size of at least --max-message-bytes (${maxMessageBytes} bytes): a message of that size must be able to arrive`,
        `${text('max-partial-message-bytes')} (${given} bytes)`,
      );
    }
    return given;
  }
  // Unset, a connection cap leaves part of the open-file limit to the rest of the daemon (src/config/open-file-limit.ts).
  function connectionCap(name: 'data-max-connections' | 'max-connections', share: number): number {
    const given = int(name, 0, 1_000_000);
    return derivedDefault(name, given, (cap) => connectionCapFor(openFileLimit(), cap, share)) ?? given;
  }
  // Unset, half of the kernel's limit of mappings per process, which the pools and V8 need some of too.
  // Given, below that limit: at or past it the kernel refuses a mapping before the cap refuses one, and
  // what it refuses may be V8's or a pool's (100000 under vm.max_map_count 65530: the daemon aborted
  // "Zone Allocation failed - process out of memory" at 65,000 exportable arrays, every lease lost).
  function maxMappedRegions(): number {
    const given = int('max-mapped-regions', 0, 2 ** 31 - 1);
    const limit = maxMapCount();
    const derived = derivedDefault('max-mapped-regions', given, (cap) => mappedRegionsCapFor(limit, cap));
    if (derived !== undefined) return derived;
    if (given !== 0 && limit !== undefined && given >= limit) {
      throw invalidArgument(
        field('max-mapped-regions'),
        `0 (no cap) or a number below vm.max_map_count, ${limit} (the kernel's limit of mappings, which the pools, the V8 heap and the libraries share; the default is half of it, ${mappedRegionsCapFor(limit, given)}), or a larger vm.max_map_count (sysctl)`,
        text('max-mapped-regions'),
      );
    }
    return given;
  }
  const dataListenAddress = dataListen(text('data-listen'), field('data-listen'));
  const metricsListenAddress = metricsListen(text('metrics-listen'), field('metrics-listen'));
  const healthListenAddress = healthAddress(text('health-listen'), field('health-listen'));
  refuseSharedAddresses([
    ...listen.map((address) => ({ name: 'listen', field: field('listen'), address })),
    { name: 'data-listen', field: field('data-listen'), address: dataListenAddress },
    { name: 'metrics-listen', field: field('metrics-listen'), address: metricsListenAddress },
    { name: 'health-listen', field: field('health-listen'), address: healthListenAddress },
  ]);
  const dataMaxConnections = () => connectionCap('data-max-connections', DATA_PLANE_SHARE);
  // Per listener: the gRPC listeners together take GRPC_SHARE.
  const maxConnections = () => connectionCap('max-connections', GRPC_SHARE / Math.max(1, listen.length));
  return {
    backend: choice('backend'),
    profile: text('profile') === undefined ? undefined : choice<NonNullable<DaemonConfig['profile']>>('profile'),
    maxBytes: size('maxbytes'),
    deviceReserve: size('device-reserve'),
    hostMaxBytes: size('host-maxbytes')!,
    maxPhysicalBytes: size('maxphysicalbytes'),
    emulatedDevice: size('emulated-device')!,
    emulatedDevices: int('emulated-devices', 1, 16),
    allowSmallDevice: bool('allow-small-device'),
    mirror: choice('mirror'),
    scrub: choice('scrub') === 'on',
    leaseTtlMs: leaseTtl(),
    reclaimIntervalMs: timerDuration('reclaim-interval'),
    listen,
    dataListen: dataListenAddress,
    healthListen: healthListenAddress,
    maxMessageBytes,
    chunkBytes,
    maxPartialMessageBytes: maxPartialMessageBytes(),
    poolChunkBytes: positiveBytes('pool-chunk'),
    poolIdleReleaseMs: text('pool-idle-release') === 'off' ? 0 : timerDuration('pool-idle-release'),
    asyncCopyThresholdBytes: bytes('async-copy-threshold'),
    heapGrowthPercent: int('heap-growth', 0, 400),
    heapReserveBytes: text('heap-reserve') === undefined ? undefined : bytes('heap-reserve'),
    shutdownTimeoutMs: timerDuration('shutdown-timeout'),
    maxWaitMs: duration('max-wait'),
    keepaliveTimeMs: keepaliveTime(),
    keepaliveTimeoutMs: timerDuration('keepalive-timeout'),
    maxConnections: maxConnections(),
    maxConcurrentStreams: int('max-concurrent-streams', 0, 2 ** 32 - 1),
    maxTenantStreams: int('max-tenant-streams', 0, 2 ** 31 - 1),
    maxTenantWaits: int('max-tenant-waits', 0, 2 ** 31 - 1),
    dataStallTimeoutMs: timerDuration('data-stall-timeout'),
    dataMaxConnections: dataMaxConnections(),
    logLevel: choice('log-level'),
    tenantsFile: securityFile('tenants'),
    mmapDir: text('mmap-dir') || undefined,
    mmapMaxBytes: bytes('mmap-maxbytes'),
    maxMappedRegions: maxMappedRegions(),
    tls: tlsFiles(securityFile('tls-cert'), securityFile('tls-key'), securityFile('tls-client-ca')),
    metricsListen: metricsListenAddress,
    help: bool('help'),
    version: bool('version'),
    sources,
    rawValues,
  };
}

/**
 * Every listener on an address of its own. The same --listen address twice was bound once by grpc-js and
 * served as if two (logged twice, and the default --max-connections split between them), and two flags
 * on one unix socket were refused only once the first listener was up, as "another process is serving
 * there", naming neither flag. TCP addresses are compared as written (port 0 picks a port each time);
 * two names of one host (localhost and 127.0.0.1) still fail at bind.
 */
function refuseSharedAddresses(listeners: Array<{ name: string; field: string; address: string | undefined }>): void {
  const taken = new Map<string, string>();
  for (const { name, field, address } of listeners) {
    if (address === undefined) continue;
    const socketPath = unixSocketPath(address);
    const hostPort = socketPath === undefined ? parseHostPort(address) : undefined;
    if (hostPort?.port === 0) continue;
    const key = socketPath !== undefined ? `unix:${resolvePath(socketPath)}` : hostPort ? `${hostPort.host.toLowerCase()}:${hostPort.port}` : address;
    const holder = taken.get(key);
    if (holder !== undefined) {
      const already = holder === name ? `given to --${name} already` : `already the address of --${holder}`;
      throw invalidArgument(field, 'an address no other listener has (each listener binds its own)', { toString: () => `${JSON.stringify(address)}, ${already}` });
    }
    taken.set(key, name);
  }
}

/** --health-listen HOST:PORT → host (brackets removed) and port; INVALID_ARGUMENT naming the flag otherwise. */
export function parseHealthAddress(address: string, field = '--health-listen'): { host: string; port: number } {
  const parsed = parseHostPort(address);
  if (!parsed) throw invalidArgument(field, 'HOST:PORT with a port from 0 to 65535', address);
  return parsed;
}

function healthAddress(value: string | undefined, field: string): string | undefined {
  // `off` (or empty) as for --data-listen and --metrics-listen: the default is already off.
  const address = optionalListener(value);
  if (address === undefined) return undefined;
  parseHealthAddress(address, field);
  return address;
}

/**
 * The address of a listener that can be turned off (--data-listen, --metrics-listen): the value
 * trimmed, or undefined for `off` (or an empty value).
 */
function optionalListener(value = ''): string | undefined {
  const address = value.trim();
  return address === '' || address === 'off' ? undefined : address;
}

/** One --listen address: HOST:PORT or unix:PATH, checked here so that a bad one is refused with its source before anything starts. */
function listenAddress(address: string, field: string): void {
  const socketPath = unixSocketPath(address);
  if (socketPath === '') throw invalidArgument(field, 'unix:PATH with a path', address);
  // A comma list is split in TENSORMEM_LISTEN and the config file only: on the command line each address is a --listen of its own.
  const oneEach = field === '--listen' && address.includes(',') ? ', one address per --listen (repeat the flag for more)' : '';
  if (socketPath === undefined && !parseHostPort(address)) throw invalidArgument(field, `HOST:PORT (port 0 picks one) or unix:PATH${oneEach}`, address);
}

/** --data-listen: HOST:PORT or unix:PATH; undefined when `off`. */
function dataListen(value = '', field = '--data-listen'): string | undefined {
  const address = optionalListener(value);
  if (address === undefined) return undefined;
  const socketPath = unixSocketPath(address);
  if (socketPath === '') throw invalidArgument(field, 'unix:PATH with a path', address);
  if (socketPath === undefined && !parseHostPort(address)) throw invalidArgument(field, 'HOST:PORT (port 0 picks one), unix:PATH or off', address);
  return address;
}

function tlsFiles(certFile?: string, keyFile?: string, clientCaFile?: string): DaemonConfig['tls'] {
  if (!certFile && !keyFile && !clientCaFile) return undefined;
  if (!certFile) throw invalidArgument('--tls-cert', 'a certificate file when --tls-key or --tls-client-ca is given', '(none)');
  if (!keyFile) throw invalidArgument('--tls-key', 'a private key file when --tls-cert is given', '(none)');
  return { certFile, keyFile, clientCaFile: clientCaFile || undefined };
}

/** --metrics-listen: HOST:PORT; undefined when `off`. */
function metricsListen(value = '', field = '--metrics-listen'): string | undefined {
  const address = optionalListener(value);
  if (address === undefined) return undefined;
  if (!parseHostPort(address)) {
    throw invalidArgument(field, 'HOST:PORT (port 0 picks one) or off', value);
  }
  return address;
}

export type { FlagSpec };
