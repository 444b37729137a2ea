// Generates the committed TypeScript types for the protos (src/generated) with
// proto-loader-gen-types, using the same loader options as the daemon (proto/loader-options.json).
// `--check` generates into a temporary folder and fails when the committed types are stale.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const options = JSON.parse(readFileSync(join(root, 'proto/loader-options.json'), 'utf8'));
const committed = join(root, 'src/generated');
const outDir = check ? mkdtempSync(join(tmpdir(), 'tensormem-proto-')) : committed;

const protoFiles = ['tensormem/v1/lease.proto', 'tensormem/v1/array.proto', 'tensormem/v1/memory.proto', 'tensormem/v1/workspace.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto'];
const args = [
  '--grpcLib=@grpc/grpc-js',
  `--outDir=${outDir}`,
  // Relative, so the "Original file" headers do not depend on where the checkout lives.
  '-I', 'proto',
  ...(options.keepCase ? ['--keepCase'] : []),
  `--longs=${options.longs}`,
  `--enums=${options.enums}`,
  ...(options.defaults ? ['--defaults'] : []),
  ...(options.oneofs ? ['--oneofs'] : []),
  ...protoFiles,
];
if (!check) rmSync(committed, { recursive: true, force: true });
execFileSync(join(root, 'node_modules/.bin/proto-loader-gen-types'), args, { stdio: 'inherit', cwd: root });

if (check) {
  const list = (dir) => readdirSync(dir, { recursive: true }).filter((f) => statSync(join(dir, f)).isFile()).sort();
  const fresh = list(outDir);
  const old = list(committed);
  const stale = [...new Set([...fresh, ...old])].filter(
    (f) => !fresh.includes(f) || !old.includes(f) || readFileSync(join(outDir, f), 'utf8') !== readFileSync(join(committed, f), 'utf8'),
  );
  rmSync(outDir, { recursive: true, force: true });
  if (stale.length > 0) {
    console.error(`Generated proto types are stale (${stale.join(', ')}): run \`npm run gen:proto\` and commit src/generated.`);
    process.exit(1);
  }
  console.log(`Generated proto types are up to date (${fresh.length} files in ${relative(root, committed)}).`);
}
