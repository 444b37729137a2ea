/**
 * tensormem's benchmark (`npm run bench`): the yardsticks of DESIGN.md §6, each a ratio against a
 * baseline measured in the same run. Prints the machine and a table; writes JSON (--out, default
 * bench-results.json). Rows whose feature is not built yet are listed as such, never with a number.
 *
 * Every daemon and baseline server runs as a child process on 127.0.0.1 or a unix socket and is
 * stopped on every way out (bench/lib/processes.ts).
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runB1, B1_WHAT, B1_TARGET } from './b1-unary';
import { runB2, B2_TARGET, B2_WHAT } from './b2-http';
import { runB3, B3_TARGET } from './b3-streams';
import { runB4, B4_WHAT, B4_TARGET } from './b4-export';
import { runB5 } from './b5-pool';
import { runB8 } from './b8-many-arrays';
import { runB6, B6_WHAT, B6_TARGET } from './b6-workspace';
import { runL1, L1_WHAT, L1_TARGET } from './l1-concurrent';
import { Row, describeMachine, errorRow, formatTable, machineLines, notBuilt } from './lib/report';
import { exitOf, liveChildren, spawnTracked } from './lib/processes';
import { BenchOptions, parseOptions, usage } from './options';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface CudaProbe {
  available: boolean;
  reason: string;
  addonHasCuda: boolean;
  cudaRuntimeVersion?: number;
  devices?: string[];
}

/** Asks the addon for a cuda backend in a short-lived child process (no CUDA context in the runner). */
async function probeCuda(): Promise<CudaProbe> {
  const addon = join(__dirname, '..', 'src', 'native', 'addon.js');
  const script = `
    const a = require(${JSON.stringify(addon)});
    const out = { available: false, reason: '', addonHasCuda: false };
    try {
      const info = a.addonBuildInfo();
      out.addonHasCuda = info.cuda; out.cudaRuntimeVersion = info.cudaRuntimeVersion;
      if (!info.cuda) out.reason = 'the addon was built without CUDA (no toolkit at build time)';
      else {
        const b = a.createBackend('cuda');
        const n = b.deviceCount();
        out.devices = Array.from({ length: n }, (_, i) => b.deviceInfo(i).name);
        out.available = n > 0;
        if (n === 0) out.reason = 'no CUDA device is visible';
      }
    } catch (e) { out.reason = String(e && e.message || e).split('\\n')[0]; }
    process.stdout.write(JSON.stringify(out));`;
  const child = spawnTracked(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  await exitOf(child);
  try {
    return JSON.parse(stdout) as CudaProbe;
  } catch {
    return { available: false, reason: 'the CUDA probe failed', addonHasCuda: false };
  }
}

function daemonFlags(options: BenchOptions): string[] {
  // Room for the B2/B3 array on the emulated device and for its host mirror; the defaults otherwise.
  const arrayBytes = Math.max(options.b2Bytes, options.b3Bytes);
  const emulated = Math.max(2 * GiB, Math.ceil((arrayBytes + GiB) / GiB) * GiB);
  const hostMax = Math.max(GiB, Math.ceil((arrayBytes + 256 * MiB) / GiB) * GiB);
  const maxBytes = emulated - GiB;
  return ['--backend', 'host', '--emulated-device', String(emulated), '--allow-small-device', '--maxbytes', String(maxBytes), '--host-maxbytes', String(hostMax), '--max-message-bytes', '64M', '--log-level', 'info'];
}

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

async function main(): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const opts = options;
  const started = Date.now();
  const wanted = (id: string) => opts.only.length === 0 || opts.only.includes(id);
  const cuda = await probeCuda();
  const machine = describeMachine('host (emulated device in host RAM) for B1, B2, B3, B4, B6, B8, L1; B5 in-process', {
    cuda: cuda.addonHasCuda,
    cudaRuntimeVersion: cuda.cudaRuntimeVersion,
    cudaAvailable: cuda.available,
    cudaReason: cuda.reason,
    cudaDevices: cuda.devices,
  });
  const header = [...machineLines(machine), `cuda: ${cuda.available ? `available (${cuda.devices?.join(', ')})` : `not available: ${cuda.reason}`}`, `mode: ${opts.quick ? 'quick' : 'full'}; transport ${opts.transport}`];
  for (const line of header) progress(line);
  const flags = daemonFlags(opts);

  const results = new Map<string, Row[]>();
  const skipped = (id: string, what: string, target: string) => [notBuilt(id, what, target, `${id}: not measured in this run (--only)`, 'skipped')];
  const measure = async (id: string, what: string, target: string, run: () => Promise<Row | Row[]>) => {
    if (!wanted(id)) {
      results.set(id, skipped(id, what, target));
      return;
    }
    progress(`${id}: ${what} ...`);
    const t = Date.now();
    try {
      const rows = await run();
      results.set(id, Array.isArray(rows) ? rows : [rows]);
    } catch (error) {
      progress(`${id} failed: ${(error as Error).stack ?? String(error)}`);
      results.set(id, [errorRow(id, what, target, error)]);
    }
    progress(`${id}: done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  };

  await measure('B5', 'pool allocate+free', '≤ 2 µs; ≤ 2 ×', () => runB5(opts));
  await measure('B1', B1_WHAT, B1_TARGET, () => runB1(opts, flags));
  await measure('B2', B2_WHAT, B2_TARGET, () => runB2(opts, flags));
  await measure('B3', 'WriteArray / ReadArray streams', B3_TARGET, () => runB3(opts, flags));
  await measure('B4', `${B4_WHAT}, ${opts.b4Bytes / MiB} MiB`, B4_TARGET, () => runB4(opts, flags));
  await measure('B6', B6_WHAT, B6_TARGET, () => runB6(opts, flags));
  await measure('B8', 'many live arrays', '≤ 300 B/array; ≤ 10 ms', () => runB8(opts, flags));
  await measure('L1', L1_WHAT, L1_TARGET, () => runL1(opts, flags));

  results.set('B7', [
    cuda.available
      ? notBuilt('B7', 'GPU pool vs cudaMalloc; mirror sync', '≥ 50 ×; ≥ 0.8 ×', `B7: not measured by this runner: a GPU is present (${cuda.devices?.join(', ')}); B7 is test/gpu/b7-gpu-bench.test.ts (run it with scripts/gpu-run.sh; figures in b7.json)`, 'skipped')
      : notBuilt('B7', 'GPU pool vs cudaMalloc; mirror sync', '≥ 50 ×; ≥ 0.8 ×', `B7: needs a GPU: ${cuda.reason} (B7 is test/gpu/b7-gpu-bench.test.ts, run with scripts/gpu-run.sh)`, 'needs a GPU'),
  ]);

  const rows = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'L1'].flatMap((id) => results.get(id) ?? []);
  const seconds = (Date.now() - started) / 1000;
  const table = formatTable(rows);
  const notes = rows.filter((row) => row.note).map((row) => `  ${row.note}`);
  process.stdout.write(`\n${header.join('\n')}\n\n${table}\n\nnotes:\n${notes.join('\n')}\n\ntotal ${seconds.toFixed(1)} s\n`);

  const out = resolve(opts.out);
  const json = {
    tool: 'tensormem bench',
    date: new Date(started).toISOString(),
    seconds,
    machine,
    options: opts,
    daemonFlags: flags,
    rows,
  };
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`wrote ${out}\n`);
  if (liveChildren() > 0) progress(`warning: ${liveChildren()} child process(es) still alive at the end; killing them`);
  return rows.some((row) => row.status === 'error') ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
