/**
 * Names of the daemon's shared-memory objects (exportable host chunks, ExportArray):
 * "/tensormem-<pid>-<32 hex digits>", 128 bits from crypto.randomBytes, so a name cannot be guessed;
 * the addon creates them mode 0600 (O_EXCL, so a clash fails instead of sharing an object).
 *
 * The daemon unlinks its names when their chunks are freed, and at exit (the addon's atexit handler).
 * A SIGKILLed daemon runs neither, and its objects stay in /dev/shm holding memory, so at start the
 * daemon removes every name of this pattern whose pid is not a live process (or is its own pid, a
 * previous holder of the pid having died: a starting daemon has created none yet).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where Linux (glibc) keeps POSIX shared-memory objects: "/name" is this directory's "name". */
export const SHM_DIRECTORY = '/dev/shm';

const NAME_PATTERN = /^tensormem-(\d+)-[0-9a-f]{32}$/;

/** A fresh name for a shared-memory object of this process. */
export function newShmName(): string {
  return `/tensormem-${process.pid}-${randomBytes(16).toString('hex')}`;
}

/** The file behind a shared-memory name ("/tensormem-…" → "/dev/shm/tensormem-…"). */
export function shmPath(name: string): string {
  return path.join(SHM_DIRECTORY, name.replace(/^\//, ''));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the shared-memory objects left by dead daemons (see the file comment); returns the names
 * removed. Objects that cannot be removed (another user's, in the sticky /dev/shm) are left alone.
 */
export function removeStaleShmNames(directory = SHM_DIRECTORY): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(directory);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const match = NAME_PATTERN.exec(entry);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid !== process.pid && processAlive(pid)) continue;
    try {
      fs.unlinkSync(path.join(directory, entry));
      removed.push(`/${entry}`);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}
