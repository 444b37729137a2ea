/**
 * Messages and comments that send a reader to a README section ("README, Profiles", README.md,
 * "Running under systemd") name a section that exists: a user who follows a doctor fix or a --help
 * line must find it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('README references', () => {
  it('every "README, SECTION" in src, docker, scripts and bench names a README heading', () => {
    const headings = readFileSync(join(ROOT, 'README.md'), 'utf8')
      .split('\n')
      .filter((line) => /^#{1,6} /.test(line))
      .map((line) => line.replace(/^#+ /, ''));
    const references: Array<{ where: string; section: string }> = [];
    for (const dir of ['src', 'docker', 'scripts', 'bench']) {
      for (const file of filesUnder(join(ROOT, dir)).filter((path) => !path.endsWith('.png'))) {
        for (const match of readFileSync(file, 'utf8').matchAll(/README(?:\.md)?,? "?([A-Z][A-Za-z /-]*[A-Za-z])/g)) {
          references.push({ where: relative(ROOT, file), section: match[1] });
        }
      }
    }
    expect(references.length).toBeGreaterThan(3);
    const missing = references.filter(({ section }) => !headings.some((heading) => heading.startsWith(section)));
    expect(missing).toEqual([]);
  });
});
