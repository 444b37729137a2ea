/**
 * Writes a whole file the way `get` does (transfer.ts getFile): into a temporary file next to PATH (a
 * random name, created exclusively, so the rename cannot cross file systems), synced, then renamed onto
 * PATH. On any failure PATH is left as it was, no temporary file stays, and the error names the command
 * and PATH: `snapshot -f` into a folder that does not exist said only "ENOENT: no such file or
 * directory, open 'x'", and a snapshot cut short (disk full, Ctrl-C) left half a JSON file where the
 * last good one had been.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Refuses, before any work is done for it, a PATH whose folder is missing or that names something other than a file. */
export async function checkWritablePath(path: string, command: string): Promise<void> {
  const folder = dirname(path);
  const folderStat = await stat(folder).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`${command} cannot write ${path}: ${error.code === 'ENOENT' ? `the folder ${folder} does not exist` : error.message}`);
  });
  if (!folderStat.isDirectory()) throw new Error(`${command} cannot write ${path}: ${folder} is not a folder`);
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isFile()) throw new Error(`${command} writes a regular file, and ${path} is not one`);
}

export async function replaceFile(path: string, text: string, command: string): Promise<void> {
  await checkWritablePath(path, command);
  const existing = await stat(path).catch(() => undefined);
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(9).toString('base64url')}.tensormemctl`);
  let file;
  try {
    file = await open(temporary, 'wx');
  } catch (error) {
    throw new Error(`${command} cannot write ${path}: ${(error as Error).message}`);
  }
  try {
    try {
      // A file replaced keeps its mode (a new one gets the umask's, as with any new file).
      if (existing) await file.chmod(existing.mode & 0o7777);
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new Error(`${command} cannot write ${path}: ${(error as Error).message}`);
  }
}
