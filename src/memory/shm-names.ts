/**
 * Names of the daemon's shared-memory objects (exportable host chunks, ExportArray):
 * "/tensormem-<pid>-<instance>-<32 hex digits>", 128 bits from crypto.randomBytes, so a name cannot
 * be guessed; the addon creates them mode 0600 (O_EXCL, so a clash fails instead of sharing an object).
 * `instance` is 64 random bits drawn once per process; the pid is there for people reading /dev/shm.
 *
 * The daemon unlinks its names when their chunks are freed, and at exit (the addon's atexit handler).
 * A SIGKILLed daemon runs neither, and its objects stay in /dev/shm holding memory, so at start the
 * daemon removes the objects of every instance that is gone. A pid cannot tell: daemons in containers
 * that share /dev/shm (`ipc: host`) have pids of other namespaces, which look dead or like someone
 * else's. So a process that names an object also listens on a unix socket beside them,
 * "/dev/shm/tensormem-<instance>.alive"; an instance whose socket refuses connections (or is missing)
 * is gone, whatever namespace it ran in. Names of the older form "/tensormem-<pid>-<32 hex>" are
 * still removed when their pid is not a live process here.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** Where Linux (glibc) keeps POSIX shared-memory objects: "/name" is this directory's "name". */
export const SHM_DIRECTORY = '/dev/shm';

const INSTANCE = randomBytes(8).toString('hex');
const NAME_PATTERN = /^tensormem-\d+-([0-9a-f]{16})-[0-9a-f]{32}$/;
const BEACON_PATTERN = /^tensormem-([0-9a-f]{16})\.alive$/;
const OLD_NAME_PATTERN = /^tensormem-(\d+)-[0-9a-f]{32}$/;
/** How long a liveness probe waits for an answer before taking the instance as alive. */
const PROBE_TIMEOUT_MS = 2000;

let beacon: net.Server | undefined;

function beaconPath(instance: string, directory: string): string {
  return path.join(directory, `tensormem-${instance}.alive`);
}

/**
 * Listens (once per process) on this instance's liveness socket. It holds no event-loop reference,
 * answers a connection by closing it, and its file is removed at exit.
 */
function startBeacon(directory = SHM_DIRECTORY): void {
  if (beacon) return;
  const file = beaconPath(INSTANCE, directory);
  beacon = net.createServer((socket) => socket.destroy());
  // Without its socket this process's objects would look abandoned to a starting daemon; the object
  // itself fails to be made then too (the same directory), so there is nothing more to do here.
  beacon.on('error', () => undefined);
  beacon.listen(file);
  beacon.unref();
  process.once('exit', () => {
    try {
      fs.unlinkSync(file);
    } catch {
      // removed already
    }
  });
}

/** A fresh name for a shared-memory object of this process. */
export function newShmName(): string {
  startBeacon();
  return `/tensormem-${process.pid}-${INSTANCE}-${randomBytes(16).toString('hex')}`;
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

/** Whether the instance behind a liveness socket is gone: its socket refuses connections or is missing. Anything else (no answer, no permission) counts as alive. */
function instanceGone(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(file);
    const done = (gone: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(gone);
    };
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done(false));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED' || error.code === 'ENOENT'));
  });
}

/** What a sweep removed: the objects' names ("/tensormem-…") and the bytes they held. */
export interface RemovedShmNames {
  names: string[];
  bytes: number;
}

function unlinkAll(directory: string, entries: string[], removed: RemovedShmNames): void {
  for (const entry of entries) {
    const file = path.join(directory, entry);
    try {
      // Read before the unlink: an object's size is the memory it held (pages of /dev/shm's tmpfs).
      const bytes = entry.endsWith('.alive') ? 0 : fs.lstatSync(file).size;
      fs.unlinkSync(file);
      if (!entry.endsWith('.alive')) {
        removed.names.push(`/${entry}`);
        removed.bytes += bytes;
      }
    } catch {
      // gone already, or not ours to remove
    }
  }
}

/**
 * Removes the shared-memory objects left by instances that are gone (see the file comment), and their
 * liveness sockets; returns the object names removed and their bytes. Objects that cannot be removed
 * (another user's, in the sticky /dev/shm) are left alone.
 */
export async function removeStaleShmNames(directory = SHM_DIRECTORY): Promise<RemovedShmNames> {
  const removed: RemovedShmNames = { names: [], bytes: 0 };
  let entries: string[];
  try {
    entries = fs.readdirSync(directory);
  } catch {
    return removed;
  }
  const byInstance = new Map<string, string[]>();
  const stale: string[] = [];
  for (const entry of entries) {
    const instance = (NAME_PATTERN.exec(entry) ?? BEACON_PATTERN.exec(entry))?.[1];
    if (instance !== undefined) {
      // Pushed, not copied: a copy per entry made the scan quadratic, and a daemon that died holding
      // 65,000 exports (about vm.max_map_count) kept its successor from starting for minutes.
      if (instance !== INSTANCE) {
        const names = byInstance.get(instance);
        if (names) names.push(entry);
        else byInstance.set(instance, [entry]);
      }
      continue;
    }
    const old = OLD_NAME_PATTERN.exec(entry);
    // An old-form name with this process's pid was left by a previous holder of the pid: this process makes none.
    if (old && (Number(old[1]) === process.pid || !processAlive(Number(old[1])))) stale.push(entry);
  }
  unlinkAll(directory, stale, removed);
  const verdicts = await Promise.all([...byInstance.keys()].map((instance) => instanceGone(beaconPath(instance, directory))));
  [...byInstance.values()].forEach((names, index) => {
    // The socket goes last, so that a sweep that stops half-way still finds the rest next time.
    if (verdicts[index]) unlinkAll(directory, names.sort((a, b) => Number(a.endsWith('.alive')) - Number(b.endsWith('.alive'))), removed);
  });
  return removed;
}
