/**
 * JSON.parse with the place of a syntax error: a .json file (the tenants file, --config) is read as
 * JSON, and a mistake in it is told as file:line:column. Node 20's messages give a position for some
 * errors only ("Unexpected token ']', "[1,]" is not valid JSON" gives none), so the place comes from a
 * walk of the text by JSON's grammar (RFC 8259) to the first character that cannot belong to it.
 * The same walk is the parser where the place of every value matters (parseJsonNodes: the tenants
 * file's later errors name their line), so such a file is parsed once.
 */

export class JsonSyntaxError extends Error {
  constructor(
    /** 1-based, as editors count. */
    readonly line: number,
    readonly column: number,
    /** JSON.parse's message without its position and quote of the text. */
    readonly detail: string,
  ) {
    super(`${line}:${column}: ${detail}`);
    this.name = 'JsonSyntaxError';
  }
}

/** A leading byte order mark skipped, as YAML and editors do. */
const withoutByteOrderMark = (text: string) => (text.startsWith('\ufeff') ? text.slice(1) : text);

/** JSON.parse of `text` (a leading byte order mark skipped), or a JsonSyntaxError. */
export function parseJson(text: string): unknown {
  const body = withoutByteOrderMark(text);
  try {
    return JSON.parse(body);
  } catch (error) {
    throw syntaxError(body, walkJson(body).refusedAt ?? body.length, error as Error);
  }
}

/** A value of a JSON text with the offset it starts at (in the text less a byte order mark), for messages that name its line. */
export type JsonNode = JsonScalar | { kind: 'array'; offset: number; items: JsonNode[] } | { kind: 'object'; offset: number; entries: Array<{ key: JsonScalar; value: JsonNode }> };
export interface JsonScalar {
  kind: 'scalar';
  offset: number;
  value: string | number | boolean | null;
  /** The scalar as the text writes it (`1e400` for a number JSON.parse makes Infinity). */
  source: string;
}

/**
 * `text` parsed once, by the walk that finds a syntax error's place, into values with their offsets
 * (the tenants file names the line of every later error); a JsonSyntaxError where JSON's grammar
 * refuses it. `body` is the text the offsets count in: `text` less a leading byte order mark.
 */
export function parseJsonNodes(text: string): { root: JsonNode; body: string } {
  const body = withoutByteOrderMark(text);
  const walked = walkJson(body);
  if (walked.refusedAt === undefined) return { root: walked.root!, body };
  // Only for the message: JSON.parse's words for what is wrong there.
  let parseError: Error = new SyntaxError('Unexpected end of JSON input');
  try {
    JSON.parse(body);
  } catch (error) {
    parseError = error as Error;
  }
  throw syntaxError(body, walked.refusedAt, parseError);
}

/** Line and column (1-based) of `offset` in `text`, counting CR LF, CR and LF as line ends as JSON's whitespace does. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split(/\r\n|\r|\n/);
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function syntaxError(body: string, offset: number, error: Error): JsonSyntaxError {
  const { line, column } = lineAndColumn(body, offset);
  const detail = error.message.replace(/, .*is not valid JSON$/s, '').replace(/ (?:in JSON )?at position \d+(?: \(line \d+ column \d+\))?$/, '');
  return new JsonSyntaxError(line, column, detail);
}

/** What walkJson throws where the text leaves JSON's grammar. */
class Refused {}

/**
 * A walk of `text` by JSON's grammar (RFC 8259): its values with their offsets, or the offset of the
 * first character the grammar refuses (text.length for an end too soon).
 */
function walkJson(text: string): { root?: JsonNode; refusedAt?: number } {
  let at = 0;
  const refuse = (): never => {
    throw new Refused();
  };
  const space = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at++;
  };
  const take = (character: string) => {
    space();
    if (text[at] !== character) refuse();
    at++;
  };
  const string = () => {
    if (text[at] !== '"') refuse();
    for (at++; at < text.length && text[at] !== '"'; at++) {
      if (text.charCodeAt(at) < 0x20) refuse();
      if (text[at] !== '\\') continue;
      at++;
      if (text[at] === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(at + 1, at + 5))) at += 4;
      else if (!'"\\/bfnrt'.includes(text[at] ?? 'x')) refuse();
    }
    if (at >= text.length) refuse();
    at++;
  };
  const digits = () => {
    if (!/[0-9]/.test(text[at] ?? '')) refuse();
    while (/[0-9]/.test(text[at] ?? '')) at++;
  };
  /** -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, refused at the first character out of place. */
  const number = () => {
    if (text[at] === '-') at++;
    if (text[at] === '0') at++;
    else digits();
    if (text[at] === '.') {
      at++;
      digits();
    }
    if (text[at] === 'e' || text[at] === 'E') {
      at++;
      if (text[at] === '+' || text[at] === '-') at++;
      digits();
    }
  };
  /** A string, number, true, false or null. */
  const scalar = (): JsonScalar => {
    const start = at;
    const first = text[at];
    if (first === '"') {
      string();
    } else if (first === 't' || first === 'f' || first === 'n') {
      for (const expected of first === 't' ? 'true' : first === 'f' ? 'false' : 'null') {
        if (text[at] !== expected) refuse();
        at++;
      }
    } else {
      number();
    }
    const source = text.slice(start, at);
    return { kind: 'scalar', offset: start, value: JSON.parse(source) as JsonScalar['value'], source };
  };
  /** An object's key and its colon. */
  const key = (): JsonScalar => {
    space();
    if (text[at] !== '"') refuse();
    const name = scalar();
    take(':');
    return name;
  };
  // No recursion: each array or object still open, innermost last (with the key its next value
  // goes under), so that a text nested deeper than the call stack goes (thousands of levels) still
  // gets its place.
  type Container = Extract<JsonNode, { kind: 'array' | 'object' }>;
  const open: Array<{ node: Container; close: string; key?: JsonScalar }> = [];
  const place = (value: JsonNode) => {
    const parent = open[open.length - 1];
    if (parent?.node.kind === 'array') parent.node.items.push(value);
    else if (parent?.node.kind === 'object') parent.node.entries.push({ key: parent.key!, value });
  };
  let root: JsonNode | undefined;
  try {
    for (;;) {
      // A value: a scalar, an empty array or object, or the start of a full one (then its first value).
      space();
      const first = text[at];
      if (first === '{' || first === '[') {
        const node: Container = first === '{' ? { kind: 'object', offset: at, entries: [] } : { kind: 'array', offset: at, items: [] };
        at++;
        const close = first === '{' ? '}' : ']';
        root ??= node;
        place(node);
        space();
        if (text[at] !== close) {
          open.push({ node, close, key: close === '}' ? key() : undefined });
          continue;
        }
        at++;
      } else {
        const value = scalar();
        root ??= value;
        place(value);
      }
      // After a value: the brackets it closes, then a comma and the next value, or the end of the text.
      for (;;) {
        space();
        if (open.length === 0) return at < text.length ? { refusedAt: at } : { root };
        const innermost = open[open.length - 1];
        if (text[at] === innermost.close) {
          at++;
          open.pop();
          continue;
        }
        if (text[at] !== ',') refuse();
        at++;
        if (innermost.close === '}') innermost.key = key();
        break;
      }
    }
  } catch (error) {
    if (error instanceof Refused) return { refusedAt: at };
    throw error;
  }
}
