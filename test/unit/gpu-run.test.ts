/**
 * scripts/gpu-run.sh's checks before vitest, on a stand-in checkout: node_modules/vitest/vitest.mjs is a
 * stand-in that notes it ran and writes an empty vitest.json, and build/Release/tensormem_native.node is
 * this checkout's addon (with or without CUDA; no GPU here either way). The addon gpu-run.sh probes must be
 * the one the tests load (TENSORMEM_NATIVE_ADDON when set, as src/native/addon.ts does), and an addon that
 * does not load here stops the run before vitest, naming the file. The kit's Node is unpacked outside .gpu-kit/,
 * the folder the device tool carries (a Node unpacked there made it 131 MiB, past the tool's 64).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { probeCuda } from '../gpu/cuda-device';

const ROOT = join(__dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'tensormem-gpu-run-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const checkout = join(work, 'checkout');
const out = join(work, 'out');
const vitestRan = join(work, 'vitest-ran');
for (const dir of ['scripts', 'node_modules/vitest', 'dist/src/bin', 'build/Release']) mkdirSync(join(checkout, dir), { recursive: true });
copyFileSync(join(ROOT, 'scripts', 'gpu-run.sh'), join(checkout, 'scripts', 'gpu-run.sh'));
copyFileSync(join(ROOT, 'build', 'Release', 'tensormem_native.node'), join(checkout, 'build', 'Release', 'tensormem_native.node'));
writeFileSync(join(checkout, 'dist/src/bin/tensormemd.js'), '');
writeFileSync(
  join(checkout, 'node_modules/vitest/vitest.mjs'),
  `import { writeFileSync } from 'node:fs';
writeFileSync(${JSON.stringify(vitestRan)}, process.argv.slice(2).join(' '));
const json = process.argv.find((arg) => arg.startsWith('--outputFile.json='));
if (json) writeFileSync(json.slice('--outputFile.json='.length), JSON.stringify({ numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0, testResults: [] }));
`,
);
const notAnAddon = join(work, 'not-an-addon.node');
writeFileSync(notAnAddon, 'not an ELF file\n');

function run(env: Record<string, string> = {}) {
  const base = { ...process.env };
  delete base.TENSORMEM_NATIVE_ADDON;
  delete base.TENSORMEM_CUDNN_LIBRARY;
  return spawnSync('bash', [join(checkout, 'scripts', 'gpu-run.sh')], {
    env: { ...base, OUT: out, TENSORMEM_CUDNN_LIBRARY: join(work, 'no-cudnn.so'), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('scripts/gpu-run.sh', () => {
  beforeEach(() => rmSync(vitestRan, { force: true }));

  it('probes the addon TENSORMEM_NATIVE_ADDON names, and stops with 2 before vitest when it does not load', () => {
    const result = run({ TENSORMEM_NATIVE_ADDON: notAnAddon });
    expect(result.status, result.stdout + result.stderr).toBe(2);
    expect(result.stderr).toContain(`the addon ${notAnAddon} (TENSORMEM_NATIVE_ADDON) does not load here`);
    expect(existsSync(vitestRan)).toBe(false);
    expect(existsSync(join(out, 'machine.txt'))).toBe(true);
  });

  it("stops with 2 before vitest when the kit's addon does not load, naming build/Release", () => {
    const addon = join(checkout, 'build', 'Release', 'tensormem_native.node');
    copyFileSync(notAnAddon, addon);
    try {
      const result = run();
      expect(result.status, result.stdout + result.stderr).toBe(2);
      expect(result.stderr).toContain('the addon build/Release/tensormem_native.node does not load here');
      expect(existsSync(vitestRan)).toBe(false);
    } finally {
      copyFileSync(join(ROOT, 'build', 'Release', 'tensormem_native.node'), addon);
    }
  });

  it("unpacks the kit's Node outside .gpu-kit, leaving the carried folder as gpu-kit.sh made it", () => {
    // A stand-in for the kit's Node: a script that runs this Node, packed as gpu-kit.sh packs it.
    const kit = join(checkout, '.gpu-kit');
    mkdirSync(kit);
    try {
      writeFileSync(join(work, 'node'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`);
      const xz = spawnSync('python3', ['-c', 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.compress(open(sys.argv[1], "rb").read()))', join(work, 'node'), join(kit, 'node.xz')]);
      expect(xz.status, String(xz.stderr)).toBe(0);
      writeFileSync(join(kit, 'node.version'), `${process.version.slice(1)}\n`);
      const result = run({ OUT: '' });
      expect(existsSync(vitestRan), result.stdout + result.stderr).toBe(true);
      expect(readdirSync(kit).sort()).toEqual(['node.version', 'node.xz']);
      expect(readFileSync(join(checkout, 'build', 'gpu-results', 'machine.txt'), 'utf8')).toContain(`node: ${process.version} (${join(checkout, 'build', 'gpu-kit', 'bin', 'node')})`);
    } finally {
      rmSync(kit, { recursive: true, force: true });
    }
  });

  it('runs vitest when the addon loads, and never passes a run whose cuda backend did not start', () => {
    const result = run();
    expect(existsSync(vitestRan)).toBe(true);
    if (probeCuda().backend) {
      expect(result.status, result.stdout + result.stderr).toBe(0);
    } else {
      expect(result.status, result.stdout + result.stderr).toBe(3);
      expect(result.stderr).toContain('the cuda backend did not start here');
      const noDriver = !['/dev/nvidiactl', '/proc/driver/nvidia/version'].some(existsSync) && spawnSync('sh', ['-c', 'command -v nvidia-smi']).status !== 0;
      if (noDriver) expect(result.stdout).toMatch(/no NVIDIA driver here|built without CUDA/);
    }
  });
});
