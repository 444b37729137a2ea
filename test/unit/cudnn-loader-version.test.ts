/**
 * The addon's cuDNN loader refuses a library older than cuDNN 8: cuDNN 7 has every symbol it binds (the
 * _v7 algorithm finders came with it), so only its version tells it apart. A stand-in library with every
 * symbol is compiled here (skipped without a C compiler); its cudnnGetVersion answers what the file's
 * name says. Each test file runs in a process of its own, and a loaded library stays loaded, so the
 * refused one is tried first.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/native/addon';

const SYMBOLS = [
  'cudnnGetErrorString', 'cudnnCreate', 'cudnnDestroy', 'cudnnCreateTensorDescriptor', 'cudnnSetTensorNdDescriptor',
  'cudnnDestroyTensorDescriptor', 'cudnnCreateFilterDescriptor', 'cudnnSetFilterNdDescriptor', 'cudnnDestroyFilterDescriptor',
  'cudnnCreateConvolutionDescriptor', 'cudnnSetConvolutionNdDescriptor', 'cudnnSetConvolutionGroupCount',
  'cudnnSetConvolutionMathType', 'cudnnDestroyConvolutionDescriptor', 'cudnnGetConvolutionNdForwardOutputDim',
  'cudnnGetConvolutionForwardAlgorithm_v7', 'cudnnGetConvolutionBackwardDataAlgorithm_v7', 'cudnnGetConvolutionBackwardFilterAlgorithm_v7',
  'cudnnGetConvolutionForwardWorkspaceSize', 'cudnnGetConvolutionBackwardDataWorkspaceSize', 'cudnnGetConvolutionBackwardFilterWorkspaceSize',
];

const dir = mkdtempSync(join(tmpdir(), 'tensormem-cudnn-stub-'));
const compiler = spawnSync('cc', ['--version']).status === 0 ? 'cc' : undefined;

/** A stand-in libcudnn whose cudnnGetVersion answers `version`; its path. */
function stub(version: number): string {
  const source = join(dir, `stub-${version}.c`);
  const library = join(dir, `libcudnn-${version}.so`);
  writeFileSync(source, [`#include <stddef.h>`, `size_t cudnnGetVersion(void) { return ${version}; }`, ...SYMBOLS.map((name) => `int ${name}(void) { return 0; }`)].join('\n'));
  const built = spawnSync(compiler!, ['-shared', '-fPIC', '-o', library, source], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cc failed: ${built.stderr}`);
  return library;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(compiler === undefined)(`the cuDNN loader${compiler ? '' : ' — skipped: no C compiler (cc)'}`, () => {
  it('refuses cuDNN 7.6.5, naming its version and what is needed, then takes cuDNN 8.9.7', () => {
    const addon = loadAddon();
    const old = stub(7605);
    const refused = addon.cudnnLoad([old]);
    expect(refused.loaded).toBe(false);
    expect(refused.error).toBe(`${old}: cuDNN 7.6.5 is too old (cuDNN 8 or newer is needed)`);
    const current = stub(8907);
    const taken = addon.cudnnLoad([old, current]);
    expect(taken).toMatchObject({ loaded: true, path: current, version: 8907 });
  });
});
