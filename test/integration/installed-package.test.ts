/**
 * tensormemd as an installed dependency (node_modules/tensormem) whose install script did not build the
 * addon (npm install --ignore-scripts, a package manager that runs no dependency's build scripts unless
 * allowed): the error must say what to run in the user's project, where `npm run build:native` is no
 * script ("Missing script"). Needs `npm run build:ts` first, as `npm test` does.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addonBuildHint } from '../../src/native/addon';
import { ROOT } from '../helpers/daemon-process';

let project: string;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'tensormem-user-'));
  const pkg = join(project, 'node_modules', 'tensormem');
  mkdirSync(join(pkg, 'dist'), { recursive: true });
  // What the package's files are installed as, without build/ (the install script skipped).
  for (const path of ['package.json', 'proto']) cpSync(join(ROOT, path), join(pkg, path), { recursive: true });
  cpSync(join(ROOT, 'dist', 'src'), join(pkg, 'dist', 'src'), { recursive: true });
  // Its dependencies, as npm would have installed them beside it.
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'), 'dir');
});

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('the installed package without its addon', () => {
  it('tensormemd says to run npm rebuild tensormem, not a script of the package', () => {
    const env = { ...process.env };
    delete env.TENSORMEM_NATIVE_ADDON;
    const result = spawnSync(process.execPath, [join(project, 'node_modules', 'tensormem', 'dist', 'src', 'bin', 'tensormemd.js'), '--backend', 'host', '--listen', '127.0.0.1:0', '--data-listen', 'off', '--metrics-listen', 'off'], {
      cwd: project,
      env,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`native addon not found at ${join(project, 'node_modules', 'tensormem', 'build', 'Release', 'tensormem_native.node')}`);
    expect(result.stderr).toContain('run `npm rebuild tensormem` in the project that installed it');
    expect(result.stderr).not.toContain('npm run build:native');
  });

  it('tensormemd --backend auto (the default) says the addon is missing, and nothing about falling back to the host backend', () => {
    const env = { ...process.env };
    delete env.TENSORMEM_NATIVE_ADDON;
    delete env.TENSORMEM_BACKEND;
    const result = spawnSync(process.execPath, [join(project, 'node_modules', 'tensormem', 'dist', 'src', 'bin', 'tensormemd.js'), '--listen', '127.0.0.1:0', '--data-listen', 'off', '--metrics-listen', 'off'], {
      cwd: project,
      env,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('native addon not found at');
    expect(result.stdout + result.stderr).not.toContain('using the host backend');
  });

  it('a checkout is told to run npm run build:native', () => {
    expect(addonBuildHint(ROOT)).toContain('run `npm run build:native`');
    expect(addonBuildHint(join(project, 'node_modules', 'tensormem'))).toContain('npm rebuild tensormem');
  });
});
