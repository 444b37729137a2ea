/**
 * The README's TypeScript examples (its ```ts blocks) are what a new user copies first: each must
 * type-check against the package's own types, and together they must run against a daemon as written
 * (the first block opens the lease the later ones use). A renamed option, a method that moved or a
 * field spelled in the wrong case fails here instead of in a user's first hour.
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, ROOT, startDaemon } from '../helpers/daemon-process';

interface Snippet {
  line: number;
  imports: string[];
  body: string;
}

/** The ```ts blocks of README.md, their import lines apart from the rest. */
function readmeSnippets(): Snippet[] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end] !== '```') end++;
    if (end === lines.length) throw new Error(`README.md line ${start}: a \`\`\`ts block with no closing fence`);
    const block = lines.slice(start, end);
    snippets.push({ line: start, imports: block.filter((line) => line.startsWith('import ')), body: block.filter((line) => !line.startsWith('import ')).join('\n') });
    i = end;
  }
  return snippets;
}

/**
 * Free names the README's examples use without making them: the bytes to write and the batch sizes of
 * a training loop. `client` comes from the first block.
 */
const GIVEN = {
  declarations: 'declare const bytes: Buffer;\ndeclare const batches: number[];',
  values: 'const bytes = Buffer.alloc(4 * 1024 * 1024, 7);\nconst batches = [32, 64, 32];',
};

/**
 * Every block in one async function, in order. The first (a whole session: client, lease, close) runs
 * as written; each later one (which uses a `lease`) runs in a lease of its own, opened with the first
 * block's client and closed after it, as a user trying them one by one would.
 */
function program(snippets: Snippet[], given: string, address?: string): string {
  const imports = [...new Set(['import type { LeaseSession } from \'tensormem\';', ...snippets.flatMap((snippet) => snippet.imports)])];
  const [first, ...later] = snippets;
  const bodies = [
    `  // README.md line ${first.line}\n${first.body}`,
    ...later.map((snippet) => `  // README.md line ${snippet.line}\n  {\n    const lease: LeaseSession = await client.openLease({ clientName: 'readme-line-${snippet.line}' });\n    try {\n${snippet.body}\n    } finally {\n      await lease.close();\n    }\n  }`),
    '  client.close();',
  ];
  let text = `${imports.join('\n')}\n${given}\nexport async function main(): Promise<void> {\n${bodies.join('\n')}\n}\n`;
  if (address !== undefined) text = text.replace("'unix:/tmp/tensormemd.sock'", JSON.stringify(address));
  return text;
}

describe("README's TypeScript examples", () => {
  const snippets = readmeSnippets();
  let daemon: DaemonProcess;
  let dir: string;

  beforeAll(async () => {
    daemon = await startDaemon(['--data-listen', '127.0.0.1:0']);
    dir = mkdtempSync(join(tmpdir(), 'tensormem-readme-'));
    // require('tensormem') from the snippets finds this checkout, as it finds the installed package.
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'tensormem'), 'dir');
  });

  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (daemon) expect(await daemon.stop()).toBe(0);
  });

  it('are there, and the first one is a whole session with the client the others use', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(5);
    expect(snippets[0].imports.join('\n')).toContain("from 'tensormem'");
    expect(snippets[0].body).toMatch(/const client = new TensormemClient\('unix:\/tmp\/tensormemd\.sock'\)/);
    expect(snippets[0].body).toMatch(/await lease\.close\(\)/);
  });

  it("type-check against the package's types (strict)", () => {
    const file = join(dir, 'readme.ts');
    writeFileSync(file, program(snippets, GIVEN.declarations));
    const compiled = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      esModuleInterop: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
    });
    const problems = ts
      .getPreEmitDiagnostics(compiled)
      .filter((diagnostic) => diagnostic.file?.fileName === file || diagnostic.file === undefined)
      .map((diagnostic) => {
        const where = diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start) : undefined;
        const line = where ? diagnostic.file!.text.split('\n')[where.line] : '';
        return `${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}\n    at: ${line.trim()}`;
      });
    expect(problems).toEqual([]);
  }, 60_000);

  it('run against a daemon as written, and give every byte back', async () => {
    const address = daemon.unixAddress;
    const file = join(dir, 'readme.js');
    const source = `${program(snippets, GIVEN.values, address)}\nmain().then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });\n`;
    writeFileSync(file, ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText);
    const run = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^no room: \d+ bytes asked, \d+ used\n$|^$/);
    // Every block's lease was closed: nothing is left.
    const { TensormemClient } = await import('../../src/client/tensormem-client');
    const client = new TensormemClient(address);
    try {
      const info = await client.memoryInfo();
      expect(info.devices.map((device) => Number(device.used_bytes))).toEqual([0]);
      expect(Number(info.host?.used_bytes)).toBe(0);
    } finally {
      client.close();
    }
  }, 90_000);
});
