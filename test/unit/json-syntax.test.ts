/** parseJson: JSON.parse, with the line and column of a syntax error where Node's message gives none. */
import { describe, expect, it } from 'vitest';
import { JsonSyntaxError, parseJson } from '../../src/config/json-syntax';

function refusal(text: string): JsonSyntaxError {
  try {
    parseJson(text);
  } catch (error) {
    expect(error).toBeInstanceOf(JsonSyntaxError);
    return error as JsonSyntaxError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

describe('parseJson', () => {
  it('parses what JSON.parse parses, a leading byte order mark skipped', () => {
    expect(parseJson('{"a": [1, -2.5e3, "x\\u00e9", true, null]}')).toEqual({ a: [1, -2500, 'xé', true, null] });
    expect(parseJson('\ufeff[1]')).toEqual([1]);
  });

  it("finds the place Node's message gives, for every character deleted from or put into a valid text", () => {
    const valid = '{"name": "a\\"b", "list": [1, -0.5e2, true, false, null, {}], "x": {"y": []}}';
    const texts: string[] = [];
    for (let at = 0; at <= valid.length; at++) {
      if (at < valid.length) texts.push(valid.slice(0, at) + valid.slice(at + 1));
      for (const extra of [',', '}', ']', '"', "'", 'x', '0', ':']) texts.push(valid.slice(0, at) + extra + valid.slice(at));
    }
    let compared = 0;
    for (const text of texts) {
      let message: string;
      try {
        JSON.parse(text);
        continue;
      } catch (error) {
        message = (error as Error).message;
      }
      const error = refusal(text);
      expect(error.line).toBe(1);
      const position = / at position (\d+)/.exec(message);
      if (position) {
        expect(error.column, `${text}: ${message}`).toBe(Number(position[1]) + 1);
        compared++;
      }
      expect(error.detail).not.toMatch(/position|is not valid JSON/);
    }
    expect(compared).toBeGreaterThan(100);
  });

  it('gives the line and column where Node gives no position, and the end for an end too soon', () => {
    expect(refusal('[\n  1,\n]')).toMatchObject({ line: 3, column: 1 });
    expect(refusal('{"a":\n  tru}')).toMatchObject({ line: 2, column: 6 });
    expect(refusal('{"a":\r\n  [1')).toMatchObject({ line: 2, column: 5 });
  });

  it('finds the place in a text nested deeper than a recursive walk could follow', () => {
    // 20,000 levels: a recursive walk ran out of stack and named the end of the text instead.
    const depth = 20_000;
    expect(refusal(`${'['.repeat(depth)}x${']'.repeat(depth)}`)).toMatchObject({ line: 1, column: depth + 1 });
    expect(refusal(`${'{"a":'.repeat(depth)}1,}`)).toMatchObject({ line: 1, column: 5 * depth + 3 });
  });
});
