/** The folder holding package.json, from src/ (vitest) or dist/src/ (compiled). */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'proto'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`tensormem: cannot find the package root above ${__dirname}`);
    dir = parent;
  }
  root = dir;
  return root;
}

export function packageVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(join(packageRoot(), 'package.json')) as { version: string }).version;
}
