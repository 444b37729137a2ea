/**
 * The guard in front of the YAML parser (src/config/yaml-nesting.ts): a config or tenants file nested
 * thousands deep in [ ] or { } aborted Node on its second parse in one process (a SIGHUP reload), so
 * such a text is refused, with its line and column, before the parser sees it. Brackets in comments
 * and quoted scalars are text, not nesting.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config';
import { MAX_FLOW_DEPTH, tooDeepFlowAt } from '../../src/config/yaml-nesting';
import { parseTenants } from '../../src/leases/tenants-file';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

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
    expect(tooDeepFlowAt(`a: "x\\\n${opens}"\nb: ${nested(MAX_FLOW_DEPTH + 1)}`)).toEqual({ line: 3, column: 4 + MAX_FLOW_DEPTH });
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
