/** What a path is when it is not a regular file: shared by tensormemctl's file targets and the tenants file reload. */
import type { Stats } from 'node:fs';

/** "a directory", "a pipe (FIFO)", ...: what a path that is not a regular file is. */
export function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a pipe (FIFO)';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}
