/** parseJson: JSON.parse, with the line and column of a syntax error where Node's message gives none. */
import { describe, expect, it } from 'vitest';
import { JsonSyntaxError, parseJson, parseJsonNodes, type JsonNode } from '../../src/config/json-syntax';

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

/** The plain value of a parsed node, as JSON.parse gives it. */
function valueOf(node: JsonNode): unknown {
  if (node.kind === 'scalar') return node.value;
  if (node.kind === 'array') return node.items.map(valueOf);
  return Object.fromEntries(node.entries.map(({ key, value }) => [key.value, valueOf(value)]));
}

describe('parseJsonNodes', () => {
  it("gives JSON.parse's values, each with the offset it starts at (a byte order mark not counted), and the source of a scalar", () => {
    const text = '\ufeff{"a": [1, -2.5e3, "x\\u00e9", true, null], "b": {"c": 1e400}}';
    const { root, body } = parseJsonNodes(text);
    expect(valueOf(root)).toEqual(JSON.parse(text.slice(1)));
    expect(body).toBe(text.slice(1));
    if (root.kind !== 'object') throw new Error(`expected an object, got ${root.kind}`);
    const [a, b] = root.entries;
    expect([a.key.offset, a.value.offset, b.key.offset, b.value.offset]).toEqual([1, 6, 42, 47]);
    const c = b.value.kind === 'object' ? b.value.entries[0].value : undefined;
    expect(c).toMatchObject({ kind: 'scalar', value: Infinity, source: '1e400', offset: 53 });
  });

  it('refuses what parseJson refuses, at the same place and in the same words', () => {
    for (const text of ['[1,]', '{"a":\n  tru}', '{"a" 1}', "{'a': 1}", '[1] x', '', '{"a":\r\n  [1']) {
      let thrown: unknown;
      try {
        parseJsonNodes(text);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, text).toBeInstanceOf(JsonSyntaxError);
      expect({ ...(thrown as JsonSyntaxError), message: (thrown as Error).message }, text).toEqual({ ...refusal(text), message: refusal(text).message });
    }
  });
});
