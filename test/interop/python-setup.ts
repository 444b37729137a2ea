/**
 * What the Python interop tests share: Debian's python3 with python3-grpcio, the stub generation that
 * proves protoc and grpc_python_plugin are there, and the rule for a machine without them (fail naming
 * what is missing, unless TENSORMEM_SKIP_INTEROP=1, which skips visibly with the same reason).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../helpers/daemon-process';

// Debian's python with python3-grpcio; TENSORMEM_INTEROP_PYTHON overrides it (to check the no-grpc path),
// as TENSORMEM_INTEROP_PROTOC and TENSORMEM_INTEROP_GRPC_PLUGIN (read by python_client.py) override the tools.
export const PYTHON = process.env.TENSORMEM_INTEROP_PYTHON || '/usr/bin/python3';
export const CLIENT = join(ROOT, 'test', 'interop', 'python_client.py');
const SKIP_REQUESTED = process.env.TENSORMEM_SKIP_INTEROP === '1';
const INSTALL_HINT =
  'install the Debian packages python3-grpcio protobuf-compiler protobuf-compiler-grpc libprotobuf-dev (CI installs them in .ci/run), or set TENSORMEM_SKIP_INTEROP=1 to skip';

/** Generates the Python stubs once, at collection; returns the problem when the tools are missing. */
export function prepareStubs(): { stubs?: string; problem?: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tensormem-pystubs-'));
  const gen = spawnSync(PYTHON, [CLIENT, 'gen-stubs', dir], { encoding: 'utf8', timeout: 60_000 });
  if (gen.status === 0) return { stubs: dir };
  rmSync(dir, { recursive: true, force: true });
  if (gen.error) return { problem: `${PYTHON} cannot run (${gen.error.message})` };
  const lastLine = gen.stdout.trim().split('\n').pop() || '';
  try {
    const reply = JSON.parse(lastLine) as { error?: string };
    return { problem: `${PYTHON} ${CLIENT} gen-stubs: ${reply.error}` };
  } catch {
    return { problem: `${PYTHON} ${CLIENT} gen-stubs exited ${gen.status}: ${(gen.stderr || gen.stdout).trim().split('\n').pop()}` };
  }
}

/**
 * Inside a describe: for a `problem` from prepareStubs, declares the one test that fails naming it (or
 * its visible skip under TENSORMEM_SKIP_INTEROP=1) and returns true, so the describe declares no other.
 */
export function declareMissingPython(problem: string | undefined): boolean {
  if (!problem) return false;
  if (SKIP_REQUESTED) {
    it.skip(`skipped (TENSORMEM_SKIP_INTEROP=1): ${problem}`, () => {});
  } else {
    it(`has ${PYTHON} with grpcio, protoc ≥ 3.15 and grpc_python_plugin`, () => {
      expect.fail(`${problem}: ${INSTALL_HINT}`);
    });
  }
  return true;
}
