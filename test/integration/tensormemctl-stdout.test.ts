/**
 * tensormemctl writing its output where it cannot all go: a reader that goes away (`| head`), and a
 * file that takes only part of it (a full disk; here a file size limit, `prlimit --fsize`, which fails
 * the same way: a short write, then an error). An output larger than a pipe's buffer piped to `head`
 * ended with Node's "Unhandled 'error' event" stack trace; `snapshot > FILE`, `arrays > FILE` and
 * `get --array ID FILE` on a disk that filled up exited 0 with the file cut short.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, ROOT, startDaemon } from '../helpers/daemon-process';

const TENSORMEMCTL = join(ROOT, 'dist', 'src', 'bin', 'tensormemctl.js');
const MiB = 1024 ** 2;
/** The file size limit of get (less than its 5 MiB array), and of `snapshot` and `arrays` (less than what they print). */
const LIMIT_BYTES = MiB;
const OUTPUT_LIMIT_BYTES = 100_000;

let daemon: DaemonProcess;
let client: TensormemClient;
let lease: LeaseSession;
let bigArrayId: string;
let dir: string;

beforeAll(async () => {
  daemon = await startDaemon();
  client = new TensormemClient(daemon.unixAddress);
  dir = mkdtempSync(join(tmpdir(), 'tensormemctl-stdout-'));
  lease = await client.openLease({ clientName: 'stdout-test', ttlSeconds: 600 });
  // Enough blocks that `arrays` and `snapshot` print well over a pipe's 64 KiB and LIMIT_BYTES.
  for (let i = 0; i < 1500; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [64], label: `label-${i + j}-${'x'.repeat(80)}` })));
  }
  // One piece of get (16 MiB), larger than LIMIT_BYTES.
  const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [5 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
  await lease.write(big.array_id, Buffer.alloc(5 * MiB, 7));
  bigArrayId = big.array_id;
}, 60_000);

afterAll(async () => {
  await lease?.close();
  client?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs tensormemctl with its stdout a pipe that this end closes as soon as the first bytes arrive (`| head -c 1`). */
function ctlIntoClosedPipe(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TENSORMEMCTL, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TENSORMEM_TOKEN: '' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** Runs tensormemctl under a file size limit of `limit` bytes, its stdout the file `stdoutPath` (as `> FILE` on a disk that fills up). */
function ctlUnderFileLimit(args: string[], stdoutPath: string, limit = LIMIT_BYTES): Promise<{ code: number | null; stderr: string }> {
  const fd = openSync(stdoutPath, 'w');
  return new Promise((resolve) => {
    const child = spawn('prlimit', [`--fsize=${limit}`, process.execPath, TENSORMEMCTL, ...args], { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, TENSORMEM_TOKEN: '' } });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.once('close', (code) => {
      closeSync(fd);
      resolve({ code, stderr });
    });
  });
}

describe('tensormemctl output to a reader that goes away (| head)', () => {
  it.each([['snapshot'], ['arrays'], ['arrays', '-o', 'json']].map((command) => [command.join(' '), command] as const))('%s: exits 141 (128 + SIGPIPE) with nothing on stderr, no stack trace', async (_name, command) => {
    const run = await ctlIntoClosedPipe(['--address', daemon.unixAddress, ...command]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(141);
  });

  it('get --array ID - still says how far it got, and exits 1', async () => {
    const run = await ctlIntoClosedPipe(['--address', daemon.unixAddress, '--token', lease.token, 'get', '--array', bigArrayId, '-']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^tensormemctl: get cannot write to stdout after \\d+ of ${5 * MiB} bytes: .*EPIPE.*\\n$`));
  });
});

describe('tensormemctl output to a file that cannot take it all (disk full)', () => {
  it.each([['snapshot'], ['arrays']])('%s > FILE: exits 1 naming stdout and the error, not 0 with the file cut short', async (command) => {
    const out = join(dir, `${command}.out`);
    const run = await ctlUnderFileLimit(['--address', daemon.unixAddress, command], out, OUTPUT_LIMIT_BYTES);
    expect(statSync(out).size).toBe(OUTPUT_LIMIT_BYTES);
    expect(run.stderr).toMatch(new RegExp(`^tensormemctl: cannot write to stdout after ${OUTPUT_LIMIT_BYTES} of \\d+ bytes: EFBIG: file too large, write\\n$`));
    expect(run.code).toBe(1);
  });

  it('get --array ID FILE: exits 1 naming FILE, and leaves no FILE and no temporary file', async () => {
    const folder = mkdtempSync(join(dir, 'get-'));
    const target = join(folder, 'copy.bin');
    const run = await ctlUnderFileLimit(['--address', daemon.unixAddress, '--token', lease.token, 'get', '--array', bigArrayId, target], join(dir, 'get.out'));
    expect(run.stderr).toBe(`tensormemctl: get cannot write ${target} after ${LIMIT_BYTES} of ${5 * MiB} bytes: EFBIG: file too large, write\n`);
    expect(run.code).toBe(1);
    expect(readdirSync(folder)).toEqual([]);
    expect(readFileSync(join(dir, 'get.out'), 'utf8')).toBe('');
  });

  it('get --array ID - > FILE: exits 1 saying how far it got', async () => {
    const out = join(dir, 'get-stdout.out');
    const run = await ctlUnderFileLimit(['--address', daemon.unixAddress, '--token', lease.token, 'get', '--array', bigArrayId, '-'], out);
    expect(run.stderr).toBe(`tensormemctl: get cannot write to stdout after ${LIMIT_BYTES} of ${5 * MiB} bytes: EFBIG: file too large, write\n`);
    expect(statSync(out).size).toBe(LIMIT_BYTES);
    expect(run.code).toBe(1);
  });
});
