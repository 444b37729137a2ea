/** tensormemctl top: usage bars, caps, and quitting the live view (with a fake client). */
import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import type { LeaseSummary, TensormemClient } from '../../src/client/tensormem-client';
import { capText, runTop, usageBar } from '../../src/cli/top';

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
