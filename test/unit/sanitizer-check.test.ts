/**
 * scripts/sanitizer-check.sh judges a run by the report files in its log folder: reports an earlier run
 * left there (the default folder is the same for every run of a mode) must not fail a clean run (they stay), and
 * the run's own reports must. npx and npm are stand-ins here: nothing is built or tested.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'tensormem-sanitizer-check-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// `npx vitest …` writes a report of this run when FAKE_REPORT names one; every other npx/npm call does nothing.
const bin = join(work, 'bin');
mkdirSync(bin);
for (const name of ['npx', 'npm']) {
  const path = join(bin, name);
  writeFileSync(path, '#!/bin/sh\nif [ "$1" = vitest ] && [ -n "$FAKE_REPORT" ]; then echo "ERROR: AddressSanitizer" > "$SANITIZER_LOG_DIR/$FAKE_REPORT"; fi\nexit 0\n');
  chmodSync(path, 0o755);
}

function run(logs: string, env: Record<string, string> = {}) {
  return spawnSync('bash', [join(ROOT, 'scripts', 'sanitizer-check.sh'), 'test/unit/none.test.ts'], {
    cwd: ROOT,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, SANITIZER_LOG_DIR: logs, ...env },
    encoding: 'utf8',
  });
}

describe('scripts/sanitizer-check.sh', () => {
  it("passes a clean run whatever an earlier run left in the log folder, and fails on the run's own reports", () => {
    const logs = join(work, 'logs');
    mkdirSync(logs);
    writeFileSync(join(logs, 'asan.1111'), 'ERROR: AddressSanitizer (an earlier run)');
    const clean = run(logs);
    expect({ status: clean.status, stderr: clean.stderr }).toEqual({ status: 0, stderr: '' });
    expect(existsSync(join(logs, 'asan.1111'))).toBe(true);

    const found = run(logs, { FAKE_REPORT: 'asan.2222' });
    expect(found.status).toBe(1);
    expect(found.stderr).toContain('asan.2222');
  });
});
