/**
 * `tensormemctl put -`: stdin streamed into an existing array (--array) or a new one (--shape), against
 * a daemon with a data plane and one without (WriteArray); stdin shorter or longer than the array, none
 * of the two flags, Ctrl-C while stdin is silent, stdin a shell's pipe, a file or a character device, a
 * file named "-", the CLI's peak memory for an input four times its piece, and no daemon at --address
 * with a stdin that sends nothing (the daemon is asked first).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { ROOT } from '../helpers/daemon-process';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { transferBytes } from '../helpers/transfer-bytes';

const TENSORMEMCTL = join(ROOT, 'dist', 'src', 'bin', 'tensormemctl.js');
const PEAK_RSS = join(ROOT, 'test', 'helpers', 'peak-rss.cjs');
const MiB = 1024 ** 2;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The CLI's VmHWM in bytes, when asked for (`peak`). */
  peakBytes?: number;
}

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tensormemctl-stdin-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs tensormemctl with `stdin`: bytes written into a pipe (a socket pair, as node's 'pipe' is) that
 * then ends, or a file descriptor, or nothing ('ignore': /dev/null). `peak`: also measure its VmHWM.
 */
function ctl(args: string[], stdin: Buffer | number | 'ignore', options: { peak?: boolean; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  const peakFile = join(dir, `peak-${randomBytes(4).toString('hex')}`);
  const node = options.peak ? ['--require', PEAK_RSS] : [];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...node, TENSORMEMCTL, ...args], {
      cwd: options.cwd,
      timeout: options.timeoutMs,
      stdio: [Buffer.isBuffer(stdin) ? 'pipe' : stdin, 'pipe', 'pipe'],
      env: { ...process.env, TENSORMEM_TOKEN: '', PEAK_RSS_FILE: peakFile },
    });
    // EPIPE when the CLI stops reading (stdin longer than the array) is what a producer gets then.
    child.stdin?.on('error', () => {});
    if (Buffer.isBuffer(stdin)) child.stdin!.end(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.once('close', (code) => {
      const peakBytes = options.peak ? Number(readFileSync(peakFile, 'utf8')) * 1024 : undefined;
      resolve({ code, stdout, stderr, peakBytes });
    });
  });
}

/** Labels of the live blocks of the daemon's pools: an array freed with its lease is gone from them. */
async function liveLabels(client: TensormemClient): Promise<string[]> {
  const snapshot = await client.memorySnapshot();
  return snapshot.pools.flatMap((pool) => pool.segments.flatMap((segment) => segment.blocks.filter((block) => !block.free).map((block) => block.label)));
}

/** tensormem_array_transfer_bytes_total{transport, direction="write"} of the daemon's /metrics. */
function writtenBytes(statusBase: string, transport: 'grpc' | 'data_plane'): Promise<number> {
  return transferBytes(statusBase, transport, 'write');
}

interface PutJson {
  array: { array_id: string; byte_size: number; shape: number[]; data_type: string; label: string };
  bytes_written: number;
  lease?: { lease_id: string; token: string };
}

describe.each([
  { transport: 'data_plane' as const, flags: ['--data-listen', '127.0.0.1:0'] },
  { transport: 'grpc' as const, flags: [] },
])('tensormemctl put - over $transport', ({ transport, flags }) => {
  const setup = daemonForTests(flags);

  it('--shape --dtype: a new array in a new lease, byte for byte, in several pieces, over the transport the daemon has', async () => {
    const content = randomBytes(20 * MiB + 4);
    const before = await writtenBytes(setup.statusBase, transport);
    const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--shape', `${content.length / 4}`, '--dtype', 'float32', '-o', 'json'], content);
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    const result = JSON.parse(put.stdout) as PutJson;
    expect(result).toMatchObject({ bytes_written: content.length, array: { byte_size: content.length, shape: [content.length / 4], data_type: 'DATA_TYPE_FLOAT32', label: 'stdin' } });
    expect(await writtenBytes(setup.statusBase, transport)).toBe(before + content.length);
    const reader = spawnSync(process.execPath, [TENSORMEMCTL, '--address', setup.daemon.unixAddress, '--token', result.lease!.token, 'get', '--array', result.array.array_id, '-'], { maxBuffer: 64 * MiB });
    expect(reader.status).toBe(0);
    expect(reader.stdout.equals(content)).toBe(true);
    await setup.client.evictLease(result.lease!.lease_id);
  });

  it('--array ID: into an existing array of that lease, over the transport the daemon has (its GetArray answer names the data plane)', async () => {
    const lease = await setup.client.openLease({ clientName: 'put-stdin-existing' });
    try {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [17 * MiB + 1] });
      const content = randomBytes(array.byte_size);
      const before = await writtenBytes(setup.statusBase, transport);
      const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--array', array.array_id, '--token', lease.token], content);
      expect(put.stderr).toBe('');
      expect(put.code).toBe(0);
      expect(put.stdout).toBe(`wrote ${content.length} bytes (17.00 MiB) into array ${array.array_id} ([${content.length}] uint8)\n`);
      // Both pieces (16 MiB, then 1 MiB + 1 byte) are at least the client's 1 MiB threshold.
      expect(await writtenBytes(setup.statusBase, transport)).toBe(before + content.length);
      expect((await lease.read(array.array_id)).equals(content)).toBe(true);
    } finally {
      await lease.close();
    }
  });

  it('stdin shorter than an existing array: exit 1 naming both sizes; the bytes it gave are written, the rest is as it was', async () => {
    const lease = await setup.client.openLease({ clientName: 'put-stdin-short' });
    try {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB + 100] });
      const old = randomBytes(array.byte_size);
      await lease.write(array.array_id, old);
      const given = randomBytes(16 * MiB + 10);
      const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--array', array.array_id, '--token', lease.token], given);
      expect(put.stderr).toBe(`tensormemctl: stdin ended after ${given.length} bytes (16.00 MiB), short of the ${array.byte_size} bytes (16.00 MiB) of array ${array.array_id}: its first ${given.length} bytes hold stdin's, the rest is as it was\n`);
      expect(put.code).toBe(1);
      expect(put.stdout).toBe('');
      expect((await lease.read(array.array_id)).equals(Buffer.concat([given, old.subarray(given.length)]))).toBe(true);
    } finally {
      await lease.close();
    }
  });

  it('stdin shorter than --shape: exit 1 naming both sizes, and the lease put opened is closed with its array', async () => {
    const leasesBefore = (await setup.client.listLeases()).length;
    const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--shape', '1024,1024', '--label', 'put-stdin-short-new'], randomBytes(MiB - 1));
    expect(put.stderr).toMatch(new RegExp(`^tensormemctl: stdin ended after ${MiB - 1} bytes \\(1024.00 KiB\\), short of the ${MiB} bytes \\(1.00 MiB\\) of array arr-\\w+: put closes the lease it opened, and the new array with it\\n$`));
    expect(put.code).toBe(1);
    expect((await setup.client.listLeases()).length).toBe(leasesBefore);
    expect(await liveLabels(setup.client)).not.toContain('put-stdin-short-new');
  });

  it('stdin longer than the array: exit 1, the array holds its first bytes, nothing past its end is written', async () => {
    const lease = await setup.client.openLease({ clientName: 'put-stdin-long' });
    try {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [3 * MiB] });
      const neighbour = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB] });
      const neighbourBytes = randomBytes(MiB);
      await lease.write(neighbour.array_id, neighbourBytes);
      const given = randomBytes(5 * MiB);
      const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--array', array.array_id, '--token', lease.token], given);
      expect(put.stderr).toBe(`tensormemctl: stdin has more than the ${3 * MiB} bytes (3.00 MiB) of array ${array.array_id}: put wrote the first ${3 * MiB} and read no further\n`);
      expect(put.code).toBe(1);
      expect((await lease.read(array.array_id)).equals(given.subarray(0, 3 * MiB))).toBe(true);
      expect((await lease.read(neighbour.array_id)).equals(neighbourBytes)).toBe(true);
    } finally {
      await lease.close();
    }

    const leasesBefore = (await setup.client.listLeases()).length;
    const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--shape', '1000', '--label', 'put-stdin-long-new'], randomBytes(1001));
    expect(put.stderr).toMatch(/^tensormemctl: stdin has more than the 1000 bytes \(1000 B\) of array arr-\w+: put wrote the first 1000 and read no further: put closes the lease it opened, and the new array with it\n$/);
    expect(put.code).toBe(1);
    expect((await setup.client.listLeases()).length).toBe(leasesBefore);
    expect(await liveLabels(setup.client)).not.toContain('put-stdin-long-new');
  });
});

describe('tensormemctl put - (one daemon with a data plane)', () => {
  const setup = daemonForTests(['--data-listen', '127.0.0.1:0']);

  it('without --array or --shape: a usage error (exit 2) saying what put - needs, before any lease', async () => {
    const leasesBefore = (await setup.client.listLeases()).length;
    const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--dtype', 'float32'], Buffer.from('data'));
    expect(put.code).toBe(2);
    expect(put.stderr).toContain('tensormemctl: put - (stdin) needs the size of the array to fill: --array ID (an existing array, with its lease\'s --token) or --shape N[,N...] [--dtype NAME] (a new one); ./- is a file named "-"\n');
    expect((await setup.client.listLeases()).length).toBe(leasesBefore);
  });

  it('a shell pipe: head -c N /dev/urandom | tee f | tensormemctl put - ... && tensormemctl get ... - | cmp - f', async () => {
    const bytes = 9 * MiB + 7;
    const saved = join(dir, 'tee.bin');
    const ctlCommand = `'${process.execPath}' '${TENSORMEMCTL}' --address '${setup.daemon.unixAddress}'`;
    const put = spawnSync('bash', ['-o', 'pipefail', '-c', `head -c ${bytes} /dev/urandom | tee '${saved}' | ${ctlCommand} put - --shape ${bytes} -o json`], { encoding: 'utf8', env: { ...process.env, TENSORMEM_TOKEN: '' } });
    expect(put.stderr).toBe('');
    expect(put.status).toBe(0);
    const result = JSON.parse(put.stdout) as PutJson;
    const get = spawnSync('bash', ['-o', 'pipefail', '-c', `${ctlCommand} --token '${result.lease!.token}' get --array ${result.array.array_id} - | cmp - '${saved}'`], { encoding: 'utf8' });
    expect(get.stderr).toBe(`read ${bytes} bytes (9.00 MiB) of array ${result.array.array_id} to stdout\n`);
    expect(get.status).toBe(0);
    await setup.client.evictLease(result.lease!.lease_id);
  });

  it('stdin a regular file (put - < FILE), a character device (/dev/null, /dev/zero) and a directory (refused as one)', async () => {
    const content = randomBytes(16 * MiB + 3);
    const path = join(dir, 'redirected.bin');
    writeFileSync(path, content);
    const fd = openSync(path, 'r');
    let result: PutJson;
    try {
      const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--shape', String(content.length), '-o', 'json'], fd);
      expect(put.stderr).toBe('');
      expect(put.code).toBe(0);
      result = JSON.parse(put.stdout) as PutJson;
    } finally {
      closeSync(fd);
    }
    const reader = spawnSync(process.execPath, [TENSORMEMCTL, '--address', setup.daemon.unixAddress, '--token', result.lease!.token, 'get', '--array', result.array.array_id, '-'], { maxBuffer: 64 * MiB });
    expect(reader.stdout.equals(content)).toBe(true);
    await setup.client.evictLease(result.lease!.lease_id);

    const empty = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--shape', '8'], 'ignore');
    expect(empty.stderr).toMatch(/^tensormemctl: stdin ended after 0 bytes \(0 B\), short of the 8 bytes \(8 B\) of array arr-\w+: put closes the lease it opened, and the new array with it\n$/);
    expect(empty.code).toBe(1);
    // A directory (`put - < DIR`): refused as one, not read as an empty stdin.
    const folder = openSync(dir, 'r');
    try {
      const directory = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--shape', '8'], folder);
      expect(directory.stderr).toBe('tensormemctl: put cannot read stdin: it is a directory (put - reads a pipe, a socket, a regular file or a terminal)\n');
      expect(directory.code).toBe(1);
    } finally {
      closeSync(folder);
    }
    const zeros = openSync('/dev/zero', 'r');
    try {
      const endless = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--shape', String(2 * MiB)], zeros);
      expect(endless.stderr).toMatch(new RegExp(`^tensormemctl: stdin has more than the ${2 * MiB} bytes \\(2.00 MiB\\) of array arr-\\w+: put wrote the first ${2 * MiB} and read no further: put closes the lease it opened, and the new array with it\\n$`));
      expect(endless.code).toBe(1);
    } finally {
      closeSync(zeros);
    }
  });

  it('stdin a listening socket (a TCP or unix server, which yields no data nor an end): refused naming stdin, not waited on for good', async () => {
    for (const where of [{ port: 0, host: '127.0.0.1' }, { path: join(dir, 'listening.sock') }]) {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(where, resolve));
      try {
        const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
        const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--shape', '8'], fd, { timeoutMs: 10_000 });
        expect(put.stderr, JSON.stringify(where)).toMatch(/^tensormemctl: put cannot read stdin: it is a listening socket/);
        expect(put.code, JSON.stringify(where)).toBe(1);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    }
  });

  it('a producer slower than the lease\'s TTL: put keeps the lease it opened alive while it waits, and the array lives its TTL after put', async () => {
    // 1000 bytes, 4 s of silence (twice the 2 s TTL), then the last 24: the piece is written after the pause.
    const child = spawn(process.execPath, [TENSORMEMCTL, '--address', setup.daemon.unixAddress, 'put', '-', '--shape', '1024', '--ttl', '2s', '-o', 'json'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TENSORMEM_TOKEN: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const content = randomBytes(1024);
    child.stdin!.write(content.subarray(0, 1000));
    await new Promise((resolve) => setTimeout(resolve, 4000));
    child.stdin!.end(content.subarray(1000));
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    const result = JSON.parse(stdout) as PutJson;
    const read = spawnSync(process.execPath, [TENSORMEMCTL, '--address', setup.daemon.unixAddress, '--token', result.lease!.token, 'get', '--array', result.array.array_id, '-']);
    expect(read.status).toBe(0);
    expect(read.stdout.equals(content)).toBe(true);
    await setup.client.evictLease(result.lease!.lease_id);
  });

  it('the lease put opened lives its --ttl from the end of put (the keep-alive renewed it last when put began)', async () => {
    const child = spawn(process.execPath, [TENSORMEMCTL, '--address', setup.daemon.unixAddress, 'put', '-', '--shape', '1024', '--ttl', '30s', '--label', 'put-ttl-from-end', '-o', 'json'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TENSORMEM_TOKEN: '' } });
    let stdout = '';
    child.stdout!.on('data', (d) => (stdout += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    child.stdin!.write(Buffer.alloc(1000));
    // The array allocated, the keep-alive starts and renews at once, then not for 10 s (a third of the TTL):
    // its last renewal before put ends.
    while (!(await liveLabels(setup.client)).includes('put-ttl-from-end')) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const ending = Date.now();
    child.stdin!.end(Buffer.alloc(24));
    expect(await exited).toBe(0);
    const result = JSON.parse(stdout) as PutJson;
    const [lease] = await setup.client.listLeases(result.lease!.token);
    expect(Number(lease.expires_at!.seconds) * 1000 + lease.expires_at!.nanos / 1e6).toBeGreaterThanOrEqual(ending + 30_000);
    await setup.client.evictLease(result.lease!.lease_id);
  });

  it('the lease put opened evicted mid-put: exit 1 saying the lease had ended and its array with it (not that it still holds it)', async () => {
    const child = spawn(process.execPath, [TENSORMEMCTL, '--address', setup.daemon.unixAddress, 'put', '-', '--shape', '1024', '--label', 'put-stdin-evicted'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TENSORMEM_TOKEN: '' } });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    child.stdin!.write(Buffer.alloc(1000));
    let lease: string | undefined;
    while (!(lease = (await setup.client.listLeases()).find((l) => l.client_name === 'tensormemctl put')?.lease_id)) await new Promise((resolve) => setTimeout(resolve, 10));
    while (!(await liveLabels(setup.client)).includes('put-stdin-evicted')) await new Promise((resolve) => setTimeout(resolve, 10));
    await setup.client.evictLease(lease);
    child.stdin!.end(Buffer.alloc(24));
    expect(await exited).toBe(1);
    expect(stderr).toContain(`; lease ${lease}, which put opened, had already ended, and its array with it\n`);
    expect(stderr).not.toContain('holds the array');
  });

  it('./- is still a file named "-"', async () => {
    const folder = mkdtempSync(join(dir, 'dash-'));
    writeFileSync(join(folder, '-'), 'abc');
    const put = await ctl(['--address', setup.daemon.unixAddress, 'put', './-', '-o', 'json'], Buffer.from('not these bytes'), { cwd: folder });
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    const result = JSON.parse(put.stdout) as PutJson;
    expect(result).toMatchObject({ bytes_written: 3, array: { label: './-' } });
    await setup.client.evictLease(result.lease!.lease_id);
  });

  it('Ctrl-C while stdin sends nothing: the lease put opened is closed (its array freed), exit 130', async () => {
    const leasesBefore = (await setup.client.listLeases()).length;
    const child: ChildProcess = spawn(process.execPath, [TENSORMEMCTL, '--address', setup.daemon.unixAddress, 'put', '-', '--shape', String(32 * MiB), '--label', 'put-stdin-interrupted'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    // A first piece and a part of the second, then the producer falls silent with its end of the pipe open.
    const before = await writtenBytes(setup.statusBase, 'data_plane');
    // The part of the 17 MiB that put has not read when it is interrupted fails to go (EPIPE), as a producer's would.
    child.stdin!.on('error', () => {});
    child.stdin!.write(randomBytes(17 * MiB));
    while ((await writtenBytes(setup.statusBase, 'data_plane')) < before + 16 * MiB) await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await setup.client.listLeases()).length).toBe(leasesBefore + 1);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toBe('tensormemctl: interrupted by SIGINT\n');
    child.stdin!.destroy();
    expect((await setup.client.listLeases()).length).toBe(leasesBefore);
    expect(await liveLabels(setup.client)).not.toContain('put-stdin-interrupted');
  });

  it('Ctrl-C once stdin gave all the array\'s bytes but has not ended (put waits to see whether it is longer): exit 130, the lease put opened is closed, not a success', async () => {
    const leasesBefore = (await setup.client.listLeases()).length;
    const child: ChildProcess = spawn(process.execPath, [TENSORMEMCTL, '--address', setup.daemon.unixAddress, 'put', '-', '--shape', '1024', '--label', 'put-stdin-interrupted-at-end'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    // A write this small goes over gRPC or the data plane, as LeaseSession.write picks.
    const written = async () => (await writtenBytes(setup.statusBase, 'grpc')) + (await writtenBytes(setup.statusBase, 'data_plane'));
    const before = await written();
    // Exactly the array's bytes, with the producer's end of the pipe left open: put cannot know yet that stdin ends there.
    child.stdin!.on('error', () => {});
    child.stdin!.write(randomBytes(1024));
    while ((await written()) < before + 1024) await new Promise((resolve) => setTimeout(resolve, 5));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toBe('tensormemctl: interrupted by SIGINT\n');
    expect(stdout).toBe('');
    child.stdin!.destroy();
    expect((await setup.client.listLeases()).length).toBe(leasesBefore);
    expect(await liveLabels(setup.client)).not.toContain('put-stdin-interrupted-at-end');
  });

  it('64 MiB through a pipe: the CLI peaks at its piece above what it holds for a 1 MiB input, far below the input', async () => {
    const measure = async (bytes: number) => {
      const put = await ctl(['--address', setup.daemon.unixAddress, 'put', '-', '--shape', String(bytes), '-o', 'json'], randomBytes(bytes), { peak: true });
      expect(put.stderr).toBe('');
      expect(put.code).toBe(0);
      await setup.client.evictLease((JSON.parse(put.stdout) as PutJson).lease!.lease_id);
      return put.peakBytes!;
    };
    const small = await measure(MiB);
    const big = await measure(64 * MiB);
    // Measured here: 16 MiB (the one piece) and 0-2 MiB more; the whole input would be 64 MiB more.
    console.log(`put - peak VmHWM: ${(small / MiB).toFixed(1)} MiB for 1 MiB of stdin, ${(big / MiB).toFixed(1)} MiB for 64 MiB`);
    expect(big - small).toBeLessThan(32 * MiB);
  }, 60_000);
});

describe('tensormemctl put - with no daemon at --address', () => {
  it('stdin a pipe or a FIFO that sends nothing and stays open: the daemon is asked first, and put fails at once as info does (exit 1), without reading stdin', async () => {
    // A FIFO this test holds open for writing (O_RDWR: opening does not wait for a reader) and never writes.
    const fifo = join(dir, 'silent.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const fifoFd = openSync(fifo, 'r+');
    try {
      for (const address of ['127.0.0.1:1', `unix:${join(dir, 'no-such.sock')}`]) {
        const info = await ctl(['--address', address, 'info'], 'ignore');
        expect(info.code).toBe(1);
        expect(info.stderr).toContain(address.startsWith('unix:') ? `(is tensormemd running with --listen ${address}?` : `(is tensormemd running at ${address}?`);
        for (const form of [['--shape', '8'], ['--array', 'arr-0123456789abcdef01234567', '--token', 'lease-token']]) {
          for (const stdin of ['pipe', 'fifo'] as const) {
            const what = `${address} ${form[0]} ${stdin}`;
            const started = Date.now();
            // 'pipe': a socket pair whose writing end this test keeps open and silent.
            const child = spawn(process.execPath, [TENSORMEMCTL, '--address', address, 'put', '-', ...form], { stdio: [stdin === 'pipe' ? 'pipe' : fifoFd, 'pipe', 'pipe'], timeout: 20_000, env: { ...process.env, TENSORMEM_TOKEN: '' } });
            let stderr = '';
            child.stderr!.on('data', (d) => (stderr += d));
            const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
            child.stdin?.destroy();
            expect(code, what).toBe(1);
            expect(stderr, what).toBe(info.stderr);
            // A stdin read first would have waited for the 20 s timeout (and been killed: code null).
            expect(Date.now() - started, what).toBeLessThan(10_000);
          }
        }
      }
    } finally {
      closeSync(fifoFd);
    }
  });
});
