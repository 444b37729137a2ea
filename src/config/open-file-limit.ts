/**
 * The process's open-file limit, which bounds the data plane's and the gRPC listeners' connections:
 * each is a file descriptor, and the pool files, shared-memory regions and MMAP workspace files need
 * theirs. A shell's common soft limit is 1024, the same as the caps' default, which would then take
 * every descriptor before they refused a connection: unset, --data-max-connections is half the soft
 * limit and --max-connections (per gRPC listener) a quarter shared by the listeners when that is
 * lower, which leaves a quarter to the files. (The systemd unit
 * raises the limit to 65536.)
 */
import { readFileSync } from 'node:fs';

/** Descriptors a --data-max-connections given on the command line should leave to the rest of the daemon. */
export const DESCRIPTORS_FOR_THE_REST = 128;

/** The soft RLIMIT_NOFILE of this process (Linux: /proc/self/limits); undefined when unlimited or unknown. */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const match = /^Max open files\s+(\S+)/m.exec(text);
  if (!match || match[1] === 'unlimited') return undefined;
  const limit = Number(match[1]);
  return Number.isSafeInteger(limit) && limit > 0 ? limit : undefined;
}

/** The share of the open-file limit --data-max-connections takes by default when 1024 is more. */
export const DATA_PLANE_SHARE = 1 / 2;
/** The share of the open-file limit the gRPC listeners take together by default (--max-connections, split between them) when 1024 each is more. */
export const GRPC_SHARE = 1 / 4;

/** A connection cap's default under a soft limit of `limit` descriptors: `defaultCap`, or `share` of the limit (at least 16) when that is lower. */
export function connectionCapFor(limit: number | undefined, defaultCap: number, share = DATA_PLANE_SHARE): number {
  if (limit === undefined) return defaultCap;
  return Math.min(defaultCap, Math.max(16, Math.floor(limit * share)));
}
