/**
 * How tensormemctl writes a file whole or not at all (`get --array ID FILE`, `snapshot -f FILE`): the
 * target is checked before any work is done for it (fileTarget), then written into a temporary file next
 * to it (a random name, created exclusively, so the rename cannot cross file systems) and renamed onto it
 * (replaceFile). On any failure the file is left as it was and no temporary file stays. `snapshot -f`
 * wrote in place: into a folder that did not exist it said only "ENOENT: no such file or directory, open
 * 'x'", after the daemon had copied every block, and a write cut short left half a JSON file.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { open, realpath, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { kindOf } from '../file-kind';

/** Where `command` writes PATH, and the file it replaces (if any). */
export interface FileTarget {
  /** PATH as given (for messages). */
  path: string;
  /** PATH itself, or the file it links to when it is a symbolic link (so the link is kept). */
  target: string;
  existing?: Stats;
}

/**
 * Checks PATH for `command` before any work is done for it: its folder must exist, and an existing PATH
 * must be a regular file (it is replaced whole). `toStdout` says how the command writes to stdout, for
 * a PATH that is not a regular file (`get ... /dev/stdout | sha256sum`, `> /dev/null`).
 */
export async function fileTarget(path: string, command: string, toStdout: string): Promise<FileTarget> {
  const folder = dirname(path);
  const folderStat = await stat(folder).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`${command} cannot write ${path}: ${error.code === 'ENOENT' ? `the folder ${folder} does not exist` : error.message}`);
  });
  if (!folderStat.isDirectory()) throw new Error(`${command} cannot write ${path}: ${folder} is not a folder`);
  let existing: Stats;
  try {
    existing = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { path, target: path };
    throw error;
  }
  if (!existing.isFile()) throw new Error(`${command} writes a regular file, and ${path} is ${kindOf(existing)}: ${toStdout}`);
  return { path, target: await realpath(path), existing };
}

/**
 * Has `fill` write (and sync) the whole file into a temporary file next to the target, then renames it
 * onto the target; a file replaced keeps its mode. What `fill` throws is passed on as it is (a daemon's
 * refusal, an interrupt); opening the temporary file and the rename fail naming `command` and PATH.
 */
export async function replaceFile({ path, target, existing }: FileTarget, command: string, fill: (file: FileHandle) => Promise<void>): Promise<void> {
  const temporary = join(dirname(target), `.${basename(target)}.${randomBytes(9).toString('base64url')}.tensormemctl-${command.split(' ')[0]}`);
  let file: FileHandle;
  try {
    file = await open(temporary, 'wx');
  } catch (error) {
    throw new Error(`${command} cannot write ${path}: ${(error as Error).message}`);
  }
  try {
    try {
      // A file replaced keeps its mode (a new one gets the umask's, as with any new file).
      if (existing) await file.chmod(existing.mode & 0o7777);
      await fill(file);
    } finally {
      await file.close();
    }
    await rename(temporary, target).catch((error: Error) => {
      throw new Error(`${command} cannot write ${path}: ${error.message}`);
    });
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
