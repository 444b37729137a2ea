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

/** A tenants file's YAML naming each tenant of `tokens` (name → token) with its token's hash; those in `admins` are admins. */
export function tenantsYaml(tokens: Record<string, string>, admins: string[] = []): string {
  const entries = Object.entries(tokens).map(([name, token]) => `  - name: ${name}\n    token_sha256: "${tokenSha256(token)}"${admins.includes(name) ? '\n    admin: true' : ''}`);
  return `tenants:\n${entries.join('\n')}\n`;
}
