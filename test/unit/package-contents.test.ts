/**
 * What `npm pack` puts in the tarball, as `npm install tensormem` gets it: everything the installed
 * package needs (its "main" and "types", the bins, the files the daemon reads from the package root,
 * the addon's sources for the install script's cmake-js build) and none of the checkout's tests,
 * benchmarks, CI and GPU-machine scripts or build folders. Needs `npm run build:ts` first, as `npm test`
 * does.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  main: string;
  types?: string;
  bin: Record<string, string>;
  scripts: Record<string, string>;
  license: string;
};

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

let packed: Set<string>;

beforeAll(() => {
  // --ignore-scripts: no `prepare` (build:ts) inside the test; --dry-run: no tarball written.
  const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  expect(result.status, result.stderr).toBe(0);
  const [entry] = JSON.parse(result.stdout) as Array<{ files: Array<{ path: string }> }>;
  packed = new Set(entry.files.map((file) => file.path));
}, 60_000);

describe('the npm package', () => {
  it('holds its main, types and bins, and require() of the package gives the typed client', () => {
    expect(pkg.types).toBeDefined();
    for (const file of [pkg.main, pkg.types!, ...Object.values(pkg.bin)]) expect(packed, file).toContain(file.replace(/^\.\//, ''));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const entry = require(join(ROOT, pkg.main)) as Record<string, unknown>;
    expect(typeof entry.TensormemClient).toBe('function');
    expect(typeof entry.TensormemClientError).toBe('function');
  });

  it('holds every file the daemon reads from the package root, and the protos', () => {
    const reads = new Set<string>();
    for (const file of filesUnder(join(ROOT, 'src')).filter((path) => path.endsWith('.ts'))) {
      for (const match of readFileSync(file, 'utf8').matchAll(/join\(packageRoot\(\),\s*((?:'[^']+'\s*,?\s*)+)\)/g)) {
        reads.add([...match[1].matchAll(/'([^']+)'/g)].map((part) => part[1]).join('/'));
      }
    }
    // build/Release/tensormem_native.node is made by the install script, not packed.
    reads.delete('build/Release/tensormem_native.node');
    expect([...reads].sort()).toEqual(expect.arrayContaining(['proto', 'src/observability/status-page.html']));
    const protos = filesUnder(join(ROOT, 'proto')).map((path) => relative(ROOT, path));
    for (const read of reads) {
      const wanted = read === 'proto' ? protos : [read];
      for (const file of wanted) expect(packed, `${file} (read at run time)`).toContain(file);
    }
  });

  it('holds what the install script needs to build the addon', () => {
    expect(pkg.scripts.install).toContain('--directory native');
    const cmake = readFileSync(join(ROOT, 'native', 'CMakeLists.txt'), 'utf8');
    const sources = [...cmake.matchAll(/^\s+(src\/\S+\.cc)$/gm)].map((match) => `native/${match[1]}`);
    expect(sources.length).toBeGreaterThan(5);
    const headers = readdirSync(join(ROOT, 'native', 'src')).map((name) => `native/src/${name}`);
    for (const file of ['native/CMakeLists.txt', 'native/package.json', ...sources, ...headers]) expect(packed, file).toContain(file);
  });

  it('holds the files the README links to and the systemd files it has an operator install from the package', () => {
    // README, Running under systemd: `cd /usr/local/lib/node_modules/tensormem` for docker/systemd/.
    const systemd = filesUnder(join(ROOT, 'docker', 'systemd')).map((path) => relative(ROOT, path));
    expect(systemd.length).toBeGreaterThan(0);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\((?!https?:|#)([^)#\s]+)/g)].map((match) => match[1]);
    expect(links).toContain('docs/DESIGN.md');
    for (const file of [...systemd, ...links]) expect(packed, file).toContain(file);
  });

  it('holds the text of the license package.json names (npm packs LICENSE whatever "files" says, when there is one)', () => {
    // Apache-2.0 §4(a): a redistribution gives its recipients a copy of the license.
    expect(pkg.license).toBe('Apache-2.0');
    expect(packed).toContain('LICENSE');
    const text = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    expect(text).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004\s+http:\/\/www\.apache\.org\/licenses\//);
    expect(text).toContain('END OF TERMS AND CONDITIONS');
  });

  it('leaves out tests, benchmarks, CI and GPU-machine scripts, build folders, keys and the TypeScript sources', () => {
    const unwanted = [...packed].filter((file) =>
      /^(test|bench|dist\/bench|dist\/test|\.ci|scripts|build|build-fakecuda|\.gpu-kit|node_modules|tmp|native\/test)\//.test(file) ||
      /(^|\/)(bench-results\.json|vitest\.config\.mts|tsconfig\.json|\.gitignore)$|\.log$|\.tgz$/.test(file) ||
      // Keys, certificates and credentials (a --tls-key or tenants token file left in docs/ or proto/) never ship.
      /(^|\/)(\.npmrc|\.env|id_[a-z0-9]+)$|\.(pem|key|crt|p12|pfx)$/.test(file) ||
      (file.startsWith('src/') && file !== 'src/observability/status-page.html'),
    );
    expect(unwanted).toEqual([]);
  });

  it('leaves the tarball `npm pack` writes into the checkout out of git', () => {
    const result = spawnSync('git', ['check-ignore', '--no-index', '-q', `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).name}-0.0.0.tgz`], { cwd: ROOT, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
  });
});
