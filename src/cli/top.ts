/**
 * `tensormemctl top`: a live view of WatchMemory (device pools, host pool, process, tenants) and the
 * leases holding the most bytes (ListLeases), redrawn in place with ANSI escapes; q or Ctrl-C quits.
 * With --once, or when stdout is not a terminal, it prints one frame and returns; with -o json that
 * frame is a JSON document (TopFrame).
 */
import { renderTable } from '../client/table';
import type { LeaseSummary, MemoryInfo, TensormemClient } from '../client/tensormem-client';
import { formatIec } from '../units';
import { setLongTimeout } from '../long-timeout';
import { deviceQuotaShare, quotaShare } from './quota-share';
import { tenantState } from './tenant-state';
import type { WriteOut } from './stdout';
import { InterruptedError } from './transfer';
import { waitText } from './wait-text';

export const TOP_LEASES = 10;

/** A cap as top and info print it: its size, or "none" for 0 (--maxphysicalbytes 0: no process cap). */
export function capText(bytes: number): string {
  return bytes > 0 ? formatIec(bytes) : 'none';
}

/** "[#####-----]  50.0%": a fixed-width usage bar and the share of the cap; "-" without a cap (0). */
export function usageBar(used: number, cap: number, width = 20): string {
  if (cap <= 0) return '-';
  // The bar stops at full; the share does not (an RSS above --maxphysicalbytes shows as, say, 130.0%).
  const filled = Math.round(Math.min(1, used / cap) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${((100 * used) / cap).toFixed(1).padStart(5)}%`;
}

/** The leases a frame shows: the biggest (at most TOP_LEASES, most bytes first) of `total` the token may list. */
export interface BiggestLeases {
  biggest: LeaseSummary[];
  total: number;
}

/** One frame; `leases` is undefined when the token may not list leases (then the frame says so). */
export function renderFrame(info: MemoryInfo, leases: BiggestLeases | undefined, address: string, interactive: boolean): string {
  const host = info.host!;
  const daemonProcess = info.process!;
  const taken = info.taken_at ? new Date(Number(info.taken_at.seconds) * 1000).toISOString() : new Date().toISOString();
  const topLeases = (leases?.biggest ?? []).map((lease) => ({ lease, total: lease.device_bytes + lease.host_bytes }));
  return [
    `tensormemd ${address}  backend ${info.backend}  ${taken}${interactive ? '  (q to quit)' : ''}`,
    '',
    renderTable(
      ['DEVICE', 'NAME', 'USED', 'MAX', 'USAGE', 'PEAK', 'RESERVED', 'LARGEST FREE', 'BLOCKS', 'FAILED', 'WAITING'],
      info.devices.map((d) => [d.device, d.name, formatIec(d.used_bytes), formatIec(d.max_bytes), usageBar(d.used_bytes, d.max_bytes), formatIec(d.peak_used_bytes), formatIec(d.reserved_bytes), formatIec(d.largest_free_block_bytes), d.allocation_count, d.failed_allocations_total, d.waiting_allocations]),
    ),
    '',
    renderTable(
      ['HOST', 'USED', 'MAX', 'USAGE', 'MIRRORS', 'HOST_ONLY', 'MMAP', 'PEAK'],
      [['host', formatIec(host.used_bytes), formatIec(host.max_bytes), usageBar(host.used_bytes, host.max_bytes), formatIec(host.mirror_bytes), formatIec(host.host_only_bytes), formatIec(host.mmap_bytes), formatIec(host.peak_used_bytes)]],
    ),
    '',
    renderTable(
      // USAGE is of the figure the cap is checked against (COUNTED), not of the RSS: host-RAM chunks count
      // before their pages are touched, so a daemon can refuse PHYSICAL_MEMORY_LIMIT at an RSS far below the cap.
      ['PROCESS', 'RSS', 'COUNTED', 'MAX PHYSICAL', 'USAGE', 'HEAP USED', 'HEAP LIMIT'],
      [['tensormemd', formatIec(daemonProcess.physical_bytes), formatIec(daemonProcess.counted_physical_bytes), capText(daemonProcess.max_physical_bytes), usageBar(daemonProcess.counted_physical_bytes, daemonProcess.max_physical_bytes), formatIec(daemonProcess.heap_used_bytes), formatIec(daemonProcess.heap_limit_bytes)]],
    ),
    '',
    info.tenants.length === 0
      ? 'TENANTS: none'
      : renderTable(
          ['TENANT', 'STATE', 'LEASES', 'DEVICE USED', 'DEVICE QUOTA', 'OF QUOTA', 'HOST USED', 'HOST QUOTA', 'OF QUOTA'],
          info.tenants.map((t) => [
            t.tenant,
            tenantState(t),
            t.leases,
            formatIec(t.device_used_bytes),
            t.quota_bytes > 0 ? formatIec(t.quota_bytes) : '-',
            deviceQuotaShare(t, info.devices),
            formatIec(t.host_used_bytes),
            t.host_quota_bytes > 0 ? formatIec(t.host_quota_bytes) : '-',
            quotaShare(t.host_used_bytes, t.host_quota_bytes),
          ]),
        ),
    '',
    leases === undefined
      ? 'TOP LEASES: not visible with this token (an admin token, or open mode, lists them)'
      : topLeases.length === 0
        ? 'TOP LEASES: none open'
        : `TOP LEASES by bytes (${topLeases.length} of ${leases.total})\n` +
          renderTable(
            ['LEASE', 'TENANT', 'CLIENT', 'ARRAYS', 'DEVICE', 'HOST', 'TOTAL', 'AGE'],
            topLeases.map(({ lease, total }) => [lease.lease_id, lease.tenant, lease.client_name || '-', lease.array_count, formatIec(lease.device_bytes), formatIec(lease.host_bytes), formatIec(total), `${lease.age_seconds}s`]),
          ),
  ].join('\n');
}

/**
 * `frame` cut to a terminal of `rows` x `columns` (either unknown: not cut). A frame taller than the
 * terminal scrolled at each redraw: the pools at its top went off screen, and every redraw left a copy
 * in the scrollback; a line wider than it wrapped into the lines below. The last row says what was cut.
 */
export function fitToTerminal(frame: string, rows: number | undefined, columns: number | undefined): string {
  let lines = frame.split('\n');
  if (rows !== undefined && rows > 0 && lines.length > rows) {
    const hidden = lines.length - (rows - 1);
    lines = [...lines.slice(0, rows - 1), `(${hidden} more lines: a taller terminal shows them, or top --once)`];
  }
  if (columns !== undefined && columns > 0) lines = lines.map((line) => (line.length > columns ? line.slice(0, columns) : line));
  return lines.join('\n');
}

/**
 * The TOP_LEASES biggest leases, chosen by the daemon (ListLeases LEASE_ORDER_BYTES: a redraw every
 * second costs it the summaries of ten leases, not of every lease); undefined when the token may not list them.
 */
async function biggestOrUndefined(client: TensormemClient, token: string | undefined): Promise<BiggestLeases | undefined> {
  try {
    const page = await client.listLeasesPage({ order: 'LEASE_ORDER_BYTES', pageSize: TOP_LEASES }, token);
    return { biggest: page.leases, total: page.totalCount };
  } catch {
    return undefined;
  }
}

async function leasesOrUndefined(client: TensormemClient, token: string | undefined): Promise<LeaseSummary[] | undefined> {
  try {
    return await client.listLeases(token);
  } catch {
    return undefined;
  }
}

export interface TopOptions {
  token?: string;
  intervalMs: number;
  once: boolean;
  output: NodeJS.WriteStream;
  input: NodeJS.ReadStream;
  /** -o json: one frame as a JSON document (see TopFrame), as with --once. */
  json?: boolean;
  /** How the one frame of --once (or of a stdout that is not a terminal) is written whole (stdoutWriter); default output.write. */
  writeOut?: WriteOut;
  /**
   * Live view: how long past intervalMs a memory report may be late (tensormemctl: its --timeout,
   * default 10 s) before top gives up with an error. WatchMemory has no deadline: a daemon that was
   * stopped or hung, or an address that takes the connection and never answers, left a blank or
   * frozen screen until q. Undefined: wait for ever.
   */
  reportTimeoutMs?: number;
}

/** `top -o json`: what one frame shows. leases is null when the token may not list them. */
export interface TopFrame {
  address: string;
  info: MemoryInfo;
  leases: LeaseSummary[] | null;
}

/** Signals that end the live view as a failure (exit 128 + N, after the terminal is restored); SIGINT quits as q does. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];

/**
 * Runs top until q / Ctrl-C (or after one frame); rejects when the watch stream fails, when no report
 * comes for intervalMs + reportTimeoutMs, and with an InterruptedError on SIGTERM or SIGHUP (`timeout
 * 60 tensormemctl top`, a closed terminal), the terminal restored (cursor shown, raw mode off) in each case.
 */
export async function runTop(client: TensormemClient, options: TopOptions): Promise<void> {
  const interactive = !options.once && !options.json && options.output.isTTY === true;
  if (!interactive) {
    const writeOut = options.writeOut ?? ((text: string) => new Promise<void>((resolve, reject) => options.output.write(text, (error) => (error ? reject(error) : resolve()))));
    if (options.json) {
      const [info, leases] = await Promise.all([client.memoryInfo(options.token), leasesOrUndefined(client, options.token)]);
      const frame: TopFrame = { address: client.address, info, leases: leases ?? null };
      await writeOut(`${JSON.stringify(frame, null, 2)}\n`);
      return;
    }
    const [info, leases] = await Promise.all([client.memoryInfo(options.token), biggestOrUndefined(client, options.token)]);
    await writeOut(`${renderFrame(info, leases, client.address, false)}\n`);
    return;
  }
  const { input, output } = options;
  await new Promise<void>((resolve, reject) => {
    let drawing = false;
    let finished = false;
    let lateTimer: NodeJS.Timeout | undefined;
    const finish = (error?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(lateTimer);
      stop();
      if (input.isTTY) input.setRawMode(false);
      input.off('data', onKey);
      input.pause();
      process.off('SIGINT', onSigint);
      for (const [name, handler] of signalHandlers) process.off(name, handler);
      output.write('\x1b[?25h\n');
      if (error) reject(error);
      else resolve();
    };
    const { reportTimeoutMs } = options;
    const expectReport = () => {
      if (reportTimeoutMs === undefined || finished) return;
      clearTimeout(lateTimer);
      const waitMs = options.intervalMs + reportTimeoutMs;
      setLongTimeout(
        () => finish(new Error(`no memory report from ${client.address} for ${waitText(waitMs)} (--interval ${waitText(options.intervalMs)} + --timeout ${waitText(reportTimeoutMs)}): is tensormemd running there and answering (not stopped or hung), and is that its address?`)),
        waitMs,
        (timer) => (lateTimer = timer),
      );
    };
    const signalHandlers = STOP_SIGNALS.map((name) => [name, () => finish(new InterruptedError(name))] as const);
    const onKey = (key: Buffer) => {
      // One read may hold several keys ("qq", a paste).
      if (/[qQ\u0003]/.test(key.toString())) finish();
    };
    const onSigint = () => finish();
    const stop = client.watchMemory(
      options.intervalMs,
      (info) => {
        expectReport();
        if (drawing) return;
        drawing = true;
        void biggestOrUndefined(client, options.token).then((leases) => {
          drawing = false;
          // A frame whose leases came after q: drawn now, it would cover the shell and hide the cursor again.
          if (finished) return;
          // Home, clear the screen, hide the cursor, then the frame, with no newline after its last row:
          // one there would scroll a frame that fills the terminal by a line.
          output.write(`\x1b[H\x1b[2J\x1b[?25l${fitToTerminal(renderFrame(info, leases, client.address, true), output.rows, output.columns)}`);
        });
      },
      (error) => finish(error),
      options.token,
    );
    if (input.isTTY) input.setRawMode(true);
    input.resume();
    input.on('data', onKey);
    process.on('SIGINT', onSigint);
    for (const [name, handler] of signalHandlers) process.on(name, handler);
    expectReport();
  });
}
