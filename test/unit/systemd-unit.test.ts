/** docker/systemd: the unit names the real bin and real flags, and systemd-analyze accepts it where it exists. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config';
import { FLAGS, envName } from '../../src/config/flags';

const ROOT = join(__dirname, '..', '..');
const SYSTEMD = join(ROOT, 'docker', 'systemd');
const unitText = readFileSync(join(SYSTEMD, 'tensormemd.service'), 'utf8');
const envText = readFileSync(join(SYSTEMD, 'tensormemd.env'), 'utf8');

/** [section, key, value] for every assignment, in order (keys may repeat). */
function parseUnit(text: string): Array<[string, string, string]> {
  const entries: Array<[string, string, string]> = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    expect(eq, `not an assignment: ${line}`).toBeGreaterThan(0);
    entries.push([section, line.slice(0, eq), line.slice(eq + 1)]);
  }
  return entries;
}

const unit = parseUnit(unitText);
const values = (key: string) => unit.filter(([section, name]) => section === 'Service' && name === key).map(([, , value]) => value);
const value = (key: string) => {
  const all = values(key);
  expect(all, `[Service] ${key}=`).toHaveLength(1);
  return all[0];
};

/** VAR=value lines of the environment file, commented examples included. */
const envAssignments = envText
  .split('\n')
  .map((line) => /^#?([A-Z_]+)=(.*)$/.exec(line.trim()))
  .filter((match): match is RegExpExecArray => match !== null)
  .map((match) => [match[1], match[2]] as const);

const flagEnvNames = new Set(FLAGS.map(envName));

describe('tensormemd.service', () => {
  it('ExecStart runs the package bin "tensormemd", whose compiled file exists', () => {
    const [program] = value('ExecStart').split(/\s+/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(program).toBe('/usr/local/bin/tensormemd');
    expect(pkg.bin[basename(program)]).toBe('dist/src/bin/tensormemd.js');
    expect(existsSync(join(ROOT, pkg.bin[basename(program)]))).toBe(true);
  });

  it('the README and the unit install the package where ExecStart looks for it, whatever npm\'s global prefix is', () => {
    const dir = value('ExecStart').split(/\s+/)[0].replace(/\/bin\/tensormemd$/, '');
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Running under systemd'));
    const installs = [section, unitText].map((text) => /^[#\s]*(?:sudo )?npm install -g[^\n]*$/m.exec(text)?.[0]);
    // Without --prefix the bin goes to npm's global prefix: /usr/bin for Node from a distribution or
    // NodeSource package, where the unit would not find it. What is installed is npm pack's file (the
    // package is built from a checkout, README "Installing it in your own project"), not the name
    // "tensormem", which npm would look up in its registry.
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const install of installs) expect(install).toMatch(new RegExp(`--prefix ${dir.replace(/\//g, '\\/')} tensormem-${version.replace(/\./g, '\\.')}\\.tgz\\s`));
  });

  it('ExecStart passes no flag of its own, so that every TENSORMEM_* variable of the environment file takes effect', () => {
    const args = value('ExecStart').split(/\s+/).slice(1).filter((arg) => !arg.startsWith('$'));
    expect(args).toEqual([]);
    const unitEnv = Object.fromEntries(values('Environment').map((assignment) => assignment.split('=', 2) as [string, string]));
    expect(loadConfig(args, unitEnv).shutdownTimeoutMs).toBe(10_000);
    // A setting in /etc/tensormem/tensormemd.env overrides the unit's Environment= (systemd's order) and is not beaten by a flag.
    const config = loadConfig(args, { ...unitEnv, TENSORMEM_SHUTDOWN_TIMEOUT: '25s' });
    expect(config.shutdownTimeoutMs).toBe(25_000);
    expect(config.sources['shutdown-timeout']).toBe('env');
  });

  it('Environment= and the environment file set only TENSORMEM_* variables of flags.ts, with values the daemon accepts', () => {
    const fromUnit = values('Environment').map((assignment) => assignment.split('=', 2) as [string, string]);
    const env: Record<string, string> = {};
    for (const [name, text] of [...fromUnit, ...envAssignments]) {
      if (name === 'TENSORMEMD_FLAGS') continue;
      expect(flagEnvNames, name).toContain(name);
      env[name] = text;
    }
    expect(Object.keys(env).length).toBeGreaterThan(8);
    const config = loadConfig([], env);
    expect(config.profile).toBe('gpu-training');
    expect(config.listen).toEqual(['unix:/run/tensormem/tensormemd.sock', '127.0.0.1:7070']);
    expect(config.sources.profile).toBe('env');
    expect(value('EnvironmentFile')).toBe('-/etc/tensormem/tensormemd.env');
  });

  it('the unix socket lives in the RuntimeDirectory, group-reachable', () => {
    expect(value('RuntimeDirectory')).toBe('tensormem');
    expect(value('RuntimeDirectoryMode')).toBe('0750');
    const listen = values('Environment').find((assignment) => assignment.startsWith('TENSORMEM_LISTEN='))!;
    expect(listen).toContain('unix:/run/tensormem/tensormemd.sock');
  });

  it('MMAP workspace files go to a disk-backed CacheDirectory, not the private /tmp (a tmpfs on Debian 13, Fedora, Arch)', () => {
    expect(value('PrivateTmp')).toBe('yes');
    expect(value('CacheDirectory')).toBe('tensormem');
    expect(value('CacheDirectoryMode')).toBe('0700');
    const mmapDir = values('Environment').find((assignment) => assignment.startsWith('TENSORMEM_MMAP_DIR='));
    expect(mmapDir).toBe('TENSORMEM_MMAP_DIR=/var/cache/tensormem/mmap');
    expect(loadConfig([], { TENSORMEM_MMAP_DIR: '/var/cache/tensormem/mmap' }).mmapDir).toBe('/var/cache/tensormem/mmap');
  });

  it('the daemon, running as tensormem, can reach the files in /etc/tensormem (tenants file, TLS key)', () => {
    // systemd.exec(5): "Except in case of ConfigurationDirectory=, the innermost specified directories
    // will be owned by the user and group specified in User= and Group=": /etc/tensormem stays
    // root:root, and only its mode is set, to ConfigurationDirectoryMode=. Without the search bit for
    // others the daemon's user cannot open /etc/tensormem/tenants.yaml (EACCES) and refuses to start.
    expect(value('ConfigurationDirectory')).toBe('tensormem');
    const mode = parseInt(value('ConfigurationDirectoryMode'), 8);
    expect(mode & 0o001, `ConfigurationDirectoryMode=${value('ConfigurationDirectoryMode')} of a root-owned directory`).toBe(0o001);
    // The files keep themselves private: the environment file (read by systemd as root) and, as the
    // README says, the tenants file are installed 0640 with the tensormem group.
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('sudo install -D -m 0640 -g tensormem docker/systemd/tensormemd.env /etc/tensormem/tensormemd.env');
    expect(readme).toMatch(/install -m 0640 -g tensormem \S+ \/etc\/tensormem\/tenants\.yaml/);
  });

  it('restarts after a crash or exit status 1, not after exit status 2 (a configuration the daemon refuses every time)', () => {
    // README, Configuration: 2 = the flag parser refused the configuration, 1 = cannot start or had to
    // stop (a lost GPU context: restart me), 0 = drained. Restart=on-failure alone restarts after 2 as
    // well: a bad TENSORMEM_* line in the environment file would be retried every RestartSec= for good.
    expect(value('Restart')).toBe('on-failure');
    const prevented = values('RestartPreventExitStatus').flatMap((entry) => entry.split(/\s+/));
    expect(prevented, 'RestartPreventExitStatus=').toEqual(['2']);
    // The daemon's own exit status for such a configuration, from the environment file as from a flag.
    const bin = join(ROOT, 'dist', 'src', 'bin', 'tensormemd.js');
    const fromEnv = spawnSync(process.execPath, [bin], { encoding: 'utf8', env: { ...process.env, TENSORMEM_MAXBYTES: '12Q' }, timeout: 30_000 });
    expect(fromEnv.status, fromEnv.stderr).toBe(2);
    expect(fromEnv.stderr).toContain('TENSORMEM_MAXBYTES');
    const fromFlag = spawnSync(process.execPath, [bin, '--lease-ttl', 'soon'], { encoding: 'utf8', timeout: 30_000 });
    expect(fromFlag.status, fromFlag.stderr).toBe(2);
  });

  it('makes /dev/nvidia-uvm as root before the sandboxed daemon starts (NoNewPrivileges= stops the setuid nvidia-modprobe)', () => {
    expect(value('NoNewPrivileges')).toBe('yes');
    // "+": outside the sandbox (no User=, NoNewPrivileges=, CapabilityBoundingSet=, ProtectKernelModules=);
    // "-": a host without nvidia-modprobe or a GPU starts the daemon all the same.
    const [program, ...args] = value('ExecStartPre').split(/\s+/);
    expect(['-+/usr/bin/nvidia-modprobe', '+-/usr/bin/nvidia-modprobe']).toContain(program);
    expect(args).toEqual(['-u', '-c=0']);
    const after = unit.filter(([section, name]) => section === 'Unit' && name === 'After').flatMap(([, , text]) => text.split(/\s+/));
    expect(after).toContain('nvidia-persistenced.service');
  });

  it('pinned memory, restarts, reload and stop are set up for the daemon', () => {
    expect(value('LimitMEMLOCK')).toBe('infinity');
    expect(value('Restart')).toBe('on-failure');
    expect(value('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(value('KillSignal')).toBe('SIGTERM');
    // The stop timeout leaves the daemon its drain: --shutdown-timeout for calls in flight and, with a
    // data plane on, up to one more for the memory its cut connections held (daemon.ts, DataPlane.close).
    const shutdown = values('Environment').find((assignment) => assignment.startsWith('TENSORMEM_SHUTDOWN_TIMEOUT='))!;
    expect(Number(value('TimeoutStopSec').replace(/s$/, '')) * 1000).toBeGreaterThan(2 * loadConfig([], { TENSORMEM_SHUTDOWN_TIMEOUT: shutdown.split('=')[1] }).shutdownTimeoutMs);
  });

  it('runs hardened, as the user that the sysusers file creates', () => {
    const sysusers = readFileSync(join(SYSTEMD, 'tensormem.sysusers.conf'), 'utf8');
    expect(sysusers).toMatch(/^u tensormem /m);
    expect(value('User')).toBe('tensormem');
    expect(value('Group')).toBe('tensormem');
    expect(value('NoNewPrivileges')).toBe('yes');
    expect(value('ProtectSystem')).toBe('strict');
    expect(value('CapabilityBoundingSet')).toBe('');
    // V8's JIT needs W+X pages; GPU device nodes must stay visible.
    expect(values('MemoryDenyWriteExecute')).toEqual([]);
    expect(values('PrivateDevices')).toEqual([]);
    // No device allow-list either, explicit or implied: before systemd 253, ProtectClock=yes implies
    // DeviceAllow=char-rtc r, which (DevicePolicy=auto with an allow-list) shuts /dev/nvidia* out.
    expect(values('DevicePolicy')).toEqual([]);
    expect(values('DeviceAllow')).toEqual([]);
    expect(values('ProtectClock')).toEqual([]);
    // The clock is protected anyway: the allow-list of system calls leaves @clock out, and no capability is kept.
    expect(value('SystemCallFilter')).toBe('@system-service');
  });

  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  it.skipIf(analyze.status !== 0)('systemd-analyze verify accepts it (ExecStart pointed at this checkout) [skipped when systemd-analyze is not installed]', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-systemd-'));
    const copy = join(dir, 'tensormemd.service');
    writeFileSync(copy, unitText.replace('/usr/local/bin/tensormemd', join(ROOT, 'dist', 'src', 'bin', 'tensormemd.js')));
    const result = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
