/**
 * Interop: README's "From Python" section, as a team with only the .proto files and the README uses it.
 * Its ```sh block generates the stubs, run as written in a folder that holds only proto/; its ```python
 * block runs as written under Debian's python3 (its asserts check what it shows), against a daemon with a
 * tenants file (the tenant's token in TENSORMEM_TOKEN) and its data plane on TCP, and against one in open
 * mode with its data plane on a unix socket. Then: its lease was the tenant's, ended by CloseLease (not
 * by its TTL or a dropped KeepAlive) with nothing left to free, and no shared-memory name is left.
 *
 * Needs what python-client.test.ts needs; without it the test fails naming what is missing, unless
 * TENSORMEM_SKIP_INTEROP=1, which skips it visibly with the same reason.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, ROOT, startDaemon } from '../helpers/daemon-process';
import { tenantsYaml, writeTenantsFile } from '../helpers/tenants-file';
import { PYTHON, declareMissingPython, prepareStubs } from './python-setup';

/** The first ```LANGUAGE block of README's "From Python" section. */
function sectionBlock(language: string): string {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const start = lines.indexOf('### From Python');
  if (start < 0) throw new Error('README.md has no "### From Python" section');
  const end = lines.findIndex((line, i) => i > start && /^#{1,3} /.test(line));
  const open = lines.findIndex((line, i) => i > start && i < end && line === '```' + language);
  if (open < 0) throw new Error(`README.md "From Python" has no \`\`\`${language} block`);
  const close = lines.indexOf('```', open + 1);
  return lines.slice(open + 1, close).join('\n') + '\n';
}

function run(address: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Asynchronous: the daemon's log pipes are drained by this event loop.
    execFile(PYTHON, ['example.py'], { cwd, timeout: 60_000, env: { ...env, TENSORMEM_ADDRESS: address } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** The README example's lease in the daemon's log: opened, and how it ended. */
function leaseOf(daemon: DaemonProcess): { opened?: Record<string, unknown>; ended: Array<Record<string, unknown>> } {
  const opened = daemon.logs.find((entry) => entry.event === 'lease_opened' && entry.client === 'trainer-py');
  const ended = daemon.logs.filter((entry) => opened && entry.leaseId === opened.leaseId && String(entry.event).startsWith('lease_') && entry.event !== 'lease_opened');
  return { opened, ended };
}

describe('the stubs folder of README "From Python"', () => {
  it('is left out of git when the command runs in the checkout', () => {
    const folder = /--python_out=(\S+)/.exec(sectionBlock('sh'))?.[1];
    expect(folder, 'the ```sh block\'s --python_out').toBeDefined();
    const result = spawnSync('git', ['check-ignore', '--no-index', '-q', `${folder}/tensormem/v1/array_pb2.py`], { cwd: ROOT, encoding: 'utf8' });
    expect(result.status, `git check-ignore ${folder}/…: ${result.stderr}`).toBe(0);
  });
});

// Whether python3-grpcio, protoc and the plugin are there (the stubs this makes are not used).
const { stubs, problem } = prepareStubs();
if (stubs) rmSync(stubs, { recursive: true, force: true });

describe('interop: the README "From Python" example against tensormemd', () => {
  if (declareMissingPython(problem)) return;

  let dir: string;
  const daemons: DaemonProcess[] = [];
  // The environment without a TENSORMEM_TOKEN of the caller's.
  const { TENSORMEM_TOKEN: _ignored, ...baseEnv } = process.env;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tensormem-readme-python-'));
    symlinkSync(join(ROOT, 'proto'), join(dir, 'proto'), 'dir');
    writeFileSync(join(dir, 'example.py'), sectionBlock('python'));
  });

  afterAll(async () => {
    for (const daemon of daemons) if (daemon.child.exitCode === null) await daemon.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('generates the stubs with the README command, in a folder holding only proto/', () => {
    const gen = spawnSync('bash', ['-euo', 'pipefail', '-c', sectionBlock('sh')], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(gen.status, `README's protoc command: ${gen.stderr}`).toBe(0);
    for (const module of ['tensormem/v1/array_pb2.py', 'tensormem/v1/lease_pb2_grpc.py', 'tensormem/v1/workspace_pb2.py', 'google/rpc/status_pb2.py', 'google/rpc/error_details_pb2.py']) {
      expect(readdirSync(join(dir, 'pystubs', module, '..')), module).toContain(module.split('/').pop());
    }
  }, 60_000);

  it('runs as written with a tenant token, the data plane on TCP', async () => {
    const token = randomBytes(32).toString('hex');
    const daemon = await startDaemon(['--tenants', writeTenantsFile(tenantsYaml({ 'team-py': token })), '--data-listen', '127.0.0.1:0']);
    daemons.push(daemon);
    const { code, stdout, stderr } = await run(daemon.tcpAddress, dir, { ...baseEnv, TENSORMEM_TOKEN: token });
    expect(code, `README example exit code; stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
    expect(stderr, 'the keep-alive reported no error').not.toContain('keep-alive ended');
    const { opened, ended } = leaseOf(daemon);
    expect(opened, 'lease_opened for client trainer-py').toMatchObject({ tenant: 'team-py' });
    // CloseLease ended it, after FreeArray gave back the one array.
    expect(ended).toEqual([expect.objectContaining({ event: 'lease_closed', arrays: 0, freedBytes: 0 })]);
    expect(readdirSync('/dev/shm').filter((name) => name.startsWith(`tensormem-${daemon.child.pid}-`))).toEqual([]);
    expect(await daemon.stop()).toBe(0);
  }, 60_000);

  it('runs as written in open mode, the data plane on a unix socket', async () => {
    const daemon = await startDaemon(['--data-listen', `unix:${join(dir, 'data.sock')}`]);
    daemons.push(daemon);
    const { code, stdout, stderr } = await run(daemon.tcpAddress, dir, baseEnv);
    expect(code, `README example exit code; stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
    expect(stderr, 'the keep-alive reported no error').not.toContain('keep-alive ended');
    const { opened, ended } = leaseOf(daemon);
    expect(opened, 'lease_opened for client trainer-py').toMatchObject({ tenant: 'default' });
    expect(ended).toEqual([expect.objectContaining({ event: 'lease_closed', arrays: 0, freedBytes: 0 })]);
    expect(await daemon.stop()).toBe(0);
  }, 60_000);
});
