/**
 * JSON.parse with the place of a syntax error: a .json file (the tenants file, --config) is read as
 * JSON, and a mistake in it is told as file:line:column. Node 20's messages give a position for some
 * errors only ("Unexpected token ']', "[1,]" is not valid JSON" gives none), so the place comes from a
 * walk of the text by JSON's grammar (RFC 8259) to the first character that cannot belong to it.
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

/** JSON.parse of `text` (a leading byte order mark skipped, as YAML and editors do), or a JsonSyntaxError. */
export function parseJson(text: string): unknown {
  const body = text.startsWith('\ufeff') ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (error) {
    const offset = jsonErrorOffset(body) ?? body.length;
    const before = body.slice(0, offset).split(/\r\n|\r|\n/);
    const detail = (error as Error).message
      .replace(/, .*is not valid JSON$/s, '')
      .replace(/ (?:in JSON )?at position \d+(?: \(line \d+ column \d+\))?$/, '');
    throw new JsonSyntaxError(before.length, before[before.length - 1].length + 1, detail);
  }
}

/** What jsonErrorOffset's walk throws where the text leaves JSON's grammar. */
class Refused {}

/** Offset of the first character of `text` that JSON's grammar refuses (text.length for an end too soon); undefined when there is none. */
function jsonErrorOffset(text: string): number | undefined {
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
  const scalar = () => {
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
  };
  /** An object's key and its colon. */
  const key = () => {
    space();
    string();
    take(':');
  };
  // No recursion: the closing bracket of each array or object still open, innermost last, so that
  // a text nested deeper than the call stack goes (thousands of levels) still gets its place.
  const open: string[] = [];
  try {
    for (;;) {
      // A value: a scalar, an empty array or object, or the start of a full one (then its first value).
      space();
      const first = text[at];
      if (first === '{' || first === '[') {
        at++;
        const close = first === '{' ? '}' : ']';
        space();
        if (text[at] !== close) {
          open.push(close);
          if (close === '}') key();
          continue;
        }
        at++;
      } else {
        scalar();
      }
      // After a value: the brackets it closes, then a comma and the next value, or the end of the text.
      for (;;) {
        space();
        if (open.length === 0) return at < text.length ? at : undefined;
        const close = open[open.length - 1];
        if (text[at] === close) {
          at++;
          open.pop();
          continue;
        }
        if (text[at] !== ',') refuse();
        at++;
        if (close === '}') key();
        break;
      }
    }
  } catch (error) {
    if (error instanceof Refused) return at;
    throw error;
  }
}
