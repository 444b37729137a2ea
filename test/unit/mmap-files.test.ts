/** MmapFiles: where MMAP workspace files may live (--mmap-dir), by tenant. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import { MmapFiles, checkMmapPath } from '../../src/memory/mmap-files';
import { thrownBy } from '../helpers/thrown';

const dirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmap-files-test-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('MmapFiles', () => {
  it("puts a tenant's relative path in its own folder (mode 0700), the tenant's name escaped", () => {
    const root = join(scratch(), 'mmap');
    const files = new MmapFiles(root);
    expect(files.pathOf('team-a', 'data/w.mmap')).toBe(join(root, 'tenant-team-a', 'data', 'w.mmap'));
    expect(statSync(join(root, 'tenant-team-a', 'data')).mode & 0o777).toBe(0o700);
    expect(statSync(root).mode & 0o777).toBe(0o700);
    expect(files.pathOf('../x', 'w')).toBe(join(root, 'tenant-..%2Fx', 'w'));
    expect(files.temporaryPath()).toMatch(new RegExp(`^${root}/tensormem-ws-[0-9a-f]{24}\\.mmap$`));
  });

  it.each(['/etc/passwd', '../w', 'a/../../w', './w', 'a//w', 'a/', '', 'a\0b', 'x'.repeat(1025)])('refuses %j with INVALID_ARGUMENT naming the field', (path) => {
    const error = thrownBy(() => checkMmapPath(path), TensormemError);
    expect([error.kind, error.metadata.field]).toEqual(['INVALID_ARGUMENT', 'config.temp_file_path']);
  });

  it('refuses a symbolic link or a non-file at the path, and a link that leads out of the folder', () => {
    const root = scratch();
    const files = new MmapFiles(root);
    const outside = join(scratch(), 'secret');
    writeFileSync(outside, 'secret');
    mkdirSync(join(root, 'tenant-a'), { mode: 0o700 });
    symlinkSync(outside, join(root, 'tenant-a', 'link'));
    symlinkSync(join(outside, '..'), join(root, 'tenant-a', 'out'));
    mkdirSync(join(root, 'tenant-a', 'folder'));
    for (const [path, why] of [['link', 'symbolic link'], ['out/secret', 'leads out'], ['folder', 'not a regular file']]) {
      const error = thrownBy(() => files.pathOf('a', path), TensormemError);
      expect(error.kind).toBe('FAILED_PRECONDITION');
      expect(error.message).toContain(why);
    }
  });

  it('refuses a root that others may write, or that is a symbolic link', () => {
    const open = scratch();
    chmodSync(open, 0o777);
    expect(thrownBy(() => new MmapFiles(open).temporaryPath(), TensormemError).message).toContain('may be written by group or others (mode 777)');
    const link = join(scratch(), 'link');
    symlinkSync(scratch(), link);
    expect(thrownBy(() => new MmapFiles(link).pathOf('a', 'w'), TensormemError).message).toContain('is a symbolic link');
  });
});
