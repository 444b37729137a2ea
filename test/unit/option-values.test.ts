/** tensormemctl's option values that start with a dash (src/cli/option-values.ts), through node's parseArgs. */
import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { OptionTable, joinOptionValues } from '../../src/cli/option-values';

const OPTIONS = {
  token: { type: 'string' },
  output: { type: 'string', short: 'o' },
  once: { type: 'boolean' },
} as const satisfies OptionTable;

const parse = (args: string[]) => parseArgs({ args: joinOptionValues(args, OPTIONS), options: OPTIONS, allowPositionals: true });

describe('joinOptionValues', () => {
  it('passes a token that starts with a dash (base64url) as the value, long and short forms alike', () => {
    expect(() => parseArgs({ args: ['arrays', '--token', '-Zm8bthx'], options: OPTIONS, allowPositionals: true })).toThrow(/ambiguous/);
    const { values, positionals } = parse(['arrays', '--token', '-Zm8bthx', '-o', '-odd', '--once']);
    expect(values).toEqual({ token: '-Zm8bthx', output: '-odd', once: true });
    expect(positionals).toEqual(['arrays']);
    expect(parse(['--token', '--Zm8']).values.token).toBe('--Zm8');
  });

  it('leaves a missing value to parseArgs to refuse, and everything after -- alone', () => {
    expect(() => parse(['arrays', '--token', '--output', 'json'])).toThrow(/token/);
    expect(joinOptionValues(['run', '--', '--token', '-x'], OPTIONS)).toEqual(['run', '--', '--token', '-x']);
    expect(joinOptionValues(['--token=abc', 'x'], OPTIONS)).toEqual(['--token=abc', 'x']);
  });
});
