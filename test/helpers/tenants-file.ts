/** Tenants files for test daemons (--tenants): the token hash they hold, and the file written to a fresh folder. */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a tenants file's token_sha256 holds for `token`. */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Writes `yaml` as tenants.yaml in a new temporary folder; its path. */
export function writeTenantsFile(yaml: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'tensormem-tenants-')), 'tenants.yaml');
  writeFileSync(path, yaml);
  return path;
}
