/** tensormemctl top: usage bars, caps, and quitting the live view (with a fake client). */
import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { constants } from 'node:os';
import type { LeaseSummary, TensormemClient } from '../../src/client/tensormem-client';
import { capText, fitToTerminal, runTop, usageBar } from '../../src/cli/top';

describe('tensormemctl top: usage bars', () => {
  it('fills the bar up to the cap and prints the true share above it', () => {
    expect(usageBar(50, 100, 10)).toBe('[#####-----]  50.0%');
    expect(usageBar(130, 100, 10)).toBe('[##########] 130.0%');
  });

  it('shows no bar and no share without a cap (0), and the cap as none', () => {
    expect(usageBar(123, 0)).toBe('-');
    expect(capText(0)).toBe('none');
    expect(capText(1024)).toBe('1.00 KiB');
  });
});

describe('tensormemctl top: quitting', () => {
  /** A client whose WatchMemory sends one frame at once, and whose ListLeases answers when `answer` is called. */
  function slowLeasesClient() {
    let answer: (leases: LeaseSummary[]) => void = () => undefined;
    const info = { backend: 'host', devices: [], tenants: [], host: { used_bytes: 0, max_bytes: 1, mirror_bytes: 0, host_only_bytes: 0, mmap_bytes: 0, peak_used_bytes: 0 }, process: { physical_bytes: 0, max_physical_bytes: 0, heap_used_bytes: 0, heap_limit_bytes: 0 }, taken_at: null };
    const client = {
      address: 'unix:/fake.sock',
      watchMemory: (_interval: number, onInfo: (info: unknown) => void) => {
        setImmediate(() => onInfo(info));
        return () => undefined;
      },
      listLeasesPage: () => new Promise<LeaseSummary[]>((resolve) => (answer = resolve)).then((leases) => ({ leases, nextPageToken: '', totalCount: leases.length })),
    };
    return { client: client as unknown as TensormemClient, answer: (leases: LeaseSummary[]) => answer(leases) };
  }

  it.each([
    ['q', 'q'],
    ['two keys in one read', 'qq'],
  ])('draws no frame after q (%s), even when that frame\'s leases arrive later (the cursor stays shown)', async (_name, keys) => {
    const { client, answer } = slowLeasesClient();
    const output = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.WriteStream;
    const input = new PassThrough() as unknown as NodeJS.ReadStream;
    let written = '';
    (output as unknown as PassThrough).on('data', (d: Buffer) => (written += d.toString()));
    const running = runTop(client, { intervalMs: 1000, once: false, output, input });
    await new Promise((resolve) => setImmediate(resolve));
    (input as unknown as PassThrough).write(keys);
    await running;
    answer([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(written.endsWith('\x1b[?25h\n')).toBe(true);
    expect(written).not.toContain('\x1b[?25l');
  }, 5000);
});

describe('tensormemctl top: a terminal smaller than the frame', () => {
  it('cuts the frame to the rows (the last saying how many were cut) and each line to the columns', () => {
    const frame = ['title line', '', 'a'.repeat(50), 'row 4', 'row 5', 'row 6'].join('\n');
    expect(fitToTerminal(frame, 4, 20).split('\n')).toEqual(['title line', '', 'a'.repeat(20), '(3 more lines: a tal']);
    expect(fitToTerminal(frame, undefined, undefined)).toBe(frame);
    expect(fitToTerminal(frame, 6, 80)).toBe(frame);
  });

  it('draws no more rows than the terminal has, nor a line wider than it', async () => {
    const info = { backend: 'host', devices: [{ device: 0, name: 'tensormem emulated device', used_bytes: 0, max_bytes: 1, peak_used_bytes: 0, reserved_bytes: 0, largest_free_block_bytes: 0, allocation_count: 0, failed_allocations_total: 0, waiting_allocations: 0 }], tenants: [], host: { used_bytes: 0, max_bytes: 1, mirror_bytes: 0, host_only_bytes: 0, mmap_bytes: 0, peak_used_bytes: 0 }, process: { physical_bytes: 0, counted_physical_bytes: 0, max_physical_bytes: 0, heap_used_bytes: 0, heap_limit_bytes: 0 }, taken_at: null };
    const client = {
      address: 'unix:/fake.sock',
      watchMemory: (_interval: number, onInfo: (info: unknown) => void) => {
        setImmediate(() => onInfo(info));
        return () => undefined;
      },
      listLeasesPage: () => Promise.resolve({ leases: [], nextPageToken: '', totalCount: 0 }),
    } as unknown as TensormemClient;
    const output = Object.assign(new PassThrough(), { isTTY: true, rows: 8, columns: 40 }) as unknown as NodeJS.WriteStream;
    const input = new PassThrough() as unknown as NodeJS.ReadStream;
    let written = '';
    (output as unknown as PassThrough).on('data', (d: Buffer) => (written += d.toString()));
    const running = runTop(client, { intervalMs: 1000, once: false, output, input });
    await new Promise((resolve) => setTimeout(resolve, 50));
    (input as unknown as PassThrough).write('q');
    await running;
    const frame = written.slice(written.lastIndexOf('\x1b[?25l') + '\x1b[?25l'.length, written.lastIndexOf('\x1b[?25h'));
    const lines = frame.split('\n');
    expect(lines.length).toBe(8);
    expect(lines[0]).toBe('tensormemd unix:/fake.sock  backend host');
    expect(lines[7]).toMatch(/^\(\d+ more lines/);
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThanOrEqual(40);
  }, 5000);
});

describe('tensormemctl top: a daemon that stops answering, and signals other than Ctrl-C', () => {
  const info = { backend: 'host', devices: [], tenants: [], host: { used_bytes: 0, max_bytes: 1, mirror_bytes: 0, host_only_bytes: 0, mmap_bytes: 0, peak_used_bytes: 0 }, process: { physical_bytes: 0, counted_physical_bytes: 0, max_physical_bytes: 0, heap_used_bytes: 0, heap_limit_bytes: 0 }, taken_at: null };

  /** A client whose WatchMemory sends `frames` reports (one at once, then none) and whose watch is stopped by `stopped`. */
  function watchClient(frames: number) {
    const state = { stopped: false };
    const client = {
      address: '127.0.0.1:7070',
      watchMemory: (_interval: number, onInfo: (info: unknown) => void) => {
        for (let i = 0; i < frames; i++) setImmediate(() => onInfo(info));
        return () => (state.stopped = true);
      },
      listLeasesPage: () => Promise.resolve({ leases: [], nextPageToken: '', totalCount: 0 }),
    } as unknown as TensormemClient;
    return { client, state };
  }

  function terminal() {
    const output = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.WriteStream;
    const rawModes: boolean[] = [];
    const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (raw: boolean) => rawModes.push(raw) }) as unknown as NodeJS.ReadStream;
    let written = '';
    (output as unknown as PassThrough).on('data', (d: Buffer) => (written += d.toString()));
    return { output, input, rawModes, written: () => written };
  }

  it.each([
    ['no report at all (a hung daemon, a silent address)', 0],
    ['no report after the first', 1],
  ])('gives up with an error naming the address and the wait when WatchMemory sends %s, the terminal restored', async (_name, frames) => {
    const { client, state } = watchClient(frames);
    const { output, input, rawModes, written } = terminal();
    const started = Date.now();
    await expect(runTop(client, { intervalMs: 50, once: false, output, input, reportTimeoutMs: 200 })).rejects.toThrow(/no memory report from 127\.0\.0\.1:7070 for 250 ms/);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(state.stopped).toBe(true);
    expect(rawModes).toEqual([true, false]);
    expect(written().endsWith('\x1b[?25h\n')).toBe(true);
  }, 5000);

  it.each(['SIGTERM', 'SIGHUP'] as const)('%s (timeout, kill, a closed terminal) restores the terminal and rejects with exit status 128 + N', async (signal) => {
    const { client, state } = watchClient(1);
    const { output, input, rawModes, written } = terminal();
    const running = runTop(client, { intervalMs: 1000, once: false, output, input });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(written()).toContain('\x1b[?25l');
    process.emit(signal, signal);
    await expect(running).rejects.toMatchObject({ name: 'InterruptedError', exitCode: 128 + constants.signals[signal] });
    expect(state.stopped).toBe(true);
    expect(rawModes).toEqual([true, false]);
    expect(written().endsWith('\x1b[?25h\n')).toBe(true);
    expect(process.listenerCount(signal)).toBe(0);
  }, 5000);
});
