/**
 * The tenants file read, parsed and checked (readTenantsFile) on a worker thread, for a reload
 * (SIGHUP): on the daemon's event loop a file of 10,000 tenants took it 1.0-2.9 s of YAML parsing
 * (0.2-0.6 s as .json), during which no call was answered. The worker sends back the tenants (as
 * plain data) or the error's message, and ends; the caller puts the tenants in force itself, in one
 * turn. This module is the worker's file too: run on a worker started here, it reads the file.
 * A fresh worker for each reload, so that the daemon keeps no thread (nor its heap) between reloads.
 * A small file is read on the event loop (readTenantsFileForReload): its parse costs less than a worker.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { TensormemError } from '../errors';
import { kindOf } from '../file-kind';
import { packageRoot } from '../package-root';
import { readTenantsFile, type TenantSpec } from './tenants-file';

/** What the worker is given: the marker tells its own start from any other worker that loads this module. */
interface ReadRequest {
  tenantsFileWorker: true;
  path: string;
}

type ReadAnswer = { tenants: TenantSpec[]; error?: undefined } | { error: string };

/** The reload ended before the worker answered (the daemon drains). */
export class TenantsReadAborted extends Error {}

/**
 * The compiled file of this module: this one (dist/src/leases) or, where it runs as TypeScript (vitest,
 * from src/), the one `npm run build:ts` put in dist/: a worker runs JavaScript only.
 */
function workerFile(): string {
  if (__filename.endsWith('.js')) return __filename;
  const compiled = join(packageRoot(), 'dist', 'src', 'leases', 'tenants-file-worker.js');
  if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run npm run build:ts (a tenants file reload reads the file on a worker thread that runs it)`);
  return compiled;
}

/**
 * readTenantsFile(path) on a worker thread: its tenants, or its error (the same message, which names
 * the file, the line and the field). `signal` ends the worker and rejects with TenantsReadAborted.
 */
export function readTenantsFileOffThread(path: string, signal?: AbortSignal): Promise<TenantSpec[]> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new TenantsReadAborted(`${path}: the reload was abandoned`));
    const request: ReadRequest = { tenantsFileWorker: true, path };
    let worker: Worker;
    try {
      worker = new Worker(workerFile(), { workerData: request });
    } catch (error) {
      return reject(new Error(`${path}: cannot start the thread that reads it: ${(error as Error).message}`));
    }
    // A read in flight does not keep the process up: the daemon's own handles do while it serves.
    worker.unref();
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', abandon);
      outcome();
    };
    const abandon = () => {
      void worker.terminate();
      settle(() => reject(new TenantsReadAborted(`${path}: the reload was abandoned`)));
    };
    signal?.addEventListener('abort', abandon, { once: true });
    worker.once('message', (answer: ReadAnswer) => settle(() => (answer.error === undefined ? resolve(answer.tenants) : reject(new Error(answer.error)))));
    worker.once('error', (error) => settle(() => reject(new Error(`${path}: the thread that reads it failed: ${error.message}`))));
    worker.once('exit', (code) => settle(() => reject(new Error(`${path}: the thread that reads it ended (exit code ${code}) without an answer`))));
  });
}

/**
 * The largest tenants file a reload reads on the event loop: YAML parses at about 0.5 ms a KiB (2-core
 * VM at load 7), so at most about 4 ms (some 40 tenants), where starting the worker and loading its
 * modules took 60-330 ms (of the reload's time, not the event loop's) on the same machine.
 */
export const READ_INLINE_MAX_BYTES = 8 * 1024;

/**
 * readTenantsFile(path) for a reload: on a worker thread (readTenantsFileOffThread), or on the event loop
 * for a regular file of at most READ_INLINE_MAX_BYTES, or one that cannot be stat'ed (its error is
 * readTenantsFile's own). Errors as readTenantsFile's. Anything but a regular file is refused before
 * any read: a worker opening a FIFO that no one writes waits in open(2), which terminate() cannot end
 * and Node waits for at exit (the drain ended, "stopped" was logged, and the daemon never exited).
 */
export function readTenantsFileForReload(path: string, signal?: AbortSignal): Promise<TenantSpec[]> {
  let inline = true;
  try {
    const file = statSync(path);
    if (!file.isFile()) {
      return Promise.reject(new TensormemError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', `${path}: is ${kindOf(file)}, not a regular file: a reload reads only a regular file`, { field: '--tenants' }));
    }
    inline = file.size <= READ_INLINE_MAX_BYTES;
  } catch {
    // readTenantsFile says why it cannot be read, as at start.
  }
  if (!inline) return readTenantsFileOffThread(path, signal);
  try {
    return Promise.resolve(readTenantsFile(path));
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

if (!isMainThread && (workerData as Partial<ReadRequest> | null)?.tenantsFileWorker === true) {
  const { path } = workerData as ReadRequest;
  let answer: ReadAnswer;
  try {
    answer = { tenants: readTenantsFile(path) };
  } catch (error) {
    answer = { error: (error as Error).message };
  }
  parentPort!.postMessage(answer);
}
