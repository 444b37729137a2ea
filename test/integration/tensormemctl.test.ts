/**
 * The compiled tensormemctl run as a process against a daemon started as a process: doctor, snapshot
 * and diff, top --once, put/get, arrays under a tenants file, exit codes, and --profile as GetConfig
 * reports it.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { AddressInfo, Socket, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { profileValues } from '../../src/config/profiles';
import type { SnapshotDiff } from '../../src/cli/snapshot-diff';
import { DaemonProcess, ROOT, TENSORMEMD, startDaemon } from '../helpers/daemon-process';
import { tokenSha256 } from '../helpers/tenants-file';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { transferBytes } from '../helpers/transfer-bytes';

const TENSORMEMCTL = join(ROOT, 'dist', 'src', 'bin', 'tensormemctl.js');
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs tensormemctl; with `input`, its stdin is a pipe that gets `input` and then ends. */
function ctl(args: string[], env: NodeJS.ProcessEnv = {}, input?: Buffer): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TENSORMEMCTL, ...args], { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: { ...process.env, TENSORMEM_TOKEN: '', ...env } });
    if (input) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts tensormemctl and leaves it running: for tests that stop or signal it midway. */
function startCtl(args: string[]): { child: ChildProcess; exited: Promise<number | null>; running: () => boolean; stderr: () => string; stopAndSignal: (signal: NodeJS.Signals) => void } {
  const child = spawn(process.execPath, [TENSORMEMCTL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let running = true;
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code))).finally(() => (running = false));
  // Stopped first, so that the signal is pending and is handled at a known point: right after SIGCONT.
  const stopAndSignal = (signal: NodeJS.Signals) => {
    child.kill('SIGSTOP');
    child.kill(signal);
    child.kill('SIGCONT');
  };
  return { child, exited, running: () => running, stderr: () => stderr, stopAndSignal };
}

let daemon: DaemonProcess;
let client: TensormemClient;
let dir: string;

beforeAll(async () => {
  // --profile gpu-training, with host-maxbytes from the environment (env beats the profile).
  daemon = await startDaemon(['--profile', 'gpu-training'], { TENSORMEM_HOST_MAXBYTES: '512M' });
  client = new TensormemClient(daemon.unixAddress);
  dir = mkdtempSync(join(tmpdir(), 'tensormemctl-test-'));
}, 30_000);

afterAll(async () => {
  client?.close();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('tensormemctl --version', () => {
  it('prints the package version and exits 0, with no daemon and no command (as tensormemd --version)', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const run = await ctl(['--version'], { TENSORMEM_ADDRESS: 'unix:/nonexistent/tensormemd.sock' });
    expect([run.code, run.stdout, run.stderr]).toEqual([0, `tensormemctl ${version}\n`, '']);
  });
});

describe('tensormemctl --timeout', () => {
  it("sets every call's deadline: a daemon that never answers fails at it, not at the default 10 s; a bad value is a usage error", async () => {
    // Takes connections and says nothing (a hung daemon, a link that drops every packet after the handshake).
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const run = await ctl(['--address', `127.0.0.1:${(silent.address() as AddressInfo).port}`, '--timeout', '500ms', 'info']);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/deadline/i);
      expect(Date.now() - started).toBeLessThan(8_000);
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
    for (const bad of ['0', '-1s', 'soon', '30d']) {
      const run = await ctl(['--address', daemon.unixAddress, '--timeout', bad, 'info']);
      expect(run.code, bad).toBe(2);
      expect(run.stderr, bad).toContain('--timeout');
      expect(run.stderr, bad).toContain(bad);
    }
    // Given, it is used for the daemon's answer as any other call's deadline.
    expect((await ctl(['--address', daemon.unixAddress, '--timeout', '30s', 'info'])).code).toBe(0);
  });
});

describe('tensormemd --profile', () => {
  it('GetConfig shows the profile values with source profile:gpu-training, and env above the profile', async () => {
    const run = await ctl(['--address', daemon.unixAddress, 'config', '-o', 'json']);
    expect(run.code).toBe(0);
    const values = Object.fromEntries((JSON.parse(run.stdout) as { values: Array<{ name: string; value: string; source: string }> }).values.map((v) => [v.name, v]));
    const info = await client.memoryInfo();
    // The 2 GiB emulated device: under 16 GiB the reserve is 1 GiB.
    const expected = profileValues('gpu-training', { ramBytes: totalmem(), deviceTotalBytes: [2 * GiB], backend: 'host', heapLimitBytes: info.process!.heap_limit_bytes }, { hostMaxBytes: 512 * MiB });
    expect(values.profile).toMatchObject({ value: 'gpu-training', source: 'flag' });
    expect(values['device-reserve']).toMatchObject({ value: String(GiB), source: 'profile:gpu-training' });
    expect(values.maxbytes).toMatchObject({ value: String(GiB), source: 'profile:gpu-training' });
    expect(values['host-maxbytes']).toMatchObject({ value: String(512 * MiB), source: 'env' });
    expect(values.maxphysicalbytes).toMatchObject({ value: String(expected.maxPhysicalBytes), source: 'profile:gpu-training' });
    expect(info.devices[0].max_bytes).toBe(GiB);
    expect(info.process!.max_physical_bytes).toBe(expected.maxPhysicalBytes);
  });
});

describe('tensormemctl doctor', () => {
  it('judges the running daemon: no error, exit 0, the profile caps count as set', async () => {
    const run = await ctl(['--address', daemon.unixAddress, 'doctor', '-o', 'json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { subject: string; facts: { deviceCapSet: boolean; maxPhysicalSet: boolean; hostMaxBytes: number }; findings: Array<{ severity: string; rule: string }> };
    expect(result.subject).toBe(`daemon at ${daemon.unixAddress}`);
    expect(result.facts).toMatchObject({ deviceCapSet: true, maxPhysicalSet: true, hostMaxBytes: 512 * MiB });
    expect(result.findings.filter((f) => f.severity === 'error')).toEqual([]);
  });

  it('exits 1 on a running daemon whose physical cap is below host-maxbytes + heap, naming the fix', async () => {
    const bad = await startDaemon(['--host-maxbytes', '6G', '--maxphysicalbytes', '1G']);
    try {
      const run = await ctl(['--address', bad.unixAddress, 'doctor']);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain('ERROR maxphysicalbytes-below-sum');
      expect(run.stdout).toMatch(/fix: {2}--maxphysicalbytes \d+G/);
      expect(run.stdout).toContain('WARNING no-device-cap');
    } finally {
      await bad.stop();
    }
  }, 30_000);

  it('judges a proposed command line offline: maxbytes above VRAM is an error, exit 1', async () => {
    const run = await ctl(['doctor', '--vram', '24G', '--ram', '64G', '--', '--maxbytes', '30G', '--maxphysicalbytes', '30G', '--host-maxbytes', '16G']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('proposed configuration (tensormemd --maxbytes 30G --maxphysicalbytes 30G --host-maxbytes 16G)');
    expect(run.stdout).toContain('ERROR maxbytes-above-vram');
    expect(run.stdout).toContain('fix:  --maxbytes 22G (VRAM − 2.00 GiB)');
    expect(run.stdout).toContain('\n1 finding: 1 error, 0 warnings, 0 info');
  });

  it('refuses an empty or zero --vram or --ram (exit 2) rather than judging this machine or a machine of 0 bytes', async () => {
    for (const [args, message] of [
      [['--vram='], 'Expected a size like 8G, 512MiB or 1048576 for --vram but received ""'],
      [['--ram', ''], 'Expected a size like 8G, 512MiB or 1048576 for --ram but received ""'],
      [['--ram', '0'], 'Expected a size above 0 for --ram but received "0"'],
      [['--vram', '24G,0'], 'Expected a size above 0 for --vram but received "0"'],
    ] as const) {
      const run = await ctl(['doctor', ...args]);
      expect([run.code, run.stdout], args.join(' ')).toEqual([2, '']);
      expect(run.stderr).toContain(message);
    }
  });

  // README: "tensormemctl doctor -- $FLAGS && tensormemd $FLAGS" refuses, "with exit 2, one the flag parser refuses", as tensormemd does; doctor exited 1.
  it('refuses a proposed command line the daemon\'s flag parser refuses with exit 2, as tensormemd does, naming the flag and value', async () => {
    for (const [flags, message] of [
      [['--maxbytes', 'abc'], 'Expected a size like 8G, 512MiB, 1048576 or 80% for --maxbytes but received "abc"'],
      [['--mirror', 'sometimes'], 'Expected one of lazy, eager for --mirror but received "sometimes"'],
      [['--frobnicate'], 'Expected a known flag (see --help) for arguments but received "--frobnicate"'],
    ] as const) {
      const run = await ctl(['doctor', '--', ...flags]);
      expect([run.code, run.stdout], flags.join(' ')).toEqual([2, '']);
      expect(run.stderr).toContain(message);
      const daemon = spawnSync(process.execPath, [TENSORMEMD, ...flags], { encoding: 'utf8' });
      expect([daemon.status, daemon.stderr], flags.join(' ')).toEqual([2, expect.stringContaining(message)]);
    }
  });

  it('judges a config file offline with the daemon\'s parser; a good one exits 0 with no pitfalls', async () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(file, 'maxbytes: 22G\nhost-maxbytes: 22G\nmaxphysicalbytes: 30G\n');
    const run = await ctl(['doctor', '--config', file, '--vram', '24G', '--ram', '64G']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('No pitfalls found.');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'maxbytes: plenty\n');
    const refused = await ctl(['doctor', '--config', bad, '--vram', '24G']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`for --maxbytes (from ${bad}: maxbytes) but received "plenty"`);
  });
});

describe('tensormemctl doctor: caps of 0 and the tenants file, as tensormemd judges them', () => {
  it('a cap of 0 is an error with a fix that works (exit 1); --maxphysicalbytes 0 is no process cap (exit 0)', async () => {
    const small = await ctl(['doctor', '--', '--backend', 'host', '--emulated-device', '1G', '--allow-small-device']);
    expect(small.code).toBe(1);
    expect(small.stdout).toContain('ERROR maxbytes-zero');
    expect(small.stdout).toContain('fix:  --device-reserve 256M (a smaller reserve), or --maxbytes 768M');
    expect(small.stdout).not.toMatch(/fix: .*--[a-z-]+ 0[GM% ]/);
    const hostZero = await ctl(['doctor', '--', '--backend', 'host', '--emulated-device', '4G', '--host-maxbytes', '0']);
    expect(hostZero.code).toBe(1);
    expect(hostZero.stdout).toContain('ERROR host-maxbytes-zero');
    const noPhysicalCap = await ctl(['doctor', '--', '--backend', 'host', '--emulated-device', '4G', '--maxbytes', '3G', '--maxphysicalbytes', '0']);
    expect(noPhysicalCap.stdout).toContain('WARNING physical-cap-off');
    expect(noPhysicalCap.stdout).not.toContain('ERROR');
    expect(noPhysicalCap.code).toBe(0);
  });

  it('exits 1 on a --tenants file the daemon refuses: guarantees above --maxbytes, or a file that does not parse', async () => {
    const tenant = (name: string) => `  - name: ${name}\n    token_sha256: "${createHash('sha256').update(name).digest('hex')}"\n    guarantee: { device: 2G }\n`;
    const over = join(dir, 'tenants-over.yaml');
    writeFileSync(over, `tenants:\n${tenant('a')}${tenant('b')}`);
    const flags = ['--backend', 'host', '--emulated-device', '4G', '--maxbytes', '3G', '--tenants', over];
    const run = await ctl(['doctor', '--', ...flags]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('ERROR tenant-guarantees-above-maxbytes');
    expect(run.stdout).toContain(`--tenants ${over}`);
    // The daemon refuses the same file with the same words.
    const refused = await startDaemon(flags.slice(2)).then(
      async (daemon) => {
        await daemon.stop();
        return 'started';
      },
      (error: Error) => error.message,
    );
    expect(refused).toContain('exited with 1 before listening');
    expect(run.stdout).toContain(refused.split('\n').find((line) => line.startsWith('tensormemd: '))!.slice('tensormemd: '.length));
    const bad = join(dir, 'tenants-bad.yaml');
    writeFileSync(bad, 'maxbytes: 12Q\n');
    const unparsed = await ctl(['doctor', '--', '--backend', 'host', '--emulated-device', '4G', '--maxbytes', '3G', '--tenants', bad]);
    expect(unparsed.code).toBe(1);
    expect(unparsed.stdout).toContain('ERROR tenants-file-unreadable');
    expect(unparsed.stdout).toContain(`--tenants ${bad} cannot be used`);
  }, 30_000);
});

describe('tensormemctl doctor: a percentage that comes to 0 bytes, as tensormemd judges it', () => {
  it('exits 1 on a --maxphysicalbytes or --device-reserve share that is not 0 but comes to 0 bytes, which the daemon refuses', async () => {
    const base = ['--backend', 'host', '--emulated-device', '4G', '--maxbytes', '3G', '--host-maxbytes', '4G'];
    const physical = await ctl(['doctor', '--ram', '64G', '--', ...base, '--maxphysicalbytes', '0.00000000001%']);
    expect(physical.code).toBe(1);
    expect(physical.stdout).toContain('ERROR percent-comes-to-zero');
    expect(physical.stdout).toContain('for --maxphysicalbytes but received "0.00000000001% (0 bytes of the machine\'s RAM');
    expect(physical.stdout).not.toContain('physical-cap-off');
    const reserve = await ctl(['doctor', '--ram', '64G', '--', ...base, '--maxphysicalbytes', '20G'], { TENSORMEM_DEVICE_RESERVE: '0.00000000001%' });
    expect(reserve.code).toBe(1);
    expect(reserve.stdout).toContain('for --device-reserve (from TENSORMEM_DEVICE_RESERVE) but received "0.00000000001% (0 bytes of device 0');
    const whole = await ctl(['doctor', '--ram', '64G', '--', ...base, '--maxphysicalbytes', '50%']);
    expect(whole.stdout).not.toContain('percent-comes-to-zero');
  }, 30_000);
});

describe('tensormemctl doctor: open mode addresses, as tensormemd judges them', () => {
  it('exits 1 on a command line with no --tenants file and a --listen or --data-listen address that is not local, as the daemon refuses it', async () => {
    const base = ['--backend', 'host', '--emulated-device', '4G', '--maxbytes', '3G', '--host-maxbytes', '4G', '--maxphysicalbytes', '20G'];
    const run = await ctl(['doctor', '--ram', '64G', '--', ...base, '--listen', '0.0.0.0:7070']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('ERROR open-mode-exposed-address');
    expect(run.stdout).toContain('for --listen but received "0.0.0.0:7070"; the daemon refuses to start');
    // The daemon refuses the same command line with the same words.
    const refused = await startDaemon([...base.slice(2), '--listen', '0.0.0.0:0']).then(
      async (started) => {
        await started.stop();
        return 'started';
      },
      (error: Error) => error.message,
    );
    expect(refused).toContain('exited with 1 before listening');
    expect(refused).toContain('loopback or unix: addresses only when no --tenants file is given (open mode) for --listen');
    const data = await ctl(['doctor', '--ram', '64G', '--', ...base], { TENSORMEM_DATA_LISTEN: '0.0.0.0:0' });
    expect(data.code).toBe(1);
    expect(data.stdout).toContain('for --data-listen (from TENSORMEM_DATA_LISTEN) but received "0.0.0.0:0"');
    const local = await ctl(['doctor', '--ram', '64G', '--', ...base, '--listen', '127.0.0.1:7070', '--listen', 'unix:/tmp/x.sock']);
    expect(local.stdout).not.toContain('open-mode-exposed-address');
    expect(local.code).toBe(0);
  }, 30_000);
});

describe('tensormemctl snapshot and snapshot diff', () => {
  it('diff names exactly the arrays allocated and freed between two snapshots, with byte totals', async () => {
    const lease = await client.openLease({ clientName: 'snapshot-test' });
    try {
      const before = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024], label: 'kept-then-freed' });
      const a = join(dir, 'a.json');
      const b = join(dir, 'b.json');
      const first = await ctl(['--address', daemon.unixAddress, 'snapshot', '-f', a]);
      expect(first.code).toBe(0);
      expect(first.stderr).toMatch(/snapshot: \d+ live blocks? holding .*, written to .* \(.*\)/);
      const leaked1 = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256, 1024], label: 'leak' });
      const leaked2 = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096], label: 'leak', placement: 'PLACEMENT_HOST_ONLY' });
      await lease.free(before.array_id);
      expect((await ctl(['--address', daemon.unixAddress, 'snapshot', '-f', b])).code).toBe(0);

      const run = await ctl(['snapshot', 'diff', a, b, '-o', 'json']);
      expect(run.code).toBe(0);
      const diff = JSON.parse(run.stdout) as SnapshotDiff;
      expect(diff.appeared).toHaveLength(1);
      expect(diff.appeared[0]).toMatchObject({ lease_id: lease.leaseId, label: 'leak', blocks: 2, bytes: 256 * 1024 * 4 + 4096 });
      expect(diff.appeared[0].owners).toEqual([leaked1.array_id, leaked2.array_id].sort());
      expect(diff.appeared_bytes).toBe(256 * 1024 * 4 + 4096);
      expect(diff.disappeared).toHaveLength(1);
      expect(diff.disappeared[0]).toMatchObject({ lease_id: lease.leaseId, label: 'kept-then-freed', blocks: 1, bytes: 4096, owners: [before.array_id] });

      const table = await ctl(['snapshot', 'diff', a, b]);
      expect(table.stdout).toContain('appeared: 2 blocks, 1.00 MiB');
      expect(table.stdout).toContain('disappeared: 1 block, 4.00 KiB');
      expect(table.stdout).toContain(leaked1.array_id);
    } finally {
      await lease.close();
    }
  });

  it('writes the snapshot to stdout without -f, and refuses a file that is not a snapshot', async () => {
    const run = await ctl(['--address', daemon.unixAddress, 'snapshot']);
    expect(run.code).toBe(0);
    expect(Array.isArray(JSON.parse(run.stdout).pools)).toBe(true);
    const notSnapshot = join(dir, 'not.json');
    writeFileSync(notSnapshot, '{"hello": 1}');
    const refused = await ctl(['snapshot', 'diff', notSnapshot, notSnapshot]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`Expected a snapshot (a JSON object with "pools"`);
    expect(refused.stderr).toContain(` in ${notSnapshot} but received {"hello":1}`);
  });

  it('-f into a folder that does not exist says so before asking the daemon, and a file replaced keeps its mode and leaves no temporary file', async () => {
    const missing = join(dir, 'no-such-folder', 'snap.json');
    const refused = await ctl(['--address', daemon.unixAddress, 'snapshot', '-f', missing]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`snapshot -f cannot write ${missing}: the folder ${join(dir, 'no-such-folder')} does not exist`);
    // Nothing is asked of the daemon for a FILE that cannot be written, not even a running daemon's address.
    const offline = await ctl(['--address', '127.0.0.1:1', 'snapshot', '-f', missing]);
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain('does not exist');
    const folder = mkdtempSync(join(dir, 'snapshots-'));
    const file = join(folder, 'snap.json');
    writeFileSync(file, 'old');
    chmodSync(file, 0o640);
    expect((await ctl(['--address', daemon.unixAddress, 'snapshot', '-f', file])).code).toBe(0);
    expect(Array.isArray(JSON.parse(readFileSync(file, 'utf8')).pools)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(readdirSync(folder)).toEqual(['snap.json']);
  });
});

describe('tensormemctl snapshot diff of /api/snapshot', () => {
  it("reads the metrics listener's /api/snapshot saved as it is (MESSAGE_TOO_LARGE's way round), beside a snapshot -f file", async () => {
    const metricsAddress = daemon.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string;
    const lease = await client.openLease({ clientName: 'api-snapshot-diff' });
    try {
      const a = join(dir, 'cli-before.json');
      const b = join(dir, 'api-after.json');
      expect((await ctl(['--address', daemon.unixAddress, 'snapshot', '-f', a])).code).toBe(0);
      const leaked = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [512], label: 'api-leak' });
      const response = await fetch(`http://${metricsAddress}/api/snapshot`);
      expect(response.status).toBe(200);
      writeFileSync(b, await response.text());

      const run = await ctl(['snapshot', 'diff', a, b, '-o', 'json']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const diff = JSON.parse(run.stdout) as SnapshotDiff;
      expect(diff.appeared).toEqual([expect.objectContaining({ lease_id: lease.leaseId, label: 'api-leak', blocks: 1, bytes: 2048, owners: [leaked.array_id] })]);
      expect(diff.disappeared).toEqual([]);
      // Both ways round, and /api/snapshot against itself: nothing changed.
      const back = JSON.parse((await ctl(['snapshot', 'diff', b, a, '-o', 'json'])).stdout) as SnapshotDiff;
      expect(back.disappeared.map((group) => group.owners)).toEqual([[leaked.array_id]]);
      const same = JSON.parse((await ctl(['snapshot', 'diff', b, b, '-o', 'json'])).stdout) as SnapshotDiff;
      expect([same.appeared, same.disappeared]).toEqual([[], []]);
    } finally {
      await lease.close();
    }
  });
});

describe('tensormemctl tables of client-chosen strings', () => {
  it('leases, arrays and top write control and bidi characters of a client_name or label as escapes, never to the terminal', async () => {
    // What another tenant may choose: a newline and a forged row, a screen clear, a window title, a colour, a right-to-left override.
    // And the text of an escape (a backslash, then x1b), which must read apart from the ESC written as one.
    const clientName = 'trainer\nlease-forged  other-tenant\x1b[2J\x1b]0;title\x07\x1b[31m\u009b1m\u202eevil\\x1b';
    const lease = await client.openLease({ clientName });
    try {
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024], label: 'weights\r\nfake row\x1b[0m' });
      for (const command of [['leases'], ['arrays'], ['top', '--once']]) {
        const run = await ctl(['--address', daemon.unixAddress, ...command]);
        expect(run.code).toBe(0);
        expect(run.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/);
        const line = run.stdout.split('\n').find((l) => l.includes(lease.leaseId));
        expect(line, `${command.join(' ')}:\n${run.stdout}`).toBeDefined();
        expect(run.stdout).not.toMatch(/^lease-forged/m);
      }
      const leases = await ctl(['--address', daemon.unixAddress, 'leases']);
      expect(leases.stdout).toContain('trainer\\nlease-forged  other-tenant\\x1b[2J\\x1b]0;title\\x07\\x1b[31m\\x9b1m\\u202eevil\\\\x1b');
      const arrays = await ctl(['--address', daemon.unixAddress, 'arrays']);
      expect(arrays.stdout).toContain('weights\\r\\nfake row\\x1b[0m');
    } finally {
      await lease.close();
    }
  });
});

describe('tensormemctl top --once', () => {
  it('prints one frame with the pools, the process and the biggest leases first', async () => {
    const small = await client.openLease({ clientName: 'top-small' });
    const big = await client.openLease({ clientName: 'top-big' });
    try {
      await small.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024] });
      await big.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024, 1024] });
      const run = await ctl(['--address', daemon.unixAddress, 'top', '--once']);
      expect(run.code).toBe(0);
      expect(run.stdout).not.toContain('\x1b[');
      expect(run.stdout).toContain('tensormem emulated device');
      expect(run.stdout).toMatch(/^PROCESS +RSS +COUNTED +MAX PHYSICAL +USAGE/m);
      expect(run.stdout).toContain('TOP LEASES by bytes (2 of 2)');
      const leaseLines = run.stdout.split('\n').filter((line) => line.startsWith(big.leaseId) || line.startsWith(small.leaseId));
      expect(leaseLines.map((line) => line.split(/\s+/)[0])).toEqual([big.leaseId, small.leaseId]);
      expect(leaseLines[0]).toContain('4.00 MiB');
    } finally {
      await small.close();
      await big.close();
    }
  });

  it('-o json prints the frame as one JSON document: GetMemoryInfo and ListLeases as the daemon gives them', async () => {
    const lease = await client.openLease({ clientName: 'top-json' });
    try {
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
      const run = await ctl(['--address', daemon.unixAddress, 'top', '--once', '-o', 'json']);
      expect(run.code).toBe(0);
      const frame = JSON.parse(run.stdout) as { address: string; info: { backend: string; devices: unknown[] }; leases: Array<{ lease_id: string; client_name: string }> | null };
      expect(frame.address).toBe(daemon.unixAddress);
      expect(frame.info.backend).toBe('host');
      expect(frame.info.devices).toHaveLength((await client.memoryInfo()).devices.length);
      expect(frame.leases!.find((l) => l.lease_id === lease.leaseId)?.client_name).toBe('top-json');
      // Without --once too (stdout is not a terminal here, but -o json alone means one document).
      const plain = await ctl(['--address', daemon.unixAddress, 'top', '-o', 'json']);
      expect(Object.keys(JSON.parse(plain.stdout) as object)).toEqual(['address', 'info', 'leases']);
    } finally {
      await lease.close();
    }
  });
});

describe('tensormemctl put and get', () => {
  it('round-trips a file through a new array byte for byte, in several pieces', async () => {
    const source = join(dir, 'source.bin');
    const copy = join(dir, 'copy.bin');
    const content = randomBytes(20 * MiB + 3);
    writeFileSync(source, content);
    const put = await ctl(['--address', daemon.unixAddress, 'put', source, '-o', 'json']);
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    const result = JSON.parse(put.stdout) as { array: { array_id: string; byte_size: number; shape: number[] }; bytes_written: number; lease: { lease_id: string; token: string } };
    expect(result).toMatchObject({ bytes_written: content.length, array: { byte_size: content.length, shape: [content.length] } });
    const get = await ctl(['--address', daemon.unixAddress, 'get', '--array', result.array.array_id, copy], { TENSORMEM_TOKEN: result.lease.token });
    expect(get.code).toBe(0);
    expect(get.stdout).toContain(`read ${content.length} bytes`);
    expect(readFileSync(copy).equals(content)).toBe(true);
    await client.evictLease(result.lease.lease_id);
  });

  it('get to - streams the array to stdout byte for byte (no file named "-"), saying so on stderr; put - without a size is refused naming stdin', async () => {
    const lease = await client.openLease({ clientName: 'get-stdout' });
    try {
      const content = randomBytes(20 * MiB + 5);
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [content.length] });
      await lease.write(array.array_id, content);
      const work = mkdtempSync(join(dir, 'stdout-'));
      const got = await new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [TENSORMEMCTL, '--address', daemon.unixAddress, 'get', '--array', array.array_id, '-', '--token', lease.token], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
        const chunks: Buffer[] = [];
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => chunks.push(d));
        child.stderr.on('data', (d) => (stderr += d));
        child.once('close', (code) => resolve({ code, stdout: Buffer.concat(chunks), stderr }));
      });
      expect(got.stderr).toBe(`read ${content.length} bytes (20.00 MiB) of array ${array.array_id} to stdout\n`);
      expect(got.code).toBe(0);
      expect(createHash('sha256').update(got.stdout).digest('hex')).toBe(createHash('sha256').update(content).digest('hex'));
      expect(readdirSync(work)).toEqual([]);

      const put = await ctl(['--address', daemon.unixAddress, 'put', '-'], {}, Buffer.from('data'));
      expect(put.code).toBe(2);
      expect(put.stderr).toContain('put - (stdin) needs the size of the array to fill: --array ID');
    } finally {
      await lease.close();
    }
  });

  it("the get command put prints for its new array reads it back as printed, from a shell without TENSORMEM_ADDRESS: it names put's --address", async () => {
    const source = join(dir, 'hint.bin');
    const content = randomBytes(4096);
    writeFileSync(source, content);
    const put = await ctl(['--address', daemon.unixAddress, 'put', source], { TENSORMEM_ADDRESS: '' });
    expect(put.code).toBe(0);
    const lease = (put.stdout.match(/^lease (lease-\S+) /m) ?? [])[1];
    try {
      const hint = put.stdout.trim().split('\n').at(-1)!;
      expect(hint).toMatch(/^TENSORMEM_TOKEN=\S+ tensormemctl .*get --array arr-\S+ FILE$/);
      // Run as a shell would: the variable, then tensormemctl's arguments, FILE replaced by a path.
      const [assignment, , ...args] = hint.split(' ');
      const copy = join(dir, 'hint-copy.bin');
      const get = await ctl(args.map((arg) => (arg === 'FILE' ? copy : arg)), { TENSORMEM_ADDRESS: '', TENSORMEM_TOKEN: assignment.slice('TENSORMEM_TOKEN='.length) });
      expect(get.stderr).toBe('');
      expect(get.code).toBe(0);
      expect(readFileSync(copy).equals(content)).toBe(true);
    } finally {
      if (lease) await client.evictLease(lease);
    }
  });

  it('writes into an existing array of its lease, and the typed client reads the same bytes', async () => {
    const lease = await client.openLease({ clientName: 'put-existing' });
    try {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [64, 64], zero: true });
      const source = join(dir, 'weights.bin');
      const content = randomBytes(64 * 64 * 4);
      writeFileSync(source, content);
      const put = await ctl(['--address', daemon.unixAddress, 'put', source, '--array', array.array_id, '--token', lease.token]);
      expect(put.code).toBe(0);
      expect(put.stdout).toContain(`wrote ${content.length} bytes (16.00 KiB) into array ${array.array_id} ([64,64] float32)`);
      expect((await lease.read(array.array_id)).equals(content)).toBe(true);
    } finally {
      await lease.close();
    }
  });

  it('refuses a --shape that does not match the file before opening a lease', async () => {
    const source = join(dir, 'odd.bin');
    writeFileSync(source, randomBytes(1000));
    const leasesBefore = (await client.listLeases()).length;
    const run = await ctl(['--address', daemon.unixAddress, 'put', source, '--shape', '16,16', '--dtype', 'float32']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`--shape 16,16 --dtype float32 makes 1024 bytes but ${source} has 1000 bytes`);
    // The --dtype as typed, in either spelling; without one, the default named as such.
    const upper = await ctl(['--address', daemon.unixAddress, 'put', source, '--shape', '16,16', '--dtype', 'DATA_TYPE_FLOAT32']);
    expect(upper.stderr).toContain(`--shape 16,16 --dtype DATA_TYPE_FLOAT32 makes 1024 bytes but ${source} has 1000 bytes`);
    const noType = await ctl(['--address', daemon.unixAddress, 'put', source, '--shape', '16,16']);
    expect(noType.stderr).toContain(`--shape 16,16 --dtype uint8 (the default) makes 256 bytes but ${source} has 1000 bytes`);
    const odd = join(dir, 'odd-1001.bin');
    writeFileSync(odd, randomBytes(1001));
    const notWhole = await ctl(['--address', daemon.unixAddress, 'put', odd, '--dtype', 'float32']);
    expect(notWhole.code).toBe(1);
    expect(notWhole.stderr).toContain(`${odd} has 1001 bytes, not a whole number of --dtype float32 elements (4 bytes); pass --shape`);
    expect((await client.listLeases()).length).toBe(leasesBefore);
    const badType = await ctl(['--address', daemon.unixAddress, 'put', source, '--dtype', 'float128']);
    expect(badType.code).toBe(2);
    expect(badType.stderr).toContain('for --dtype but received "float128"');
  });

  it('refuses a pipe or a directory, naming it, before opening a lease', async () => {
    const leasesBefore = (await client.listLeases()).length;
    const piped = await ctl(['--address', daemon.unixAddress, 'put', '/dev/stdin'], {}, randomBytes(4096));
    expect(piped.code).toBe(1);
    // node's 'pipe' stdio is a socket pair; a shell's | is a FIFO: both refused alike.
    expect(piped.stderr).toMatch(/put reads a regular file, and \/dev\/stdin is a (socket|pipe \(FIFO\))/);
    expect(piped.stdout).toBe('');
    const folder = join(dir, 'a-folder');
    mkdirSync(folder, { recursive: true });
    const directory = await ctl(['--address', daemon.unixAddress, 'put', folder]);
    expect(directory.code).toBe(1);
    expect(directory.stderr).toContain(`put reads a regular file, and ${folder} is a directory`);
    expect((await client.listLeases()).length).toBe(leasesBefore);
  });

  it('closes the lease it opened when it fails after opening it, and reports the failure', async () => {
    // A /proc file says size 0 but reads longer: the array ([0] uint8) is allocated, then put finds
    // the file longer than its size, after the lease was opened.
    const leasesBefore = (await client.listLeases()).length;
    const run = await ctl(['--address', daemon.unixAddress, 'put', '/proc/self/status', '--ttl', '10m', '--label', 'put-orphan-test']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('/proc/self/status has more bytes than the 0 its size said when put started');
    expect(run.stdout).toBe('');
    expect((await client.listLeases()).length).toBe(leasesBefore);
    const snapshot = await client.memorySnapshot();
    const blocks = snapshot.pools.flatMap((pool) => pool.segments.flatMap((segment) => segment.blocks));
    expect(blocks.filter((block) => !block.free && block.label === 'put-orphan-test')).toEqual([]);
  });

  it('put stopped by SIGINT midway closes the lease it opened (its array freed) and exits 130', async () => {
    const source = join(dir, 'interrupted-put.bin');
    writeFileSync(source, '');
    truncateSync(source, 128 * MiB);
    const leasesBefore = (await client.listLeases()).length;
    const put = startCtl(['--address', daemon.unixAddress, 'put', source, '--ttl', '10m', '--label', 'put-interrupted']);
    // Once put's lease is open: SIGINT midway.
    while (put.running() && (await client.listLeases()).length === leasesBefore) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(put.running()).toBe(true);
    put.stopAndSignal('SIGINT');
    expect(await put.exited).toBe(130);
    expect(put.stderr()).toContain('interrupted by SIGINT');
    expect((await client.listLeases()).length).toBe(leasesBefore);
    const snapshot = await client.memorySnapshot();
    const blocks = snapshot.pools.flatMap((pool) => pool.segments.flatMap((segment) => segment.blocks));
    expect(blocks.filter((block) => !block.free && block.label === 'put-interrupted')).toEqual([]);
  });

  it('get stopped by SIGTERM midway leaves no FILE and no temporary file, and exits 143', async () => {
    const lease = await client.openLease({ clientName: 'get-interrupted' });
    const folder = mkdtempSync(join(dir, 'get-interrupted-'));
    const target = join(folder, 'out.bin');
    try {
      const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [128 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
      const get = startCtl(['--address', daemon.unixAddress, '--token', lease.token, 'get', '--array', big.array_id, target]);
      const started = () => readdirSync(folder).some((name) => statSync(join(folder, name)).size > 0);
      while (get.running() && !started()) await new Promise((resolve) => setTimeout(resolve, 2));
      expect(get.running()).toBe(true);
      get.stopAndSignal('SIGTERM');
      expect(await get.exited).toBe(143);
      expect(get.stderr()).toContain('interrupted by SIGTERM');
      expect(readdirSync(folder)).toEqual([]);
      expect((await lease.list()).map((array) => array.array_id)).toEqual([big.array_id]);
    } finally {
      await lease.close();
    }
  });

  it('get to /dev/stdout or /dev/null, and snapshot -f to one, are refused saying how to write to stdout', async () => {
    const lease = await client.openLease({ clientName: 'get-device' });
    try {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
      for (const target of ['/dev/null', '/dev/stdout']) {
        const get = await ctl(['--address', daemon.unixAddress, 'get', '--array', array.array_id, target, '--token', lease.token]);
        expect(get.code, target).toBe(1);
        expect(get.stderr, target).toContain(`get writes a regular file, and ${target} is `);
        expect(get.stderr, target).toContain(`get --array ${array.array_id} - writes the array to stdout`);
        const snapshot = await ctl(['--address', daemon.unixAddress, 'snapshot', '-f', target]);
        expect(snapshot.code, target).toBe(1);
        expect(snapshot.stderr, target).toContain('snapshot without -f writes it to stdout');
      }
    } finally {
      await lease.close();
    }
  });

  it('get of an unknown array fails with NOT_FOUND and creates no file', async () => {
    const lease = await client.openLease({ clientName: 'get-missing' });
    try {
      const target = join(dir, 'missing.bin');
      const run = await ctl(['--address', daemon.unixAddress, 'get', '--array', 'no-such-array', target, '--token', lease.token]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('NOT_FOUND');
      expect(existsSync(target)).toBe(false);
    } finally {
      await lease.close();
    }
  });

  it('a get that fails midway leaves an existing FILE as it was and no temporary file; a good one replaces it, keeping its mode', async () => {
    const lease = await client.openLease({ clientName: 'get-midway' });
    const folder = mkdtempSync(join(dir, 'get-'));
    const target = join(folder, 'precious.bin');
    writeFileSync(target, 'precious data\n');
    chmodSync(target, 0o640);
    const others = () => readdirSync(folder).filter((name) => name !== 'precious.bin');
    try {
      const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [128 * MiB], placement: 'PLACEMENT_HOST_ONLY' });
      const get = startCtl(['--address', daemon.unixAddress, '--token', lease.token, 'get', '--array', big.array_id, target]);
      // Once bytes have arrived (in a temporary file, or, before the fix, in FILE itself), stop the
      // process, free the array under it, and let it go on: its next ReadArray fails.
      const started = () => others().some((name) => statSync(join(folder, name)).size > 0) || statSync(target).size !== 'precious data\n'.length;
      while (get.running() && !started()) await new Promise((resolve) => setTimeout(resolve, 2));
      expect(get.running()).toBe(true);
      get.child.kill('SIGSTOP');
      await lease.free(big.array_id);
      get.child.kill('SIGCONT');
      expect(await get.exited).toBe(1);
      // NOT_FOUND when its next read starts after the free; FAILED_PRECONDITION "array … was freed"
      // when the free lands while a read is under way (the ReadArray stream ends with it).
      // (A reason the code already says is not repeated: "FAILED_PRECONDITION: …", TensormemClientError.)
      expect(get.stderr()).toMatch(new RegExp(`NOT_FOUND|FAILED_PRECONDITION: array ${big.array_id} was freed`));
      expect(readFileSync(target, 'utf8')).toBe('precious data\n');
      expect(others()).toEqual([]);

      const small = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000] });
      const content = randomBytes(1000);
      await lease.write(small.array_id, content);
      const good = await ctl(['--address', daemon.unixAddress, 'get', '--array', small.array_id, target, '--token', lease.token]);
      expect(good.code).toBe(0);
      expect(readFileSync(target).equals(content)).toBe(true);
      expect(statSync(target).mode & 0o777).toBe(0o640);
      expect(others()).toEqual([]);

      const intoFolder = await ctl(['--address', daemon.unixAddress, 'get', '--array', small.array_id, folder, '--token', lease.token]);
      expect(intoFolder.code).toBe(1);
      expect(intoFolder.stderr).toContain(`get writes a regular file, and ${folder} is a directory`);
    } finally {
      await lease.close();
    }
  });
});

describe('tensormemctl put --array and get with a lease token, against a daemon with a data plane', () => {
  const setup = daemonForTests(['--data-listen', '127.0.0.1:0']);

  /** The daemon's transfer totals by path, to tell which one moved a command's bytes. */
  async function totals(): Promise<Record<string, number>> {
    const paths = (['grpc', 'data_plane'] as const).flatMap((transport) => (['write', 'read'] as const).map((direction) => [transport, direction] as const));
    return Object.fromEntries(await Promise.all(paths.map(async ([transport, direction]) => [`${transport} ${direction}`, await transferBytes(setup.statusBase, transport, direction)])));
  }

  /** What `command` moved on each path. */
  async function moved(command: () => Promise<void>): Promise<Record<string, number>> {
    const before = await totals();
    await command();
    const after = await totals();
    return Object.fromEntries(Object.entries(after).map(([path, bytes]) => [path, bytes - before[path]]));
  }

  it("moves pieces of 1 MiB or more over the data plane that GetArray names, smaller ones over gRPC, byte for byte: put FILE, get FILE, get -", async () => {
    const lease = await setup.client.openLease({ clientName: 'put-get-data-plane' });
    try {
      // A 16 MiB piece, then one of 1000 bytes: under the client's 1 MiB threshold, so over gRPC.
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16 * MiB + 1000] });
      const content = randomBytes(array.byte_size);
      const source = join(dir, 'data-plane-source.bin');
      const copy = join(dir, 'data-plane-copy.bin');
      writeFileSync(source, content);
      const pieces = (direction: 'write' | 'read') => ({ 'grpc write': 0, 'grpc read': 0, 'data_plane write': 0, 'data_plane read': 0, [`data_plane ${direction}`]: 16 * MiB, [`grpc ${direction}`]: 1000 });
      const withToken = ['--address', setup.daemon.unixAddress, '--token', lease.token];

      const put = await moved(async () => {
        const run = await ctl([...withToken, 'put', source, '--array', array.array_id]);
        expect([run.code, run.stderr]).toEqual([0, '']);
      });
      expect(put).toEqual(pieces('write'));
      expect((await lease.readGrpc(array.array_id)).equals(content)).toBe(true);

      const get = await moved(async () => {
        const run = await ctl([...withToken, 'get', '--array', array.array_id, copy]);
        expect([run.code, run.stderr]).toEqual([0, '']);
      });
      expect(get).toEqual(pieces('read'));
      expect(readFileSync(copy).equals(content)).toBe(true);

      const toStdout = await moved(async () => {
        const run = spawnSync(process.execPath, [TENSORMEMCTL, ...withToken, 'get', '--array', array.array_id, '-'], { maxBuffer: 64 * MiB });
        expect(run.status).toBe(0);
        expect(run.stdout.equals(content)).toBe(true);
      });
      expect(toStdout).toEqual(pieces('read'));
    } finally {
      await lease.close();
    }
  });
});

describe('tensormemctl put --array against a data plane that refuses the connection', () => {
  const setup = daemonForTests(['--data-listen', '127.0.0.1:0', '--data-max-connections', '1']);

  it('falls back to WriteArray for the piece (503 TOO_MANY_CONNECTIONS), as the typed client does, and writes every byte', async () => {
    const dataAddress = setup.daemon.logs.find((entry) => entry.event === 'listening')!.dataAddress as string;
    const [host, port] = dataAddress.replace('http://', '').split(':');
    // The one connection --data-max-connections allows, held open.
    const held = new Socket();
    await new Promise<void>((resolve, reject) => held.once('error', reject).connect(Number(port), host, resolve));
    const lease = await setup.client.openLease({ clientName: 'put-refused-data-plane' });
    try {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [2 * MiB] });
      const content = randomBytes(array.byte_size);
      const source = join(dir, 'refused-data-plane.bin');
      writeFileSync(source, content);
      // [gRPC bytes written, data plane bytes written, data plane connections refused]
      const counts = async () => {
        const refused = /^tensormem_data_plane_connections_refused_total (\d+)$/m.exec(await (await fetch(`${setup.statusBase}/metrics`)).text());
        return [await transferBytes(setup.statusBase, 'grpc', 'write'), await transferBytes(setup.statusBase, 'data_plane', 'write'), Number(refused![1])];
      };
      const before = await counts();
      const run = await ctl(['--address', setup.daemon.unixAddress, '--token', lease.token, 'put', source, '--array', array.array_id]);
      expect([run.code, run.stderr]).toEqual([0, '']);
      const after = await counts();
      // put tried the data plane GetArray named (one connection, refused), then wrote over gRPC.
      expect(after.map((count, index) => count - before[index])).toEqual([content.length, 0, 1]);
      expect((await lease.readGrpc(array.array_id)).equals(content)).toBe(true);
    } finally {
      held.destroy();
      await lease.close();
    }
  });
});

describe('tensormemctl arrays under a tenants file', () => {
  const TOKENS = { a: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };
  let tenanted: DaemonProcess;
  let tenantClient: TensormemClient;

  beforeAll(async () => {
    const tenantsPath = join(dir, 'tenants.yaml');
    writeFileSync(tenantsPath, `tenants:\n  - name: team-a\n    token_sha256: "${tokenSha256(TOKENS.a)}"\n  - name: ops\n    token_sha256: "${tokenSha256(TOKENS.admin)}"\n    admin: true\n`);
    tenanted = await startDaemon(['--tenants', tenantsPath]);
    tenantClient = new TensormemClient(tenanted.unixAddress);
  }, 30_000);

  afterAll(async () => {
    tenantClient?.close();
    await tenanted?.stop();
  });

  const arrays = (...args: string[]) => ctl(['--address', tenanted.unixAddress, 'arrays', ...args]);

  it('without a token, says to pass --token or $TENSORMEM_TOKEN beside the header the daemon asks for', async () => {
    const file = join(dir, 'no-token.bin');
    writeFileSync(file, Buffer.alloc(16));
    const HINT = '(tensormemctl: --token or $TENSORMEM_TOKEN)';
    const cases: Array<[string[], string]> = [
      [['info'], 'UNAUTHENTICATED: missing token: this daemon has a tenants file; send "authorization: Bearer <token>" with a tenant token (an admin\'s sees every tenant) or a lease token'],
      [['leases'], 'UNAUTHENTICATED: missing token: this daemon has a tenants file; send "authorization: Bearer <token>"'],
      [['put', file], 'UNAUTHENTICATED: missing tenant token: send "authorization: Bearer <tenant token>"'],
      [['evict', '--tenant', 'team-a'], 'UNAUTHENTICATED: missing token: this call needs an admin tenant token; send "authorization: Bearer <token>"'],
    ];
    for (const [args, message] of cases) {
      const run = await ctl(['--address', tenanted.unixAddress, ...args]);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr, args.join(' ')).toContain(message);
      expect(run.stderr, args.join(' ')).toContain(HINT);
    }
    // A token that is not an admin's is no missing token.
    const unknown = await ctl(['--address', tenanted.unixAddress, 'evict', '--tenant', 'team-a', '--token', 'not-a-token']);
    expect(unknown.stderr).toContain('UNAUTHENTICATED: an admin tenant token is required\n');
  });

  it('lists every array block with an admin token, a lease\'s arrays with its token, and tells the others what would', async () => {
    const noLease = await arrays('--token', TOKENS.a);
    expect(noLease.code).toBe(1);
    expect(noLease.stderr).toContain('--token is a tenant token, and that tenant has no open leases, so no arrays');

    const lease = await tenantClient.openLease({ tenant: 'team-a', clientName: 'arrays-test', tenantToken: TOKENS.a });
    try {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [256], label: 'arrays-test' });

      const admin = await arrays('--token', TOKENS.admin, '-o', 'json');
      expect(admin.stderr).toBe('');
      expect(admin.code).toBe(0);
      const blocks = JSON.parse(admin.stdout) as Array<{ lease_id: string; tenant: string; array_id: string; label: string }>;
      expect(blocks).toContainEqual(expect.objectContaining({ lease_id: lease.leaseId, tenant: 'team-a', array_id: array.array_id, label: 'arrays-test' }));

      const own = await arrays('--token', lease.token, '-o', 'json');
      expect(own.code).toBe(0);
      expect((JSON.parse(own.stdout) as Array<{ array_id: string }>).map((a) => a.array_id)).toEqual([array.array_id]);

      const tenant = await arrays('--token', TOKENS.a);
      expect(tenant.code).toBe(1);
      expect(tenant.stderr).toContain(`--token is a tenant token of team-a, which lists no arrays; pass the token of one of its leases (${lease.leaseId}: 1 array)`);
      const second = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [16] });
      expect((await arrays('--token', TOKENS.a)).stderr).toContain(`(${lease.leaseId}: 2 arrays)`);
      await lease.free(second.array_id);

      const none = await arrays();
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('arrays without --token lists every array block (GetMemorySnapshot), which this daemon (it has a tenants file) answers only for an admin --token');

      const unknown = await arrays('--token', 'not-a-token');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('--token is neither a lease token nor a tenant token this daemon knows');
    } finally {
      await lease.close();
    }
  });
  it('leases --tenant lists one tenant\'s leases, and evict --tenant closes all of them (admin token)', async () => {
    const leases = await Promise.all([0, 1, 2].map((i) => tenantClient.openLease({ tenant: 'team-a', clientName: `ctl-${i}`, tenantToken: TOKENS.a })));
    await leases[0].allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024 * 1024] });
    const ctlAt = (...args: string[]) => ctl(['--address', tenanted.unixAddress, ...args]);
    const listed = await ctlAt('leases', '--tenant', 'team-a', '--token', TOKENS.admin, '-o', 'json');
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ lease_id: string }>).map((l) => l.lease_id).sort()).toEqual(leases.map((l) => l.leaseId).sort());
    // An empty name (--tenant "$UNSET") is refused, not read as ListLeases' "every tenant".
    for (const args of [['--tenant', ''], ['--tenant=']]) {
      const emptyTenant = await ctlAt('leases', ...args, '--token', TOKENS.admin, '-o', 'json');
      expect(emptyTenant.code, args.join(' ')).toBe(2);
      expect(emptyTenant.stderr).toContain('leases --tenant needs a tenant name');
      expect(emptyTenant.stdout).toBe('');
    }
    const otherTenant = await ctlAt('leases', '--tenant', 'ops', '--token', TOKENS.a);
    expect(otherTenant.code).toBe(1);
    expect(otherTenant.stderr).toContain('PERMISSION_DENIED');

    const both = await ctlAt('evict', leases[0].leaseId, '--tenant', 'team-a', '--token', TOKENS.admin);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('evict takes a lease id or --tenant NAME, not both');
    const empty = await ctlAt('evict', '--tenant', '', '--token', TOKENS.admin);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('evict --tenant needs a tenant name');
    const notAdmin = await ctlAt('evict', '--tenant', 'team-a', '--token', TOKENS.a);
    expect(notAdmin.code).toBe(1);
    expect((await tenantClient.listLeases(TOKENS.admin, { tenant: 'team-a' })).length).toBe(3);

    const evicted = await ctlAt('evict', '--tenant', 'team-a', '--token', TOKENS.admin);
    expect(evicted.stderr).toBe('');
    expect(evicted.code).toBe(0);
    expect(evicted.stdout).toBe('evicted 3 leases of tenant team-a: freed 1.00 MiB\n');
    expect(await tenantClient.listLeases(TOKENS.admin, { tenant: 'team-a' })).toEqual([]);
    const none = await ctlAt('evict', '--tenant', 'team-a', '--token', TOKENS.admin, '-o', 'json');
    expect(JSON.parse(none.stdout)).toEqual({ tenant: 'team-a', evicted_leases: 0, freed_bytes: 0 });
    expect((await ctlAt('evict', '--tenant', 'team-a', '--token', TOKENS.admin)).stdout).toBe('evicted 0 leases of tenant team-a: freed 0 B\n');
    await tenantClient.openLease({ tenant: 'team-a', clientName: 'ctl-one', tenantToken: TOKENS.a });
    const one = await ctlAt('evict', '--tenant', 'team-a', '--token', TOKENS.admin);
    expect(one.stdout).toBe('evicted 1 lease of tenant team-a: freed 0 B\n');
  });
});

describe('tensormemctl tenants on two devices', () => {
  it("tenants and top show the fullest device's share of the per-device quota, not the sum over devices; /metrics has each device's usage", async () => {
    const token = randomBytes(24).toString('hex');
    const admin = randomBytes(24).toString('hex');
    const tenantsPath = join(dir, 'tenants-two-devices.yaml');
    writeFileSync(tenantsPath, `tenants:\n  - name: team-b\n    token_sha256: "${tokenSha256(token)}"\n    quota: { device: 64M }\n    max_arrays: 10\n  - name: ops\n    token_sha256: "${tokenSha256(admin)}"\n    admin: true\n`);
    const twoDevices = await startDaemon(['--emulated-devices', '2', '--tenants', tenantsPath]);
    const client = new TensormemClient(twoDevices.unixAddress);
    try {
      const lease = await client.openLease({ tenant: 'team-b', tenantToken: token });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [48 * 1024 * 1024], device: 0 });
      await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [32 * 1024 * 1024], device: 1 });
      const json = await ctl(['--address', twoDevices.unixAddress, 'tenants', '--token', token, '-o', 'json']);
      expect(json.code).toBe(0);
      const [row] = JSON.parse(json.stdout) as Array<{ tenant: string; device_used_bytes: number; device_used_bytes_by_device: number[] }>;
      expect(row).toMatchObject({ tenant: 'team-b', device_used_bytes: 80 * 1024 * 1024, device_used_bytes_by_device: [48 * 1024 * 1024, 32 * 1024 * 1024] });
      const table = await ctl(['--address', twoDevices.unixAddress, 'tenants', '--token', token]);
      expect(table.code).toBe(0);
      // 48 MiB of the 64 MiB quota on device 0; the sum (80 MiB) would read 125 %.
      expect(table.stdout).toContain('75.0% (device 0)');
      expect(table.stdout).not.toContain('125.0%');
      // Its live arrays against its max_arrays.
      expect(table.stdout).toMatch(/^TENANT +STATE +LEASES +MAX +ARRAYS +DEVICE USED/m);
      expect(table.stdout).toMatch(/^team-b +active +1 +- +2\/10 +/m);
      const top = await ctl(['--address', twoDevices.unixAddress, 'top', '--once', '--token', token]);
      expect(top.code).toBe(0);
      expect(top.stdout).toMatch(/team-b .*75\.0% \(device 0\)/);
      // Prometheus: the per-device series an alert compares with the per-device quota.
      const metricsAddress = twoDevices.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string;
      const metrics = await (await fetch(`http://${metricsAddress}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
      expect(metrics).toContain(`tensormem_tenant_device_used_bytes{tenant="team-b",device="0"} ${48 * 1024 * 1024}`);
      expect(metrics).toContain(`tensormem_tenant_device_used_bytes{tenant="team-b",device="1"} ${32 * 1024 * 1024}`);
      await lease.close();
    } finally {
      client.close();
      await twoDevices.stop();
    }
  });
});

describe('tensormemctl exit codes', () => {
  it('exits 2 on a usage error, naming the flag or command and its value, and 1 on a failure', async () => {
    const unknownFlag = await ctl(['--address', daemon.unixAddress, 'info', '--bogus']);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain("Unknown option '--bogus'");
    const typo = await ctl(['--adress', daemon.unixAddress, 'info']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("Unknown option '--adress' (did you mean --address?)");
    expect(typo.stderr).not.toContain('positional argument');
    const badOutput = await ctl(['--address', daemon.unixAddress, 'info', '-o', 'xml']);
    expect(badOutput.code).toBe(2);
    expect(badOutput.stderr).toContain('Expected table or json for --output but received "xml"');
    const badPlacement = await ctl(['--address', daemon.unixAddress, 'put', join(dir, 'any.bin'), '--placement', 'gpu']);
    expect(badPlacement.code).toBe(2);
    expect(badPlacement.stderr).toContain('Expected device or host-only for --placement but received "gpu"');
    const badTtl = await ctl(['--address', daemon.unixAddress, 'put', join(dir, 'any.bin'), '--ttl', 'soon']);
    expect(badTtl.code).toBe(2);
    expect(badTtl.stderr).toContain('for --ttl but received "soon"');
    const noFile = await ctl(['--address', daemon.unixAddress, 'get', '--array', 'arr-x']);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('get needs an array and one file');
    // An extra argument is refused, not ignored (README and --help: exit 2 on "a missing or extra argument").
    for (const args of [['info', 'extra'], ['leases', 'extra'], ['arrays', 'extra'], ['config', 'extra'], ['tenants', 'extra'], ['top', '--once', 'extra'], ['doctor', 'extra'], ['doctor', 'extra', '--', '--maxbytes', '1G']]) {
      const extra = await ctl(['--address', daemon.unixAddress, ...args]);
      expect(extra.code, args.join(' ')).toBe(2);
      expect(extra.stderr, args.join(' ')).toContain(`${args[0]} takes `);
      expect(extra.stderr, args.join(' ')).toContain('not "extra"');
      expect(extra.stdout, args.join(' ')).toBe('');
    }
    const evictTwo = await ctl(['--address', daemon.unixAddress, 'evict', 'lease-a', 'lease-b']);
    expect(evictTwo.code).toBe(2);
    expect(evictTwo.stderr).toContain('evict takes one lease id');
    expect(evictTwo.stderr).toContain('not "lease-b"');
    const doctorFlags = await ctl(['doctor', '--', '--maxbytes', '1G']);
    expect(doctorFlags.code).toBe(0);
    expect(doctorFlags.stdout).toContain('proposed configuration (tensormemd --maxbytes 1G)');
    const unknownCommand = await ctl(['--address', daemon.unixAddress, 'frobnicate']);
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.stderr).toContain('unknown command "frobnicate"');
    const missing = join(dir, 'no-such-file.bin');
    const failed = await ctl(['--address', daemon.unixAddress, 'put', missing]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toBe(`tensormemctl: put cannot read ${missing}: ENOENT: no such file or directory, stat '${missing}'\n`);
  }, 90_000);
});

describe('tensormemctl flags a command does not take', () => {
  it('refuses them as a usage error naming the flag and its value, before anything is written or opened', async () => {
    const lease = await client.openLease({ clientName: 'flags-not-taken' });
    try {
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4096] });
      const before = await lease.read(array.array_id);
      const file = join(dir, 'flags-not-taken.bin');
      writeFileSync(file, randomBytes(4096));
      const leasesBefore = (await client.listLeases()).length;
      // put --array writes into the array as it is: a --ttl, --shape or --placement there would not be applied.
      for (const [flag, value] of [['--ttl', '1s'], ['--shape', '64,64'], ['--dtype', 'float32'], ['--placement', 'host-only'], ['--label', 'x'], ['--tenant', 'default']]) {
        const run = await ctl(['--address', daemon.unixAddress, 'put', file, '--array', array.array_id, '--token', lease.token, flag, value]);
        expect(run.code, flag).toBe(2);
        expect(run.stderr, flag).toContain(`put --array does not take ${flag} "${value}"`);
        expect(run.stdout, flag).toBe('');
      }
      expect(Buffer.compare(await lease.read(array.array_id), before)).toBe(0);
      expect((await client.listLeases()).length).toBe(leasesBefore);

      const target = join(dir, 'flags-not-taken.out');
      const cases: Array<[string[], string]> = [
        [['info', '--tenant', 'team-a'], 'info does not take --tenant "team-a"'],
        [['tenants', '--once'], 'tenants does not take --once'],
        [['get', '--array', array.array_id, '--token', lease.token, target, '--ttl', '5m'], 'get does not take --ttl "5m"'],
        [['top', '--once', '-f', target], 'top does not take -f "'],
        [['snapshot', 'diff', file, file, '-f', target], 'snapshot diff does not take -f "'],
        [['leases', '--interval', '2s'], 'leases does not take --interval "2s"'],
      ];
      for (const [args, message] of cases) {
        const run = await ctl(['--address', daemon.unixAddress, ...args]);
        expect(run.code, args.join(' ')).toBe(2);
        expect(run.stderr, args.join(' ')).toContain(message);
        expect(run.stdout, args.join(' ')).toBe('');
      }
      expect(existsSync(target)).toBe(false);
      // An unknown command is still told as such, whatever flags come with it.
      const unknown = await ctl(['--address', daemon.unixAddress, 'frobnicate', '--once']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('unknown command "frobnicate"');
    } finally {
      await lease.close();
    }
  });
});

describe('tensormemctl put with an empty flag value', () => {
  it('refuses --array, --shape, --ttl or --tenant given empty (exit 2) rather than reading it as left out: no lease is opened', async () => {
    const lease = await client.openLease({ clientName: 'empty-flags' });
    try {
      const file = join(dir, 'empty-flags.bin');
      writeFileSync(file, randomBytes(1024));
      const before = (await client.listLeases()).length;
      for (const flag of ['--array', '--shape', '--ttl', '--tenant']) {
        // As `--array "$UNSET"` gives it: --array "" used to put the file into a new array in a new lease, exit 0.
        const run = await ctl(['--address', daemon.unixAddress, 'put', file, flag, '', '--token', lease.token]);
        expect(run.code, flag).toBe(2);
        expect(run.stderr, flag).toContain(`put ${flag} needs a value, and received ""`);
        expect(run.stdout, flag).toBe('');
      }
      expect((await client.listLeases()).length).toBe(before);
    } finally {
      await lease.close();
    }
  });
});

describe('tensormemctl with no command', () => {
  it('exits 2 with the help on stderr and nothing on stdout (a pipe gets no help text); --help prints it on stdout, exit 0', async () => {
    for (const args of [[], ['-o', 'json']]) {
      const run = await ctl(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stdout, args.join(' ')).toBe('');
      expect(run.stderr, args.join(' ')).toContain('tensormemctl: no command given\nUsage: tensormemctl');
    }
    const help = await ctl(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: tensormemctl/);
    expect(help.stderr).toBe('');
  });
});

describe('tensormemctl with no daemon at --address', () => {
  it('says tensormemd is not running there (exit 1, one line, no stack), for a unix socket that is missing or refuses, as the default address is', async () => {
    // A path that exists and that nothing accepts on (ECONNREFUSED, as a socket left by a killed daemon).
    const stale = join(dir, 'stale.sock');
    writeFileSync(stale, '');
    for (const address of [`unix:${join(dir, 'no-such.sock')}`, `unix:${stale}`]) {
      for (const args of [['info'], ['doctor'], ['top', '--once']]) {
        const run = await ctl(['--address', address, ...args]);
        expect(run.code, `${address} ${args.join(' ')}`).toBe(1);
        expect(run.stderr).toContain(`(is tensormemd running with --listen ${address}?`);
        expect(run.stderr).toContain('a daemon that is stopping removes its socket first');
        // grpc-js's empty "Resolution note: " is not passed on, nor a stack.
        expect(run.stderr).not.toContain('Resolution note');
        expect(run.stderr).not.toMatch(/\n\s+at /);
        expect(run.stderr.trim().split('\n')).toHaveLength(1);
      }
    }
    const tcp = await ctl(['--address', '127.0.0.1:1', 'info']);
    expect(tcp.code).toBe(1);
    expect(tcp.stderr).toContain('(is tensormemd running at 127.0.0.1:1?');
    expect(tcp.stderr).not.toContain('Resolution note');
  });
});

describe('tensormemctl to an address where nothing answers as tensormemd', () => {
  it('says within --timeout that no connection was set up there, naming the address and the wait, in one line (not grpc-js\'s "Waiting for LB pick")', async () => {
    // Takes connections and says nothing: a daemon stopped with SIGSTOP or hung, or a server that is not tensormemd.
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      for (const args of [['info'], ['leases', '-o', 'json'], ['top', '--once']]) {
        const started = Date.now();
        const run = await ctl(['--address', address, '--timeout', '500ms', ...args]);
        expect(run.code, args.join(' ')).toBe(1);
        expect(run.stdout).toBe('');
        expect(run.stderr).toContain(`DEADLINE_EXCEEDED: no connection to ${address} was set up within 500 ms`);
        expect(run.stderr).toContain('Check --address; for a slow link, raise --timeout');
        expect(run.stderr).not.toContain('LB pick');
        expect(run.stderr.trim().split('\n')).toHaveLength(1);
        expect(Date.now() - started).toBeLessThan(8_000);
      }
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });

  it("says a server that answers in HTTP/1.1 (tensormemd's own --data-listen or --metrics-listen port) is no gRPC address, in one line", async () => {
    // grpc-js fails at once with "No connection established. Last error: Protocol error", and the hint was
    // the one for a TLS daemon ("pass --tls-ca"): the mistake is the port (7071 or 7072 for 7070).
    const http1 = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'));
    await new Promise<void>((resolve) => http1.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(http1.address() as AddressInfo).port}`;
    try {
      const run = await ctl(['--address', address, '--timeout', '5s', 'info']);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`the server at ${address} answered, but not in gRPC's HTTP/2`);
      expect(run.stderr).toContain("give tensormemd's --listen address (127.0.0.1:7070 by default), not its --data-listen or --metrics-listen one");
      expect(run.stderr).not.toContain('pass --tls-ca');
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      http1.close();
    }
  });
});

describe('tensormemctl --address, --interval and --ttl', () => {
  it("refuses an address that is not one of tensormemd's --listen forms as a usage error, before connecting anywhere", async () => {
    // grpc-js would take a bare host as HOST:443 and fail on "" with an error about a "target name" (exit 1).
    for (const address of ['127.0.0.1', '', 'http://127.0.0.1:7070', 'unix:', '127.0.0.1:0']) {
      const run = await ctl(['--address', address, 'info']);
      expect(run.code, address).toBe(2);
      expect(run.stderr, address).toContain(`for --address but received "${address}"`);
    }
    const fromEnv = await ctl(['leases'], { TENSORMEM_ADDRESS: 'localhost' });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('for --address (from TENSORMEM_ADDRESS) but received "localhost"');
    // The daemon's own forms work: the TCP address it logged, and its unix socket.
    const tcp = await ctl(['--address', daemon.tcpAddress, 'info', '-o', 'json']);
    expect(tcp.code).toBe(0);
    expect((JSON.parse(tcp.stdout) as { backend: string }).backend).toBe('host');
  });

  it('an empty TENSORMEM_ADDRESS is unset (the default address), and a bad one does not stop commands that need no daemon', async () => {
    const before = join(dir, 'address-snapshot.json');
    expect((await ctl(['--address', daemon.unixAddress, 'snapshot', '-f', before])).code).toBe(0);
    for (const address of ['', 'not-an-address']) {
      const diff = await ctl(['snapshot', 'diff', before, before], { TENSORMEM_ADDRESS: address });
      expect(diff.stderr, address).toBe('');
      expect(diff.code, address).toBe(0);
      const offline = await ctl(['doctor', '--', '--backend', 'host', '--maxbytes', '1G'], { TENSORMEM_ADDRESS: address });
      expect(offline.code, address).toBe(0);
    }
    const unset = await ctl(['--address', daemon.unixAddress, 'info'], { TENSORMEM_ADDRESS: '' });
    expect(unset.code).toBe(0);
  });

  it('refuses a top --interval the daemon would refuse (under 50ms) or read as another (0) as a usage error naming the flag', async () => {
    for (const interval of ['10ms', '0']) {
      const run = await ctl(['--address', daemon.unixAddress, 'top', '--once', '--interval', interval]);
      expect(run.code, interval).toBe(2);
      expect(run.stderr, interval).toContain(`for --interval but received "${interval}"`);
    }
    expect((await ctl(['--address', daemon.unixAddress, 'top', '--once', '--interval', '50ms'])).code).toBe(0);
  });

  it('refuses a put --ttl OpenLease would refuse (over 7 days) or read as the default (0) as a usage error, before opening a lease', async () => {
    const file = join(dir, 'ttl.bin');
    writeFileSync(file, randomBytes(1024));
    const before = (await client.listLeases()).length;
    for (const ttl of ['200h', '0']) {
      const run = await ctl(['--address', daemon.unixAddress, 'put', file, '--ttl', ttl]);
      expect(run.code, ttl).toBe(2);
      expect(run.stderr, ttl).toContain(`for --ttl but received "${ttl}"`);
    }
    expect((await client.listLeases()).length).toBe(before);
    const week = await ctl(['--address', daemon.unixAddress, 'put', file, '--ttl', '168h', '-o', 'json']);
    expect(week.code).toBe(0);
    const { lease } = JSON.parse(week.stdout) as { lease: { lease_id: string; ttl_seconds: number } };
    expect(lease.ttl_seconds).toBe(168 * 3600);
    expect(await client.evictLease(lease.lease_id)).toBeGreaterThan(0);
  });
});

describe('tensormemctl info, top and doctor without a process cap', () => {
  it('--maxphysicalbytes 0 (no process cap) is shown as none, not as a cap of 0 B at 0.0%', async () => {
    const uncapped = await startDaemon(['--maxphysicalbytes', '0']);
    try {
      expect((await ctl(['--address', uncapped.unixAddress, 'info', '-o', 'json'])).stdout).toContain('"max_physical_bytes": 0');
      const info = await ctl(['--address', uncapped.unixAddress, 'info']);
      expect(info.code).toBe(0);
      expect(info.stdout).toMatch(/^tensormemd +\S+ MiB +\S+ MiB +none +/m);
      // No --mmap-maxbytes either: the host row's MMAP MAX says none.
      expect(info.stdout).toMatch(/^HOST +MAX +USED +MIRRORS +HOST_ONLY +MMAP +MMAP MAX +RESERVED$/m);
      expect(info.stdout).toMatch(/^host +(\S+ \S+ +){5}none +\S+ \S+$/m);
      const top = await ctl(['--address', uncapped.unixAddress, 'top', '--once']);
      expect(top.stdout).toMatch(/^tensormemd +\S+ MiB +\S+ MiB +none +- +/m);
      const doctor = await ctl(['--address', uncapped.unixAddress, 'doctor']);
      expect(doctor.stdout).toContain('maxphysicalbytes 0 (no process cap)');
    } finally {
      await uncapped.stop();
    }
  }, 30_000);
});
