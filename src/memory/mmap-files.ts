/**
 * Where MMAP workspace files live (--mmap-dir). A lease names its file (temp_file_path) relative to its
 * tenant's own folder under that root, never anywhere else on the daemon's file system: a path taken
 * as given let any lease map, read, overwrite or truncate any file the daemon could open (its keys,
 * another tenant's weights). Temporary files (no temp_file_path) are made in the root itself.
 *
 * Layout: ROOT/tenant-<name, URI-escaped>/<temp_file_path>, folders made on demand with mode 0700. A
 * symbolic link on the way (planted by someone with the daemon's rights) is refused, as is a path that
 * names something other than a regular file.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, lstatSync, readdirSync, realpathSync, rmdirSync, statSync, statfsSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { TensormemError, invalidArgument } from '../errors';
import { formatBytes } from '../units';
import { makeFolders } from './make-folders';

/** --mmap-dir's default. */
export function defaultMmapDir(): string {
  return join(tmpdir(), 'tensormem-mmap');
}

const MAX_PATH_CHARS = 1024;
/** A temporary workspace file's name (temporaryPath), and nothing else. */
const TEMPORARY_NAME = /^tensormem-ws-[0-9a-f]{24}\.mmap$/;

/**
 * Throws INVALID_ARGUMENT (naming `field`) unless `path` is a relative path of plain names: not
 * absolute, no empty, "." or ".." segment, no NUL, at most 1024 characters.
 */
export function checkMmapPath(path: string, field = 'config.temp_file_path'): void {
  const segments = path.split('/');
  if (path.length > MAX_PATH_CHARS || path.startsWith('/') || path.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw invalidArgument(field, `a relative path of plain names under the tenant's MMAP folder (--mmap-dir; no leading "/", no "." or ".." or empty segment, at most ${MAX_PATH_CHARS} characters)`, path);
  }
}

export class MmapFiles {
  constructor(readonly root: string) {}

  /** The tenant's folder: ROOT/tenant-<escaped name> ("tenant-" keeps "." and ".." names out). */
  tenantFolder(tenant: string): string {
    return join(this.root, `tenant-${encodeURIComponent(tenant)}`);
  }

  /**
   * Where `tenant`'s file `relative` (checked by checkMmapPath) lives; makes the folders on the way
   * (unless `make` is false: a path whose folder is missing then names no file, and is answered as it
   * is). FAILED_PRECONDITION when a folder cannot be made, a link leads out of the tenant's folder, or
   * the path names a link or something other than a regular file.
   */
  pathOf(tenant: string, relative: string, make = true): string {
    checkMmapPath(relative);
    this.ensureRoot();
    const folder = this.tenantFolder(tenant);
    const path = join(folder, relative);
    const refuse = (why: string) =>
      new TensormemError('FAILED_PRECONDITION', 'FAILED_PRECONDITION', `config.temp_file_path ${JSON.stringify(relative)}: ${why}`, { field: 'config.temp_file_path', path });
    if (!make && !existsSync(dirname(path))) return path;
    try {
      makeFolders(dirname(path), 0o700);
    } catch (error) {
      throw refuse(`cannot make its folder under ${folder}: ${(error as Error).message}`);
    }
    const realFolder = realpathSync(folder);
    const realParent = realpathSync(dirname(path));
    if (realParent !== realFolder && !realParent.startsWith(realFolder + sep)) throw refuse(`a symbolic link leads out of the tenant's folder ${folder}`);
    let existing;
    try {
      existing = lstatSync(path);
    } catch {
      return path;
    }
    if (existing.isSymbolicLink()) throw refuse(`${path} is a symbolic link, which MMAP workspaces do not follow`);
    if (!existing.isFile()) throw refuse(`${path} exists and is not a regular file`);
    return path;
  }

  /**
   * Removes the empty folders on the way to `path` (a tenant's file), from its own up to the tenant's
   * folder: a workspace refused after pathOf made them leaves none behind. A folder holding anything
   * (another file) stays, and so do those above it.
   */
  removeEmptyFolders(path: string): void {
    for (let folder = dirname(path); folder.startsWith(this.root + sep); folder = dirname(folder)) {
      try {
        rmdirSync(folder);
      } catch {
        return;
      }
    }
  }

  /** A new temporary file's path in the root (made with it, if need be). */
  temporaryPath(): string {
    this.ensureRoot();
    return join(this.root, `tensormem-ws-${randomBytes(12).toString('hex')}.mmap`);
  }

  /**
   * Removes the temporary workspace files left in the root by daemons that died (at start): a
   * temporary file's name is unlinked as soon as it is mapped, so a name still there was left by a
   * daemon killed between creating the file and mapping it (its posix_fallocate of the whole length
   * takes that long), with its whole length allocated on the disk. Only regular files of the daemon's
   * user with exactly such a name go; tenants' files live in their folders. A live daemon sharing the
   * root loses nothing by it: the one file of its own that can have such a name is the one it is
   * creating, through a descriptor that outlives the name, and whose name it was about to unlink.
   */
  removeStaleTemporaryFiles(): { paths: string[]; bytes: number } {
    const removed = { paths: [] as string[], bytes: 0 };
    let entries: string[];
    try {
      entries = readdirSync(this.root);
    } catch {
      return removed;
    }
    for (const entry of entries.filter((name) => TEMPORARY_NAME.test(name))) {
      const path = join(this.root, entry);
      try {
        const file = lstatSync(path);
        if (!file.isFile() || (process.getuid && file.uid !== process.getuid())) continue;
        unlinkSync(path);
        removed.paths.push(path);
        // Its length, all of it allocated on the disk by posix_fallocate.
        removed.bytes += file.size;
      } catch {
        // gone already
      }
    }
    return removed;
  }

  /**
   * Refuses to create `path` with `bytes` when its file system has not that much room for it: what an
   * unprivileged user may still take (statfs's f_bavail), plus what the file holds now (re-creating it
   * frees its blocks). RESOURCE_EXHAUSTED / MMAP_LIMIT with both numbers, as a full disk answers: without
   * it, 1 PiB answered FAILED_PRECONDITION "File too large" (past the file system's longest file) and
   * 1 TiB "the disk is full" with no figure. Told before anything is created; the room can still go
   * meanwhile, and posix_fallocate then answers ENOSPC as before. Nothing is checked when the folder's
   * file system cannot be read (the mapping's own error tells then).
   */
  checkRoom(path: string, bytes: number): void {
    let room: number;
    try {
      const fs = statfsSync(dirname(path));
      room = fs.bavail * fs.bsize;
    } catch {
      return;
    }
    const held = statSync(path, { throwIfNoEntry: false });
    const existing = held?.isFile() ? held.blocks * 512 : 0;
    if (bytes <= room + existing) return;
    throw new TensormemError(
      'RESOURCE_EXHAUSTED',
      'MMAP_LIMIT',
      `Can't map [MMAP] file ${path}: initial_size ${formatBytes(bytes)} is more than the file system of --mmap-dir has room for ` +
        `(${formatBytes(room)} free${existing > 0 ? `, and ${formatBytes(existing)} the file holds now` : ''}). ` +
        'Try: destroy MMAP workspaces, a smaller initial_size, or room on the file system of --mmap-dir (and --mmap-maxbytes below its size).',
      { path, requested_bytes: String(bytes), free_bytes: String(room + existing) },
    );
  }

  /**
   * Makes the root (mode 0700) if need be, and refuses one that another user could change under the
   * daemon: a symbolic link, a folder of another owner, or one that group or others may write (the
   * default lies in the shared temporary folder, where anyone may have made it first); and one the
   * daemon cannot write (a read-only file system). Also called at
   * start (daemon.ts), so that an unusable --mmap-dir is told then, not at the first MMAP workspace.
   */
  ensureRoot(): void {
    const refuse = (why: string) => new TensormemError('FAILED_PRECONDITION', 'FAILED_PRECONDITION', `--mmap-dir ${this.root} ${why}: MMAP workspaces need a folder of their own (pass another --mmap-dir)`, { path: this.root });
    try {
      makeFolders(this.root, 0o700);
    } catch (error) {
      // EEXIST: something other than a folder is there (a file), told below as such.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw refuse(`cannot be made (${(error as Error).message})`);
    }
    const root = lstatSync(this.root);
    if (root.isSymbolicLink()) throw refuse('is a symbolic link');
    if (!root.isDirectory()) throw refuse('is not a folder');
    if (process.getuid && root.uid !== process.getuid()) throw refuse(`belongs to user ${root.uid}, not to the daemon's user ${process.getuid()}`);
    if ((root.mode & 0o022) !== 0) throw refuse(`may be written by group or others (mode ${(root.mode & 0o777).toString(8)})`);
    // A read-only file system (EROFS, root included): no file could be made in it.
    try {
      accessSync(this.root, constants.W_OK | constants.X_OK);
    } catch (error) {
      throw refuse(`cannot be written (${(error as Error).message})`);
    }
  }
}

/**
 * The first folder above `path` (as given, and as its symbolic links resolve) in which a user other
 * than root and the daemon's own could rename `path` away and put something of theirs there: one that
 * group or others may write without the sticky bit (with it, as /tmp has, only an entry's owner may
 * rename it), or one of another user (who may chmod it so), told with why; undefined when there is none.
 * Warned about at start, not refused: a container's emptyDir (mode 777, no sticky bit) is such a
 * folder, and harmless where the daemon's user is the only one.
 */
export function unsafeAncestor(path: string): string | undefined {
  const uid = process.getuid?.();
  const ancestors = new Set<string>();
  for (const start of [path, realpathSync(path)]) {
    for (let folder = dirname(start); ; folder = dirname(folder)) {
      ancestors.add(folder);
      if (folder === dirname(folder)) break;
    }
  }
  for (const folder of ancestors) {
    const status = statSync(folder);
    const mode = (status.mode & 0o7777).toString(8);
    if ((status.mode & 0o022) !== 0 && (status.mode & 0o1000) === 0) return `${folder} (mode ${mode}: group or others may write it, and it has no sticky bit)`;
    if (uid !== undefined && status.uid !== 0 && status.uid !== uid) return `${folder} (of user ${status.uid}, neither root nor the daemon's user ${uid})`;
  }
  return undefined;
}
