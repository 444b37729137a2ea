/**
 * The package's install script, as `npm rebuild tensormem` reruns it in an installed copy that already
 * has a build/ (from its install): it must configure the addon afresh, so that TENSORMEM_CUDA (and a CUDA
 * toolkit installed since) take effect. `cmake-js compile` configured only a build/ without a
 * CMakeCache.txt: `TENSORMEM_CUDA=OFF npm rebuild tensormem` (or ON) said "ninja: no work to do" and
 * kept the old addon. Runs the script in a copy of the package laid out as installed
 * (node_modules/tensormem; not the checkout's build/), whose host-only addon then also says how to get
 * the cuda backend there. Needs `npm run build:ts` first, as `npm test` does.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/daemon-process';

let project: string;
let pkg: string;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'tensormem-install-script-'));
  pkg = join(project, 'node_modules', 'tensormem');
  for (const path of ['package.json', 'proto', 'dist/src', 'native/CMakeLists.txt', 'native/package.json', 'native/src']) cpSync(join(ROOT, path), join(pkg, path), { recursive: true });
  // Its dependencies, as npm would have installed them beside it.
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'), 'dir');
});

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

function run(args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync('npm', args, { cwd: pkg, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 240_000 });
}

/** buildInfo() of the addon the install script built in the installed copy. */
function builtAddonInfo(): unknown {
  const probe = spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(join(pkg, 'build', 'Release', 'tensormem_native.node'))}).buildInfo()))`], { encoding: 'utf8' });
  expect(probe.status, probe.stderr).toBe(0);
  return JSON.parse(probe.stdout);
}

/** The installed copy's tensormemd asked for the cuda backend, with the addon its install script built. */
function tensormemdOnCuda() {
  const env = { ...process.env };
  delete env.TENSORMEM_NATIVE_ADDON;
  return spawnSync(process.execPath, [join(pkg, 'dist', 'src', 'bin', 'tensormemd.js'), '--backend', 'cuda', '--listen', '127.0.0.1:0', '--data-listen', 'off', '--metrics-listen', 'off'], {
    cwd: project,
    env,
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('the install script over an existing build/', () => {
  it('configures again: TENSORMEM_CUDA=OFF gives a host-only addon where build/ was configured with CUDA on', () => {
    // build/ as an earlier install left it, configured with TENSORMEM_CUDA=ON (with a toolkit: the cuda backend).
    const configure = run(['exec', '--', 'cmake-js', 'configure', '--directory', 'native', '--out', 'build'], { TENSORMEM_CUDA: 'ON' });
    expect(configure.status, configure.stderr).toBe(0);
    expect(readFileSync(join(pkg, 'build', 'CMakeCache.txt'), 'utf8')).toContain('TENSORMEM_CUDA:BOOL=ON');

    const install = run(['run-script', 'install'], { TENSORMEM_CUDA: 'OFF' });
    expect(install.status, install.stderr).toBe(0);
    expect(install.stdout).toContain('tensormem: TENSORMEM_CUDA=OFF: building a host-only addon');
    expect(readFileSync(join(pkg, 'build', 'CMakeCache.txt'), 'utf8')).toContain('TENSORMEM_CUDA:BOOL=OFF');
    expect(builtAddonInfo()).toEqual({ cuda: false, withoutCudaReason: 'TENSORMEM_CUDA=OFF' });
  }, 300_000);

  it('the host-only addon\'s --backend cuda error says to run npm rebuild tensormem, not a script of the package', () => {
    const result = tensormemdOnCuda();
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('this addon was built without CUDA');
    expect(result.stderr).toContain('run `npm rebuild tensormem` in the project that installed it');
    expect(result.stderr).not.toContain('npm run build:native');
  });
});

/** The nvcc CMake would find (CUDACXX, PATH, the toolkit's usual place), or undefined without a toolkit. */
function findNvcc(): string | undefined {
  const candidates = [process.env.CUDACXX, ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'nvcc')), '/usr/local/cuda/bin/nvcc'];
  return candidates.find((file): file is string => !!file && existsSync(file));
}

const nvcc = findNvcc();

describe('the install script where a CUDA compiler is found but CMake cannot build with it', () => {
  // A toolkit whose nvcc refuses the host compiler (a newer GCC than it supports) gave a host-only addon
  // whose error, and `--backend auto`'s warning, said "no CUDA toolkit found": the operator of a GPU
  // host was sent to install a toolkit that was there. CUDAHOSTCXX=/bin/false: nvcc's host compiler fails.
  it.runIf(!!nvcc && existsSync('/bin/false'))('builds a host-only addon that names the compiler it found and why it was not used (needs a CUDA toolkit)', () => {
    const install = run(['run-script', 'install'], { TENSORMEM_CUDA: 'ON', CUDACXX: nvcc, CUDAHOSTCXX: '/bin/false' });
    expect(install.status, install.stderr).toBe(0);
    const reason = `a CUDA compiler was found (CUDACXX=${nvcc}) but CMake could not compile a CUDA program with it`;
    // CMake wraps a warning's lines.
    expect((install.stdout + install.stderr).replace(/\s+/g, ' ')).toContain(reason);
    const info = builtAddonInfo() as { cuda: boolean; withoutCudaReason: string };
    expect(info.cuda).toBe(false);
    expect(info.withoutCudaReason).toContain(reason);
    expect(info.withoutCudaReason).toContain('CUDAHOSTCXX');

    const daemon = tensormemdOnCuda();
    expect(daemon.status).toBe(1);
    expect(daemon.stderr).toContain(`this addon was built without CUDA (${reason}`);
    expect(daemon.stderr).not.toContain('no CUDA toolkit found');
    expect(daemon.stderr).not.toContain('install the CUDA toolkit');
  }, 300_000);
});
