/**
 * The README's TypeScript snippets, type-checked as a user's strict TypeScript project sees them:
 * `import … from 'tensormem'` resolved through node_modules/tensormem (a link to this checkout) to the
 * package's "types", so the declarations must be there (without them every import is TS2307 or TS7016,
 * "implicitly has an 'any' type"). The library check is on and esModuleInterop off, as in a project
 * that sets neither: every declaration file the client's pulls in must type-check there too.
 * Needs `npm run build:ts` first, as `npm test` does.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const CLIENT = 'tensormem';

describe('README TypeScript snippets', () => {
  it('the build emits the typed client declarations', () => {
    expect(existsSync(join(ROOT, 'dist', 'src', 'client', 'tensormem-client.d.ts'))).toBe(true);
    const types = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { types?: string }).types;
    expect(types && existsSync(join(ROOT, types))).toBe(true);
  });

  it('every ```ts block type-checks under strict against the built package', () => {
    const blocks = [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    const dir = mkdtempSync(join(tmpdir(), 'readme-ts-'));
    try {
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(ROOT, join(dir, 'node_modules', 'tensormem'), 'dir');
      // What the snippets take from the surrounding text: the bytes to write, the batch sizes, and (in
      // the blocks that do not open one) a lease.
      const files = blocks.map((block, index) => {
        const file = join(dir, `snippet-${index}.ts`);
        const preamble = [
          `import type { LeaseSession } from '${CLIENT}';`,
          ...(/\bbytes\b/.test(block) && !/const (\{[^}]*\b)?bytes\b/.test(block) ? ['declare const bytes: Uint8Array;'] : []),
          ...(/\bbatches\b/.test(block) ? ['declare const batches: number[];'] : []),
          ...(/\bconst lease\b/.test(block) ? [] : ['declare const lease: LeaseSession;']),
        ];
        writeFileSync(file, `${preamble.join('\n')}\n${block}\nexport {};\n`);
        return file;
      });
      const program = ts.createProgram(files, {
        strict: true,
        noEmit: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ES2022,
        moduleResolution: ts.ModuleResolutionKind.Node10,
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules', '@types')],
        skipLibCheck: false,
        esModuleInterop: false,
      });
      const errors = ts
        .getPreEmitDiagnostics(program)
        .map((diagnostic) => `${diagnostic.file ? diagnostic.file.fileName.replace(`${dir}/`, '') : ''}: TS${diagnostic.code} ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`);
      expect(errors).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
