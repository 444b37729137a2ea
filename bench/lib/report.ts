/** Rows of the result table, the table as text, and the machine description. */
import { cpus, loadavg, release, totalmem, type as osType } from 'node:os';

export type RowStatus = 'pass' | 'fail' | 'not built' | 'needs a GPU' | 'error' | 'skipped';

export interface Row {
  id: string;
  what: string;
  /** The measured value as printed, e.g. "212 µs"; "—" when nothing was measured. */
  measured: string;
  /** The baseline as printed; "—" when the row has none. */
  baseline: string;
  /** Measured against baseline (or against the other measurement, for growth ratios), as printed. */
  ratio: string;
  target: string;
  status: RowStatus;
  /** Numbers behind the row (JSON only). */
  values?: Record<string, unknown>;
  /** One line printed under the table: why not built, what failed, how it was measured. */
  note?: string;
}

export interface Machine {
  cpuModel: string;
  cores: number;
  ramBytes: number;
  node: string;
  os: string;
  loadAverageAtStart: number[];
  backend: string;
  addon: Record<string, unknown>;
}

export function describeMachine(backend: string, addon: Record<string, unknown>): Machine {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    ramBytes: totalmem(),
    node: process.version,
    os: `${osType()} ${release()} ${process.arch}`,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    backend,
    addon,
  };
}

export function machineLines(machine: Machine): string[] {
  return [
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${(machine.ramBytes / 2 ** 30).toFixed(1)} GiB RAM, ${machine.os}`,
    `node ${machine.node}; backend ${machine.backend}; load average at start ${machine.loadAverageAtStart.join(' ')}`,
  ];
}

export function formatTable(rows: Row[]): string {
  const headers = ['id', 'what', 'measured', 'baseline', 'ratio', 'target', 'status'];
  const cells = rows.map((row) => [row.id, row.what, row.measured, row.baseline, row.ratio, row.target, row.status]);
  const widths = headers.map((header, column) => Math.max(header.length, ...cells.map((line) => [...line[column]].length)));
  const pad = (text: string, width: number) => text + ' '.repeat(Math.max(0, width - [...text].length));
  const line = (values: string[]) => values.map((value, column) => pad(value, widths[column])).join('  ').trimEnd();
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...cells.map(line)].join('\n');
}

/** "1.23 ×". */
export function times(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)} ×` : '—';
}

export function us(micros: number): string {
  if (!Number.isFinite(micros)) return '—';
  if (micros >= 10_000) return `${(micros / 1000).toFixed(1)} ms`;
  if (micros >= 1000) return `${(micros / 1000).toFixed(2)} ms`;
  if (micros >= 100) return `${micros.toFixed(0)} µs`;
  if (micros >= 10) return `${micros.toFixed(1)} µs`;
  return `${micros.toFixed(3)} µs`;
}

export function gbps(bytes: number, seconds: number): number {
  return bytes / seconds / 1e9;
}

export function notBuilt(id: string, what: string, target: string, note: string, status: RowStatus = 'not built'): Row {
  return { id, what, measured: '—', baseline: '—', ratio: '—', target, status, note };
}

export function errorRow(id: string, what: string, target: string, error: unknown): Row {
  const message = error instanceof Error ? error.message : String(error);
  return { id, what, measured: '—', baseline: '—', ratio: '—', target, status: 'error', note: `${id} failed: ${message.split('\n')[0]}`, values: { error: message } };
}

/** A transfer row's server CPU seconds per GB as "tensormem / baseline" (values.serverCpuSecondsPerGB), or "n/a". */
export function cpuPerGBText(row: Row): string {
  const cpu = row.values?.serverCpuSecondsPerGB as { tensormem: number; baseline: number } | undefined;
  return cpu && Number.isFinite(cpu.tensormem) ? `${cpu.tensormem.toFixed(2)} / ${cpu.baseline.toFixed(2)}` : 'n/a';
}
