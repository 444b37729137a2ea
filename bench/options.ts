/**
 * Command line and environment of `npm run bench`. Every option also reads TENSORMEM_BENCH_<NAME>
 * (upper case, '-' → '_'), e.g. TENSORMEM_BENCH_QUICK=1, TENSORMEM_BENCH_B8_ARRAYS=20000; flags win.
 */
export interface BenchOptions {
  quick: boolean;
  out: string;
  only: string[];
  transport: 'tcp' | 'unix';
  b1Iterations: number;
  b1Warmup: number;
  b2Bytes: number;
  b2Reps: number;
  b3Bytes: number;
  b3ChunkBytes: number;
  b3Reps: number;
  b4Bytes: number;
  b4Reps: number;
  b5Small: number;
  b5Large: number;
  b5Batches: number;
  b5Batch: number;
  b8Arrays: number;
  b8Leases: number;
  b8Concurrency: number;
  b8InfoCalls: number;
  l1Clients: number;
  l1PhaseSeconds: number;
  l1Rounds: number;
  l1WarmupSeconds: number;
}

interface OptionSpec {
  name: string;
  key: keyof BenchOptions;
  kind: 'bool' | 'int' | 'size' | 'string' | 'list' | 'transport';
  full: unknown;
  quick: unknown;
  help: string;
}

const MiB = 1024 * 1024;

export const OPTIONS: OptionSpec[] = [
  { name: 'quick', key: 'quick', kind: 'bool', full: false, quick: true, help: 'about one minute: fewer samples and a smaller B8 (20k arrays over 200 leases; rows say so); B2/B3/B4 keep 256 MiB' },
  { name: 'out', key: 'out', kind: 'string', full: 'bench-results.json', quick: 'bench-results.json', help: 'JSON results file' },
  { name: 'only', key: 'only', kind: 'list', full: [], quick: [], help: 'comma-separated rows to measure, e.g. B1,B5 (others are listed as skipped)' },
  { name: 'transport', key: 'transport', kind: 'transport', full: 'tcp', quick: 'tcp', help: 'tcp (127.0.0.1) or unix (unix socket), for every gRPC row' },
  { name: 'b1-iterations', key: 'b1Iterations', kind: 'int', full: 10_000, quick: 3_000, help: 'B1 measured samples of each side' },
  { name: 'b1-warmup', key: 'b1Warmup', kind: 'int', full: 2_000, quick: 1_000, help: 'B1 warm-up samples of each side' },
  { name: 'b2-bytes', key: 'b2Bytes', kind: 'size', full: 256 * MiB, quick: 256 * MiB, help: 'B2 transfer size (K, M, G suffixes)' },
  { name: 'b2-reps', key: 'b2Reps', kind: 'int', full: 7, quick: 3, help: 'B2 measured repetitions (after one warm-up)' },
  { name: 'b3-bytes', key: 'b3Bytes', kind: 'size', full: 256 * MiB, quick: 256 * MiB, help: 'B3 transfer size (K, M, G suffixes)' },
  { name: 'b3-chunk-bytes', key: 'b3ChunkBytes', kind: 'size', full: MiB, quick: MiB, help: 'B3 chunk size both ways' },
  { name: 'b3-reps', key: 'b3Reps', kind: 'int', full: 7, quick: 2, help: 'B3 measured repetitions (after one warm-up)' },
  { name: 'b4-bytes', key: 'b4Bytes', kind: 'size', full: 256 * MiB, quick: 256 * MiB, help: 'B4 array size read through the exported mapping' },
  { name: 'b4-reps', key: 'b4Reps', kind: 'int', full: 15, quick: 5, help: 'B4 measured repetitions of each side' },
  { name: 'b5-small', key: 'b5Small', kind: 'int', full: 1_000, quick: 1_000, help: 'B5 live blocks of the small pool' },
  { name: 'b5-large', key: 'b5Large', kind: 'int', full: 1_000_000, quick: 1_000_000, help: 'B5 live blocks of the large pool' },
  { name: 'b5-batches', key: 'b5Batches', kind: 'int', full: 300, quick: 100, help: 'B5 timed batches per pool' },
  { name: 'b5-batch', key: 'b5Batch', kind: 'int', full: 1_000, quick: 1_000, help: 'B5 allocate+free pairs per batch' },
  { name: 'b8-arrays', key: 'b8Arrays', kind: 'int', full: 100_000, quick: 20_000, help: 'B8 live arrays' },
  { name: 'b8-leases', key: 'b8Leases', kind: 'int', full: 1_000, quick: 200, help: 'B8 leases' },
  { name: 'b8-concurrency', key: 'b8Concurrency', kind: 'int', full: 64, quick: 64, help: 'B8 calls in flight while allocating' },
  { name: 'b8-info-calls', key: 'b8InfoCalls', kind: 'int', full: 300, quick: 100, help: 'B8 GetMemoryInfo calls timed' },
  { name: 'l1-clients', key: 'l1Clients', kind: 'int', full: 32, quick: 32, help: 'L1 concurrent clients, each on its own channel' },
  { name: 'l1-phase-seconds', key: 'l1PhaseSeconds', kind: 'int', full: 5, quick: 2, help: 'L1 seconds per measured phase (tensormem and echo alternate)' },
  { name: 'l1-rounds', key: 'l1Rounds', kind: 'int', full: 4, quick: 2, help: 'L1 measured phases of each side' },
  { name: 'l1-warmup-seconds', key: 'l1WarmupSeconds', kind: 'int', full: 2, quick: 1, help: 'L1 warm-up seconds of each side' },
];

function parseSize(text: string, name: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) throw new Error(`--${name}: expected a size like 256M or 1048576, got "${text}"`);
  const power = ' KMGT'.indexOf((match[2] || ' ').toUpperCase());
  return Math.round(Number(match[1]) * 1024 ** power);
}

function convert(spec: OptionSpec, raw: string): unknown {
  switch (spec.kind) {
    case 'bool':
      return !['0', 'false', 'no', ''].includes(raw.toLowerCase());
    case 'int': {
      const value = Number(raw.replace(/_/g, ''));
      if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${spec.name}: expected a positive integer, got "${raw}"`);
      return value;
    }
    case 'size':
      return parseSize(raw, spec.name);
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean);
    case 'transport':
      if (raw !== 'tcp' && raw !== 'unix') throw new Error(`--${spec.name}: expected tcp or unix, got "${raw}"`);
      return raw;
    default:
      return raw;
  }
}

export function usage(): string {
  const lines = ['usage: npm run bench -- [options]   (or node dist/bench/run.js [options])', ''];
  const flag = (spec: (typeof OPTIONS)[number]) => `  --${spec.name}${spec.kind === 'bool' ? '' : ' VALUE'}`;
  // The help column starts two spaces after the longest flag.
  const width = Math.max(...OPTIONS.map((spec) => flag(spec).length)) + 2;
  for (const spec of OPTIONS) {
    const defaults = spec.kind === 'bool' ? '' : ` (default ${JSON.stringify(spec.full)}${JSON.stringify(spec.quick) !== JSON.stringify(spec.full) ? `, quick ${JSON.stringify(spec.quick)}` : ''})`;
    lines.push(flag(spec).padEnd(width) + `${spec.help}${defaults}`);
  }
  lines.push('', 'Each option may also be set as TENSORMEM_BENCH_<NAME>, e.g. TENSORMEM_BENCH_B8_ARRAYS=20000.');
  return lines.join('\n');
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  const raw = new Map<string, string>();
  for (const spec of OPTIONS) {
    const value = env[`TENSORMEM_BENCH_${spec.name.toUpperCase().replace(/-/g, '_')}`];
    if (value !== undefined) raw.set(spec.name, value);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return 'help';
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    const spec = match && OPTIONS.find((s) => s.name === match[1]);
    if (!match || !spec) throw new Error(`unknown argument "${arg}"\n\n${usage()}`);
    if (spec.kind === 'bool') raw.set(spec.name, match[2] ?? 'true');
    else {
      const value = match[2] ?? argv[++i];
      if (value === undefined) throw new Error(`--${spec.name} needs a value`);
      raw.set(spec.name, value);
    }
  }
  const quickSpec = OPTIONS[0];
  const quick = raw.has('quick') ? (convert(quickSpec, raw.get('quick')!) as boolean) : false;
  const options: Record<string, unknown> = {};
  for (const spec of OPTIONS) options[spec.key] = raw.has(spec.name) ? convert(spec, raw.get(spec.name)!) : quick ? spec.quick : spec.full;
  return options as unknown as BenchOptions;
}
