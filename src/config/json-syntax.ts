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
  /** After an opening bracket: items separated by commas up to `close`. */
  const items = (close: string, item: () => void) => {
    space();
    if (text[at] === close) return void at++;
    for (;;) {
      item();
      space();
      if (text[at] === close) return void at++;
      if (text[at] !== ',') refuse();
      at++;
    }
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
  const value = () => {
    space();
    const first = text[at];
    if (first === '{') {
      at++;
      items('}', () => {
        space();
        string();
        take(':');
        value();
      });
    } else if (first === '[') {
      at++;
      items(']', value);
    } else if (first === '"') {
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
  try {
    value();
    space();
    return at < text.length ? at : undefined;
  } catch (error) {
    if (error instanceof Refused) return at;
    // A nesting too deep for this walk's stack: no place to tell.
    return undefined;
  }
}
