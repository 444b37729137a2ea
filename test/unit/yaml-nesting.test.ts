/**
 * The guard in front of the YAML parser (src/config/yaml-nesting.ts): a config or tenants file nested
 * thousands deep in [ ] or { } aborted Node on its second parse in one process (a SIGHUP reload), so
 * such a text is refused, with its line and column, before the parser sees it. Brackets in comments
 * and quoted scalars are text, not nesting.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Document, LineCounter, Parser, YAMLError, parse as parseYaml, parseDocument } from 'yaml';
import { loadConfig } from '../../src/config/config';
import { MAX_FLOW_DEPTH, parseDocumentGuarded } from '../../src/config/yaml-nesting';

/** Where a text nests too deep, as the guard finds it (undefined: the document was composed). */
const tooDeepAt = (text: string) => parseDocumentGuarded(text).deep;
import { parseTenants } from '../../src/leases/tenants-file';

const GOOD_TENANTS = `tenants:
  - name: team-a
    token_sha256: "${'ab'.repeat(32)}"
    quota: { device: 8G, host: 4G }
    max_leases: 16
  - name: admin
    token_sha256: "${'cd'.repeat(32)}"
    admin: true
`;

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** tooDeepAt of a text nested in brackets: where, and that it says flow. */
function tooDeepFlowAt(text: string): { line: number; column: number } | undefined {
  const at = tooDeepAt(text);
  if (at) expect(at.kind).toBe('flow');
  return at && { line: at.line, column: at.column };
}

describe('tooDeepFlowAt', () => {
  it('finds the first bracket past MAX_FLOW_DEPTH, by line and column, and nothing at MAX_FLOW_DEPTH', () => {
    expect(tooDeepFlowAt(`a: ${nested(MAX_FLOW_DEPTH)}\n`)).toBeUndefined();
    expect(tooDeepFlowAt(`a: 1\nb: ${nested(MAX_FLOW_DEPTH + 1)}\n`)).toEqual({ line: 2, column: 4 + MAX_FLOW_DEPTH });
    expect(tooDeepFlowAt(`a: ${'{x: '.repeat(MAX_FLOW_DEPTH + 1)}`)).toEqual({ line: 1, column: 4 + 4 * MAX_FLOW_DEPTH });
    // Closed brackets do not add up: 100 lists one after the other are one level each.
    expect(tooDeepFlowAt(`a: ${'[1], '.repeat(100)}\n`)).toBeUndefined();
  });

  it('reads brackets in comments and quoted scalars as text, and a quote inside plain text as text too', () => {
    const opens = '['.repeat(MAX_FLOW_DEPTH + 5);
    expect(tooDeepFlowAt(`# ${opens}\na: 1 # ${opens}\n`)).toBeUndefined();
    expect(tooDeepFlowAt(`a: "${opens} \\" ${opens}"\nb: '${opens} '' ${opens}'\n`)).toBeUndefined();
    expect(tooDeepFlowAt(`a: "x\\\n  ${opens}"\nb: ${nested(MAX_FLOW_DEPTH + 1)}`)).toEqual({ line: 3, column: 4 + MAX_FLOW_DEPTH });
    // A quoted scalar's next line must be indented under its key: YAML ends it at an unindented one, and
    // reads the brackets there as lists (5,000 of them overflowed the parser's stack).
    expect(tooDeepFlowAt(`a: "x\\\n${opens}"\nb: 1\n`)).toEqual({ line: 2, column: 1 + MAX_FLOW_DEPTH });
    // O'Brien's quote opens no quoted scalar: the brackets after it still count.
    expect(tooDeepFlowAt(`name: O'Brien\nb: ${nested(MAX_FLOW_DEPTH + 1)}`)).toEqual({ line: 2, column: 4 + MAX_FLOW_DEPTH });
  });
});

describe('files nested too deep', () => {
  it('a tenants file is refused with its line and column every time it is read (the third parse of it aborted Node)', () => {
    const text = `tenants:\n  - ${nested(5000)}\n`;
    for (let i = 0; i < 3; i++) {
      expect(() => parseTenants(text, 'tenants.yaml')).toThrowError(`tenants.yaml:2:${5 + MAX_FLOW_DEPTH}: lists or mappings ([ ] or { }) nested more than ${MAX_FLOW_DEPTH} deep: a tenants file needs at most 4`);
    }
  });

  it('a config file (YAML or JSON) is refused naming --config, the file, line and column, every time it is read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-nesting-'));
    for (const name of ['deep.yaml', 'deep.json']) {
      const file = join(dir, name);
      // The outer { is the first level.
      writeFileSync(file, `{"listen": ${nested(5000)}}\n`);
      for (let i = 0; i < 3; i++) {
        expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected lists and mappings ([ ] and { }) nested at most ${MAX_FLOW_DEPTH} deep for --config but received ${file}:1:${11 + MAX_FLOW_DEPTH}: one nested deeper`);
      }
    }
  });
});

describe('quotes and block scalars the YAML parser reads as plain text', () => {
  const deep = nested(MAX_FLOW_DEPTH + 1);
  it('counts the brackets after a quote that sits inside plain text after a space, or after a colon outside [ ] and { }', () => {
    // YAML reads `a 'b`, `5" screen` and `a:"b` as plain scalars: no quoted scalar is open when the list below starts.
    expect(tooDeepFlowAt(`name: a 'b\nx: ${deep}\n`)).toEqual({ line: 2, column: 4 + MAX_FLOW_DEPTH });
    expect(tooDeepFlowAt(`note: 5" screen\nx: ${deep}\n`)).toEqual({ line: 2, column: 4 + MAX_FLOW_DEPTH });
    expect(tooDeepFlowAt(`note: a:"b\nx: ${deep}\n`)).toEqual({ line: 2, column: 4 + MAX_FLOW_DEPTH });
  });

  it('counts the brackets after a block scalar (| or >) holding an unmatched quote, and not those inside it', () => {
    expect(tooDeepFlowAt(`note: |\n  "unterminated\nx: ${deep}\n`)).toEqual({ line: 3, column: 4 + MAX_FLOW_DEPTH });
    expect(tooDeepFlowAt(`- a: >-\n    it's\n  x: ${deep}\n`)).toEqual({ line: 3, column: 6 + MAX_FLOW_DEPTH });
    // Brackets in a block scalar are text: a note holding a hundred unmatched [ is no nesting.
    expect(tooDeepFlowAt(`note: |\n  ${'['.repeat(100)}\n\n  more [ text\nx: [1]\n`)).toBeUndefined();
    expect(tooDeepFlowAt(`- >\n  ${'{'.repeat(100)}\n- ok\n`)).toBeUndefined();
  });

  it('still reads the quoted scalars YAML reads: after indicators, in flow collections, after a tag or an anchor', () => {
    const opens = '['.repeat(MAX_FLOW_DEPTH + 5);
    for (const text of [`- "${opens}"\n`, `? '${opens}'\n: x\n`, `a: ["${opens}", '${opens}']\n`, `a: {"k":"${opens}"}\n`, `a: !!str "${opens}"\n`, `a: &x '${opens}'\n`, `--- "${opens}"\n`, `a:\n  "${opens}"\n`]) {
      expect(tooDeepFlowAt(text)).toBeUndefined();
    }
  });

  it('a tenants file with a stray quote in plain text before a list nested 5,000 deep is refused by the guard, not by the parser', () => {
    const text = `tenants:\n  - name: team 's\n    x: ${nested(5000)}\n`;
    expect(() => parseTenants(text, 'tenants.yaml')).toThrowError(`tenants.yaml:3:${8 + MAX_FLOW_DEPTH}: lists or mappings ([ ] or { }) nested more than ${MAX_FLOW_DEPTH} deep`);
  });
});

describe('block lists and mappings nested too deep', () => {
  // `- - - … x` nests a block list in a block list on one line; `k:` lines each indented one more nest
  // mappings. The composer recurses through both as through brackets: 1,000 `- ` were 'Maximum call stack
  // size exceeded' the first time and aborted Node (exit 134) on a later parse, as brackets nested 3,000 deep did.
  const blockList = (depth: number) => '- '.repeat(depth) + 'x';
  const blockMap = (depth: number, indent: number) => Array.from({ length: depth }, (_, level) => `${' '.repeat(indent + level)}k:`).join('\n') + ` x\n`;

  it('a tenants file is refused with the line and column of the first list or mapping too deep, every time it is read', () => {
    const text = `tenants:\n  - ${blockList(5000)}\n`;
    for (let i = 0; i < 3; i++) {
      // The tenants mapping and its list are the first two levels: the 65th opens at `- ` number 63.
      expect(() => parseTenants(text, 'tenants.yaml')).toThrowError(`tenants.yaml:2:${5 + 2 * (MAX_FLOW_DEPTH - 2)}: block lists or mappings (- , ? or an indented key:) nested more than ${MAX_FLOW_DEPTH} deep: a tenants file needs at most 4`);
    }
    const mappings = `tenants:\n${blockMap(3000, 1)}`;
    for (let i = 0; i < 2; i++) {
      expect(() => parseTenants(mappings, 'tenants.yaml')).toThrowError(`tenants.yaml:${1 + MAX_FLOW_DEPTH}:${1 + MAX_FLOW_DEPTH}: block lists or mappings`);
    }
  });

  it('a config file is refused naming --config, the file, line and column, every time it is read', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tensormem-nesting-')), 'deep.yaml');
    writeFileSync(file, `listen:\n  - ${blockList(5000)}\n`);
    for (let i = 0; i < 3; i++) {
      expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected block lists and mappings (- , ? or an indented key:) nested at most ${MAX_FLOW_DEPTH} deep for --config but received ${file}:2:${5 + 2 * (MAX_FLOW_DEPTH - 2)}: one nested deeper`);
    }
  });

  it('takes MAX_FLOW_DEPTH block levels, and as many flow levels inside them, as the files may have', () => {
    expect(tooDeepAt(`${blockList(MAX_FLOW_DEPTH)}\n`)).toBeUndefined();
    expect(tooDeepAt(`${blockList(MAX_FLOW_DEPTH - 1)}${nested(MAX_FLOW_DEPTH)}\n`)).toBeUndefined();
    expect(tooDeepAt(`${blockList(MAX_FLOW_DEPTH + 1)}\n`)).toEqual({ line: 1, column: 1 + 2 * MAX_FLOW_DEPTH, kind: 'block' });
    expect(tooDeepAt(`${'? '.repeat(MAX_FLOW_DEPTH + 1)}x\n`)).toEqual({ line: 1, column: 1 + 2 * MAX_FLOW_DEPTH, kind: 'block' });
    // Dashes in scalars and comments are text.
    expect(tooDeepAt(`a: "${blockList(500)}"\nb: |\n  ${blockList(500)}\n# ${blockList(500)}\n`)).toBeUndefined();
  });
});

describe('one Parser pass for the guard and the document', () => {
  // toJS warns of mapping keys that are collections (`? [a]`, and the mangled texts make many): not what is compared here.
  beforeEach(() => vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined));
  afterEach(() => vi.restoreAllMocks());
  /** What users see of a document: its errors and warnings (code, message, place) and its values. */
  const seen = (document: Document.Parsed) => {
    const told = (error: YAMLError) => ({ name: error.name, code: error.code, message: error.message, pos: error.pos, linePos: error.linePos });
    let values: string;
    try {
      values = JSON.stringify(document.toJS()) ?? 'undefined';
    } catch (error) {
      values = `throws ${(error as Error).message}`;
    }
    return { errors: document.errors.map(told), warnings: document.warnings.map(told), values, contents: JSON.stringify(document.contents), range: document.range };
  };
  const long = 'w'.repeat(90);
  const TEXTS = [
    '',
    '# only a comment\n',
    GOOD_TENANTS,
    'a: 1\na: 2\n',
    'a: 1\n---\nb: 2\n',
    '--- a\n--- b\n--- c\n',
    'a: "unterminated\n',
    'a:\n\t- x\n',
    'a: [1, 2\n',
    'key: value\n  bad: indent\n',
    `a: ${long}: c\n`,
    `x: ${long} ${long}: c ${long}\n`,
    `${long}: 1\n- x\n`,
    `${'k'.repeat(100)}: 1\n  - x\n`,
    'a: 1\r\nb: [\r\n',
    'a: [1',
    'a: !foo 1\n',
    '%FOO x\n---\na: 1\n',
    '%YAML 1.1\n---\na: 1\n',
    'a: *unknown\n',
    '? [a]\n: 1\n',
    '{"a": 1, "a": 2}',
    'a: &x [1]\nb: *x\nc: *x\n',
    'a: 1\n...\n',
    '- a\nb: 1\n',
    ']\n',
  ];

  it('makes the document parseDocument makes, errors and warnings told alike (message, line and column)', () => {
    // A line counter given is filled by the parse: each parse gets its own.
    for (const options of [() => ({}), () => ({ uniqueKeys: false }), () => ({ lineCounter: new LineCounter() })]) {
      for (const text of TEXTS) {
        const guarded = parseDocumentGuarded(text, options());
        expect(guarded.deep).toBeUndefined();
        expect(seen(guarded.document!), JSON.stringify(text)).toEqual(seen(parseDocument(text, options())));
      }
    }
  });

  it('makes the document parseDocument makes of texts mangled at random', () => {
    // A seeded generator, so that a difference found is found again.
    let seed = 12345;
    const random = (below: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % below;
    };
    const marks = [':', '-', '[', ']', '{', '}', '"', "'", '\n', ' ', '  ', '#', '&a', '*a', '!', '|', '>', '%', '\t', '?', ',', '---\n', '...', '\r\n'];
    for (let round = 0; round < 1500; round++) {
      let text = TEXTS[2 + random(TEXTS.length - 2)];
      for (let edits = 1 + random(4); edits > 0; edits--) {
        const at = random(text.length + 1);
        text = text.slice(0, at) + marks[random(marks.length)] + text.slice(at + random(3));
      }
      const guarded = parseDocumentGuarded(text);
      if (guarded.deep) continue;
      expect(seen(guarded.document), JSON.stringify(text)).toEqual(seen(parseDocument(text)));
    }
  });

  it('a tenants file and a config file are each read by one Parser pass (the guard and the document read three for a config file)', () => {
    const parses = vi.spyOn(Parser.prototype, 'parse');
    parseTenants(GOOD_TENANTS, 'tenants.yaml');
    expect(parses).toHaveBeenCalledTimes(1);
    const file = join(mkdtempSync(join(tmpdir(), 'tensormem-nesting-')), 'one.yaml');
    writeFileSync(file, 'maxbytes: 1G\n');
    parses.mockClear();
    expect(loadConfig(['--config', file], {}).maxBytes).toBeDefined();
    expect(parses).toHaveBeenCalledTimes(1);
  });

  it('a config or tenants file that is not valid YAML is refused in the parser\'s words, as before', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-nesting-'));
    for (const text of ['maxbytes: 1G\nmaxbytes 2G: [\n', `maxbytes: ${long}: 1\n`, 'maxbytes: 1G\n---\nmaxbytes: 2G\n', 'a: 1\n\t- x\n']) {
      let words = '';
      try {
        parseYaml(text);
      } catch (error) {
        words = (error as Error).message;
      }
      expect(words).toMatch(/at line \d+, column \d+/);
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, text);
      expect(() => loadConfig(['--config', file], {})).toThrowError(`Expected valid YAML or JSON for --config but received ${JSON.stringify(`${file}: ${words}`)}`);
      const tenants = `tenants:\n  - ${text.replace(/\n(?=.)/g, '\n    ')}`;
      const error = parseDocument(tenants).errors[0];
      expect(() => parseTenants(tenants, 'tenants.yaml')).toThrowError(`tenants.yaml:${error.linePos![0].line}: ${error.message.split('\n')[0]}`);
    }
  });

  it('a config file\'s YAML warnings are emitted as process warnings, as yaml.parse emitted them', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tensormem-nesting-')), 'tagged.yaml');
    writeFileSync(file, 'maxbytes: !size 1G\n');
    const warnings = vi.mocked(process.emitWarning);
    parseYaml('maxbytes: !size 1G\n');
    const expected = warnings.mock.calls.map(([warning]) => String(warning));
    expect(expected).toEqual([expect.stringContaining('Unresolved tag: !size at line 1, column 11')]);
    warnings.mockClear();
    loadConfig(['--config', file], {});
    expect(warnings.mock.calls.map(([warning]) => String(warning))).toEqual(expected);
  });
});
