/**
 * `mkdirSync(path, { recursive: true, mode })` without Node's endless loop: where mkdir answers ENOENT
 * although the folder above exists (procfs: `--mmap-dir /proc/x`), Node 20's recursive mkdir retries
 * for ever in one synchronous call, so the daemon hung at start at full CPU and no signal could stop it.
 * Here each missing folder is made once, from the top down, and any error is thrown as mkdir gives it.
 * A path that exists and is not a folder throws EEXIST, as the recursive mkdir does.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function makeFolders(path: string, mode: number): void {
  const missing: string[] = [];
  for (let folder = resolve(path); ; ) {
    let isFolder: boolean;
    try {
      isFolder = statSync(folder).isDirectory();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      missing.push(folder);
      const parent = dirname(folder);
      if (parent === folder) break;
      folder = parent;
      continue;
    }
    if (!isFolder && missing.length === 0) throw Object.assign(new Error(`EEXIST: file already exists, mkdir '${folder}'`), { code: 'EEXIST', path: folder, syscall: 'mkdir' });
    break;
  }
  for (const folder of missing.reverse()) {
    try {
      mkdirSync(folder, { mode });
    } catch (error) {
      // Made meanwhile by someone else: as good as made here (lstat checks what it is afterwards).
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}
