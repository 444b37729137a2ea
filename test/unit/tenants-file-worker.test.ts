/**
 * The tenants file read for a reload on a worker thread (dist/src/leases/tenants-file-worker.js, built
 * by `npm run build:ts`): the same tenants and the same refusal (file, line, field and value) as
 * readTenantsFile on the event loop, and a read the drain abandons ends its worker.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTenantsFile } from '../../src/leases/tenants-file';
import { READ_INLINE_MAX_BYTES, TenantsReadAborted, readTenantsFileForReload, readTenantsFileOffThread } from '../../src/leases/tenants-file-worker';
import { tokenSha256 } from '../helpers/tenants-file';

const dir = mkdtempSync(join(tmpdir(), 'tensormem-tenants-worker-'));
/** A tenants file of `count` tenants (`bad`: the last one's quota.device is 8Q), written as `name`. */
function tenantsFile(name: string, count: number, bad = false): string {
  const path = join(dir, name);
  const entries = Array.from({ length: count }, (_, i) => `  - name: team-${i}\n    token_sha256: "${tokenSha256(`token-${i}`)}"\n    quota: { device: ${bad && i === count - 1 ? '8Q' : '8G'}, host: 4G }\n    max_leases: ${i % 7}\n`);
  writeFileSync(path, `tenants:\n${entries.join('')}`);
  return path;
}

describe('readTenantsFileOffThread', () => {
  it('reads what readTenantsFile reads', async () => {
    const path = tenantsFile('many.yaml', 500);
    expect(await readTenantsFileOffThread(path)).toEqual(readTenantsFile(path));
  });

  it("refuses a bad file with readTenantsFile's message (file, line, field and value)", async () => {
    const path = tenantsFile('bad.yaml', 300, true);
    const inline = (() => {
      try {
        readTenantsFile(path);
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(inline).toMatch(/^.*bad\.yaml:\d+: .*quota\.device of tenant "team-299".*"8Q"/);
    await expect(readTenantsFileOffThread(path)).rejects.toThrow(inline!);
    await expect(readTenantsFileOffThread(join(dir, 'missing.yaml'))).rejects.toThrow(`${join(dir, 'missing.yaml')}: cannot read: ENOENT`);
  });

  it('ends the worker when the read is abandoned, and rejects with TenantsReadAborted', async () => {
    const path = tenantsFile('abandoned.yaml', 2000);
    const abandon = new AbortController();
    const read = readTenantsFileOffThread(path, abandon.signal);
    abandon.abort();
    await expect(read).rejects.toBeInstanceOf(TenantsReadAborted);
    await expect(readTenantsFileOffThread(path, abandon.signal)).rejects.toBeInstanceOf(TenantsReadAborted);
  });
});

describe('readTenantsFileForReload', () => {
  it('reads a small file and a large one as readTenantsFile does, and refuses as it does', async () => {
    const small = tenantsFile('small.yaml', 3);
    const large = tenantsFile('large.yaml', 200);
    expect(readTenantsFile(small).length).toBe(3);
    expect(await readTenantsFileForReload(small)).toEqual(readTenantsFile(small));
    expect(await readTenantsFileForReload(large)).toEqual(readTenantsFile(large));
    await expect(readTenantsFileForReload(tenantsFile('small-bad.yaml', 3, true))).rejects.toThrow(/small-bad\.yaml:\d+: .*"8Q"/);
    await expect(readTenantsFileForReload(tenantsFile('large-bad.yaml', 200, true))).rejects.toThrow(/large-bad\.yaml:\d+: .*"8Q"/);
    await expect(readTenantsFileForReload(join(dir, 'gone.yaml'))).rejects.toThrow(`${join(dir, 'gone.yaml')}: cannot read: ENOENT`);
  });

  it('reads a file of at most READ_INLINE_MAX_BYTES on the event loop, a larger one on a worker (which an aborted signal refuses)', async () => {
    const aborted = AbortSignal.abort();
    const small = tenantsFile('small-inline.yaml', 3);
    const large = tenantsFile('large-worker.yaml', Math.ceil(READ_INLINE_MAX_BYTES / 100));
    // The inline read does not look at the signal; the worker's refuses to start under one aborted.
    expect(await readTenantsFileForReload(small, aborted)).toEqual(readTenantsFile(small));
    await expect(readTenantsFileForReload(large, aborted)).rejects.toBeInstanceOf(TenantsReadAborted);
  });
});

describe('readTenantsFileForReload of a FIFO', () => {
  // A worker blocked opening a FIFO that no one writes cannot be ended (terminate() does not interrupt
  // open(2) nor read(2)), and Node waits for it at exit: a SIGTERM then drained and logged "stopped", and the daemon
  // never exited; every later SIGHUP queued behind the read.
  it('refuses it at once, naming the path and what it is, without a worker that waits for a writer', async () => {
    const path = join(dir, 'tenants.fifo');
    execFileSync('mkfifo', ['-m', '600', path]);
    // Held open for reading and writing (Linux): a read of the FIFO opens at once and waits for data, and
    // gets its end when this closes, so that a worker left reading it (without the check) ends.
    const held = openSync(path, fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    try {
      const outcome = await Promise.race([
        readTenantsFileForReload(path).then(
          () => 'read',
          (error: Error) => error.message,
        ),
        new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 1.5 s'), 1500)),
      ]);
      expect(outcome).toBe(`${path}: is a pipe (FIFO), not a regular file: a reload reads only a regular file`);
    } finally {
      rmSync(path);
      closeSync(held);
    }
  });
});
