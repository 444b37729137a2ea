/**
 * A file system that fills up: a small tmpfs mounted over a folder in a private mount namespace
 * (`unshare -m`, which needs root or user namespaces), seen only by the process started under it.
 */
import { spawnSync } from 'node:child_process';

/** Why a tiny file system cannot be had here (the probe failed), or undefined when it can. */
export function tinyFilesystemUnavailable(dir: string): string | undefined {
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=1m tmpfs '${dir}'`], { encoding: 'utf8' });
  if (probe.error) return probe.error.message;
  return probe.status === 0 ? undefined : `unshare -m + mount tmpfs failed: ${probe.stderr.trim() || `exit ${probe.status}`}`;
}

/** The command prefix that runs a process with a tmpfs of `size` (e.g. 1m) over `dir`, mode `mode` (mounted read-only with `readOnly`). */
export function tinyFilesystemPrefix(dir: string, size: string, mode = '0700', readOnly = false): string[] {
  return ['unshare', '-m', 'sh', '-c', `mount -t tmpfs -o size=${size},mode=${mode}${readOnly ? ',ro' : ''} tmpfs "$0" && exec "$@"`, dir];
}
